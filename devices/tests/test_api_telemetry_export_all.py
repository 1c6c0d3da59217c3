"""The device page's export: every metric of a device in one CSV, rows equal to the history API's."""

import csv
import io
from datetime import UTC, timedelta

import pytest
from asgiref.sync import async_to_sync
from django.test import AsyncClient
from django.utils import timezone

from conftest import assert_status
from devices.models import TelemetryReading
from devices.services.ingest import IngestItem, telemetry_store
from devices.services.rollups import rollups_refresh
from devices.services.telemetry_payload import Message
from devices.tests.factories import make_device, make_line

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("private_cache")]


@pytest.fixture
def day_end():
    return timezone.now().astimezone(UTC).replace(second=0, microsecond=0)


@pytest.fixture
def press(plant_a, day_end):
    """A day of readings: temperature every 10 minutes, vibration every 30, pressure once (before the day)."""
    device = make_device(line=make_line(plant_a), uid="press-07")
    start = day_end - timedelta(hours=24)
    messages = [
        Message(ts=start + timedelta(minutes=m), values={"temperature": 60 + m / 100}, state=None)
        for m in range(0, 24 * 60, 10)
    ]
    messages += [
        Message(ts=start + timedelta(minutes=m, seconds=5), values={"vibration": m / 1000}, state=None)
        for m in range(0, 24 * 60, 30)
    ]
    messages.append(Message(ts=start - timedelta(hours=1), values={"pressure": 4.0}, state=None))
    telemetry_store([IngestItem(device=device, messages=messages)], received_at=day_end)
    rollups_refresh()
    return device


def iso(ts) -> str:
    return ts.astimezone(UTC).isoformat().replace("+00:00", "Z")


def rows_of(content: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(content.decode())))


def streamed(response) -> bytes:
    return b"".join(response.streaming_content)


@pytest.mark.parametrize("bucket", ["raw", "1h"])
def test_exports_every_metric_with_the_rows_the_history_api_returns(client_for, viewer, press, day_end, bucket):
    client = client_for(viewer)
    query = {"start": iso(day_end - timedelta(hours=24)), "end": iso(day_end), "bucket": bucket}
    response = assert_status(client.get(f"/api/v1/devices/{press.pk}/telemetry.csv", query), 200)
    assert response["Content-Disposition"].startswith(f'attachment; filename="press-07_all_{bucket}_')
    rows = rows_of(streamed(response))
    fields = ["value"] if bucket == "raw" else ["min", "max", "avg", "count", "last"]
    assert rows[0] == ["ts", "metric", *fields]
    expected = []
    for metric in ("pressure", "temperature", "vibration"):
        body = assert_status(client.get(f"/api/v1/devices/{press.pk}/telemetry/", {**query, "metric": metric}), 200)
        expected += [[p["ts"], metric, *(str(p[f]) for f in fields)] for p in body.json()["points"]]
    assert rows[1:] == expected
    if bucket == "raw":
        assert len(rows) - 1 == 144 + 48, "a day of temperature and vibration, no pressure in range"


def test_exports_a_days_raw_readings_chunk_by_chunk_over_asgi(viewer, press, day_end, settings):
    client = AsyncClient()
    client.force_login(viewer)
    query = {"start": iso(day_end - timedelta(hours=24)), "end": iso(day_end), "bucket": "raw"}

    async def fetch():
        response = await client.get(f"/api/v1/devices/{press.pk}/telemetry.csv", query)
        return response, [part async for part in response.streaming_content]

    response, parts = async_to_sync(fetch)()
    assert response.status_code == 200 and response.is_async
    rows = rows_of(b"".join(parts))
    assert len(rows) - 1 == TelemetryReading.objects.filter(device=press, ts__gte=day_end - timedelta(hours=24)).count()


def test_asks_for_a_metric_when_json_history_is_asked_without_one(client_for, viewer, press):
    response = assert_status(client_for(viewer).get(f"/api/v1/devices/{press.pk}/telemetry/"), 400)
    assert response.json()["errors"]["metric"] == [
        "Name a metric (e.g. ?metric=temperature), or export every metric as CSV (telemetry.csv)."
    ]


def test_exports_only_a_header_for_a_device_without_readings(client_for, viewer, plant_a):
    quiet = make_device(line=make_line(plant_a), uid="quiet-01")
    response = assert_status(client_for(viewer).get(f"/api/v1/devices/{quiet.pk}/telemetry.csv"), 200)
    assert rows_of(streamed(response)) == [["ts", "metric", "min", "max", "avg", "count", "last"]]


def test_answers_404_to_an_export_of_another_plants_device(client_for, outsider, viewer, press):
    for user in (outsider,):
        assert_status(client_for(user).get(f"/api/v1/devices/{press.pk}/telemetry.csv"), 404)
    assert_status(client_for(viewer).get(f"/api/v1/devices/{press.pk}/telemetry.csv"), 200)


def test_refuses_an_export_of_too_many_buckets_before_streaming(client_for, viewer, press, day_end):
    query = {"start": "1971-01-01T00:00:00Z", "end": iso(day_end), "bucket": "1m"}
    response = assert_status(client_for(viewer).get(f"/api/v1/devices/{press.pk}/telemetry.csv", query), 400)
    assert "use a coarser bucket" in response.json()["errors"]["bucket"][0]
