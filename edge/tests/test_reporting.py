"""Scaling, state mapping and report by exception: what the platform gets for what the PLC holds."""

from datetime import UTC, datetime

import pytest

from edge.config import Tag
from edge.reporting import MappingError, Reporter, convert, messages

TEMPERATURE = Tag("press-01", "plc", metric="temperature", scale=0.1, offset=-40, deadband=0.5, max_interval=10)
COUNTER = Tag("press-01", "plc", metric="count_total", scale=1.0)
ENUM_STATE = Tag("press-01", "plc", states=((1, "running"), (3, "down")))
BIT_STATE = Tag("press-01", "plc", bits=(("down", 1), ("running", 0)), default_state="idle")


def test_scales_and_offsets_a_metric():
    assert convert(TEMPERATURE, 650) == pytest.approx(25.0)


def test_counters_are_whole_numbers_and_booleans_count_as_0_or_1():
    assert convert(COUNTER, 1043.0) == 1043 and isinstance(convert(COUNTER, 1043.0), int)
    assert convert(Tag("d", "plc", metric="door_open"), True) == 1


def test_refuses_a_negative_counter_and_a_nan():
    with pytest.raises(MappingError, match="cannot be negative"):
        convert(COUNTER, -1)
    with pytest.raises(MappingError, match="not a finite number"):
        convert(TEMPERATURE, float("nan"))


def test_maps_an_enumeration_to_a_state_and_refuses_an_unknown_value_without_default():
    assert convert(ENUM_STATE, 3) == "down"
    with pytest.raises(MappingError, match="maps to no state"):
        convert(ENUM_STATE, 7)


def test_maps_bits_to_the_first_listed_state_set_and_to_the_default_when_none_is():
    assert convert(BIT_STATE, 0b11) == "down"  # down is listed first: it wins over running
    assert convert(BIT_STATE, 0b01) == "running"
    assert convert(BIT_STATE, 0) == "idle"


def test_reports_a_value_only_when_it_moves_past_the_deadband():
    reporter = Reporter()
    sent = [value for value in (20.0, 20.3, 20.5, 20.6, 19.9, 19.9) if reporter.changed(TEMPERATURE, value, now=0)]
    assert sent == [20.0, 20.6, 19.9]  # 20.3 and 20.5 are within 0.5 of 20.0; 19.9 again is no change


def test_reports_every_counter_step_and_state_change():
    reporter = Reporter()
    assert [v for v in (1, 1, 2, 3, 3) if reporter.changed(COUNTER, v, now=0)] == [1, 2, 3]
    assert [s for s in ("idle", "idle", "running") if reporter.changed(ENUM_STATE, s, now=0)] == ["idle", "running"]


def test_repeats_an_unchanged_value_after_max_interval():
    reporter = Reporter()
    reporter.changed(TEMPERATURE, 20.0, now=100)
    assert not reporter.changed(TEMPERATURE, 20.1, now=105)
    assert reporter.heartbeats(now=109) == []
    assert reporter.heartbeats(now=110) == [(TEMPERATURE, 20.1)]  # the latest value, not the last sent
    assert reporter.heartbeats(now=111) == []


def test_reports_again_after_a_reconnect():
    reporter = Reporter()
    reporter.changed(COUNTER, 5, now=0)
    reporter.forget([COUNTER])
    assert reporter.changed(COUNTER, 5, now=1)


def test_groups_values_of_one_device_and_time_into_one_message():
    at = datetime(2026, 12, 6, 5, 0, 0, 123456, tzinfo=UTC)
    later = datetime(2026, 12, 6, 5, 0, 1, tzinfo=UTC)
    grouped = messages([(TEMPERATURE, 25.0, at), (COUNTER, 7, at), (ENUM_STATE, "running", at), (COUNTER, 8, later)])
    assert grouped == [
        ("press-01", {"ts": "2026-12-06T05:00:00.123456Z", "values": {"temperature": 25.0, "count_total": 7},
                      "state": "running"}),
        ("press-01", {"ts": "2026-12-06T05:00:01.000000Z", "values": {"count_total": 8}}),
    ]  # fmt: skip


def test_a_scaled_value_carries_no_binary_rounding_noise():
    assert convert(Tag("d", "plc", metric="temperature", scale=0.1), 302) == 30.2
