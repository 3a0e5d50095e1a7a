"""Event delivery benchmark: the studio's SSE stream against ComfyUI's own /ws, measured in the same run.

Method (shared/comfyui/PERF.md §2): an executor-like thread calls `send_sync("progress", {..., "value": i,
"t_ns": time.time_ns()}, None)` 300× at 10 ms spacing (the first 5 dropped). The same message reaches
ComfyUI's /ws clients (broadcast, `t_ns` in the payload) and, through the studio's tap on `send`, the job
tracker and the studio's stream (as a `progress` event whose value is i). N clients run in a separate
process on one asyncio loop: bare protocol connections, the same code for SSE and WebSocket, that take
`time.time_ns()` in `data_received` and parse the frames afterwards. (PERF.md §2 stamped when aiohttp's
`ws.receive()` returned; aiohttp's SSE path costs the client about twice as much per message, which at 100
clients on one loop showed up as studio latency. Figures from the two clients are not comparable.)

Phases, per N in 1, 10, 100 and interleaved round by round:
  comfy        ComfyUI /ws clients, test host without the studio (the baseline)
  comfy+tap    ComfyUI /ws clients, test host with the studio attached (what the tap costs ComfyUI's clients)
  studio       studio SSE clients (`/studio/api/v1/events`), test host with the studio attached
  studio queued  the same with the hub's direct path off (test host only): one task wake-up per client per event

Then the executor side: ns per `send_sync` call with and without the studio attached, interleaved batches,
and a count of `call_soon_threadsafe` per `send_sync`.

Run: .venv/bin/python bench/bench_events.py [--rounds 2] [--clients 1,10,100]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import bisect
import contextlib
import itertools
import json
import os
import statistics
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import figures
import yarl
from figures import Figure, pct

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the ComfyUI test host and the studio harness

COUNT = 300
SPACING_S = 0.010
DROP = 5
TEST_HOST_PHASES = ("comfy", "comfy+tap", "studio", "studio queued")
REAL_PHASES = ("comfy", "comfy+tap", "studio")


# ---- client process ----------------------------------------------------------------------------------


class _Recorder(asyncio.Protocol):
    """One client connection: stamps each read as it arrives and keeps the bytes; frames are parsed afterwards.

    SSE and WebSocket clients share this code, so both sides pay the same per-read cost: a protocol callback,
    no parser, no task wake-up. (aiohttp's SSE client path costs about twice its WebSocket one per message,
    which at 100 clients on one loop would be measured against the studio.)
    """

    def __init__(self, request: bytes, marker: bytes, ready_marker: bytes, want: int) -> None:
        self.request, self.marker, self.ready_marker, self.want = request, marker, ready_marker, want
        self.reads: list[tuple[int, bytes]] = []
        self.ready = asyncio.Event()
        self.done = asyncio.Event()
        self._tail = b""
        self._seen = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        transport.write(self.request)  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        self.reads.append((time.time_ns(), data))
        # The tail is shorter than the marker: a marker split across two reads is counted once.
        window = self._tail + data
        self._tail = window[1 - len(self.marker) :]
        if not self.ready.is_set() and self.ready_marker in window:
            self.ready.set()
        self._seen += window.count(self.marker)
        # The last marker can arrive before the rest of its frame: stop only once that frame is whole.
        if self._seen >= self.want and self._whole_frames() >= self.want:
            self.done.set()

    def _whole_frames(self) -> int:
        return sum(self.marker in frame for _, frame in self.frames())

    def connection_lost(self, exc: Exception | None) -> None:
        self.done.set()

    def frames(self) -> list[tuple[int, bytes]]:
        """(arrival ns of the read that completed it, payload) per SSE frame or WebSocket text frame."""
        raw = b"".join(data for _, data in self.reads)
        ends = list(itertools.accumulate(len(data) for _, data in self.reads))

        def stamp(end: int) -> int:
            return self.reads[bisect.bisect_left(ends, end)][0]

        pos = raw.index(b"\r\n\r\n") + 4
        out: list[tuple[int, bytes]] = []
        if b"HTTP/1.1 101" in raw[:pos]:  # WebSocket: server frames are unmasked
            while pos + 2 <= len(raw):
                opcode, size = raw[pos] & 0x0F, raw[pos + 1] & 0x7F
                pos += 2
                if size >= 126:
                    width = 2 if size == 126 else 8
                    size, pos = int.from_bytes(raw[pos : pos + width], "big"), pos + width
                if pos + size > len(raw):
                    break
                if opcode == 1:
                    out.append((stamp(pos + size), raw[pos : pos + size]))
                pos += size
            return out
        # SSE over HTTP/1.1 chunked (every server write is one chunk): a frame is complete with its chunk.
        buffer = b""
        while (eol := raw.find(b"\r\n", pos)) != -1:
            size = int(raw[pos:eol], 16)
            end = eol + 2 + size
            if size == 0 or end > len(raw):
                break
            *complete, buffer = (buffer + raw[eol + 2 : end]).split(b"\n\n")
            out += [(stamp(end), frame) for frame in complete]
            pos = end + 2
        return out


def _request(url: str, headers: dict[str, str]) -> tuple[str, int, bytes]:
    parts = urllib.parse.urlsplit(url)
    target = f"{parts.path}?{parts.query}" if parts.query else parts.path
    lines = [f"GET {target} HTTP/1.1", f"Host: {parts.netloc}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return parts.hostname or "127.0.0.1", parts.port or 80, ("\r\n".join(lines) + "\r\n\r\n").encode()


def _values(kind: str, frames: list[tuple[int, bytes]]) -> list[tuple[int, int]]:
    out = []
    for now, frame in frames:
        if kind == "sse" and b"event: progress\n" in frame:
            out.append((now, json.loads(frame.split(b"data: ", 1)[1])["progress"]["value"]))
        elif kind == "ws" and b'"progress"' in frame:
            body = json.loads(frame)
            if body["type"] == "progress":
                out.append((now, body["data"]["value"]))
    return out


async def client_main(kind: str, url: str, n: int, out: str) -> None:
    headers: dict[str, str] = {}
    if kind == "sse":
        jar = aiohttp.CookieJar(unsafe=True)  # IP-address host: keep the session cookie
        async with aiohttp.ClientSession(cookie_jar=jar) as session:
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(url.split("/studio/")[0] + "/studio/api/v1/session") as resp:
                    await resp.read()
            cookies = jar.filter_cookies(yarl.URL(url))
        headers = {"Accept": "text/event-stream"}
        if cookies:
            headers["Cookie"] = "; ".join(f"{k}={m.value}" for k, m in cookies.items())
        marker, ready = b"event: progress\n", b"event: resync\n"
    else:
        key = base64.b64encode(os.urandom(16)).decode()
        headers = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Key": key}
        headers["Sec-WebSocket-Version"] = "13"
        marker, ready = b'"type": "progress"', b'"status"'
    host, port, request = _request(url, headers)
    loop = asyncio.get_running_loop()
    clients = []
    for _ in range(n):
        _, client = await loop.create_connection(lambda: _Recorder(request, marker, ready, COUNT), host, port)
        clients.append(client)
    await asyncio.wait_for(asyncio.gather(*(c.ready.wait() for c in clients)), 30)
    await asyncio.sleep(0.2)
    sys.stdout.write("READY\n")
    sys.stdout.flush()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.gather(*(c.done.wait() for c in clients)), COUNT * SPACING_S + 20)
    for client in clients:
        client.transport.close()
    Path(out).write_text(json.dumps([_values(kind, c.frames()) for c in clients]))


# ---- server side --------------------------------------------------------------------------------------


def emit(server: Any, prompt_id: str) -> dict[int, int]:
    """The executor's part: 300 progress messages, 10 ms apart, broadcast (sid None)."""
    sent: dict[int, int] = {}
    next_at = time.perf_counter()
    for i in range(COUNT):
        next_at += SPACING_S
        delay = next_at - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        t_ns = time.time_ns()
        sent[i] = t_ns
        server.send_sync("progress", {"value": i, "max": COUNT, "prompt_id": prompt_id, "node": "2", "t_ns": t_ns})
    return sent


async def follow_bench_job(studio: Any) -> str:
    """A stored job the studio follows, so each message takes the full path: tracker → hub → stream → store."""
    from comfyui_studio.db.models import Job

    prompt_id = str(uuid.uuid4())
    graph = {"1": {}, "2": {}, "3": {}}
    async with studio.store.session(studio.owner_id) as session, session.begin():
        row = Job(owner_id=studio.owner_id, prompt_id=prompt_id, state="queued", graph=graph)
        session.add(row)
    studio.live.submitted(prompt_id, await studio.jobs.get(studio.owner_id, row.id), studio.owner_id, graph)
    return prompt_id


async def measure(kind: str, url: str, n: int, server: Any, studio: Any, tmp: Path) -> list[list[float]]:
    prompt_id = await follow_bench_job(studio) if studio is not None else str(uuid.uuid4())
    out = tmp / f"{kind}-{n}-{uuid.uuid4().hex[:6]}.json"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--client", kind, "--url", url, "--n", str(n), "--out", str(out),
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), 60)
    assert line.strip() == b"READY", line
    sent = await asyncio.to_thread(emit, server, prompt_id)
    await proc.wait()
    per_client = json.loads(out.read_text())
    return [[(now - sent[int(i)]) / 1e6 for now, i in samples if int(i) >= DROP] for samples in per_client]


def row(name: str, n: int, rounds: list[list[list[float]]]) -> dict[str, Any]:
    """Pooled percentiles, and the median over rounds of each round's p50 and p99.

    On a shared, loaded box one stall of another process lands in whichever phase runs at that moment and
    decides its pooled p99; the round median is what holds from run to run.
    """
    flat = [v for per_client in rounds for c in per_client for v in c]
    per_round = [[v for c in per_client for v in c] for per_client in rounds]
    per_round = [values for values in per_round if values]
    nan = float("nan")
    return {
        "phase": name,
        "clients": n,
        "samples": len(flat),
        "p50": pct(flat, 50) if flat else nan,
        "p95": pct(flat, 95) if flat else nan,
        "p99": pct(flat, 99) if flat else nan,
        "round_p50": statistics.median(pct(v, 50) for v in per_round) if per_round else nan,
        "round_p99": statistics.median(pct(v, 99) for v in per_round) if per_round else nan,
    }


def send_sync_cost(servers: dict[str, Any], prompt_ids: dict[str, str], batches: int, calls: int) -> dict[str, list]:
    """ns per send_sync call, executor thread, variants interleaved batch by batch."""
    per: dict[str, list[float]] = {name: [] for name in servers}
    clock = time.perf_counter_ns
    for b in range(batches):
        order = list(servers.items()) if b % 2 == 0 else list(reversed(servers.items()))
        for name, server in order:
            send = server.send_sync
            data = {"value": 1, "max": 2, "prompt_id": prompt_ids[name], "node": "2"}
            t0 = clock()
            for _ in range(calls):
                send("progress", data, None)
            per[name].append((clock() - t0) / calls)
        time.sleep(0.002)  # let the loop drain a little, as between real progress steps
    return per


def count_call_soon(loop: asyncio.AbstractEventLoop, server: Any, n: int = 100) -> float:
    calls = 0
    original = loop.call_soon_threadsafe

    def counting(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        return original(*args, **kwargs)

    loop.call_soon_threadsafe = counting  # type: ignore[method-assign]
    try:
        thread = threading.Thread(target=lambda: [server.send_sync("bench_count", {"i": i}) for i in range(n)])
        thread.start()
        thread.join()
    finally:
        del loop.call_soon_threadsafe  # back to the class's method
    return calls / n


async def wait_drained(server: Any) -> None:
    while not server.messages.empty():
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)


async def queued_only(measurement: Awaitable[list[list[float]]]) -> list[list[float]]:
    """The studio with the hub's direct path off: every event wakes one task per client (the path before it)."""
    from comfyui_studio.server_routes import events

    original = events._direct_writer
    events._direct_writer = lambda request, resp: None  # type: ignore[assignment]
    try:
        return await measurement
    finally:
        events._direct_writer = original  # type: ignore[assignment]


def print_delivery(
    where: str,
    rounds: int,
    clients: list[int],
    results: dict[tuple[str, int], list[list[list[float]]]],
    phases: tuple[str, ...],
) -> None:
    print(f"\n## Event delivery on {where}: send_sync → client ({rounds} round(s), {COUNT - DROP} events per client)")
    print("| clients | phase | samples | p50 ms | p95 ms | p99 ms | round median p50 / p99 ms |")
    print("|---|---|---|---|---|---|---|")
    table: dict[tuple[str, int], dict[str, Any]] = {}
    for n in clients:
        for name in phases:
            k = row(name, n, results[(name, n)])
            table[(name, n)] = k
            print(
                f"| {n} | {name} | {k['samples']} | {k['p50']:.2f} | {k['p95']:.2f} | {k['p99']:.2f} | "
                f"{k['round_p50']:.2f} / {k['round_p99']:.2f} |"
            )
    found: list[Figure] = []
    print("\nAgainst comfy (targets: p50 within 1 ms, p99 at most 2×); pooled, and round medians in brackets:")
    print("| clients | phase | p50 − comfy p50 | p99 / comfy p99 |")
    print("|---|---|---|---|")
    for n in clients:
        c = table[("comfy", n)]
        for name in phases:
            if name.startswith("studio"):
                st = table[(name, n)]
                print(
                    f"| {n} | {name} | {st['p50'] - c['p50']:+.2f} ms ({st['round_p50'] - c['round_p50']:+.2f}) | "
                    f"{st['p99'] / c['p99']:.2f}× ({st['round_p99'] / c['round_p99']:.2f}×) |"
                )
                label = f"{where}: {name}, {n} client{'s' if n > 1 else ''}"
                found += [
                    Figure(f"{label}: p50 − comfy p50", st["p50"] - c["p50"], "ms", 1.0, baseline="ComfyUI /ws"),
                    Figure(f"{label}: p99 / comfy p99", st["p99"] / c["p99"], "×", 2.0, baseline="ComfyUI /ws"),
                ]
    figures.emit(found)


async def bench(rounds: int, clients: list[int], cost_batches: int) -> None:
    from harness import start_studio
    from testhost import start_test_host

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        plain = await start_test_host(tmp / "plain")
        run = await start_studio(tmp / "studio")
        # ComfyUI's own loggers would print a line per send error; keep the figures readable.
        results: dict[tuple[str, int], list[list[list[float]]]] = {}  # (phase, N) → rounds → clients
        try:
            for r in range(rounds):
                for n in clients:
                    phases: list[tuple[str, Callable[[], Any]]] = [
                        (
                            "comfy",
                            lambda n=n: measure("ws", plain.url + "/ws", n, plain.server, None, tmp),
                        ),
                        (
                            "comfy+tap",
                            lambda n=n: measure("ws", run.host.url + "/ws", n, run.host.server, run.studio, tmp),
                        ),
                        (
                            "studio",
                            lambda n=n: measure("sse", run.api + "/events", n, run.host.server, run.studio, tmp),
                        ),
                        (
                            "studio queued",
                            lambda n=n: queued_only(
                                measure("sse", run.api + "/events", n, run.host.server, run.studio, tmp)
                            ),
                        ),
                    ]
                    if r % 2:
                        phases.reverse()
                    for name, go in phases:
                        per_client = await go()
                        results.setdefault((name, n), []).append(per_client)
                        await wait_drained(run.host.server)
                        await run.studio.live.drain()
                        sys.stderr.write(f"round {r + 1} N={n} {name}: {sum(map(len, per_client))} samples\n")

            print_delivery(
                "ComfyUI test host (tests/testhost publish_loop replica)", rounds, clients, results, TEST_HOST_PHASES
            )

            servers = {"without studio": plain.server, "with studio": run.host.server}
            prompt_ids = {"without studio": str(uuid.uuid4()), "with studio": await follow_bench_job(run.studio)}
            per = await asyncio.to_thread(send_sync_cost, servers, prompt_ids, cost_batches, 200)
            await wait_drained(run.host.server)
            await wait_drained(plain.server)
            loop = asyncio.get_running_loop()
            hops = {name: count_call_soon(loop, server) for name, server in servers.items()}
            await wait_drained(run.host.server)
            await wait_drained(plain.server)
            print(f"\n## Executor thread: ns per send_sync call ({cost_batches} interleaved batches of 200)")
            print("| variant | p50 ns | p99 ns | mean ns | call_soon_threadsafe per send_sync |")
            print("|---|---|---|---|---|")
            for name, values in per.items():
                print(
                    f"| {name} | {pct(values, 50):.0f} | {pct(values, 99):.0f} | {statistics.fmean(values):.0f} "
                    f"| {hops[name]:.2f} |"
                )
            print(
                "\nsend_sync wrapped by the studio: "
                f"{type(run.host.server).send_sync is not getattr(run.host.server.send_sync, '__func__', None)}"
            )
        finally:
            await run.stop()
            await plain.stop()


# ---- a real ComfyUI ----------------------------------------------------------------------------------


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def start_comfyui(comfy_dir: Path, base: Path, with_studio: bool) -> tuple[Any, str]:
    """ComfyUI on the CPU with a throwaway base directory: the bench probe, and the studio when asked."""
    nodes = base / "custom_nodes"
    nodes.mkdir(parents=True)
    (nodes / "studio_bench_probe").symlink_to(ROOT / "bench" / "comfy_probe")
    if with_studio:
        (nodes / "any-folder-name").symlink_to(ROOT)
    port = _free_port()
    log = open(base / "comfyui.log", "wb")  # noqa: SIM115 - handed to the process
    python = comfy_dir / ".venv" / "bin" / "python"
    proc = await asyncio.create_subprocess_exec(
        str(python), "main.py", "--cpu", "--listen", "127.0.0.1", "--port", str(port), "--disable-auto-launch",
        "--base-directory", str(base), cwd=comfy_dir, stdout=log, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    async with aiohttp.ClientSession() as session:
        for _ in range(240):
            if proc.returncode is not None:
                raise RuntimeError((base / "comfyui.log").read_text()[-3000:])
            try:
                async with session.get(url + "/queue") as resp:
                    if resp.status == 200:
                        break
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.5)
        else:
            raise RuntimeError("ComfyUI did not start")
    await asyncio.sleep(1.0)
    return proc, url


async def measure_real(kind: str, stream_url: str, n: int, comfy_url: str, tmp: Path) -> list[list[float]]:
    out = tmp / f"real-{kind}-{n}-{uuid.uuid4().hex[:6]}.json"
    sent_path = tmp / f"sent-{uuid.uuid4().hex[:6]}.json"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--client", kind, "--url", stream_url, "--n", str(n), "--out", str(out),
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), 60)
    assert line.strip() == b"READY", line
    inputs = {"count": COUNT, "spacing_ms": SPACING_S * 1000, "out": str(sent_path), "nonce": time.time_ns()}
    prompt = {"1": {"class_type": "StudioBenchEmit", "inputs": inputs}}
    async with aiohttp.ClientSession() as session, session.post(comfy_url + "/prompt", json={"prompt": prompt}) as resp:
        assert resp.status == 200, await resp.text()
    await proc.wait()
    sent = {int(k): v for k, v in json.loads(sent_path.read_text()).items()}
    per_client = json.loads(out.read_text())
    return [[(now - sent[int(i)]) / 1e6 for now, i in samples if int(i) >= DROP] for samples in per_client]


async def bench_real(comfy_dir: Path, rounds: int, clients: list[int]) -> None:
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        plain_proc, plain_url = await start_comfyui(comfy_dir, tmp / "plain", with_studio=False)
        studio_proc, studio_url = await start_comfyui(comfy_dir, tmp / "studio", with_studio=True)
        results: dict[tuple[str, int], list[list[list[float]]]] = {}  # (phase, N) → rounds → clients
        try:
            for r in range(rounds):
                for n in clients:
                    phases: list[tuple[str, Callable[[], Any]]] = [
                        ("comfy", lambda n=n: measure_real("ws", plain_url + "/ws", n, plain_url, tmp)),
                        ("comfy+tap", lambda n=n: measure_real("ws", studio_url + "/ws", n, studio_url, tmp)),
                        (
                            "studio",
                            lambda n=n: measure_real("sse", studio_url + "/studio/api/v1/events", n, studio_url, tmp),
                        ),
                    ]
                    if r % 2:
                        phases.reverse()
                    for name, go in phases:
                        per_client = await go()
                        results.setdefault((name, n), []).append(per_client)
                        sys.stderr.write(f"real round {r + 1} N={n} {name}: {sum(map(len, per_client))} samples\n")
                        await asyncio.sleep(0.3)
            print_delivery(f"real ComfyUI at {comfy_dir}", rounds, clients, results, REAL_PHASES)
        finally:
            for proc in (plain_proc, studio_proc):
                proc.terminate()
                try:
                    await asyncio.wait_for(proc.wait(), 20)
                except TimeoutError:
                    proc.kill()
                    await proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--client", choices=["sse", "ws"], help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--clients", default="1,10,100")
    parser.add_argument("--cost-batches", type=int, default=300)
    parser.add_argument("--comfyui", help="a ComfyUI checkout (with .venv): measure it instead of the test host")
    args = parser.parse_args()
    if args.client:
        asyncio.run(client_main(args.client, args.url, args.n, args.out))
        return
    if args.comfyui:
        asyncio.run(bench_real(Path(args.comfyui), args.rounds, [int(c) for c in args.clients.split(",")]))
        return
    asyncio.run(bench(args.rounds, [int(c) for c in args.clients.split(",")], args.cost_batches))


if __name__ == "__main__":
    main()
