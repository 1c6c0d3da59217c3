"""Rollout benchmark on the real stack (MariaDB, Redis, Mosquitto). Not a test: it prints figures.

    .venv/bin/python bench/rollout.py [--devices 5000] [--server uvicorn|django] [--workers 2]
                                      [--baseline-devices 500] [--only notify|reports]

Against a scratch database ``factory_bench_rollout`` (Redis databases 7 and 6):
  notify   a one-stage rollout to every device is started: the stage step (queued → notified,
           one history row each) and the pushes the notify tasks make (MQTT QoS 1 to
           ``factory/devices/<uid>/commands`` + the device WebSocket group on Redis), run
           in-process as the worker runs them. Timed until a subscriber on the broker has
           received every device's command.
  reports  every device reports downloading, downloaded, installing, succeeded through
           ``POST /api/v1/device/firmware/status/``. With ``--server uvicorn`` (the production
           shape): ``--workers`` Uvicorn processes serving ``factory.asgi`` (the lean route,
           firmware/status_http.py) and wrk (2 threads, 32 connections, keep-alive) sending the
           reports in order; first, as the baseline of the same run, ``--baseline-devices`` of the
           devices report through Django's full request cycle (the lean endpoint mounted as a
           Django view by the test URLconf tests/urls.py, in-process test client, ``--processes``
           processes). With ``--server django`` every
           device goes the baseline way. Rates come from the rows that changed in the database.
Targets (issue 7): a 5,000-device stage notified within 10 s; >= 1,000 status reports/s.
"""

import argparse
import json
import multiprocessing
import os
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DB = "factory_bench_rollout"
os.environ.update(
    {
        "DATABASE_URL": f"mysql://root@127.0.0.1:3306/{DB}",
        "REDIS_URL": "redis://127.0.0.1:6379/7",
        "CELERY_BROKER_URL": "redis://127.0.0.1:6379/6",
        "MQTT_URL": os.environ.get("BENCH_MQTT_URL", "mqtt://127.0.0.1:1883"),
        "DEBUG": "false",
        "SECRET_KEY": "bench-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
        "ALLOWED_HOSTS": "testserver,127.0.0.1",
        "SECURE_SSL_REDIRECT": "false",
        "LOG_LEVEL": "WARNING",
        "DJANGO_SETTINGS_MODULE": "factory.settings",
    }
)
sys.path.insert(0, str(ROOT))


def _reset_database() -> None:
    sql = f"DROP DATABASE IF EXISTS {DB}; CREATE DATABASE {DB} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;"
    subprocess.run(["mariadb", "-uroot", "-h127.0.0.1", "-e", sql], check=True)  # noqa: S603, S607
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, check=True)  # noqa: S603


def _setup(devices: int):
    import django

    django.setup()
    from django.core.files.base import ContentFile

    from devices.models import Device, Line
    from devices.services.plants import plant_create
    from devices.services.tokens import token_issue
    from firmware.services.images import image_create
    from firmware.services.rollouts import rollout_create

    plant = plant_create(name="Bench OTA", time_zone="UTC")
    line = Line.objects.create(plant=plant, name="Line 1")
    Device.objects.bulk_create(
        [Device(uid=f"bench-{i:05d}", name=f"Bench {i}", plant=plant, line=line, model="HP-400",
                firmware_version="1.0.0") for i in range(devices)],
        batch_size=1000,
    )  # fmt: skip
    tokens = {d.pk: token_issue(device=d, name="bench")[1] for d in Device.objects.filter(plant=plant)}
    image = image_create(plant=plant, version="2.0.0", hardware_models=["HP-400"], file=ContentFile(b"x" * 4096))
    rollout = rollout_create(plant=plant, name="Bench", image=image, stages=["100%"], error_threshold=100)
    return rollout, tokens


class Subscriber:
    """Counts the commands a real MQTT subscriber receives."""

    def __init__(self, url: str, expected: int):
        from urllib.parse import urlsplit

        import paho.mqtt.client as mqtt

        self.count, self.expected, self.done, ready = 0, expected, threading.Event(), threading.Event()
        parts = urlsplit(url)
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        self.client.on_connect = lambda c, *a: c.subscribe("factory/devices/+/commands", qos=1)
        self.client.on_subscribe = lambda *a: ready.set()
        self.client.on_message = self._on_message
        self.client.connect(parts.hostname, parts.port or 1883)
        self.client.loop_start()
        ready.wait(10)

    def _on_message(self, client, userdata, message):
        self.count += 1
        if self.count >= self.expected:
            self.done.set()


def bench_notify(rollout) -> dict:
    from django.conf import settings

    from firmware.models import RolloutTarget
    from firmware.services.notify import targets_notify
    from firmware.services.rollouts import rollout_advance, rollout_start

    total = rollout.targets.count()
    subscriber = Subscriber(settings.MQTT_URL, total)
    started = time.perf_counter()
    rollout_start(rollout=rollout)
    rollout_advance(rollout_id=rollout.pk)
    claimed = time.perf_counter()
    ids = list(rollout.targets.values_list("pk", flat=True))
    for start in range(0, len(ids), 1000):  # the notify_devices tasks: 1,000 targets each
        targets_notify(ids[start : start + 1000])
    pushed = time.perf_counter()
    subscriber.done.wait(60)
    received = time.perf_counter()
    subscriber.client.loop_stop()
    notified = RolloutTarget.objects.filter(rollout=rollout, status="notified").count()
    return {
        "devices": total,
        "notified_in_db": notified,
        "mqtt_commands_received": subscriber.count,
        "stage_step_s": round(claimed - started, 2),
        "pushes_s": round(pushed - claimed, 2),
        "until_all_received_s": round(received - started, 2),
    }


def _report_worker(chunk: list[tuple[int, str]], queue) -> None:
    import django

    django.setup()
    from django.conf import settings
    from django.db import connection
    from django.test import Client

    settings.ROOT_URLCONF = "tests.urls"  # Django's URLconf does not route the lean endpoints
    connection.close()
    client, errors = Client(), 0
    for status in ("downloading", "downloaded", "installing", "succeeded"):
        for target_id, token in chunk:
            response = client.post(
                "/api/v1/device/firmware/status/",
                json.dumps({"update_id": target_id, "status": status, "detail": ""}),
                content_type="application/json",
                HTTP_AUTHORIZATION=f"Device {token}",
            )
            errors += response.status_code != 200
    queue.put(errors)


def bench_reports_django(pairs: list[tuple[int, str]], processes: int) -> dict:
    """The reports of ``pairs`` through Django's request cycle (test client) from ``processes`` processes."""
    from django.db import connection

    from firmware.models import RolloutTarget

    connection.close()
    queue = multiprocessing.get_context("fork").Queue()
    workers = [
        multiprocessing.get_context("fork").Process(target=_report_worker, args=(pairs[i::processes], queue))
        for i in range(processes)
    ]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    errors = sum(queue.get() for _ in workers)
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - started
    succeeded = RolloutTarget.objects.filter(pk__in=[pk for pk, _ in pairs], status="succeeded").count()
    return {
        "path": f"Django view, test client, {processes} processes",
        "devices": len(pairs),
        "reports": 4 * len(pairs),
        "errors": errors,
        "seconds": round(elapsed, 2),
        "reports_per_s": round(4 * len(pairs) / elapsed),
        "succeeded_in_db": succeeded,
    }


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start_uvicorn(port: int, workers: int) -> subprocess.Popen:
    cmd = [str(ROOT / ".venv/bin/uvicorn"), "factory.asgi:application", "--host", "127.0.0.1", "--port", str(port),
           "--workers", str(workers), "--loop", "uvloop", "--http", "httptools", "--no-access-log",
           "--lifespan", "off", "--log-level", "warning"]  # fmt: skip
    server = subprocess.Popen(cmd, cwd=ROOT, start_new_session=True)  # noqa: S603
    import urllib.request

    for _ in range(150):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)  # noqa: S310
            if server.poll() is not None:
                raise RuntimeError(f"uvicorn exited ({server.returncode}); port {port} is served by another process")
            return server
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("uvicorn did not start")


def bench_reports_uvicorn(pairs: list[tuple[int, str]], workers: int) -> dict:
    """The reports of ``pairs`` over HTTP to Uvicorn (lean route) from wrk."""
    from django.db.models import Max, Min

    from firmware.models import RolloutTarget, RolloutTargetEvent

    port = _free_port()
    pairs_file = ROOT / "var" / "bench-status-pairs.txt"
    pairs_file.parent.mkdir(exist_ok=True)
    pairs_file.write_text("".join(f"{pk} {token}\n" for pk, token in pairs))
    server = _start_uvicorn(port, workers)
    events_before = RolloutTargetEvent.objects.count()
    expected = events_before + 4 * len(pairs)
    try:
        started = time.perf_counter()
        client = subprocess.Popen(
            ["wrk", "-t2", "-c32", "-d600s", "--timeout", "30s", "--latency", "-s",  # noqa: S607
             str(ROOT / "bench/wrk_status.lua"), f"http://127.0.0.1:{port}", "--", str(pairs_file), "2"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        # Done when every report's history row is there (or nothing new for 10 s); then wrk is
        # interrupted (it prints its latency figures on SIGINT).
        last, stalled_since = events_before, time.monotonic()
        while client.poll() is None and last < expected and time.monotonic() - stalled_since < 10:
            time.sleep(0.25)
            if (now := RolloutTargetEvent.objects.count()) > last:
                last, stalled_since = now, time.monotonic()
        elapsed = time.perf_counter() - started
        if client.poll() is None:
            client.send_signal(2)
        stdout, stderr = client.communicate(timeout=30)
        out = subprocess.CompletedProcess(client.args, client.returncode, stdout, stderr)
    finally:
        os.killpg(server.pid, 15)
        server.wait(20)
        pairs_file.unlink()
    ids = [pk for pk, _ in pairs]
    events = RolloutTargetEvent.objects.count() - events_before
    # The server's own pace: from the first to the last history row the reports wrote (the wall
    # time also holds wrk's start and the polling above).
    span = (
        RolloutTargetEvent.objects.filter(target_id__in=ids)
        .exclude(status="notified")
        .aggregate(first=Min("at"), last=Max("at"))
    )
    server_seconds = (span["last"] - span["first"]).total_seconds() if span["first"] else 0
    latency = {p: re.search(rf"^\s+{p}%\s+(\S+)", out.stdout, re.M) for p in ("50", "99")}
    return {
        "path": f"lean ASGI route, uvicorn x{workers}, wrk 2 threads 32 connections",
        "devices": len(pairs),
        "reports": 4 * len(pairs),
        "history_rows_written": events,
        "first_error": out.stderr.strip()[:300],
        "seconds": round(elapsed, 2),
        "reports_per_s": round(events / elapsed),
        "server_seconds_first_to_last_row": round(server_seconds, 2),
        "reports_per_s_server": round(events / server_seconds) if server_seconds else None,
        "p50": latency["50"].group(1) if latency["50"] else None,
        "p99": latency["99"].group(1) if latency["99"] else None,
        "succeeded_in_db": RolloutTarget.objects.filter(pk__in=ids, status="succeeded").count(),
    }


def bench_reports(rollout, tokens, args) -> dict:
    from devices.models import Device

    pairs = [(pk, tokens[device_id]) for pk, device_id in rollout.targets.order_by("pk").values_list("pk", "device_id")]
    results = {}
    if args.server == "django":
        results["django"] = bench_reports_django(pairs, args.processes)
    else:
        baseline, rest = pairs[: args.baseline_devices], pairs[args.baseline_devices :]
        if baseline:
            results["django_baseline"] = bench_reports_django(baseline, args.processes)
        results["uvicorn"] = bench_reports_uvicorn(rest, args.workers)
    results["devices_on_new_version"] = Device.objects.filter(firmware_version="2.0.0").count()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", type=int, default=5000)
    parser.add_argument("--processes", type=int, default=2, help="test-client processes of the Django path")
    parser.add_argument("--server", choices=("uvicorn", "django"), default="uvicorn")
    parser.add_argument("--workers", type=int, default=2, help="Uvicorn worker processes")
    parser.add_argument("--baseline-devices", type=int, default=500, help="devices reporting the Django way first")
    parser.add_argument("--only", choices=("notify", "reports"), default=None)
    args = parser.parse_args()
    _reset_database()
    rollout, tokens = _setup(args.devices)
    results = {"started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "loadavg_start": os.getloadavg()}
    results["notify"] = bench_notify(rollout)
    if args.only != "notify":
        results["reports"] = bench_reports(rollout, tokens, args)
    results["loadavg_end"] = os.getloadavg()
    import redis

    redis.Redis.from_url(os.environ["CELERY_BROKER_URL"]).flushdb()  # advance tasks nobody consumed here
    print(json.dumps(results, indent=2))
    out = ROOT / "bench" / "results" / ("rollout.json" if args.only is None else f"rollout-{args.only}.json")
    out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
