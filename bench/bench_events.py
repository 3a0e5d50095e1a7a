"""Event delivery benchmark: the studio's SSE stream against ComfyUI's own /ws, measured in the same run.

Method (shared/comfyui/PERF.md §2): an executor-like thread calls `send_sync("progress", {..., "value": i,
"t_ns": time.time_ns()}, None)` 300× at 10 ms spacing (the first 5 dropped). The same message reaches
ComfyUI's /ws clients (broadcast, `t_ns` in the payload) and, through the studio's tap on `send`, the job
tracker and the studio's stream (as a `progress` event whose value is i). N clients run in a separate
process (aiohttp), take `time.time_ns()` as soon as a frame arrives, and parse afterwards.

Phases, per N in 1, 10, 100 and interleaved round by round:
  comfy        ComfyUI /ws clients, test host without the studio (the baseline)
  comfy+tap    ComfyUI /ws clients, test host with the studio attached (what the tap costs ComfyUI's clients)
  studio       studio SSE clients (`/studio/api/v1/events`), test host with the studio attached

Then the executor side: ns per `send_sync` call with and without the studio attached, interleaved batches,
and a count of `call_soon_threadsafe` per `send_sync`.

Run: .venv/bin/python bench/bench_events.py [--rounds 2] [--clients 1,10,100]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the ComfyUI test host and the studio harness

COUNT = 300
SPACING_S = 0.010
DROP = 5


def pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile, as PERF.md."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(p / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


# ---- client process ----------------------------------------------------------------------------------


async def _sse_client(session: aiohttp.ClientSession, url: str, ready: asyncio.Event, want: int) -> list[Any]:
    # Chunks are stamped on arrival and parsed afterwards, as the WebSocket frames are.
    chunks: list[tuple[int, bytes]] = []
    seen = 0
    async with session.get(url) as resp:
        assert resp.status == 200, resp.status
        async for chunk in resp.content.iter_any():
            chunks.append((time.time_ns(), chunk))
            if not ready.is_set() and b"event: resync" in chunk:
                ready.set()
            seen += chunk.count(b"event: progress")
            if seen >= want:
                break
    out: list[tuple[int, float]] = []
    buffer = b""
    for now, chunk in chunks:
        buffer += chunk
        *frames, buffer = buffer.split(b"\n\n")
        for frame in frames:
            if b"event: progress\n" in frame:
                data = frame.split(b"data: ", 1)[1]
                out.append((now, json.loads(data)["progress"]["value"]))
    return out


async def _ws_client(session: aiohttp.ClientSession, url: str, ready: asyncio.Event, want: int) -> list[Any]:
    got: list[tuple[int, str]] = []
    async with session.ws_connect(url) as ws:
        ready.set()
        while len(got) < want:
            msg = await ws.receive()
            now = time.time_ns()
            if msg.type is not aiohttp.WSMsgType.TEXT:
                break
            if '"progress"' in msg.data:
                got.append((now, msg.data))
    out = []
    for now, raw in got:
        body = json.loads(raw)
        if body["type"] == "progress":
            out.append((now, body["data"]["value"]))
    return out


async def client_main(kind: str, url: str, n: int, out: str) -> None:
    jar = aiohttp.CookieJar(unsafe=True)  # IP-address host: keep the session cookie
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(cookie_jar=jar, connector=connector) as session:
        if kind == "sse":
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(url.split("/studio/")[0] + "/studio/api/v1/session") as resp:
                    await resp.read()
        client = _sse_client if kind == "sse" else _ws_client
        readies = [asyncio.Event() for _ in range(n)]
        tasks = [asyncio.create_task(client(session, url, ready, COUNT)) for ready in readies]
        await asyncio.wait_for(asyncio.gather(*(r.wait() for r in readies)), 30)
        await asyncio.sleep(0.2)
        sys.stdout.write("READY\n")
        sys.stdout.flush()
        done, pending = await asyncio.wait(tasks, timeout=COUNT * SPACING_S + 20)
        for task in pending:
            task.cancel()
        results = [t.result() if t in done and not t.exception() else [] for t in tasks]
    Path(out).write_text(json.dumps(results))


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
    studio.live.expect(prompt_id, await studio.jobs.get(studio.owner_id, row.id), studio.owner_id, graph)
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


def row(name: str, n: int, per_client: list[list[float]]) -> dict[str, Any]:
    flat = [v for c in per_client for v in c]
    firsts = per_client[0] if per_client else []
    lasts = per_client[-1] if per_client else []
    return {
        "phase": name,
        "clients": n,
        "samples": len(flat),
        "p50": pct(flat, 50) if flat else float("nan"),
        "p95": pct(flat, 95) if flat else float("nan"),
        "p99": pct(flat, 99) if flat else float("nan"),
        "first_p50": pct(firsts, 50) if firsts else float("nan"),
        "last_p50": pct(lasts, 50) if lasts else float("nan"),
        "last_p99": pct(lasts, 99) if lasts else float("nan"),
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


def print_delivery(
    where: str, rounds: int, clients: list[int], results: dict[tuple[str, int], list[list[float]]]
) -> None:
    print(f"\n## Event delivery on {where}: send_sync → client ({rounds} round(s), {COUNT - DROP} events per client)")
    print("| clients | phase | samples | p50 ms | p95 ms | p99 ms | first client p50 | last client p50 / p99 |")
    print("|---|---|---|---|---|---|---|---|")
    table: dict[tuple[str, int], dict[str, Any]] = {}
    for n in clients:
        for name in ("comfy", "comfy+tap", "studio"):
            k = row(name, n, results[(name, n)])
            table[(name, n)] = k
            print(
                f"| {n} | {name} | {k['samples']} | {k['p50']:.2f} | {k['p95']:.2f} | {k['p99']:.2f} | "
                f"{k['first_p50']:.2f} | {k['last_p50']:.2f} / {k['last_p99']:.2f} |"
            )
    print("\n| clients | studio p50 − comfy p50 (target ≤ 1 ms) | studio p99 / comfy p99 (target ≤ 2×) |")
    print("|---|---|---|")
    for n in clients:
        st, c = table[("studio", n)], table[("comfy", n)]
        print(f"| {n} | {st['p50'] - c['p50']:+.2f} ms | {st['p99'] / c['p99']:.2f}× |")


async def bench(rounds: int, clients: list[int], cost_batches: int) -> None:
    from harness import start_studio
    from testhost import start_test_host

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        plain = await start_test_host(tmp / "plain")
        run = await start_studio(tmp / "studio")
        # ComfyUI's own loggers would print a line per send error; keep the figures readable.
        results: dict[tuple[str, int], list[list[float]]] = {}
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
                    ]
                    if r % 2:
                        phases.reverse()
                    for name, go in phases:
                        per_client = await go()
                        results.setdefault((name, n), []).extend(per_client)
                        await wait_drained(run.host.server)
                        await run.studio.live.drain()
                        sys.stderr.write(f"round {r + 1} N={n} {name}: {sum(map(len, per_client))} samples\n")

            print_delivery("ComfyUI test host (tests/testhost publish_loop replica)", rounds, clients, results)

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
        results: dict[tuple[str, int], list[list[float]]] = {}
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
                        results.setdefault((name, n), []).extend(per_client)
                        sys.stderr.write(f"real round {r + 1} N={n} {name}: {sum(map(len, per_client))} samples\n")
                        await asyncio.sleep(0.3)
            print_delivery(f"real ComfyUI at {comfy_dir}", rounds, clients, results)
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
