"""Scoring a stream through the service: state persisted in the database and continued from it."""

from datetime import UTC, datetime

import pytest

from anomaly.detectors import StreamDetector
from anomaly.models import DetectorState
from anomaly.services import stream_reset, stream_score
from anomaly.tests.simulated import vibration_week
from devices.models import Metric
from devices.tests.factories import make_device, make_plant

pytestmark = pytest.mark.django_db

DAY = 24 * 60


@pytest.fixture
def stream():
    device = make_device(plant=make_plant(time_zone="UTC"), line=None)
    metric = Metric.objects.create(name="vibration_rms")
    return {"device_id": device.pk, "metric_id": metric.pk}


def as_readings(week):
    return [(datetime.fromtimestamp(epoch, UTC), value) for epoch, value in week]


def test_continues_from_the_saved_state_with_the_scores_of_one_uninterrupted_run(stream):
    readings = as_readings(vibration_week(spike_at=3 * DAY))
    detector = StreamDetector()
    expected = [detector.score(ts.timestamp(), value) for ts, value in readings]

    got = []
    for start in range(0, len(readings), 500):  # a worker per batch, each loading the saved state
        got += [score for _, _, score in stream_score(**stream, readings=readings[start : start + 500])]

    assert got == expected
    row = DetectorState.objects.get(**stream)
    assert row.readings_seen == len(readings)
    assert row.last_reading_at == readings[-1][0]
    assert bytes(row.state) == detector.to_bytes()


def test_scores_a_batch_in_time_order_whatever_order_it_arrives_in(stream):
    readings = as_readings(vibration_week())[: 2 * DAY]
    in_order = stream_score(**stream, readings=readings[:DAY])
    stream_reset(**stream)

    shuffled = readings[:DAY][::-1]
    assert stream_score(**stream, readings=shuffled) == in_order


def test_a_retried_batch_scores_nothing_twice_and_leaves_the_state_alone(stream):
    readings = as_readings(vibration_week())[:DAY]
    stream_score(**stream, readings=readings)
    saved = DetectorState.objects.get(**stream)

    assert stream_score(**stream, readings=readings) == []
    again = DetectorState.objects.get(**stream)
    assert (bytes(again.state), again.readings_seen) == (bytes(saved.state), DAY)


def test_reset_starts_the_stream_over_in_probation(stream):
    readings = as_readings(vibration_week())
    stream_score(**stream, readings=readings[: 2 * DAY])
    stream_reset(**stream)

    assert not DetectorState.objects.filter(**stream).exists()
    first_after_repair = stream_score(**stream, readings=readings[2 * DAY : 2 * DAY + 10])
    assert [score for _, _, score in first_after_repair][0] == 0.0
    assert DetectorState.objects.get(**stream).readings_seen == 10


def test_daily_pattern_follows_the_plant_clock(stream):
    # The same wall-clock week in Berlin: the service scores it as the detector scores local time.
    berlin = make_device(plant=make_plant(time_zone="Europe/Berlin"), line=None)
    readings = as_readings(vibration_week())[:DAY]
    detector = StreamDetector()
    expected = [detector.score(ts.timestamp() + 3600, value) for ts, value in readings]  # CET in January

    got = stream_score(device_id=berlin.pk, metric_id=stream["metric_id"], readings=readings)

    assert [score for _, _, score in got] == expected
