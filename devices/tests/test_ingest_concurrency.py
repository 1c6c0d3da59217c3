"""Concurrent writers on MariaDB: a deadlock victim stores its batch again instead of failing it.

InnoDB resolves a lock cycle by rolling back one transaction (error 1213). Ingest writes are
idempotent, so ``telemetry_store`` re-runs the batch; before the fix a device (HTTP: 503, MQTT:
a retry loop) saw an error for a transient, expected condition.
"""

import threading
from datetime import timedelta

import MySQLdb
import pytest
from django.db import connection
from django.utils import timezone

from devices.models import Device, TelemetryReading
from devices.services.ingest import IngestItem, metric_ids, telemetry_store
from devices.services.telemetry_payload import Message
from devices.tests.factories import make_device, make_line
from tests.waiting import poll

pytestmark = pytest.mark.django_db(transaction=True)


def _other_connection():
    params = {k: v for k, v in connection.get_connection_params().items() if k in ("host", "port", "user", "passwd")}
    return MySQLdb.connect(db=connection.settings_dict["NAME"], **params)


def _waiting_for_lock(cursor, thread_id) -> bool:
    """Whether the connection ``thread_id`` is blocked updating a device row (held by the other client)."""
    cursor.execute("SELECT INFO FROM information_schema.PROCESSLIST WHERE ID = %s", [thread_id])
    row = cursor.fetchone()
    return bool(row and row[0] and row[0].startswith("UPDATE `devices_device`"))


@pytest.fixture
def other():
    """A second client connection; closing it at teardown rolls back whatever it still holds."""
    if connection.vendor != "mysql":
        pytest.skip("InnoDB deadlock resolution: MariaDB only")
    conn = _other_connection()
    yield conn
    conn.close()


def test_deadlock_victim_stores_its_batch_again(other):
    line = make_line()
    first, second, heavy = (make_device(line=line, uid=f"dl-{n}") for n in range(3))
    now = timezone.now().replace(microsecond=0)
    items = [
        IngestItem(
            device=Device.objects.get(pk=pk), messages=[Message(ts=now, values={"temperature": 70.0 + i}, state=None)]
        )
        for i, pk in enumerate((first.pk, second.pk))
    ]

    cursor = other.cursor()
    # The other transaction is heavier (many rows written), so InnoDB chooses the ingest as its victim.
    metric_id = metric_ids(["temperature"])["temperature"]  # known and cached before the locks are taken
    cursor.executemany(
        "INSERT INTO telemetry_reading (device_id, metric_id, ts, value) VALUES (%s, %s, %s, %s)",
        [(heavy.pk, metric_id, (now - timedelta(seconds=s)).replace(tzinfo=None), 1.0) for s in range(1, 2001)],
    )
    cursor.execute("UPDATE devices_device SET name = 'held' WHERE id = %s", [second.pk])

    outcome, connected = {}, threading.Event()

    def ingest():
        from django.db import connections

        connection.ensure_connection()
        outcome["thread_id"] = connection.connection.thread_id()
        connected.set()
        try:
            outcome["accepted"] = telemetry_store(items, received_at=now)
        except Exception as exc:  # noqa: BLE001 - the test reports what the device would have seen
            outcome["error"] = exc
        finally:
            connections.close_all()

    worker = threading.Thread(target=ingest)
    worker.start()
    assert connected.wait(10)
    watcher = _other_connection().cursor()
    if not poll(lambda: _waiting_for_lock(watcher, outcome["thread_id"]), timeout=10, interval=0.02):
        watcher.execute("SELECT INFO FROM information_schema.PROCESSLIST WHERE ID = %s", [outcome["thread_id"]])
        doing = (watcher.fetchone() or [None])[0]
        other.rollback()
        worker.join(timeout=20)
        # InnoDB may make the ingest wait elsewhere first (seen once under a full CI run, not
        # reproduced alone); then no lock cycle forms and there is nothing to test here.
        pytest.skip(f"could not arrange the lock cycle: the ingest was running {str(doing)[:120]!r}")
    cursor.execute("UPDATE devices_device SET name = 'held too' WHERE id = %s", [first.pk])  # closes the cycle
    other.commit()
    worker.join(timeout=20)

    assert "error" not in outcome, f"the device saw an error: {outcome.get('error')!r}"
    assert outcome["accepted"] == 2
    stored = TelemetryReading.objects.filter(device__in=[first, second]).values_list("device__uid", "value")
    assert sorted(stored) == [("dl-0", 70.0), ("dl-1", 71.0)]
    assert set(Device.objects.filter(pk__in=[first.pk, second.pk]).values_list("online", flat=True)) == {True}
