"""The ingest service itself (``telemetry_parse`` / ``telemetry_store``), as every transport calls it."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from devices.models import Device, LatestValue, MachineState, Metric, RollupPending, TelemetryReading
from devices.selectors import counter_increments, state_timeline
from devices.services.ingest import IngestItem, telemetry_parse, telemetry_store
from devices.services.telemetry_payload import Message, PayloadError
from devices.signals import device_status_changed, telemetry_ingested
from devices.tests.factories import make_device

T0 = timezone.now().replace(microsecond=0) - timedelta(hours=1)


def at(seconds: float):
    return T0 + timedelta(seconds=seconds)


def msg(seconds: float, state: str | None = None, **values) -> Message:
    return Message(ts=at(seconds), values={name: float(v) for name, v in values.items()}, state=state)


def store(device, *messages, received_at=None) -> int:
    """Store ``messages`` as one transport call would, with the device as the token lookup loads it."""
    device = Device.objects.get(pk=device.pk)
    return telemetry_store([IngestItem(device=device, messages=list(messages))], received_at=received_at or at(3600))


def readings(device, metric: str) -> list[tuple]:
    rows = TelemetryReading.objects.filter(device=device, metric__name=metric).order_by("ts")
    return list(rows.values_list("ts", "value"))


def latest(device) -> dict[str, tuple]:
    rows = LatestValue.objects.filter(device=device).values_list("metric__name", "ts", "value")
    return {name: (ts, value) for name, ts, value in rows}


def states(device) -> list[tuple]:
    return list(MachineState.objects.filter(device=device).order_by("ts").values_list("ts", "state"))


@pytest.fixture
def device(db):
    return make_device(uid="press-07")


@pytest.fixture
def events():
    """Signals received, as ``(name, kwargs)``, connected for the duration of one test."""
    received = []

    def on_status(sender, **kwargs):
        received.append(("status", kwargs))

    def on_ingested(sender, **kwargs):
        received.append(("ingested", kwargs))

    device_status_changed.connect(on_status)
    telemetry_ingested.connect(on_ingested)
    yield received
    device_status_changed.disconnect(on_status)
    telemetry_ingested.disconnect(on_ingested)


def test_ignores_a_resent_batch_when_readings_are_already_stored(device):
    batch = [msg(0, temperature=70, count_total=10), msg(1, temperature=71, count_total=11)]

    assert store(device, *batch) == 2
    assert store(device, *batch) == 2

    assert TelemetryReading.objects.filter(device=device).count() == 4
    assert readings(device, "temperature") == [(at(0), 70.0), (at(1), 71.0)]


def test_keeps_the_first_value_everywhere_when_a_reading_is_resent_with_another_value(device):
    store(device, msg(5, temperature=70))
    store(device, msg(5, temperature=99))

    assert readings(device, "temperature") == [(at(5), 70.0)]
    assert latest(device) == {"temperature": (at(5), 70.0)}


def test_keeps_the_newest_latest_value_when_an_older_batch_arrives_later(device):
    store(device, msg(10, temperature=75, vibration=0.03))
    store(device, msg(2, temperature=60), msg(4, temperature=61, pressure=2.0))

    assert latest(device) == {
        "temperature": (at(10), 75.0),
        "vibration": (at(10), 0.03),
        "pressure": (at(4), 2.0),
    }
    assert len(readings(device, "temperature")) == 3


def test_picks_the_newest_message_of_one_batch_whatever_its_position(device):
    store(device, msg(9, temperature=3), msg(1, temperature=1), msg(5, temperature=2))

    assert latest(device) == {"temperature": (at(9), 3.0)}


def test_stores_machine_states_only_when_they_change(device):
    store(device, msg(0, "running"), msg(10, "running", temperature=70), msg(20, "idle"), msg(30, "idle"))
    store(device, msg(40, "idle"), msg(50, "running"), msg(60, "running"))

    assert states(device) == [(at(0), "running"), (at(20), "idle"), (at(50), "running")]
    device.refresh_from_db()
    assert (device.state, device.state_since) == ("running", at(50))


def test_keeps_a_late_state_message_without_changing_the_current_state(device):
    store(device, msg(0, "running"), msg(100, "idle"))

    store(device, msg(50, "down"))

    assert states(device) == [(at(0), "running"), (at(50), "down"), (at(100), "idle")]
    assert state_timeline(device, at(0), at(200)) == [(at(0), "running"), (at(50), "down"), (at(100), "idle")]
    device.refresh_from_db()
    assert (device.state, device.state_since) == ("idle", at(100))


def test_keeps_state_since_when_a_batch_mixes_late_and_repeated_states(device):
    store(device, msg(100, "running"))

    store(device, msg(50, "down"), msg(150, "running"))

    assert states(device) == [(at(50), "down"), (at(100), "running")]
    device.refresh_from_db()
    assert (device.state, device.state_since) == ("running", at(100))


def test_keeps_the_first_state_when_another_arrives_for_the_same_instant(device):
    store(device, msg(100, "running"))

    store(device, msg(100, "down"))

    assert states(device) == [(at(100), "running")]
    device.refresh_from_db()
    assert (device.state, device.state_since) == ("running", at(100))


def test_updates_last_seen_online_and_state_when_a_device_reports(device):
    assert (device.online, device.last_seen_at, device.state) == (False, None, "")

    store(device, msg(0, "setup", temperature=20), received_at=at(1))

    device.refresh_from_db()
    assert (device.online, device.last_seen_at, device.state, device.state_since) == (True, at(1), "setup", at(0))


def test_signals_online_once_when_an_offline_device_reports_twice(device, events, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        store(device, msg(0, temperature=20), received_at=at(1))
        assert events == []  # nothing before commit
    with django_capture_on_commit_callbacks(execute=True):
        store(device, msg(5, temperature=21), received_at=at(6))

    status = [kwargs for name, kwargs in events if name == "status"]
    assert status == [{"signal": device_status_changed, "device_ids": [device.pk], "online": True, "at": at(1)}]


def test_signals_telemetry_ingested_after_commit_with_the_items(device, events, django_capture_on_commit_callbacks):
    Device.objects.filter(pk=device.pk).update(online=True)  # no status event in the way
    batch = [msg(0, temperature=20), msg(1, "running")]

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        store(device, *batch, received_at=at(2))
        assert events == []

    assert len(callbacks) >= 1
    [(name, kwargs)] = events
    assert name == "ingested" and kwargs["received_at"] == at(2)
    [item] = kwargs["items"]
    assert item.device.pk == device.pk and item.messages == batch


def test_sends_nothing_when_the_transaction_rolls_back(device, events, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        store(device, msg(0, temperature=20))

    assert callbacks and events == []  # the callbacks were discarded with the test's transaction


def test_stores_the_readings_when_a_signal_receiver_fails(device, events, django_capture_on_commit_callbacks):
    def broken(sender, **kwargs):
        raise RuntimeError("dashboard publisher is down")

    telemetry_ingested.connect(broken)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            accepted = store(device, msg(0, temperature=20))
    finally:
        telemetry_ingested.disconnect(broken)

    assert accepted == 1
    assert readings(device, "temperature") == [(at(0), 20.0)]
    assert [name for name, _ in events] == ["status", "ingested"]  # the other receivers still ran


def test_counts_pieces_across_counter_resets(device):
    store(device, *[msg(i, count_total=value) for i, value in enumerate([10, 15, 3, 8])])

    assert counter_increments(iter(readings(device, "count_total"))) == 13  # 5 + 3 (reset) + 5
    assert counter_increments(iter(readings(device, "count_total")), previous=12) == 10 + 13


def test_counts_every_piece_when_a_counter_message_is_lost(device):
    store(device, msg(0, count_total=100), msg(1, count_total=103), msg(3, count_total=110))

    assert counter_increments(iter(readings(device, "count_total"))) == 10


def test_creates_metrics_on_first_use_and_reuses_them(device):
    other = make_device(uid="press-08")
    assert not Metric.objects.filter(name__in=["spindle_speed", "oil_temp"]).exists()

    store(device, msg(0, spindle_speed=1200, oil_temp=40))
    store(other, msg(0, spindle_speed=900))

    assert Metric.objects.filter(name="spindle_speed").count() == 1
    assert Metric.objects.filter(name="oil_temp").count() == 1
    ids = set(TelemetryReading.objects.filter(metric__name="spindle_speed").values_list("metric_id", flat=True))
    assert len(ids) == 1


def test_marks_each_minute_with_readings_for_the_rollups(device):
    base = T0.replace(second=0)
    store(
        device,
        Message(ts=base + timedelta(seconds=1), values={"a": 1.0}, state=None),
        Message(ts=base + timedelta(seconds=59), values={"a": 2.0}, state=None),
        Message(ts=base + timedelta(seconds=61), values={"a": 3.0}, state=None),
        Message(ts=base + timedelta(seconds=200), values={}, state="idle"),
    )

    marks = sorted(RollupPending.objects.filter(device=device).values_list("bucket", flat=True))
    assert marks == [base, base + timedelta(minutes=1)]


def test_stores_several_devices_in_one_call(device):
    other = make_device(uid="press-08")

    accepted = telemetry_store(
        [
            IngestItem(device=Device.objects.get(pk=device.pk), messages=[msg(0, temperature=1), msg(1, "idle")]),
            IngestItem(device=Device.objects.get(pk=other.pk), messages=[msg(0, temperature=2)]),
        ],
        received_at=at(5),
    )

    assert accepted == 3
    assert readings(device, "temperature") == [(at(0), 1.0)] and readings(other, "temperature") == [(at(0), 2.0)]
    assert set(Device.objects.filter(online=True).values_list("uid", flat=True)) == {"press-07", "press-08"}


def test_parses_with_the_configured_batch_limit_and_retention(settings):
    settings.TELEMETRY_MAX_BATCH = 2
    settings.TELEMETRY_RETENTION_RAW_DAYS = 1
    now = timezone.now()
    good = {"values": {"a": 1}}

    assert len(telemetry_parse(json.dumps({"messages": [good, good]}).encode(), now=now)) == 2
    with pytest.raises(PayloadError) as too_many:
        telemetry_parse(json.dumps({"messages": [good] * 3}).encode(), now=now)
    assert too_many.value.errors[0]["field"] == "messages"
    old = {"ts": (now - timedelta(days=2)).isoformat(), **good}
    with pytest.raises(PayloadError) as too_old:
        telemetry_parse(json.dumps(old).encode(), now=now)
    assert too_old.value.errors[0]["field"] == "ts"


def test_gives_messages_without_ts_the_receive_time():
    now = timezone.now()

    [message] = telemetry_parse(b'{"values": {"a": 1}, "state": "down"}', now=now)

    assert message == Message(ts=now, values={"a": 1.0}, state="down")


def test_keeps_newer_state_when_a_concurrent_writer_stored_it_after_the_device_was_read(device):
    stale = Device.objects.get(pk=device.pk)  # read by one writer (no state yet) ...
    store(device, msg(100, state="down"))  # ... while another stores a newer state

    telemetry_store([IngestItem(device=stale, messages=[msg(50, state="running")])], received_at=at(3600))

    device.refresh_from_db()
    assert (device.state, device.state_since) == ("down", at(100))
    assert states(device) == [(at(50), "running"), (at(100), "down")]  # both kept for the timeline


def test_stores_every_value_exactly_when_it_needs_seventeen_digits(device):
    values = {"drift": 0.1 + 0.2, "tiny": 5e-324, "huge": 1.7976931348623157e308, "negative": -123456.78901234567}
    store(device, Message(ts=at(0), values=values, state=None))

    stored = dict(TelemetryReading.objects.filter(device=device).values_list("metric__name", "value"))
    assert stored == values
    assert {name: value for name, (_, value) in latest(device).items()} == values


def test_hands_the_after_commit_signals_to_defer_hooks_when_given(device, events, django_capture_on_commit_callbacks):
    Device.objects.filter(pk=device.pk).update(online=True)
    deferred = []
    with django_capture_on_commit_callbacks(execute=True):
        telemetry_store(
            [IngestItem(device=Device.objects.get(pk=device.pk), messages=[msg(0, temperature=20)])],
            received_at=at(1),
            defer_hooks=deferred.append,
        )
    assert len(deferred) == 1 and events == []  # handed over on commit, not run

    deferred[0]()

    [(name, kwargs)] = events
    assert name == "ingested" and kwargs["items"][0].messages == [msg(0, temperature=20)]


@pytest.mark.django_db(transaction=True)  # committed, as in production: the metric ids are cached
def test_a_batch_of_many_devices_costs_a_fixed_number_of_insert_statements(device):
    """Each insert kind is one multi-row statement, however many devices a batch holds: mysqlclient
    only folds ``executemany`` into one statement when every value is a placeholder, and the rollup
    queue's literal ``1`` made it send one INSERT per device and minute (bench/latency.py: 14 of a
    batch's 20 statements)."""
    from django.db import connection

    if connection.vendor != "mysql":
        pytest.skip("counts MariaDB's statements (SQLite's executemany is one C loop)")
    devices = [Device.objects.get(pk=make_device(device.line, f"press-{i}").pk) for i in range(20)]
    items = [IngestItem(device=d, messages=[msg(i, "running", power=i)]) for i, d in enumerate(devices)]

    def inserts() -> int:
        with connection.cursor() as cursor:
            cursor.execute("SHOW SESSION STATUS LIKE 'Com_insert'")
            return int(cursor.fetchone()[1])

    store(device, msg(0, power=1))  # the metric exists already, as in a running plant
    before = inserts()
    assert telemetry_store(items, received_at=at(3600)) == 20
    assert inserts() - before == 4  # readings, latest values, rollup queue, state changes
    assert RollupPending.objects.filter(device__in=devices).count() == 20
    assert MachineState.objects.filter(device__in=devices).count() == 20
