"""Backup and restore (README "Backup and restore") on the real parts: MariaDB under
``REQUIRE_SERVICES=1`` (SQLite on the embedded default), a Daphne server taking readings, a
Mosquitto configured as production runs it.

A backup taken while two devices keep posting readings restores into an empty database and media
directory: every table has the manifest's rows, the restored rows are one consistent state (each
device's newest value is its newest reading, as the ingest transaction writes them together), the
firmware image has its checksum, the broker still knows the devices' passwords, and a server on
the restored database serves the history and takes new readings with the old tokens.
"""

import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from conftest import REQUIRE_SERVICES
from factory.backup import BackupError, backup_restore
from factory.backup.database import RowCounter
from factory.backup.files import file_sha256
from tests.mosquitto import AuthBroker, connects, mosquitto_available
from tests.servers import Daphne, ServerDatabase, manage, post_reading, run_python, seeded_stack

# A year of plant B's machine states (telemetry_machine_state): the dump takes long enough between
# telemetry_latest and telemetry_reading (dumped in name order) for ingest to commit in between, so
# a dump that is not one snapshot fails the consistency check below. SQLite's online backup copies
# the file in one step (no window to catch), so the embedded leg seeds a few hundred only.
SEED = """
import os
import json
from datetime import UTC, datetime, timedelta
from devices.models import MachineState, Plant
from firmware.tests.factories import make_image
from tests.e2e_seed import seed

data = seed(devices=2, sensor=False)
image = make_image(Plant.objects.get(pk=data["plants"]["A"]), version="3.1.0", content=b"firmware image " * 4096)
data["image"] = {"name": image.file.name, "sha256": image.sha256}
start, states, paint = datetime(2025, 1, 1, tzinfo=UTC), ["running", "idle", "down"], data["devices"]["paint-b01"]["id"]
rows = 50_000 if os.environ["DATABASE_URL"].startswith("mysql") else 500
MachineState.objects.bulk_create(
    [MachineState(device_id=paint, ts=start + timedelta(minutes=10 * i), state=states[i % 3]) for i in range(rows)],
    batch_size=5000)
print(json.dumps(data))
"""

# Run in the restored database: a reading without its device, or a newest value that is not the
# newest reading (they commit together), would mean the backup mixed two moments.
CONSISTENCY = """
import json
from django.db.models import Count, Exists, Max, OuterRef
from devices.models import Device, LatestValue, TelemetryReading
from factory.backup import table_counts

orphans = TelemetryReading.objects.filter(~Exists(Device.objects.filter(pk=OuterRef("device_id")))).count()
newest = {(r["device_id"], r["metric_id"]): r["ts"] for r in
          TelemetryReading.objects.values("device_id", "metric_id").annotate(ts=Max("ts"))}
latest = {(d, m): (ts, v) for d, m, ts, v in LatestValue.objects.values_list("device_id", "metric_id", "ts", "value")}
wrong = [str(key) for key in set(newest) | set(latest) if key not in newest or key not in latest
         or latest[key][0] != newest[key]
         or TelemetryReading.objects.get(device_id=key[0], metric_id=key[1], ts=newest[key]).value != latest[key][1]]
counts = {f"{r['device_id']}:{r['metric__name']}": r["n"] for r in
          TelemetryReading.objects.values("device_id", "metric__name").annotate(n=Count("ts"))}
tables = {table: n for table, n in table_counts().items() if not table.startswith("sqlite_")}
print(json.dumps({"tables": tables, "orphans": orphans, "not_newest": wrong, "readings": counts}))
"""


class Ingest(threading.Thread):
    """Devices posting readings one after another, as fast as the server takes them, until stopped."""

    def __init__(self, url: str, devices: list[dict]):
        super().__init__(daemon=True)
        self.url, self.devices = url, devices
        self.accepted, self.failure = 0, None
        self.stopping = threading.Event()

    def run(self):
        with httpx.Client(base_url=self.url, timeout=10) as client:
            while not self.stopping.is_set():
                device = self.devices[self.accepted % len(self.devices)]
                ts = datetime.now(UTC).isoformat().replace("+00:00", "Z")
                body = {"ts": ts, "values": {"temperature": 20.0 + self.accepted % 7, "pressure": 1.0}}
                response = client.post(
                    "/api/v1/telemetry/", json=body, headers={"Authorization": f"Device {device['token']}"}
                )
                if response.status_code != 202:
                    self.failure = f"{response.status_code}: {response.text}"
                    return
                self.accepted += 1

    def stop(self) -> int:
        self.stopping.set()
        self.join(10)
        assert self.failure is None, f"ingest failed: {self.failure}"
        return self.accepted


@pytest.fixture
def auth_broker(tmp_path):
    if not mosquitto_available():
        (pytest.fail if REQUIRE_SERVICES else pytest.skip)("mosquitto with its dynamic-security plugin is missing")
    broker = AuthBroker(tmp_path / "broker")
    broker.start()
    yield broker
    broker.stop()


def broker_env(broker: AuthBroker) -> dict:
    return {
        "MQTT_URL": broker.url,
        "MQTT_DEVICE_URL": broker.device_url,
        "MQTT_PLATFORM_PASSWORD": broker.platform_password,
        "MQTT_BRIDGE_PASSWORD": broker.bridge_password,
    }


def restored_broker(backup_broker: AuthBroker, directory: Path) -> AuthBroker:
    """A new Mosquitto on the restored data directory, given the service passwords (secret files an
    operator keeps apart from backups, as deploy/secrets/ holds them)."""
    for name in ("platform_password", "bridge_password"):
        (directory / name).write_text((backup_broker.directory / name).read_text())
    broker = AuthBroker(directory)
    broker.start()
    return broker


def test_restore_matches_backup_taken_while_ingest_runs(tmp_path, auth_broker, db):
    backup = tmp_path / "backup"
    with seeded_stack(tmp_path / "source", SEED, env=broker_env(auth_broker)) as (server, seeded):
        devices = [{"uid": uid, **d} for uid, d in seeded["devices"].items() if d["plant"] == seeded["plants"]["A"]]
        ingest = Ingest(server.url, devices)
        started = datetime.now(UTC)
        ingest.start()
        try:
            assert ingest.is_alive()
            before = ingest.accepted
            out = manage(server.env, "backup", "--out", str(backup), "--broker-dir", str(auth_broker.directory))
            during = ingest.accepted - before
        finally:
            accepted = ingest.stop()
    manifest = json.loads((backup / "manifest.json").read_text())
    tables = manifest["database"]["tables"]
    # Ingest went on while the dump ran (no table locks), and the dump holds what had been
    # committed by then: each accepted POST stored two readings; one POST may have been in flight.
    assert during > 0, out
    assert 2 * before <= tables["telemetry_reading"] <= 2 * (before + during) + 2, (before, during, tables)
    assert accepted > 0 and tables["devices_device"] == len(seeded["devices"])
    assert manifest["media"]["files"] == {seeded["image"]["name"]: seeded["image"]["sha256"]}
    assert manifest["broker"] is not None

    target = ServerDatabase(tmp_path / "restored").create(migrate=False)
    for name in broker_env(auth_broker):
        target.env.pop(name, None)
    try:
        restored_dir = tmp_path / "restored-broker"
        out = manage(target.env, "restore", "--from", str(backup), "--broker-dir", str(restored_dir))
        assert "restore complete and verified" in out, out
        # Once more over the restored installation: --force replaces (drops the tables, overwrites
        # the files) and verifies again; everything below checks that second result.
        args = ("restore", "--from", str(backup), "--broker-dir", str(restored_dir), "--force")
        out = manage(target.env, *args)
        assert "dropped" in out or "sqlite" in target.env["DATABASE_URL"], out
        assert "restore complete and verified" in out, out
        restored = run_python(target.env, CONSISTENCY)
        assert restored["tables"] == tables
        assert restored["orphans"] == 0 and restored["not_newest"] == [], restored
        readings = restored["readings"]  # per device and metric
        assert len(readings) == 4 and sum(readings.values()) == tables["telemetry_reading"], readings
        media = Path(target.env["VAR_DIR"]) / "media" / seeded["image"]["name"]
        assert file_sha256(media) == seeded["image"]["sha256"]

        # The broker on the restored data still knows each device's token as its MQTT password.
        broker = restored_broker(auth_broker, restored_dir)
        try:
            device = devices[0]
            assert connects(broker.device_url, device["uid"], device["token"])
            assert not connects(broker.device_url, device["uid"], "not-the-token")
        finally:
            broker.stop()

        server = Daphne(target.env, log=tmp_path / "restored.log").start(timeout=30)
        try:
            token = httpx.post(
                f"{server.url}/api/v1/auth/token/", json={"username": "operator", "password": seeded["password"]}
            ).json()["access"]
            query = {
                "metric": "temperature",
                "bucket": "raw",
                "start": (started - timedelta(minutes=1)).isoformat(),
                "end": (datetime.now(UTC) + timedelta(minutes=1)).isoformat(),
            }
            response = httpx.get(
                f"{server.url}/api/v1/devices/{device['id']}/telemetry/",
                params=query,
                headers={"Authorization": f"Bearer {token}"},
            )
            assert response.status_code == 200, response.text
            points = response.json()["points"]
            assert len(points) == readings[f"{device['id']}:temperature"] > 0
            post_reading(server, device, {"temperature": 21.5})  # the old token still authenticates
        finally:
            server.stop()
    finally:
        target.drop()

    # Restoring over a database that has tables (this test's own), or from a damaged backup, is
    # refused before anything is written.
    with pytest.raises(BackupError, match="not empty: the database"):
        backup_restore(source=backup, force=False, broker_dir=None)
    with (backup / "media.tar.gz").open("r+b") as fh:
        fh.seek(-1, 2)
        last = fh.read(1)
        fh.seek(-1, 2)
        fh.write(bytes([last[0] ^ 1]))
    with pytest.raises(BackupError, match="media.tar.gz: SHA-256 differs"):
        backup_restore(source=backup, force=True, broker_dir=None)


@pytest.mark.parametrize(
    "dump",
    [
        # mariadb-dump 10.11+: one row per line
        b"CREATE TABLE `a` (\n  `x` int\n);\nCREATE TABLE `empty` (\n);\nINSERT INTO `a` VALUES\n"
        b"(1,'it''s (not) a row'),\n(2,'back\\\\slash \\' (x)\\n(y'),\n(3,NULL);\n",
        # mysqldump: one extended INSERT per line, several per table
        b"CREATE TABLE `a` (\n);\nCREATE TABLE `empty` (\n);\nINSERT INTO `a` VALUES (1,'(('),(2,'),(');\n"
        b"INSERT INTO `a` VALUES (3,0x28);\n",
    ],
)
def test_counts_rows_of_a_dump_whatever_its_values_hold(dump):
    lines = dump.splitlines(keepends=True)
    for blocks in ([dump], lines, [b"".join(lines[:5]), b"".join(lines[5:])]):  # any cut between lines
        counter = RowCounter()
        for block in blocks:
            counter.feed(block)
        assert counter.counts == {"a": 3, "empty": 0}, blocks
