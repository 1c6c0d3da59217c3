"""Fault drill: restart MariaDB under the MQTT bridge and count lost and duplicated messages.

Not a test: it stops the MariaDB server DATABASE_URL points at, so everything else using that
server sees the outage. Run it where nobody else depends on the server, e.g.

    DATABASE_URL=mysql://root@127.0.0.1:3306/factory MQTT_URL=mqtt://127.0.0.1:1883 \\
        .venv/bin/python bench/faults/mariadb_restart.py [--messages 3000] [--rate 300] [--down 2]

1. Creates a probe device (plant "Fault drill") in the migrated database of DATABASE_URL.
2. Starts ``manage.py mqtt_bridge`` as a subprocess with its own client id.
3. Publishes ``--messages`` QoS 1 messages at ``--rate`` per second (each with a unique ``ts``
   and its sequence number as the value), never more than ``--window`` unacknowledged.
4. After ``--restart-at`` seconds it stops the server (SIGTERM to the pid in the server's pid
   file, the precise form of ``pkill -TERM mariadbd``), waits ``--down`` seconds, starts it with
   ``--start-cmd`` and waits until it accepts connections.
5. Waits until every message is stored (or ``--timeout``), stops the bridge with SIGTERM and
   prints: stored, lost (published but not stored), duplicated (messages the bridge committed
   more than once: absorbed by the readings' (device, metric, ts) key, but counted), the outage
   and the catch-up time. Exit status 0 when nothing was lost.
6. Deletes the probe's rows and the bridge's broker session (``--keep`` keeps the rows).
"""

import argparse
import ast
import os
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "factory.settings")

import django  # noqa: E402

django.setup()

import paho.mqtt.client as mqtt  # noqa: E402
from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.utils import timezone  # noqa: E402
from paho.mqtt.enums import CallbackAPIVersion  # noqa: E402
from paho.mqtt.packettypes import PacketTypes  # noqa: E402
from paho.mqtt.properties import Properties  # noqa: E402

from devices.models import Device, Line, Plant  # noqa: E402
from devices.services.plants import plant_create  # noqa: E402

START_CMD = "start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd"
METRIC = "fault_seq"


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--rate", type=float, default=300.0, help="messages per second")
    parser.add_argument("--window", type=int, default=200, help="most unacknowledged publishes")
    parser.add_argument("--restart-at", type=float, default=None, help="seconds after the first publish")
    parser.add_argument("--down", type=float, default=2.0, help="seconds between the server's exit and its start")
    parser.add_argument("--pid-file", default=None, help="default: the server's @@pid_file")
    parser.add_argument("--start-cmd", default=START_CMD)
    parser.add_argument("--timeout", type=float, default=120.0, help="longest wait for the last message")
    parser.add_argument("--keep", action="store_true", help="keep the probe device's readings")
    return parser.parse_args()


def db_count(device_id: int) -> int | None:
    """Stored probe readings, or None while the server is away."""
    try:
        connection.close()
        with connection.cursor() as cursor:
            cursor.execute("SELECT COUNT(*) FROM telemetry_reading WHERE device_id = %s", [device_id])
            return cursor.fetchone()[0]
    except Exception:
        return None


def probe_device() -> Device:
    plant = Plant.objects.filter(name="Fault drill").first() or plant_create(name="Fault drill", time_zone="UTC")
    line, _ = Line.objects.get_or_create(plant=plant, name="Drill line")
    uid = f"fault-{time.strftime('%Y%m%d%H%M%S')}-{os.getpid()}"
    return Device.objects.create(uid=uid, name=uid, kind=Device.Kind.SENSOR, plant=plant, line=line)


def start_bridge(client_id: str, log_path: Path) -> subprocess.Popen:
    command = [sys.executable, "manage.py", "mqtt_bridge", "--client-id", client_id, "--summary-seconds", "1"]
    log = open(log_path, "w")  # noqa: SIM115 (the subprocess writes to it until the end)
    bridge = subprocess.Popen(
        command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "LOG_LEVEL": "INFO"}
    )
    deadline = time.monotonic() + 20
    while "subscribed to" not in log_path.read_text():
        if bridge.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"the bridge did not subscribe; see {log_path}")
        time.sleep(0.1)
    return bridge


def mqtt_client(client_id: str) -> mqtt.Client:
    url = urlparse(settings.MQTT_URL)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    client.connect(url.hostname, url.port or 1883)
    client.loop_start()
    return client


def publish_all(device: Device, args, report: dict) -> None:
    """Publish at a steady rate; block when ``--window`` publishes await the broker's PUBACK."""
    client = mqtt_client(f"fault-pub-{uuid.uuid4().hex[:8]}")
    topic = f"factory/devices/{device.uid}/telemetry"
    base = timezone.now() - timedelta(milliseconds=args.messages + 60_000)
    outstanding = []
    started = time.monotonic()
    for seq in range(args.messages):
        pause = started + seq / args.rate - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        ts = (base + timedelta(milliseconds=seq)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        outstanding.append(client.publish(topic, f'{{"ts": "{ts}", "values": {{"{METRIC}": {seq}}}}}', qos=1))
        report["published"] = seq + 1
        while len(outstanding) >= args.window:
            outstanding.pop(0).wait_for_publish(30)
    for info in outstanding:
        info.wait_for_publish(30)
    report["publish_seconds"] = time.monotonic() - started
    report["broker_acked"] = args.messages
    client.disconnect()
    client.loop_stop()


def server_pid_file(pid_file: str | None) -> str:
    if pid_file:
        return pid_file
    with connection.cursor() as cursor:
        cursor.execute("SELECT @@pid_file")
        return cursor.fetchone()[0]


def restart_server(args, pid_file: str, report: dict) -> None:
    """SIGTERM the server by its pid, wait for its exit, wait ``--down``, start it, wait until it answers."""
    pid = int(Path(pid_file).read_text().split()[0])
    stopping = time.monotonic()
    os.kill(pid, signal.SIGTERM)
    while Path(f"/proc/{pid}").exists():
        if time.monotonic() - stopping > 60:
            raise SystemExit(f"mariadbd (pid {pid}) did not exit within 60 s")
        time.sleep(0.05)
    report["server_exit_seconds"] = time.monotonic() - stopping
    time.sleep(args.down)
    subprocess.run(shlex.split(args.start_cmd), check=True)
    while not server_answers():
        if time.monotonic() - stopping > 120:
            raise SystemExit("mariadbd did not come back within 120 s")
        time.sleep(0.1)
    report["outage_seconds"] = time.monotonic() - stopping
    report["server_back_at"] = time.monotonic()


def server_answers() -> bool:
    try:
        connection.close()
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return True
    except Exception:
        return False


def stop_bridge(bridge: subprocess.Popen, log_path: Path) -> dict:
    bridge.send_signal(signal.SIGTERM)
    bridge.wait(60)
    text = log_path.read_text()
    final = re.search(r"MQTT bridge stopped \((\d+) messages left unacknowledged\): (\{.*\})", text)
    held = [int(n) for n in re.findall(r"dead letters, (\d+) held", text)]
    stats = ast.literal_eval(final[2]) if final else {}
    return {"stats": stats, "left": int(final[1]) if final else None, "max_held": max(held, default=0)}


def remove_session(client_id: str) -> None:
    url = urlparse(settings.MQTT_URL)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    properties = Properties(PacketTypes.CONNECT)
    properties.SessionExpiryInterval = 0
    client.connect(url.hostname, url.port or 1883, clean_start=True, properties=properties)
    client.loop_start()
    client.disconnect()
    client.loop_stop()


def clean_up(device: Device) -> None:
    connection.close()
    with connection.cursor() as cursor:
        for table in ("telemetry_reading", "telemetry_latest", "telemetry_rollup_pending", "telemetry_machine_state"):
            cursor.execute(f"DELETE FROM {table} WHERE device_id = %s", [device.pk])  # noqa: S608
    device.delete()


def run_drill(args, device: Device, client_id: str, log_path: Path) -> dict:
    report: dict = {}
    pid_file = server_pid_file(args.pid_file)
    bridge = start_bridge(client_id, log_path)
    publisher = threading.Thread(target=publish_all, args=(device, args, report))
    publisher.start()
    time.sleep(args.restart_at if args.restart_at is not None else args.messages / args.rate / 3)
    report["stored_before_restart"] = db_count(device.pk)
    restart_server(args, pid_file, report)
    backlog = report["published"]  # everything published before the server answered again
    deadline = time.monotonic() + args.timeout
    while (db_count(device.pk) or 0) < backlog and time.monotonic() < deadline:
        time.sleep(0.05)
    report["backlog"], report["catch_up_seconds"] = backlog, time.monotonic() - report["server_back_at"]
    publisher.join()
    while (db_count(device.pk) or 0) < args.messages and time.monotonic() < deadline:
        time.sleep(0.2)
    report["stored"] = db_count(device.pk)
    report.update(stop_bridge(bridge, log_path))
    return report


def main() -> int:
    args = parse_args()
    if connection.vendor != "mysql" or not settings.MQTT_URL:
        raise SystemExit("Set DATABASE_URL=mysql://... and MQTT_URL=mqtt://...: this drill restarts MariaDB.")
    device = probe_device()
    client_id = f"fault-bridge-{os.getpid()}"
    log_path = Path(tempfile.gettempdir()) / f"{client_id}.log"
    try:
        report = run_drill(args, device, client_id, log_path)
    finally:
        remove_session(client_id)
        if not args.keep:
            clean_up(device)
    stored, stats = report["stored"], report["stats"]
    lost = args.messages - stored
    duplicated = stats.get("accepted", 0) - stored
    print(f"published {args.messages} QoS 1 messages at {args.rate:.0f}/s in {report['publish_seconds']:.1f} s")
    print(
        f"MariaDB: SIGTERM after {report['stored_before_restart']} stored, exited in "
        f"{report['server_exit_seconds']:.1f} s, answering again after {report['outage_seconds']:.1f} s"
    )
    print(
        f"bridge: {stats.get('db_errors')} database errors, at most {report['max_held']} messages held, "
        f"the {report['backlog']} published until the server was back all stored "
        f"{report['catch_up_seconds']:.1f} s after it, "
        f"{report['left']} left unacknowledged at stop, log {log_path}"
    )
    print(f"stored {stored}: lost {lost}, duplicated {duplicated}")
    return 0 if lost == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
