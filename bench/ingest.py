"""Ingest benchmark on the real stack (MariaDB, Redis, Mosquitto). Not a test: it prints figures.

    .venv/bin/python bench/ingest.py [--seconds 20] [--devices 64] [--server uvicorn|daphne]
                                     [--workers 2] [--only raw,http_batch,http_single,mqtt]

In one run, against a scratch database ``factory_bench_ingest``:
  raw          baseline: multi-row INSERT (executemany, 1,000-row batches, one commit each) into
               the same telemetry_reading table, straight through mysqlclient
  http_batch   POST /api/v1/telemetry/ with 100 messages x 5 values per request (wrk, 32 conns)
  http_single  one message with one value per request (wrk, 64 conns)
  mqtt         a paho publisher (QoS 1, 100 in flight) into a private Mosquitto (queue limit of
               deploy/mosquitto.conf), one message per publish; the bridge
               (`manage.py mqtt_bridge`) storing; rate measured from the rows that landed, drain included
  soak         (only with --only soak) HTTP batches and MQTT together for --soak-seconds (600):
               resident memory of the server and the bridge every 30 s: is ingest memory flat?
  mqtt_gateway the same with 20 messages per publish (the `messages` form a gateway sends)
Readings/s always come from rows counted in the database, not from what clients sent. The
server's resident memory is sampled at the start and end of each HTTP phase.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

from procs import cpu_seconds, rss_mb  # bench/procs.py (this script's directory is on sys.path)

ROOT = Path(__file__).resolve().parent.parent
# BENCH_DB and BENCH_REDIS let two people on one machine benchmark without dropping each other's
# scratch database or flushing each other's broker.
DB = os.environ.get("BENCH_DB", "factory_bench_ingest")
REDIS = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379")
ENV = {
    **os.environ,
    "DATABASE_URL": f"mysql://root@127.0.0.1:3306/{DB}",
    "REDIS_URL": f"{REDIS}/9",
    # The production shape: ingest enqueues alert evaluation on a broker (no worker runs here; the
    # queue is flushed at the end) instead of running it inline as the eager embedded default does.
    "CELERY_BROKER_URL": f"{REDIS}/8",
    "MQTT_URL": "mqtt://127.0.0.1:18830",  # the private broker started by the mqtt phase
    "DEBUG": "false",
    "SECRET_KEY": "bench-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
    "ALLOWED_HOSTS": "127.0.0.1,localhost",
    "SECURE_SSL_REDIRECT": "false",
    "TELEMETRY_RATE_LIMIT": "0",
    "LOG_LEVEL": "WARNING",
    "MQTT_BRIDGE_CLIENT_ID": "bench-bridge",
}


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


PORT = _free_port()  # a fixed port may be held by another server, and wrk would measure that one
PY = str(ROOT / ".venv" / "bin" / "python")


def sh(*args, **kwargs):
    return subprocess.run(args, check=True, cwd=ROOT, env=ENV, **kwargs)


def mysql():
    import MySQLdb

    return MySQLdb.connect(host="127.0.0.1", user="root", db=DB, charset="utf8mb4")


def count_rows() -> int:
    conn = mysql()
    try:
        cur = conn.cursor()
        cur.execute("SELECT COUNT(*) FROM telemetry_reading")
        return cur.fetchone()[0]
    finally:
        conn.close()


def prepare(devices: int) -> tuple[list[str], list[str]]:
    import MySQLdb

    conn = MySQLdb.connect(host="127.0.0.1", user="root")
    conn.cursor().execute(f"DROP DATABASE IF EXISTS {DB}")
    conn.cursor().execute(f"CREATE DATABASE {DB} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    conn.close()
    sh(PY, "manage.py", "migrate", "-v0")
    os.environ.update(ENV)
    sys.path.insert(0, str(ROOT))
    import django

    os.environ["DJANGO_SETTINGS_MODULE"] = "factory.settings"
    django.setup()
    from devices.services.plants import line_create, plant_create
    from devices.services.registry import device_create
    from devices.services.tokens import token_issue

    plant = plant_create(name="Bench plant", time_zone="UTC")
    line = line_create(plant=plant, name="Bench line")
    uids, tokens = [], []
    for n in range(devices):
        device = device_create(uid=f"bench-{n:04d}", name=f"Bench {n}", line=line, kind="machine")
        tokens.append(token_issue(device=device, name="bench")[1])
        uids.append(device.uid)
    return uids, tokens


def bench_raw(rows: int = 500_000) -> float:
    """Baseline: the multi-row INSERT rate of the same table, same machine, same run.

    As in ../shared/limits/mariadb_insert.py: rows are generated before the timer starts
    (100 devices x 5 metrics, arriving in time order), executemany in 1,000-row batches with a
    durable commit each, so the figure is what MariaDB itself sustains.
    """
    from datetime import datetime, timedelta

    base = datetime.utcnow() - timedelta(days=2)
    data = []
    for tick in range(rows // 500):
        ts = (base + timedelta(seconds=tick * 5)).strftime("%Y-%m-%d %H:%M:%S.%f")
        data.extend((900_000 + d, 1 + m, ts, 20.0 + m) for d in range(100) for m in range(5))
    conn = mysql()
    cur = conn.cursor()
    sql = "INSERT INTO telemetry_reading (device_id, metric_id, ts, value) VALUES (%s, %s, %s, %s)"
    started = time.perf_counter()
    for start in range(0, len(data), 1000):
        cur.executemany(sql, data[start : start + 1000])
        conn.commit()
    elapsed = time.perf_counter() - started
    cur.execute("DELETE FROM telemetry_reading WHERE device_id >= 900000")
    conn.commit()
    conn.close()
    return len(data) / elapsed


def start_server(kind: str, workers: int) -> subprocess.Popen:
    if kind == "uvicorn":
        cmd = [str(ROOT / ".venv/bin/uvicorn"), "factory.asgi:application", "--host", "127.0.0.1", "--port", str(PORT),
               "--workers", str(workers), "--loop", "uvloop", "--http", "httptools", "--no-access-log",
               "--lifespan", "off", "--log-level", "warning"]  # fmt: skip
    else:
        cmd = [str(ROOT / ".venv/bin/daphne"), "-b", "127.0.0.1", "-p", str(PORT), "--access-log", os.devnull,
               "factory.asgi:application"]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=ROOT, env=ENV, start_new_session=True)
    import urllib.request

    for _ in range(100):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{PORT}/healthz", timeout=1)
            if proc.poll() is not None:
                raise RuntimeError(f"{kind} exited ({proc.returncode}); port {PORT} is served by another process")
            return proc
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("server did not start")


def stop(proc: subprocess.Popen, timeout: float = 120) -> None:
    """SIGTERM and wait: the bridge first stores and acknowledges what it holds."""
    os.killpg(proc.pid, 15)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:  # Daphne waits for its open connections to close
        os.killpg(proc.pid, 9)
        proc.wait()


def wrk(tokens_file: Path, seconds: int, batch: int, values: int, connections: int, threads: int = 2) -> dict:
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency",
         "-s", str(ROOT / "bench/wrk_ingest.lua"),
         f"http://127.0.0.1:{PORT}", "--", str(tokens_file), str(batch), str(values), str(threads)],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "requests_per_s": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50": re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1),
        "p99": re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1),
        "non_2xx": int(non2xx.group(1)) if non2xx else 0,
    }


def bench_http(kind, workers, tokens_file, seconds, batch, values, connections, profile_dir=None) -> dict:
    server = start_server(kind, workers)
    try:
        wrk(tokens_file, 2, batch, values, connections)  # warm-up: connections, metric cache
        before, rss0, started = count_rows(), rss_mb(server.pid), time.perf_counter()
        children = subprocess.run(["pgrep", "-P", str(server.pid)], capture_output=True, text=True).stdout.split()
        profilers = [profile_start(int(pid), seconds, f"http-{batch}", profile_dir) for pid in children or [server.pid]]
        result = wrk(tokens_file, seconds, batch, values, connections)
        for profiler in profilers:
            if profiler:
                profiler.wait()
        elapsed = time.perf_counter() - started
        result["readings_per_s"] = (count_rows() - before) / elapsed
        result["rss_mb_start"], result["rss_mb_end"] = round(rss0, 1), round(rss_mb(server.pid), 1)
        return result
    finally:
        stop(server, timeout=10)


PUBLISHER = r"""
import json, sys, threading, time
from datetime import datetime, timedelta, timezone
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
uids, seconds, per_publish, port = sys.argv[1].split(","), float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
rate = float(sys.argv[5]) if len(sys.argv) > 5 else 0  # publishes per second; 0: as fast as acknowledged
window = threading.Semaphore(100)   # bounded in-flight QoS 1 messages (STACK.md)
client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
client.max_inflight_messages_set(100)
client.on_publish = lambda c, u, mid, rc, p: window.release()
client.connect("127.0.0.1", port); client.loop_start()
base, sent, seq = datetime.now(timezone.utc) - timedelta(hours=12), 0, {u: 0 for u in uids}
start = time.monotonic()
end = start + seconds
def message(uid):
    seq[uid] += 1
    ts = (base + timedelta(milliseconds=seq[uid])).isoformat().replace("+00:00", "Z")
    return {"ts": ts, "values": {"temperature": 71.3, "vibration": 0.02, "power": 3.1,
                                 "count_total": seq[uid], "count_good": seq[uid]}}
while time.monotonic() < end:
    for uid in uids:
        if per_publish == 1:
            body = json.dumps(message(uid))
        else:
            body = json.dumps({"messages": [message(uid) for _ in range(per_publish)]})
        window.acquire()
        client.publish(f"factory/devices/{uid}/telemetry", body, qos=1)
        sent += per_publish
        if rate and (ahead := start + sent / per_publish / rate - time.monotonic()) > 0:
            time.sleep(ahead)
for _ in range(100): window.acquire()
print(sent)
"""
MQTT_PORT = 18830
BROKER_CONF = f"""# the production settings of deploy/mosquitto.conf, on a private port, without persistence
listener {MQTT_PORT} 127.0.0.1
allow_anonymous true
max_queued_messages 100000
"""


def start_broker() -> subprocess.Popen:
    """A private Mosquitto with deploy/mosquitto.conf's queue limit (the system broker keeps the default 1000)."""
    conf = ROOT / "var" / "bench-mosquitto.conf"
    conf.write_text(BROKER_CONF)
    broker = subprocess.Popen(["mosquitto", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    return broker


PROFILE_IDLE = os.environ.get("BENCH_PROFILE_IDLE", "true") == "true"  # false: on-CPU samples only


def profile_start(pid: int, seconds: int, name: str, profile_dir: str | None):
    """py-spy sampling ``pid`` (all threads, waits included unless BENCH_PROFILE_IDLE=false) for ``seconds``.

    Writes collapsed stacks (one line per stack, thread first) to ``<profile_dir>/<name>-<pid>.txt``.
    """
    if not profile_dir:
        return None
    out = Path(profile_dir) / f"{name}-{pid}.txt"
    out.parent.mkdir(parents=True, exist_ok=True)
    cmd = [str(ROOT / ".venv/bin/py-spy"), "record", "--pid", str(pid), "--duration", str(seconds), "--rate", "200",
           "--format", "raw", "--threads", "--nonblocking", "-o", str(out)] + ["--idle"] * PROFILE_IDLE  # fmt: skip
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def start_bridges(count: int, name: str) -> list[tuple[subprocess.Popen, Path]]:
    """``count`` bridge processes (with more than one: a shared subscription, one client id each)."""
    bridges = []
    for n in range(count):
        args = ["--client-id", f"bench-bridge-{n}", "--shared-group", "bench"] if count > 1 else []
        log = ROOT / "var" / f"bench-{name}-{n}.log"
        with log.open("w") as out:  # the summary lines (batches, acks) are printed with the results
            bridge = subprocess.Popen([PY, "manage.py", "mqtt_bridge", *args], cwd=ROOT, start_new_session=True,
                                      env={**ENV, "LOG_LEVEL": "INFO"}, stderr=out)  # fmt: skip
        bridges.append((bridge, log))
    return bridges


def bench_mqtt(uids: list[str], seconds: int, per_publish: int, profile_dir: str | None = None, bridges: int = 1):
    """Readings/s stored by the bridge(s) from a QoS 1 publisher; ``per_publish`` messages per MQTT publish."""
    broker = start_broker()
    procs = start_bridges(bridges, f"bridge-{per_publish}")
    time.sleep(3)
    try:
        rss0 = sum(rss_mb(bridge.pid) for bridge, _ in procs)
        before = count_rows()
        started, cpu0 = time.perf_counter(), cpu_seconds([bridge.pid for bridge, _ in procs])
        profilers = [profile_start(bridge.pid, seconds, f"bridge-{per_publish}", profile_dir) for bridge, _ in procs]
        pub = subprocess.run([PY, "-c", PUBLISHER, ",".join(uids), str(seconds), str(per_publish), str(MQTT_PORT)],
                             capture_output=True, text=True, check=True, env=ENV)  # fmt: skip
        published = int(pub.stdout.strip())  # telemetry messages (5 readings each)
        expected = before + published * 5
        last, stalled_since = before, time.monotonic()
        while (now_rows := count_rows()) < expected and time.monotonic() - stalled_since < 10:
            if now_rows > last:  # still draining the broker's queue: wait; 10 s without progress: lost
                last, stalled_since = now_rows, time.monotonic()
            time.sleep(0.2)
        elapsed = time.perf_counter() - started
        cpu = cpu_seconds([bridge.pid for bridge, _ in procs]) - cpu0
        stored = count_rows() - before
        for profiler in profilers:
            if profiler:
                profiler.wait()
        return {"messages_per_publish": per_publish, "bridges": bridges, "messages_published": published,
                "readings_stored": stored, "readings_per_s": stored / elapsed, "seconds_incl_drain": round(elapsed, 1),
                "lost": published * 5 - stored, "bridge_cpu": round(cpu / elapsed, 2),
                "bridge_rss_mb_start": round(rss0, 1),
                "bridge_rss_mb_end": round(sum(rss_mb(bridge.pid) for bridge, _ in procs), 1)}  # fmt: skip
    finally:
        for bridge, _ in procs:
            stop(bridge)
        broker.terminate()
        broker.wait()
        for _, log in procs:
            stopped = [line for line in log.read_text().splitlines() if "MQTT bridge stopped" in line]
            if stopped:
                print("  bridge:", stopped[-1].split("MQTT bridge ", 1)[1], flush=True)


def bench_soak(kind: str, workers: int, tokens_file: Path, uids: list[str], seconds: int) -> dict:
    """HTTP batches (wrk) and MQTT (one message per publish) together for ``seconds``; RSS sampled every 30 s."""
    import threading

    server, broker = start_server(kind, workers), start_broker()
    bridge = subprocess.Popen([PY, "manage.py", "mqtt_bridge"], cwd=ROOT, env=ENV, start_new_session=True)
    time.sleep(3)
    samples, done = [], threading.Event()

    def sample():
        started = time.perf_counter()
        while not done.wait(0 if not samples else 30):
            samples.append({"t": round(time.perf_counter() - started), "server_mb": round(rss_mb(server.pid), 1),
                            "bridge_mb": round(rss_mb(bridge.pid), 1), "rows": count_rows()})  # fmt: skip
            print("soak sample", samples[-1], flush=True)

    try:
        before, started = count_rows(), time.perf_counter()
        sampler = threading.Thread(target=sample)
        sampler.start()
        # MQTT at a steady 2,000 msgs/s (10,000 readings/s), below the bridge's capacity, so that its
        # memory shows leaks rather than a growing backlog; HTTP batches as fast as they are answered.
        pub = subprocess.Popen([PY, "-c", PUBLISHER, ",".join(uids[:16]), str(seconds), "1", str(MQTT_PORT), "2000"],
                               stdout=subprocess.PIPE, text=True, env=ENV)  # fmt: skip
        http = wrk(tokens_file, seconds, 100, 5, 16)
        pub.communicate(timeout=seconds + 120)
        elapsed = time.perf_counter() - started
        done.set()
        sampler.join()
        stored = count_rows() - before
    finally:
        for proc in (bridge, server):
            stop(proc)
        broker.terminate()
        broker.wait()
    first = [s for s in samples if 60 <= s["t"] < 120] or samples[:1]
    last = samples[-2:]

    def mean(key, rows):
        return round(sum(r[key] for r in rows) / len(rows), 1)

    return {"seconds": seconds, "readings_per_s": stored / elapsed, "http_non_2xx": http["non_2xx"], "samples": samples,
            "server_mb_minute2": mean("server_mb", first), "server_mb_end": mean("server_mb", last),
            "bridge_mb_minute2": mean("bridge_mb", first), "bridge_mb_end": mean("bridge_mb", last)}  # fmt: skip


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--devices", type=int, default=64)
    parser.add_argument("--server", choices=["uvicorn", "daphne"], default="uvicorn")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--only", default="raw,http_batch,http_single,mqtt,mqtt_gateway")
    parser.add_argument("--soak-seconds", type=int, default=600, help="length of the soak phase (--only soak)")
    parser.add_argument("--bridges", type=int, default=1, help="bridge processes (>1: MQTT shared subscription)")
    parser.add_argument("--profile", metavar="DIR", help="py-spy profiles of bridges and server workers")
    parser.add_argument("--out", default=str(ROOT / "bench/results/ingest.json"))
    args = parser.parse_args()
    phases = args.only.split(",")
    uids, tokens = prepare(args.devices)
    tokens_file = ROOT / "var" / "bench-tokens.txt"
    tokens_file.parent.mkdir(exist_ok=True)
    tokens_file.write_text("\n".join(tokens) + "\n")
    results = {"server": f"{args.server} x{args.workers}", "seconds": args.seconds, "devices": args.devices}
    results.update(started=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), loadavg_start=os.getloadavg())
    server = (args.server, args.workers)
    if "raw" in phases:
        results["raw_insert_rows_per_s"] = bench_raw()
    if "http_batch" in phases:
        results["http_batch"] = bench_http(*server, tokens_file, args.seconds, 100, 5, 32, args.profile)
    if "http_single" in phases:
        results["http_single"] = bench_http(*server, tokens_file, args.seconds, 1, 1, 64, args.profile)
    if "mqtt" in phases:
        results["mqtt"] = bench_mqtt(uids[:16], args.seconds, 1, args.profile, args.bridges)
    if "mqtt_gateway" in phases:
        results["mqtt_gateway"] = bench_mqtt(uids[:16], args.seconds, 20, args.profile, args.bridges)
    if "soak" in phases:
        results["soak"] = bench_soak(args.server, args.workers, tokens_file, uids, args.soak_seconds)
    tokens_file.unlink()
    results["loadavg_end"] = os.getloadavg()
    sh("redis-cli", "-u", f"{REDIS}/8", "flushdb")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2))
    report(results)


def report(r: dict) -> None:
    raw = r.get("raw_insert_rows_per_s")
    print(f"\nIngest benchmark ({r['server']}, {r['devices']} devices, {r['seconds']} s per phase)"
          f"  load average {r['loadavg_start'][0]:.1f} -> {r['loadavg_end'][0]:.1f}")  # fmt: skip
    if raw:
        print(f"  raw multi-row INSERT baseline      {raw:>10,.0f} rows/s")
    if "http_batch" in r:
        b = r["http_batch"]
        ratio = f"  ({b['readings_per_s'] / raw:.0%} of raw)" if raw else ""
        print(f"  HTTP batches (100 msg x 5 values)   {b['readings_per_s']:>10,.0f} readings/s{ratio}"
              f"  {b['requests_per_s']:,.0f} req/s  p50 {b['p50']} p99 {b['p99']}  non-2xx {b['non_2xx']}"
              f"  RSS {b['rss_mb_start']}->{b['rss_mb_end']} MiB")  # fmt: skip
    if "http_single" in r:
        s = r["http_single"]
        print(f"  HTTP single reading                 {s['requests_per_s']:>10,.0f} requests/s"
              f"  ({s['readings_per_s']:,.0f} readings/s stored)  p50 {s['p50']} p99 {s['p99']}"
              f"  non-2xx {s['non_2xx']}")  # fmt: skip
    for key, label in (
        ("mqtt", "MQTT QoS 1, 1 msg x 5 values/publish"),
        ("mqtt_gateway", "MQTT QoS 1, 20 msg x 5 values/publish"),
    ):
        if key in r:
            m = r[key]
            ratio = f"  ({m['readings_per_s'] / raw:.0%} of raw)" if raw else ""
            print(f"  {label:<38} {m['readings_per_s']:>10,.0f} readings/s{ratio}"
                  f"  published {m['messages_published']:,} msgs, lost {m['lost']}"
                  f"  {m.get('bridges', 1)} bridge(s), CPU {m.get('bridge_cpu', 0):.0%} of a core"
                  f"  bridge RSS {m['bridge_rss_mb_start']}->{m['bridge_rss_mb_end']} MiB")  # fmt: skip

    if "soak" in r:
        k = r["soak"]
        print(
            f"  soak {k['seconds']} s, HTTP batches + MQTT together {k['readings_per_s']:>10,.0f} readings/s"
            f"  server RSS {k['server_mb_minute2']} (minute 2) -> {k['server_mb_end']} MiB (end),"
            f"  bridge RSS {k['bridge_mb_minute2']} -> {k['bridge_mb_end']} MiB, non-2xx {k['http_non_2xx']}"
        )
        for row in k["samples"]:
            print(
                f"    t={row['t']:>4}s  server {row['server_mb']:>7} MiB  bridge {row['bridge_mb']:>7} MiB"
                f"  rows {row['rows']:,}"
            )


if __name__ == "__main__":
    main()
