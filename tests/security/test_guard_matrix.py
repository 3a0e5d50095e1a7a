"""Each request guard as a pure decision function, over a matrix of requests (like datasette's CSRF tests)."""

from __future__ import annotations

import pytest

from comfyui_studio.server_routes.security import (
    content_type_verdict,
    csrf_verdict,
    host_verdict,
    local_trust_verdict,
    origin_verdict,
    same_origin,
)
from comfyui_studio.services.security import build_host_policy, listen_is_loopback

LOOPBACK = build_host_policy(["127.0.0.1"], hostname="gpu-box")
NETWORK = build_host_policy(["0.0.0.0"], ["studio.example.org"], hostname="gpu-box")  # noqa: S104


@pytest.mark.parametrize(
    "policy,host,ok",
    [
        (LOOPBACK, "127.0.0.1:8188", True),
        (LOOPBACK, "localhost:8188", True),
        (LOOPBACK, "LOCALHOST", True),
        (LOOPBACK, "[::1]:8188", True),
        (LOOPBACK, "gpu-box:8188", True),
        (LOOPBACK, "gpu-box.local:8188", True),
        (LOOPBACK, "evil.example:8188", False),  # DNS rebinding: a name the attacker controls
        (LOOPBACK, "localhost.evil.example", False),
        (LOOPBACK, "192.168.1.20:8188", False),  # not listening there
        (LOOPBACK, "", False),
        (LOOPBACK, None, False),
        (LOOPBACK, "127.0.0.1:8188/x", False),
        (LOOPBACK, "user@127.0.0.1", False),
        (LOOPBACK, "127.0.0.1:notaport", False),
        (NETWORK, "192.168.1.20:8188", True),  # IP literals cannot be rebound
        (NETWORK, "[fe80::1]:8188", True),
        (NETWORK, "studio.example.org", True),
        (NETWORK, "STUDIO.example.org.:443", True),
        (NETWORK, "evil.example", False),
    ],
)
def test_host_check(policy, host, ok) -> None:
    verdict = host_verdict(host, policy)
    assert verdict.ok is ok
    if not ok:
        assert verdict.code == "host_not_allowed"


HOST = "127.0.0.1:8188"
SAME = "http://127.0.0.1:8188"


@pytest.mark.parametrize(
    "method,origin,referer,site,websocket,api,ok",
    [
        ("GET", None, None, None, False, True, True),
        ("GET", "http://evil.example", None, None, False, True, True),  # reads are closed by CORS
        ("GET", None, None, "cross-site", False, True, False),  # fetch metadata: no cross-site API reads
        ("GET", None, None, "same-site", False, True, False),
        ("GET", None, None, "cross-site", False, False, True),  # a link to the page is fine
        ("GET", None, None, "same-origin", False, True, True),
        ("GET", None, None, "none", False, True, True),
        ("POST", SAME, None, "same-origin", False, True, True),
        ("POST", SAME, None, None, False, True, True),
        ("POST", None, SAME + "/studio", None, False, True, True),
        ("POST", "http://evil.example", None, None, False, True, False),
        ("POST", "null", None, None, False, True, False),
        ("POST", "NULL", None, None, False, True, False),
        ("POST", "http://127.0.0.1:3000", None, None, False, True, False),  # same site, other port
        ("POST", "http://localhost:8188", None, None, False, True, False),  # another origin
        # the scheme is not compared: only this server answers on this host and port (TLS proxies)
        ("POST", "https://127.0.0.1:8188", None, None, False, True, True),
        ("POST", "https://127.0.0.1", None, None, False, True, False),
        ("POST", SAME, None, "same-site", False, True, False),
        ("POST", SAME, None, "cross-site", False, True, False),
        ("POST", None, None, None, False, True, False),  # no Origin, no Referer
        ("POST", None, "http://evil.example/page", None, False, True, False),
        ("POST", None, "about:blank", None, False, True, False),
        ("DELETE", "http://evil.example", None, None, False, True, False),
        ("PUT", SAME, None, None, False, True, True),
        ("PATCH", "null", None, None, False, True, False),
        ("GET", "http://evil.example", None, None, True, True, False),  # cross-site WebSocket hijacking
        ("GET", "null", None, None, True, True, False),
        ("GET", SAME, None, None, True, True, True),
        ("GET", None, None, None, True, True, True),  # not a browser
    ],
)
def test_origin_check(method, origin, referer, site, websocket, api, ok) -> None:
    verdict = origin_verdict(
        method=method,
        host_header=HOST,
        origin=origin,
        referer=referer,
        sec_fetch_site=site,
        websocket=websocket,
        api=api,
    )
    assert verdict.ok is ok, verdict
    if not ok:
        assert verdict.code == "forbidden"


@pytest.mark.parametrize(
    "source,host,same",
    [
        ("http://localhost", "localhost", True),
        ("http://localhost:80", "localhost", True),
        ("https://studio.example.org", "studio.example.org", True),
        ("https://studio.example.org", "studio.example.org:443", True),
        ("http://[::1]:8188", "[::1]:8188", True),
        ("http://127.0.0.1:8188", "127.0.0.1:8189", False),
        ("file:///etc/passwd", "localhost", False),
        ("http://127.0.0.1:8188@evil.example", "127.0.0.1:8188", False),
        ("http://evil.example#@127.0.0.1:8188", "127.0.0.1:8188", False),
        ("not a url", "127.0.0.1:8188", False),
    ],
)
def test_same_origin(source, host, same) -> None:
    assert same_origin(source, host) is same


@pytest.mark.parametrize(
    "method,content_type,has_body,ok",
    [
        ("POST", "application/json", True, True),
        ("POST", "multipart/form-data", True, True),
        ("POST", "text/plain", True, False),
        ("POST", "application/x-www-form-urlencoded", True, False),
        ("PUT", "application/xml", True, False),
        ("POST", "application/octet-stream", False, True),  # no body: nothing to misread
        ("DELETE", "", False, True),
        ("GET", "text/plain", True, True),
    ],
)
def test_content_type_check(method, content_type, has_body, ok) -> None:
    verdict = content_type_verdict(method, content_type, has_body)
    assert verdict.ok is ok
    if not ok:
        assert verdict.code == "unsupported_media_type"


@pytest.mark.parametrize(
    "method,sent,expected,ok",
    [
        ("GET", None, [], True),
        ("POST", None, ["csrf1_abc"], False),
        ("POST", "", ["csrf1_abc"], False),
        ("POST", "csrf1_abc", ["csrf1_abc"], True),
        ("POST", "csrf1_abd", ["csrf1_abc"], False),
        ("POST", "csrf1_abc", [], False),
        ("DELETE", "csrf1_abc", ["csrf1_x", "csrf1_abc"], True),
        ("PUT", "x" * 500, ["x" * 500], False),  # absurd lengths are not even compared
    ],
)
def test_csrf_check(method, sent, expected, ok) -> None:
    verdict = csrf_verdict(method, sent, expected)
    assert verdict.ok is ok
    if not ok:
        assert verdict.code == "csrf_failed"


@pytest.mark.parametrize(
    "listen,peer,host,site,origin,proxied,enabled,trusted",
    [
        (["127.0.0.1"], "127.0.0.1", HOST, None, None, False, True, True),
        (["127.0.0.1"], "::1", "localhost:8188", "same-origin", "http://localhost:8188", False, True, True),
        (["127.0.0.1"], "::ffff:127.0.0.1", HOST, None, None, False, True, True),
        (["127.0.0.1"], "127.0.0.1", HOST, None, None, False, False, False),  # setting off
        (["0.0.0.0"], "127.0.0.1", HOST, None, None, False, True, False),  # noqa: S104 on the network
        (["127.0.0.1", "192.168.1.20"], "127.0.0.1", HOST, None, None, False, True, False),
        ([], "127.0.0.1", HOST, None, None, False, True, False),
        (["127.0.0.1"], "192.168.1.5", HOST, None, None, False, True, False),  # a peer on the LAN
        (["127.0.0.1"], "127.0.0.1", HOST, None, None, True, True, False),  # behind a local proxy
        (["127.0.0.1"], "127.0.0.1", "studio.lan", None, None, False, True, False),
        (["127.0.0.1"], "127.0.0.1", HOST, "cross-site", None, False, True, False),
        (["127.0.0.1"], "127.0.0.1", HOST, "same-site", None, False, True, False),
        (["127.0.0.1"], "127.0.0.1", HOST, None, "http://evil.example", False, True, False),
        (["127.0.0.1"], None, HOST, None, None, False, True, False),
    ],
)
def test_local_owner_trust(listen, peer, host, site, origin, proxied, enabled, trusted) -> None:
    assert (
        local_trust_verdict(
            enabled=enabled,
            listen=listen,
            peer=peer,
            host_header=host,
            sec_fetch_site=site,
            origin=origin,
            proxied=proxied,
        )
        is trusted
    )


@pytest.mark.parametrize(
    "listen,loopback",
    [
        (["127.0.0.1"], True),
        (["localhost", "::1"], True),
        (["0.0.0.0"], False),  # noqa: S104
        (["::"], False),
        (["127.0.0.1", "10.0.0.2"], False),
        ([], False),
    ],
)
def test_loopback_only_listen(listen, loopback) -> None:
    assert listen_is_loopback(listen) is loopback
