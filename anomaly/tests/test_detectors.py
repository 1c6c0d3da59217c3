"""The stream detector: reproducible from its saved state, small, quiet while it learns, and
quick to flag a step, a spike or a drift in a machine's vibration that it stays quiet on without
them."""

import pytest

from anomaly.detectors import StreamDetector
from anomaly.tests.simulated import START, vibration_week

DAY = 24 * 60  # readings a day, one a minute
INJECTED_AT = 3 * DAY + 10 * 60  # Thursday 10:00, mid-shift, the detector has seen three days


def scores(readings, detector=None):
    detector = detector or StreamDetector()
    return [detector.score(epoch, value) for epoch, value in readings]


def test_resumed_detector_scores_exactly_like_an_uninterrupted_one():
    readings = vibration_week(spike_at=INJECTED_AT)
    uninterrupted = scores(readings)

    resumed = []
    detector = StreamDetector()
    for index, (epoch, value) in enumerate(readings):
        if index % 97 == 0:  # another worker picks the stream up from its saved state
            detector = StreamDetector.from_bytes(detector.to_bytes())
        resumed.append(detector.score(epoch, value))

    assert resumed == uninterrupted
    assert max(uninterrupted) > 0  # the comparison covers real scores, not only zeros


def test_state_is_at_most_ten_kib_and_does_not_grow_with_the_stream():
    detector = StreamDetector()
    sizes = []
    for index, (epoch, value) in enumerate(vibration_week(drift_from=INJECTED_AT)):
        detector.score(epoch, value)
        if index in (0, DAY, 7 * DAY - 1):
            sizes.append(len(detector.to_bytes()))

    assert sizes[-1] <= 10 * 1024
    assert sizes == [sizes[0]] * 3


def test_refuses_a_state_blob_that_is_not_its_own():
    with pytest.raises(ValueError):
        StreamDetector.from_bytes(b"\x00\x01not a detector state")


def test_no_reading_scores_high_during_probation():
    # The wildest stream there is: every reading jumps between extremes, with spikes on top.
    wild = [(START.timestamp() + 60 * index, (-1) ** index * 1000.0 * (1 + index % 7)) for index in range(3 * DAY)]
    early = scores(wild)[: StreamDetector.probation]

    assert max(early) < StreamDetector.alarm_level


def test_probation_lasts_at_least_a_day_of_readings():
    # Readings a second apart: the count of probation readings comes long before a day has passed.
    fast = [(START.timestamp() + index, 5.0 + (index % 2) * 500.0 * (index > 2000)) for index in range(4000)]

    assert max(scores(fast)) < StreamDetector.alarm_level


def test_stays_below_the_alarm_level_for_a_normal_week_of_shifts():
    week = scores(vibration_week())

    assert max(week) < StreamDetector.alarm_level


@pytest.mark.parametrize(
    ("fault", "within_readings"),
    [
        ({"step_at": INJECTED_AT}, 5),  # a loosened mount: the level jumps and stays
        ({"spike_at": INJECTED_AT}, 1),  # a knock: one reading
        ({"drift_from": INJECTED_AT}, DAY),  # a wearing bearing: a slow climb
    ],
)
def test_flags_an_injected_fault_within_a_bounded_delay(fault, within_readings):
    clean = scores(vibration_week())
    faulty = scores(vibration_week(**fault))

    alarms = [index for index, score in enumerate(faulty) if score >= StreamDetector.alarm_level]
    assert alarms, f"no alarm for {fault}"
    assert INJECTED_AT <= alarms[0] < INJECTED_AT + within_readings
    assert faulty[:INJECTED_AT] == clean[:INJECTED_AT]  # nothing before the fault differs
