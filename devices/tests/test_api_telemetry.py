"""History API, its CSV export and latest values: scoped like every device read (outsider 404), read-only."""

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
from asgiref.sync import async_to_sync
from django.core.cache import cache
from django.db import connection
from django.test import AsyncClient
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from conftest import assert_status
from devices.models import Metric, TelemetryReading
from devices.services.ingest import IngestItem, telemetry_store
from devices.services.rollups import rollups_refresh
from devices.services.telemetry_payload import Message
from devices.tests.factories import make_device, make_line

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("private_cache")]

BUCKET_KEYS = {"ts", "min", "max", "avg", "count", "last"}


@pytest.fixture
def hour():
    """The start of an hour that ended 2 to 3 hours ago (inside every retention window)."""
    return timezone.now().astimezone(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=3)


@pytest.fixture
def press(plant_a, hour):
    device = make_device(line=make_line(plant_a), uid="press-07")
    messages = [
        Message(ts=hour + timedelta(minutes=m, seconds=30), values={"temperature": float(m)}, state=None)
        for m in range(60)
    ]
    messages.append(Message(ts=hour + timedelta(minutes=61), values={"vibration": 0.5}, state="running"))
    telemetry_store([IngestItem(device=device, messages=messages)], received_at=hour + timedelta(minutes=61))
    rollups_refresh()
    device.refresh_from_db()
    return device


@pytest.fixture
def foreign(plant_b):
    return make_device(line=make_line(plant_b), uid="foreign-01")


def history_url(device, suffix="/"):
    return f"/api/v1/devices/{device.pk}/telemetry{suffix}"


def iso(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat().replace("+00:00", "Z")


def test_returns_raw_points_when_viewer_asks_for_bucket_raw(client_for, viewer, press, hour):
    query = {"metric": "temperature", "bucket": "raw", "start": iso(hour), "end": iso(hour + timedelta(minutes=3))}
    body = assert_status(client_for(viewer).get(history_url(press), query), 200).json()
    assert body == {
        "metric": "temperature",
        "bucket": "raw",
        "start": iso(hour),
        "end": iso(hour + timedelta(minutes=3)),
        "points": [{"ts": iso(hour + timedelta(minutes=m, seconds=30)), "value": float(m)} for m in range(3)],
    }


def test_reports_the_chosen_bucket_when_bucket_is_auto_or_absent(client_for, viewer, press, hour):
    client = client_for(viewer)
    default = assert_status(client.get(history_url(press), {"metric": "temperature"}), 200).json()
    assert default["bucket"] == "1m"  # the default range, 24 h, fits in 1,440 one-minute buckets
    assert len(default["points"]) == 60
    seventh = {"ts": iso(hour + timedelta(minutes=7)), "min": 7.0, "max": 7.0, "avg": 7.0, "count": 1, "last": 7.0}
    assert default["points"][7] == seventh
    week = {"metric": "temperature", "bucket": "auto", "start": iso(hour - timedelta(days=6)), "end": iso(hour)}
    assert assert_status(client.get(history_url(press), week), 200).json()["bucket"] == "1h"


@pytest.mark.parametrize(
    ("bucket", "points"),
    [
        ("5m", [(5 * i, 5 * i + 4, 5 * i + 2.0, 5) for i in range(12)]),
        ("1h", [(0, 59, 29.5, 60)]),
    ],
)
def test_aggregates_rollups_when_viewer_asks_for_a_bucket(client_for, viewer, press, hour, bucket, points):
    query = {"metric": "temperature", "bucket": bucket, "start": iso(hour), "end": iso(hour + timedelta(hours=1))}
    body = assert_status(client_for(viewer).get(history_url(press), query), 200).json()
    assert body["bucket"] == bucket
    assert all(set(point) == BUCKET_KEYS for point in body["points"])
    assert [(p["min"], p["max"], p["avg"], p["count"], p["last"]) for p in body["points"]] == [
        (mn, mx, avg, count, mx) for mn, mx, avg, count in points
    ]


def test_returns_plant_local_days_when_bucket_is_1d(client_for, viewer, press, hour):
    end = hour + timedelta(hours=2)
    query = {"metric": "temperature", "bucket": "1d", "start": iso(hour - timedelta(days=2)), "end": iso(end)}
    body = assert_status(client_for(viewer).get(history_url(press), query), 200).json()
    local = (hour + timedelta(minutes=30)).astimezone(press.plant.tz)
    midnight = datetime.combine(local.date(), datetime.min.time(), tzinfo=press.plant.tz)
    assert midnight.isoformat().endswith("+01:00")  # Berlin in winter: the day starts at 23:00 UTC
    assert [(p["ts"], p["count"]) for p in body["points"]] == [(midnight.isoformat(), 60)]


def test_reads_timestamps_without_offset_in_the_plant_time_zone(client_for, viewer, press, hour):
    local = hour.astimezone(press.plant.tz)
    naive = local.replace(tzinfo=None).isoformat()
    end = (local + timedelta(minutes=2)).isoformat().replace("+", " ")  # as a "+" left unencoded arrives
    query = {"metric": "temperature", "bucket": "raw", "start": naive, "end": end}
    body = assert_status(client_for(viewer).get(history_url(press), query), 200).json()
    assert (body["start"], body["end"]) == (iso(hour), iso(hour + timedelta(minutes=2)))
    assert [p["value"] for p in body["points"]] == [0.0, 1.0]


BAD_QUERIES = [
    ({}, "metric"),
    ({"metric": "Temperature!"}, "metric"),
    ({"metric": "pressure"}, "metric"),
    ({"metric": "temperature", "start": "yesterday"}, "start"),
    ({"metric": "temperature", "start": "0001-01-01T00:00:00"}, "start"),
    ({"metric": "temperature", "end": "2026-13-40T00:00:00Z"}, "end"),
    ({"metric": "temperature", "start": "2026-11-02T00:00:00Z", "end": "2026-11-01T00:00:00Z"}, "end"),
    ({"metric": "temperature", "start": "2026-11-01T00:00:00Z", "end": "2026-11-01T00:00:00Z"}, "end"),
    ({"metric": "temperature", "bucket": "2m"}, "bucket"),
    ({"metric": "temperature", "bucket": "1m", "start": "2025-01-01T00:00:00Z"}, "bucket"),
]


# A CSV export without a metric is not bad: it has every metric (test_api_telemetry_export_all.py).
@pytest.mark.parametrize(
    ("query", "field", "suffix"),
    [(query, field, suffix) for query, field in BAD_QUERIES for suffix in ("/", ".csv") if query or suffix == "/"],
)
def test_answers_400_naming_the_parameter_when_the_query_is_bad(client_for, viewer, press, query, field, suffix):
    response = assert_status(client_for(viewer).get(history_url(press, suffix), query), 400)
    assert response["Content-Type"] == "application/json"
    assert list(response.json()["errors"]) == [field]
    assert field in response.json()["detail"]


def test_names_the_reported_metrics_when_the_metric_is_unknown(client_for, viewer, press):
    body = assert_status(client_for(viewer).get(history_url(press), {"metric": "pressure"}), 400).json()
    assert body["errors"]["metric"] == ["Device press-07 has no metric 'pressure'; it reports: temperature, vibration."]


def test_answers_400_on_bucket_when_a_range_holds_too_many_raw_points(client_for, viewer, press, hour):
    metric = Metric.objects.get(name="temperature")
    start = hour - timedelta(hours=12)
    TelemetryReading.objects.bulk_create(
        TelemetryReading(device=press, metric=metric, ts=start + timedelta(seconds=s), value=1.0) for s in range(20001)
    )
    query = {"metric": "temperature", "bucket": "raw", "start": iso(start), "end": iso(hour)}
    body = assert_status(client_for(viewer).get(history_url(press), query), 400).json()
    assert "More than 20000 raw points" in body["errors"]["bucket"][0]
    exported = client_for(viewer).get(history_url(press, ".csv"), query)
    assert len(b"".join(assert_streamed(exported, 200).streaming_content).splitlines()) == 20002


def endpoints(device, plant):
    return [
        history_url(device) + "?metric=temperature",
        history_url(device, ".csv") + "?metric=temperature",
        f"/api/v1/devices/{device.pk}/latest/",
        f"/api/v1/plants/{plant.pk}/latest/",
    ]


@pytest.mark.parametrize("index", range(4))
def test_answers_404_when_the_device_or_plant_is_not_visible(client_for, outsider, viewer, press, foreign, index):
    assert_status(client_for(outsider).get(endpoints(press, press.plant)[index]), 404)
    assert_status(client_for(viewer).get(endpoints(foreign, foreign.plant)[index]), 404)
    assert_status(client_for(None).get(endpoints(press, press.plant)[index]), 401)


@pytest.mark.parametrize("index", range(4))
def test_answers_200_when_a_member_or_superuser_reads(client_for, viewer, operator, superuser, press, index):
    for user in (viewer, operator, superuser):
        assert_streamed(client_for(user).get(endpoints(press, press.plant)[index]), 200)


def assert_streamed(response, expected: int):
    """``assert_status`` for streamed responses (they have no ``content`` to show)."""
    assert response.status_code == expected, f"expected {expected}, got {response.status_code}"
    return response


def csv_rows(response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


@pytest.mark.parametrize(
    ("suffix", "extra", "headers"),
    [(".csv", {}, {}), ("/", {"format": "csv"}, {}), ("/", {}, {"HTTP_ACCEPT": "text/csv"})],
)
def test_streams_the_same_points_as_csv_when_csv_is_asked_for(client_for, viewer, press, hour, suffix, extra, headers):
    client = client_for(viewer)
    query = {"metric": "temperature", "bucket": "5m", "start": iso(hour), "end": iso(hour + timedelta(hours=1))}
    points = assert_status(client.get(history_url(press), query), 200).json()["points"]

    response = assert_streamed(client.get(history_url(press, suffix), {**query, **extra}, **headers), 200)
    assert response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert (
        response["Content-Disposition"] == f'attachment; filename="press-07_temperature_5m_{hour:%Y%m%dT%H%M%SZ}.csv"'
    )
    rows = csv_rows(response)
    assert rows[0] == ["ts", "min", "max", "avg", "count", "last"]
    assert rows[1:] == [[p["ts"], *(str(p[k]) for k in ("min", "max", "avg", "count", "last"))] for p in points]


def test_streams_raw_points_as_ts_value_rows_when_bucket_is_raw(client_for, viewer, press, hour):
    query = {"metric": "temperature", "bucket": "raw", "start": iso(hour), "end": iso(hour + timedelta(minutes=2))}
    rows = csv_rows(assert_streamed(client_for(viewer).get(history_url(press, ".csv"), query), 200))
    assert rows == [
        ["ts", "value"],
        [iso(hour + timedelta(seconds=30)), "0.0"],
        [iso(hour + timedelta(seconds=90)), "1.0"],
    ]


def test_streams_csv_chunk_by_chunk_when_served_over_asgi(viewer, press, hour):
    client = AsyncClient()
    client.force_login(viewer)
    query = {"metric": "temperature", "bucket": "raw", "start": iso(hour), "end": iso(hour + timedelta(hours=1))}

    async def fetch():
        response = await client.get(history_url(press, ".csv"), query)
        return response, [part async for part in response.streaming_content]

    response, parts = async_to_sync(fetch)()
    assert_streamed(response, 200)
    assert response.is_async
    rows = list(csv.reader(io.StringIO(b"".join(parts).decode())))
    assert rows[0] == ["ts", "value"]
    assert [float(value) for _, value in rows[1:]] == [float(m) for m in range(60)]


def latest_of(device, values, online=True, state="running") -> dict:
    return {
        "device": device.pk,
        "uid": device.uid,
        "state": state,
        "state_since": iso(device.state_since) if device.state_since else None,
        "online": online,
        "last_seen_at": iso(device.last_seen_at) if device.last_seen_at else None,
        "values": values,
    }


def test_returns_state_and_newest_value_per_metric_when_viewer_asks_for_device_latest(
    client_for, viewer, press, hour, settings
):
    settings.DEVICE_EXPECTED_INTERVAL = 60
    body = assert_status(client_for(viewer).get(f"/api/v1/devices/{press.pk}/latest/"), 200).json()
    assert body == latest_of(
        press,
        {
            "temperature": {"ts": iso(hour + timedelta(minutes=59, seconds=30)), "value": 59.0},
            "vibration": {"ts": iso(hour + timedelta(minutes=61)), "value": 0.5},
        },
        online=False,  # last heard two hours ago, more than three expected intervals
    )


def test_lists_every_device_of_the_plant_when_viewer_asks_for_plant_latest(client_for, viewer, press, foreign):
    quiet = make_device(line=press.line, uid="sensor-01", kind="sensor")
    body = assert_status(client_for(viewer).get(f"/api/v1/plants/{press.plant_id}/latest/"), 200).json()
    assert body["plant"] == press.plant_id
    assert [d["uid"] for d in body["devices"]] == ["press-07", "sensor-01"]
    assert body["devices"][1] == latest_of(quiet, {}, online=False, state="")
    assert set(body["devices"][0]["values"]) == {"temperature", "vibration"}


def add_reporting_devices(plant, count: int):
    line = make_line(plant)
    for _ in range(count):
        device = make_device(line=line)
        message = Message(ts=timezone.now(), values={"temperature": 1.0, "vibration": 2.0}, state="idle")
        telemetry_store([IngestItem(device=device, messages=[message])], received_at=timezone.now())


def test_reads_plant_latest_in_constant_queries_when_the_plant_grows(
    client_for, viewer, press, django_assert_max_num_queries
):
    client = client_for(viewer)
    url = f"/api/v1/plants/{press.plant_id}/latest/"
    counts = []
    for more in (0, 10):
        add_reporting_devices(press.plant, more)
        cache.clear()
        with CaptureQueriesContext(connection) as queries:
            devices = assert_status(client.get(url), 200).json()["devices"]
        counts.append(len(queries))
        assert len(devices) == 1 + more
    assert counts[0] == counts[1]
    with django_assert_max_num_queries(8):
        assert_status(client.get(url), 200)


@pytest.mark.parametrize("bucket", ["raw", "1m", "5m", "1h", "1d"])
def test_reads_history_in_few_queries_when_viewer_asks(
    client_for, viewer, press, bucket, django_assert_max_num_queries
):
    client = client_for(viewer)
    with django_assert_max_num_queries(8):
        assert_status(client.get(history_url(press), {"metric": "temperature", "bucket": bucket}), 200)
    with django_assert_max_num_queries(8):
        assert_status(client.get(f"/api/v1/devices/{press.pk}/latest/"), 200)
