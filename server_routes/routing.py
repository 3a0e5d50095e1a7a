"""`DataRoutes`: aiohttp's route table for the studio's handlers, which answer with data, not responses."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeVar, cast, overload

from aiohttp import hdrs, web

from .middleware import Handler

if TYPE_CHECKING:
    from aiohttp.typedefs import Handler as ResponseHandler

H = TypeVar("H", bound=Handler)


class DataRoutes(Sequence[web.AbstractRouteDef]):
    """Like `web.RouteTableDef` (`app.add_routes` takes either), for handlers that return data or a response."""

    def __init__(self) -> None:
        self._items: list[web.AbstractRouteDef] = []

    @overload
    def __getitem__(self, index: int) -> web.AbstractRouteDef: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[web.AbstractRouteDef]: ...

    def __getitem__(self, index: int | slice) -> web.AbstractRouteDef | Sequence[web.AbstractRouteDef]:
        return self._items[index]

    def __iter__(self) -> Iterator[web.AbstractRouteDef]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def route(self, method: str, path: str, **kwargs: Any) -> Callable[[H], H]:
        def register(handler: H) -> H:
            # aiohttp's types want a response; the envelope middleware (middleware.py) makes data into one.
            self._items.append(web.RouteDef(method, path, cast("ResponseHandler", handler), kwargs))
            return handler

        return register

    def get(self, path: str, **kwargs: Any) -> Callable[[H], H]:
        return self.route(hdrs.METH_GET, path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Callable[[H], H]:
        return self.route(hdrs.METH_POST, path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> Callable[[H], H]:
        return self.route(hdrs.METH_PUT, path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> Callable[[H], H]:
        return self.route(hdrs.METH_PATCH, path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Callable[[H], H]:
        return self.route(hdrs.METH_DELETE, path, **kwargs)
