"""Live dashboard latency on the real stack (ASGI server + Redis channel layer). Not a test: it prints figures.

    DATABASE_URL=mysql://root@127.0.0.1:3306/factory REDIS_URL=redis://127.0.0.1:6379/13 \\
      .venv/bin/python bench/latency.py [--devices 500] [--clients 50] [--rates 100,1000] [--seconds 10] \\
        [--server uvicorn|daphne] [--workers 2]

What it does, in one run:
1. a scratch database (``e2e_<pid>_...`` next to DATABASE_URL's, dropped at the end), migrated and
   seeded with ``--devices`` machines in plant A, an operator, a token per device;
2. the server (``factory.asgi:application``, DEBUG off) on the Redis channel layer: by default the
   production shape, Uvicorn with 2 worker processes (``--server daphne`` for one Daphne, the
   development server); devices' POSTs and browsers' WebSockets share it, as in production;
3. ``--clients`` WebSocket clients (the browser protocol, a real session cookie) subscribed to
   plant A, in two receiver processes so that parsing frames does not slow the load generator;
4. a warm-up, not measured: each device posts once (online, in its state, as in a running plant);
5. for each rate: devices POST ``/api/v1/telemetry/`` (one message each, round-robin over the
   devices, values ``seq`` and ``temperature``) at that total rate for ``--seconds``. Latency is
   client clock from just before the POST to the frame carrying that ``seq`` (the same monotonic
   clock in every process), split into the ingest's answer (POST to 202) and the live path (202
   to frame: publish after commit, Redis, fan-out, WebSocket). Each telemetry event says how many
   readings it carries (``n``, more than 1 when coalesced); frames lost = readings sent x clients -
   readings delivered;
6. page load of the plant overview with all devices in Chromium (Performance API, median of 5).
"""

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import statistics
import sys
import time
from contextlib import suppress
from pathlib import Path

from procs import cpu_seconds, named, tree  # bench/procs.py (this script's directory is on sys.path)

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "factory.settings")


# A server process's settings as in production, but on 127.0.0.1 over plain HTTP.
PRODUCTION_ENV = {
    "DEBUG": "false",
    "ALLOWED_HOSTS": "127.0.0.1,localhost",
    "SECURE_SSL_REDIRECT": "false",
    "SESSION_COOKIE_SECURE": "false",
    "CSRF_COOKIE_SECURE": "false",
    "STATIC_MANIFEST": "false",
}


def uvicorn_command(workers: int) -> list:
    """docker-compose.yml's web command (Uvicorn, ``workers`` processes), ``{port}`` for ``Daphne(server_args=)``."""
    return [
        Path(sys.executable).parent / "uvicorn",
        "factory.asgi:application",
        "--host",
        "127.0.0.1",
        "--port",
        "{port}",
        "--workers",
        workers,
        "--no-access-log",
        "--lifespan",
        "off",
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--ws-per-message-deflate",
        "false",
        "--log-level",
        "warning",
    ]  # fmt: skip


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))] if ordered else float("nan")


def receiver(url: str, cookie: str, plant: int, clients: int, ready, stop, results) -> None:
    """Run ``clients`` WebSocket clients; put one list of (monotonic, device, seq, n) per client."""
    import orjson
    import websockets

    async def client(log: list, connected: asyncio.Event):
        headers = {"Cookie": f"sessionid={cookie}", "Origin": url}
        ws_url = url.replace("http://", "ws://") + f"/ws/live/?plant={plant}"
        async with websockets.connect(ws_url, additional_headers=headers, max_queue=None) as ws:
            await ws.recv()  # hello
            connected.set()

            async def close_at_stop():
                while not stop.is_set():
                    await asyncio.sleep(0.2)
                await ws.close()  # still backlogged when the drain time ended: the rest counts as lost

            closer = asyncio.create_task(close_at_stop())
            # No timeout per frame (asyncio.wait_for made a task per frame) and orjson: the receivers
            # stand in for browsers on other machines, so they should take as little CPU as they can.
            with suppress(websockets.ConnectionClosed):
                async for raw in ws:
                    now = time.monotonic()
                    data = orjson.loads(raw)
                    for frame in data if isinstance(data, list) else [data]:
                        if frame.get("kind") == "telemetry" and "seq" in frame["values"]:
                            seq = int(frame["values"]["seq"]["value"])
                            log.append((now, frame["device_id"], seq, frame.get("n", 1)))
            closer.cancel()

    async def main():
        logs = [[] for _ in range(clients)]
        events = [asyncio.Event() for _ in range(clients)]
        tasks = [asyncio.create_task(client(log, event)) for log, event in zip(logs, events, strict=True)]
        await asyncio.gather(*(event.wait() for event in events))
        ready.set()
        await asyncio.gather(*tasks)
        return logs

    import uvloop

    for log in uvloop.run(main()):
        results.put(log)


async def post_load(url: str, devices: list[dict], rate: int, seconds: float, first_seq: int):
    """POST one message per request at ``rate``/s; return {seq: send time}, {seq: 202 time}, error count.

    aiohttp, not httpx: httpx's pool could not send more than ~50 requests/s here with a few dozen
    connections while the server sat idle (py-spy), which measured the client instead of the stack.
    """
    import aiohttp

    sent: dict[int, float] = {}
    acked: dict[int, float] = {}
    errors = 0
    total = int(rate * seconds)
    connector = aiohttp.TCPConnector(limit=128)
    async with aiohttp.ClientSession(url, connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as client:

        async def one(seq: int, device: dict):
            nonlocal errors
            body = json.dumps({"values": {"seq": seq, "temperature": 20 + seq % 50}, "state": "running"})
            headers = {"Authorization": f"Device {device['token']}", "Content-Type": "application/json"}
            sent[seq] = time.monotonic()
            try:
                async with client.post("/api/v1/telemetry/", data=body, headers=headers) as response:
                    await response.read()
                    ok = response.status == 202
                acked[seq] = time.monotonic()
            except (aiohttp.ClientError, TimeoutError):
                ok = False
            if not ok:
                errors += 1
                del sent[seq]  # never stored: not expected on any screen
                acked.pop(seq, None)

        tasks = []
        start = time.monotonic()
        for i in range(total):
            delay = start + i / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(first_seq + i, devices[i % len(devices)])))
        await asyncio.gather(*tasks)
    return sent, acked, errors


def run_rate(server_url, cookie, plant, devices, clients, rate, seconds, first_seq, server_pid) -> dict:
    ctx = mp.get_context("spawn")
    ready_events, stop, results = [], ctx.Event(), ctx.Queue()
    processes = []
    for share in (clients // 2, clients - clients // 2):
        ready = ctx.Event()
        process = ctx.Process(target=receiver, args=(server_url, cookie, plant, share, ready, stop, results))
        process.start()
        processes.append(process)
        ready_events.append(ready)
    for ready in ready_events:
        assert ready.wait(60), "receivers did not connect"
    time.sleep(0.5)
    roles = {
        "server": tree(server_pid),
        "load generator": [os.getpid()],
        "browsers": [p.pid for p in processes],
        "MariaDB": named("mariadbd"),
        "Redis": named("redis-server"),
    }
    before = {role: cpu_seconds(pids) for role, pids in roles.items()}
    started = time.monotonic()
    import uvloop  # the load generator is the busiest process here: the faster loop leaves more CPU to the stack

    sent, acked, errors = uvloop.run(post_load(server_url, devices, rate, seconds, first_seq))
    elapsed = time.monotonic() - started
    cpu = {role: (cpu_seconds(pids) - before[role]) / elapsed for role, pids in roles.items()}
    achieved = len(sent) / (max(acked.values(), default=started) - started)
    time.sleep(5)  # drain: let coalesced frames and queued messages arrive
    stop.set()
    logs = [results.get(timeout=60) for _ in range(clients)]
    for process in processes:
        process.join(30)
    latencies, after_ack, delivered, coalesced_frames = [], [], 0, 0
    for log in logs:
        for received, _device, seq, n in log:
            if seq in sent:
                latencies.append((received - sent[seq]) * 1000)
                after_ack.append((received - acked[seq]) * 1000)
                delivered += n
                coalesced_frames += n > 1
    expected = len(sent) * clients
    return {
        "rate": rate,
        "sent": len(sent),
        "http_errors": errors,
        "frames": len(latencies),
        "coalesced_frames": coalesced_frames,
        "lost": expected - delivered,
        "p50": percentile(latencies, 50),
        "p95": percentile(latencies, 95),
        "p99": percentile(latencies, 99),
        "max": max(latencies) if latencies else float("nan"),
        "achieved": achieved,
        "post_p50": percentile([(acked[s] - sent[s]) * 1000 for s in acked], 50),
        "post_p95": percentile([(acked[s] - sent[s]) * 1000 for s in acked], 95),
        "fan_p50": percentile(after_ack, 50),
        "fan_p95": percentile(after_ack, 95),
        "fan_p99": percentile(after_ack, 99),
        "cpu": cpu,  # cores busy per role while posting (the machine has os.cpu_count())
    }


def page_load(server_url: str, password: str, plant: int, runs: int = 5) -> dict:
    from playwright.sync_api import sync_playwright

    args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
    timings = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=args)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(f"{server_url}/accounts/login/")
        page.get_by_label("Username").fill("operator")
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_load_state()
        for _ in range(runs + 1):  # the first load warms the server's caches; not counted
            page.goto(f"{server_url}/plants/{plant}/")
            page.wait_for_function("() => window.__live && window.__live.ready", timeout=30000)
            timing = page.evaluate(
                """() => { const n = performance.getEntriesByType('navigation')[0];
                   return {ttfb: n.responseStart, dcl: n.domContentLoadedEventEnd, load: n.loadEventEnd,
                           live: performance.now(), tiles: document.querySelectorAll('.tile').length}; }"""
            )
            timings.append(timing)
        browser.close()
    timings = timings[1:]
    return {key: statistics.median(t[key] for t in timings) for key in ("ttfb", "dcl", "load", "live", "tiles")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", type=int, default=500)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--rates", default="100,1000")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument(
        "--server",
        choices=["daphne", "uvicorn"],
        default="uvicorn",
        help="uvicorn: the production shape (docker-compose: Uvicorn workers); daphne: the development server",
    )
    parser.add_argument("--workers", type=int, default=2, help="Uvicorn worker processes (default 2, as in production)")
    options = parser.parse_args()

    import django

    django.setup()
    import logging

    logging.getLogger("httpx").setLevel(logging.WARNING)
    from django.conf import settings

    from tests.servers import Daphne, ServerDatabase, session_login

    if not settings.REDIS_URL or not settings.DATABASES["default"]["ENGINE"].endswith("mysql"):
        sys.exit("Set DATABASE_URL=mysql://... and REDIS_URL=redis://... (the benchmark needs the real stack).")
    workdir = Path(f"/tmp/bench-latency-{os.getpid()}")
    database = ServerDatabase(workdir).create()
    database.env.update(
        **PRODUCTION_ENV,
        # Alert evaluation goes to a broker as in production (no worker here), not inline in Daphne.
        CELERY_BROKER_URL=os.environ.get("BENCH_CELERY_BROKER_URL", "redis://127.0.0.1:6379/12"),
    )
    database.manage("collectstatic", "--noinput", "-v0")
    server = None
    try:
        seeded = database.run_python(
            f"from tests.e2e_seed import seed; seed(devices={options.devices}, sensor=False)"
        )
        devices = [d for d in seeded["devices"].values() if d["plant"] == seeded["plants"]["A"]]
        if options.server == "uvicorn":
            args = uvicorn_command(options.workers)
            label = f"Uvicorn ({options.workers} workers)"
        else:
            args = [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", "{port}", "--access-log", os.devnull,
                    "factory.asgi:application"]  # fmt: skip
            label = "Daphne"
        server = Daphne(database.env, log=workdir / "server.log", server_args=args).start()
        cookie = session_login(server.url, "operator", seeded["password"])
        print(f"{label} {server.url}, {len(devices)} devices in plant A, {options.clients} WebSocket clients")
        print("post→frame: device POST to browser frame; post→202: the ingest's answer; 202→frame: publish + fan-out")
        print(
            f"{'msgs/s':>7} {'done/s':>7} {'sent':>6} {'err':>4} {'frames':>7} {'coal.':>6} {'lost':>5} "
            f"{'post→frame p50/p95/p99 ms':>27} {'post→202 p50/p95':>17} {'202→frame p50/p95/p99':>22}"
        )
        # Warm-up, not measured: every device posts once, so the runs see what a running plant sends
        # (devices online, in their state, connections and caches warm), not each device's first
        # message (online transition, state change, status event), which half of a 10 s run at 100/s was.
        import uvloop

        uvloop.run(post_load(server.url, devices, 250, len(devices) / 250, 10**9))
        time.sleep(2)
        first_seq = 0
        for rate in (int(r) for r in options.rates.split(",")):
            r = run_rate(
                server.url,
                cookie,
                seeded["plants"]["A"],
                devices,
                options.clients,
                rate,
                options.seconds,
                first_seq,
                server.process.pid,
            )
            first_seq += r["sent"]
            print(
                f"{r['rate']:>7} {r['achieved']:>7.0f} {r['sent']:>6} {r['http_errors']:>4} {r['frames']:>7} "
                f"{r['coalesced_frames']:>6} {r['lost']:>5} "
                f"{r['p50']:>9.0f}/{r['p95']:>7.0f}/{r['p99']:>7.0f} {r['post_p50']:>8.0f}/{r['post_p95']:>7.0f} "
                f"{r['fan_p50']:>8.1f}/{r['fan_p95']:>6.1f}/{r['fan_p99']:>6.1f}"
            )
            busy = ", ".join(f"{role} {cores:.2f}" for role, cores in r["cpu"].items())
            print(f"{'':>7} cores busy while posting (of {os.cpu_count()}): {busy}, total {sum(r['cpu'].values()):.2f}")
        load = page_load(server.url, seeded["password"], seeded["plants"]["A"])
        print(
            f"Overview page, {load['tiles']:.0f} devices, Chromium (median of 5): TTFB {load['ttfb']:.0f} ms, "
            f"DOMContentLoaded {load['dcl']:.0f} ms, load {load['load']:.0f} ms, live {load['live']:.0f} ms"
        )
    finally:
        if server:
            server.stop()
        database.drop()


if __name__ == "__main__":
    main()
