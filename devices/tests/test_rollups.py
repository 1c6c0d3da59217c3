"""Rollups and retention: exact against raw readings (edges, DST days, half-hour zones), late data, idempotency.

Expected values are computed here from the readings themselves (epoch arithmetic for UTC
buckets, ``zoneinfo`` for calendar days), never through the code under test.
"""

import random
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.utils import timezone

from devices.models import Metric, RollupPending, TelemetryReading, TelemetryRollup1h, TelemetryRollup1m
from devices.selectors import telemetry_buckets
from devices.services.ingest import IngestItem, telemetry_store
from devices.services.rollups import retention_enforce, rollups_refresh
from devices.services.telemetry_payload import Message
from devices.tests.factories import make_device, make_line

pytestmark = pytest.mark.django_db

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
US = timedelta(microseconds=1)
BERLIN = ZoneInfo("Europe/Berlin")
KOLKATA = ZoneInfo("Asia/Kolkata")
SIZES = {"1m": timedelta(minutes=1), "5m": timedelta(minutes=5), "1h": timedelta(hours=1)}
ROLLUP_FIELDS = ("metric__name", "bucket", "min", "max", "sum", "count", "last", "last_ts")


@pytest.fixture
def device(plant_a):
    return make_device(line=make_line(plant_a), uid="press-07")


def store(device, readings, metric="temperature"):
    """Ingest ``(ts, value)`` readings of one metric through the ingest service."""
    messages = [Message(ts=ts, values={metric: value}, state=None) for ts, value in readings]
    telemetry_store([IngestItem(device=device, messages=messages)], received_at=timezone.now())


def utc_floor(ts: datetime, size: timedelta) -> datetime:
    micros = (ts - EPOCH) // US
    return EPOCH + US * (micros - micros % (size // US))


def expected(readings, key) -> dict:
    """``{key: (min, max, sum, count, last)}`` computed straight from the readings."""
    groups: dict = {}
    for ts, value in readings:
        groups.setdefault(key(ts), []).append((ts, value))
    return {
        k: (min(v for _, v in g), max(v for _, v in g), sum(v for _, v in g), len(g), max(g)[1])
        for k, g in groups.items()
    }


def actual(buckets) -> dict:
    return {b.ts: (b.min, b.max, b.sum, b.count, b.last) for b in buckets}


def assert_same(got: dict, want: dict):
    assert sorted(got) == sorted(want)
    for key, (mn, mx, total, count, last) in want.items():
        assert got[key][:2] == (mn, mx), key
        assert got[key][2] == pytest.approx(total), key
        assert got[key][3:] == (count, last), key


def random_readings(start: datetime, span: timedelta, n: int, seed: int = 7) -> list[tuple[datetime, float]]:
    rnd = random.Random(seed)
    stamps = {start + US * rnd.randrange(span // US) for _ in range(n)}
    return [(ts, round(rnd.uniform(-50, 150), 3)) for ts in sorted(stamps)]


def buckets(device, start, end, bucket, tz=BERLIN, metric="temperature"):
    return telemetry_buckets(device, Metric.objects.get(name=metric), start, end, bucket, tz)


def test_rollup_rows_equal_raw_aggregates_when_minutes_and_hours_are_recomputed(device):
    start = timezone.now().replace(minute=0, second=0, microsecond=0) - timedelta(hours=5)
    temperature = random_readings(start, timedelta(hours=3), 900, seed=1)
    vibration = random_readings(start + timedelta(minutes=30), timedelta(hours=2), 400, seed=2)
    store(device, temperature)
    store(device, vibration, metric="vibration")
    assert rollups_refresh() == len({utc_floor(ts, SIZES["1m"]) for ts, _ in temperature + vibration})

    for model, size in ((TelemetryRollup1m, SIZES["1m"]), (TelemetryRollup1h, SIZES["1h"])):
        rows = model.objects.filter(device_id=device.pk).values_list(*ROLLUP_FIELDS)
        got = {(name, bucket): (mn, mx, total, count, last) for name, bucket, mn, mx, total, count, last, _ in rows}
        want = {
            (name, bucket): aggregate
            for name, readings in (("temperature", temperature), ("vibration", vibration))
            for bucket, aggregate in expected(readings, lambda ts, size=size: utc_floor(ts, size)).items()
        }
        assert_same(got, want)
        last_ts = {(name, bucket): ts for name, bucket, *_, ts in rows}
        assert last_ts[("temperature", utc_floor(temperature[-1][0], size))] == temperature[-1][0]


@pytest.mark.parametrize("bucket", ["1m", "5m", "1h", "1d"])
def test_buckets_equal_raw_aggregates_when_read_at_each_resolution(device, bucket):
    now = timezone.now()
    start = now - timedelta(hours=30)
    readings = random_readings(start, timedelta(hours=29), 1500)
    store(device, readings)
    rollups_refresh()

    def key(ts):
        if bucket == "1d":
            return datetime.combine(ts.astimezone(BERLIN).date(), datetime.min.time(), tzinfo=BERLIN)
        return utc_floor(ts, SIZES[bucket])

    assert_same(actual(buckets(device, start - timedelta(days=1), now, bucket)), expected(readings, key))


@pytest.mark.parametrize(
    ("bucket", "edge"),
    [
        ("1m", datetime(2026, 11, 20, 10, 7, tzinfo=UTC)),
        ("5m", datetime(2026, 11, 20, 10, 5, tzinfo=UTC)),
        ("1h", datetime(2026, 11, 20, 10, 0, tzinfo=UTC)),
        ("1d", datetime(2026, 11, 20, 0, 0, tzinfo=BERLIN)),
    ],
)
def test_reading_belongs_to_the_bucket_starting_at_it_when_exactly_on_the_edge(device, bucket, edge):
    store(device, [(edge - US, 1.0), (edge, 2.0)])
    assert rollups_refresh(now=edge) == 2
    got = buckets(device, edge - timedelta(days=2), edge + timedelta(days=2), bucket)
    assert [(b.ts, b.count, b.last) for b in got] == [
        (edge - SIZES.get(bucket, timedelta(days=1)), 1, 1.0),
        (edge, 1, 2.0),
    ]


@pytest.mark.parametrize(
    ("day", "starts", "ends", "hours"),
    [
        # Berlin springs forward at 02:00 CET: the day has 23 hours.
        ("2026-03-29", datetime(2026, 3, 28, 23, tzinfo=UTC), datetime(2026, 3, 29, 22, tzinfo=UTC), 23),
        # Berlin falls back at 03:00 CEST: the day has 25 hours.
        ("2026-10-25", datetime(2026, 10, 24, 22, tzinfo=UTC), datetime(2026, 10, 25, 23, tzinfo=UTC), 25),
    ],
)
def test_day_bucket_spans_the_local_calendar_day_when_dst_changes(device, day, starts, ends, hours):
    first = starts - timedelta(hours=6)
    readings = [(first + timedelta(minutes=15) * i, float(i)) for i in range(4 * (hours + 12))]
    store(device, readings)
    rollups_refresh(now=ends)

    got = buckets(device, starts, ends, "1d")
    assert len(got) == 1
    inside = [value for ts, value in readings if starts <= ts < ends]
    assert got[0].ts.isoformat()[:10] == day
    assert got[0].ts == starts
    assert (got[0].count, got[0].min, got[0].max, got[0].last) == (4 * hours, inside[0], inside[-1], inside[-1])
    around = buckets(device, first, readings[-1][0], "1d")
    assert [b.count for b in around] == [24, 4 * hours, 24]


def test_day_bucket_follows_local_midnight_when_zone_is_half_an_hour_off_utc(device):
    midnight = datetime.combine(timezone.now().astimezone(KOLKATA).date(), datetime.min.time(), tzinfo=KOLKATA)
    midnight = midnight - timedelta(days=2)  # 18:30 UTC the evening before
    start = midnight - timedelta(days=1)
    readings = random_readings(start, timedelta(days=2, hours=12), 1200)
    readings += [(midnight - US, 1000.0), (midnight, -1000.0)]
    store(device, readings)
    rollups_refresh()

    got = buckets(device, start, start + timedelta(days=3), "1d", tz=KOLKATA)
    want = expected(
        readings, lambda ts: datetime.combine(ts.astimezone(KOLKATA).date(), datetime.min.time(), tzinfo=KOLKATA)
    )
    assert_same(actual(got), want)
    assert got[1].ts.isoformat() == midnight.isoformat()
    assert got[0].max == 1000.0
    assert got[1].min == -1000.0


def test_late_reading_is_rolled_up_when_it_arrives_after_its_minute_was_computed(device):
    hour = timezone.now().replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)
    readings = [(hour + timedelta(minutes=m, seconds=10), float(m)) for m in range(60)]
    store(device, readings)
    rollups_refresh()

    late = [(hour + timedelta(minutes=5, seconds=50), -7.0)]
    store(device, late)
    assert list(RollupPending.objects.values_list("bucket", flat=True)) == [hour + timedelta(minutes=5)]
    assert rollups_refresh() == 1

    minute = TelemetryRollup1m.objects.get(device_id=device.pk, bucket=hour + timedelta(minutes=5))
    assert (minute.min, minute.max, minute.count, minute.last) == (-7.0, 5.0, 2, -7.0)
    one_hour = TelemetryRollup1h.objects.get(device_id=device.pk, bucket=hour)
    want = expected(readings + late, lambda ts: hour)[hour]
    assert (one_hour.min, one_hour.max, one_hour.count, one_hour.last) == (want[0], want[1], want[3], want[4])
    assert one_hour.sum == pytest.approx(want[2])
    assert not RollupPending.objects.exists()


def rollup_rows(device) -> list:
    return [
        list(model.objects.filter(device_id=device.pk).order_by("metric_id", "bucket").values_list(*ROLLUP_FIELDS))
        for model in (TelemetryRollup1m, TelemetryRollup1h)
    ]


def test_refresh_leaves_identical_rows_when_run_twice_or_on_re_sent_readings(device):
    start = timezone.now() - timedelta(hours=3)
    readings = random_readings(start, timedelta(hours=2), 300)
    store(device, readings)
    marks = rollups_refresh()
    first = rollup_rows(device)

    assert rollups_refresh() == 0
    assert rollup_rows(device) == first
    store(device, readings)  # a device re-sending: readings ignored, minutes marked again
    assert rollups_refresh() == marks
    assert rollup_rows(device) == first


def test_keeps_the_mark_when_ingest_bumps_it_during_the_run(device):
    minute = timezone.now().replace(second=0, microsecond=0) - timedelta(minutes=10)
    store(device, [(minute + timedelta(seconds=1), 1.0)])
    bumped = []

    def ingest_after_raw_read(execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        # The first statement on the 1-minute table comes after the raw readings were read: a
        # device's next message commits right then, while the rollup is being computed.
        if "telemetry_rollup_1m" in sql and not bumped:
            bumped.append(True)
            store(device, [(minute + timedelta(seconds=2), 9.0)])
        return result

    with connection.execute_wrapper(ingest_after_raw_read):
        assert rollups_refresh() == 0
    assert list(RollupPending.objects.values_list("bucket", "generation")) == [(minute, 2)]
    assert TelemetryRollup1m.objects.get(device_id=device.pk).count == 1

    assert rollups_refresh() == 1
    assert TelemetryRollup1m.objects.get(device_id=device.pk).count == 2
    assert TelemetryRollup1m.objects.get(device_id=device.pk).last == 9.0


def test_drops_the_mark_but_keeps_rollups_when_the_minute_is_past_raw_retention(device, settings):
    settings.TELEMETRY_RETENTION_RAW_DAYS = 30
    now = timezone.now()
    minute = (now - timedelta(days=29)).replace(second=0, microsecond=0)
    store(device, [(minute + timedelta(seconds=5), 3.0)])
    rollups_refresh(now=now)
    later = now + timedelta(days=2)
    assert retention_enforce(now=later)["raw"] == 1
    RollupPending.objects.create(device_id=device.pk, bucket=minute)  # e.g. a backlog of late marks

    assert rollups_refresh(now=later) == 1
    assert not RollupPending.objects.exists()
    assert TelemetryRollup1m.objects.get(device_id=device.pk, bucket=minute).count == 1


def old_rows(device, metric, *, raw=(), minutes=(), hours=()):
    TelemetryReading.objects.bulk_create(TelemetryReading(device=device, metric=metric, ts=ts, value=1.0) for ts in raw)
    for model, stamps in ((TelemetryRollup1m, minutes), (TelemetryRollup1h, hours)):
        model.objects.bulk_create(
            model(device=device, metric=metric, bucket=b, min=1, max=1, sum=1, count=1, last=1, last_ts=b)
            for b in stamps
        )


def remaining(model, field, device):
    return sorted(model.objects.filter(device_id=device.pk).values_list(field, flat=True))


@pytest.fixture
def default_retention(settings):
    settings.TELEMETRY_RETENTION_RAW_DAYS = 30
    settings.TELEMETRY_RETENTION_1M_DAYS = 365
    settings.TELEMETRY_RETENTION_1H_DAYS = 0
    return settings


def test_deletes_only_rows_past_each_retention_when_enforced_twice(device, default_retention):
    now = timezone.now().replace(minute=0, second=0, microsecond=0)
    store(device, [(now - timedelta(minutes=1), 5.0)])  # a live series (its latest value names the series)
    metric = Metric.objects.get(name="temperature")
    raw_cut, minute_cut = now - timedelta(days=30), now - timedelta(days=365)
    old_rows(
        device,
        metric,
        raw=[raw_cut - timedelta(days=3), raw_cut - US, raw_cut, raw_cut + US],
        minutes=[minute_cut - timedelta(days=1), minute_cut - timedelta(minutes=1), minute_cut],
        hours=[now - timedelta(days=3650)],
    )

    assert retention_enforce(now=now) == {"raw": 2, "1m": 2}
    assert remaining(TelemetryReading, "ts", device) == [raw_cut, raw_cut + US, now - timedelta(minutes=1)]
    assert remaining(TelemetryRollup1m, "bucket", device) == [minute_cut]
    assert remaining(TelemetryRollup1h, "bucket", device) == [now - timedelta(days=3650)]
    assert retention_enforce(now=now) == {"raw": 0, "1m": 0}


def test_deletes_hour_rollups_when_their_retention_is_set(device, default_retention):
    default_retention.TELEMETRY_RETENTION_1H_DAYS = 400
    now = timezone.now().replace(minute=0, second=0, microsecond=0)
    store(device, [(now - timedelta(minutes=1), 5.0)])
    cutoff = now - timedelta(days=400)
    old_rows(device, Metric.objects.get(name="temperature"), hours=[cutoff - timedelta(hours=1), cutoff])

    assert retention_enforce(now=now)["1h"] == 1
    assert remaining(TelemetryRollup1h, "bucket", device) == [cutoff]
    assert retention_enforce(now=now)["1h"] == 0


def test_deletes_every_old_row_when_there_are_more_than_one_batch(device, default_retention):
    now = timezone.now().replace(minute=0, second=0, microsecond=0)
    store(device, [(now - timedelta(minutes=1), 5.0)])
    old = [now - timedelta(days=31, seconds=s) for s in range(7)]
    old_rows(device, Metric.objects.get(name="temperature"), raw=old)

    assert retention_enforce(now=now, batch=2)["raw"] == 7
    assert remaining(TelemetryReading, "ts", device) == [now - timedelta(minutes=1)]
