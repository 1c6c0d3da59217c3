"""OEE edge cases from the issue: midnight, DST, resets, states before the shift, gaps, planned stops, aggregation."""

from datetime import date, timedelta
from decimal import Decimal

import pytest

from analytics.selectors import Target, oee_compute
from analytics.services import ideal_cycle_time_set
from analytics.tests.factories import at, counts, make_shift, recent_day, store
from devices.tests.factories import make_device, make_line, make_plant

pytestmark = pytest.mark.django_db
TZ = "Europe/Berlin"
H = 3600


@pytest.fixture
def plant(db):
    return make_plant("OEE plant", time_zone=TZ)


def _oee(plant, devices, start, end, group_by="day"):
    return oee_compute(Target(plant, list(devices), "plant", plant.pk), start, end, group_by)


def test_night_shift_across_midnight_is_one_shift_and_splits_by_day(plant):
    make_shift(plant, "Night", "22:00", "06:00", breaks=[("02:00", "02:30")])
    day = recent_day(TZ, 3)
    device = make_device(make_line(plant))
    store(
        device,
        [
            (at(day, "22:00", TZ), "running", counts(0, 0)),
            (at(day, "23:30", TZ), None, counts(1000, 990)),
            (at(day, "06:00", TZ, days=1), "idle", counts(3000, 2950)),
        ],
    )
    start, end = at(day, "12:00", TZ), at(day, "12:00", TZ, days=1)
    by_shift = _oee(plant, [device], start, end, "shift")
    assert len(by_shift["periods"]) == 1
    shift = by_shift["periods"][0]
    assert shift["planned_seconds"] == 7.5 * H and shift["run_seconds"] == 7.5 * H
    assert (shift["total_count"], shift["good_count"]) == (3000, 2950)
    by_day = _oee(plant, [device], start, end, "day")
    first, second = by_day["periods"]
    assert (first["planned_seconds"], second["planned_seconds"]) == (2 * H, 5.5 * H)
    assert (first["total_count"], second["total_count"]) == (1000, 2000)
    same = ("planned_seconds", "run_seconds", "total_count", "good_count", "availability", "performance", "oee")
    assert {k: by_day["total"][k] for k in same} == {k: by_shift["total"][k] for k in same}


@pytest.mark.parametrize(("night", "hours"), [(date(2026, 3, 28), 7), (date(2026, 10, 24), 9)])
def test_night_shift_on_dst_change_lasts_what_the_clock_shows(plant, night, hours):
    """Europe/Berlin: clocks go 02:00→03:00 on 2026-03-29 and 03:00→02:00 on 2026-10-25."""
    make_shift(plant, "Night", "22:00", "06:00")
    device = make_device(make_line(plant), ideal_cycle_time=Decimal("10"))
    start, end = at(night, "22:00", TZ), at(night, "06:00", TZ, days=1)
    assert (end - start) == timedelta(hours=hours)
    store(device, [(start, "running", counts(0, 0)), (end, "idle", counts(hours * 360, hours * 360))])
    window = (at(night, "12:00", TZ), at(night, "12:00", TZ, days=1))
    result = _oee(plant, [device], *window, "shift")
    (period,) = result["periods"]
    assert period["planned_seconds"] == hours * H
    assert (period["availability"], period["performance"], period["oee"]) == (100.0, 100.0, 100.0)
    by_day = _oee(plant, [device], *window, "day")
    assert by_day["periods"][1]["calendar_seconds"] == (4 + hours) * H  # 00:00-12:00 is 11 or 13 hours
    assert by_day["total"]["planned_seconds"] == hours * H


def test_counter_reset_mid_shift_counts_from_zero(plant):
    make_shift(plant)
    day = recent_day(TZ)
    device = make_device(make_line(plant))
    store(
        device,
        [
            (at(day, "06:00", TZ), "running", counts(5000, 4900)),  # left over from yesterday
            (at(day, "09:00", TZ), None, counts(5600, 5480)),
            (at(day, "09:05", TZ), None, counts(40, 39)),  # the machine restarted: counters from zero
            (at(day, "14:00", TZ), None, counts(1040, 1019)),
        ],
    )
    total = _oee(plant, [device], at(day, "00:00", TZ), at(day, "00:00", TZ, days=1))["total"]
    assert (total["total_count"], total["good_count"]) == (600 + 40 + 1000, 580 + 39 + 980)


def test_state_that_began_before_the_shift_counts_from_shift_start(plant):
    make_shift(plant)
    day = recent_day(TZ)
    device = make_device(make_line(plant))
    store(device, [(at(day, "04:12", TZ), "running", None), (at(day, "13:00", TZ), "down", None)])
    total = _oee(plant, [device], at(day, "00:00", TZ), at(day, "00:00", TZ, days=1))["total"]
    assert (total["run_seconds"], total["stop_seconds"], total["data_gap_seconds"]) == (7 * H, H, 0)
    assert total["availability"] == 87.5


def test_no_data_is_offline_stop_time_reported_as_a_gap(plant):
    make_shift(plant)
    day = recent_day(TZ)
    device = make_device(make_line(plant))
    total = _oee(plant, [device], at(day, "00:00", TZ), at(day, "00:00", TZ, days=1))["total"]
    assert total["planned_seconds"] == 8 * H
    assert total["data_gap_seconds"] == total["stop_seconds"] == total["stop_seconds_by_state"]["offline"] == 8 * H
    assert (total["availability"], total["performance"], total["quality"], total["oee"]) == (0.0, None, None, 0.0)


def test_gap_until_the_first_state_of_a_new_machine(plant):
    make_shift(plant)
    day = recent_day(TZ)
    device = make_device(make_line(plant))
    store(device, [(at(day, "07:00", TZ), "running", None)])
    total = _oee(plant, [device], at(day, "00:00", TZ), at(day, "00:00", TZ, days=1))["total"]
    assert (total["data_gap_seconds"], total["run_seconds"]) == (H, 7 * H)


def test_idle_is_stop_time_but_planned_stop_is_not_planned_time(plant):
    make_shift(plant)
    day = recent_day(TZ)
    device = make_device(make_line(plant))
    store(
        device,
        [
            (at(day, "06:00", TZ), "running", None),
            (at(day, "08:00", TZ), "idle", None),
            (at(day, "08:30", TZ), "running", None),
            (at(day, "10:00", TZ), "planned_stop", None),
            (at(day, "10:30", TZ), "running", None),
        ],
    )
    total = _oee(plant, [device], at(day, "00:00", TZ), at(day, "00:00", TZ, days=1))["total"]
    assert total["planned_seconds"] == 7.5 * H and total["planned_stop_seconds"] == 0.5 * H
    assert total["stop_seconds_by_state"]["idle"] == 0.5 * H and total["run_seconds"] == 7 * H
    assert total["availability"] == 93.33  # 7 / 7.5


def test_two_machines_with_different_cycle_times_aggregate_from_sums(plant):
    """Hand computation. Press: ICT 2 s, runs 8 h, 12,000 pieces (11,400 good). Lathe: ICT 30 s,
    runs 6 of 8 h, 600 pieces (597 good). Planned 16 h = 57,600 s, run 50,400 s,
    ideal 24,000 + 18,000 = 42,000 s, total 12,600, good 11,997.
    A = 50,400/57,600 = 87.50 %; P = 42,000/50,400 = 83.333… %; Q = 11,997/12,600 = 95.214… %;
    OEE = 0.875 × 0.8333… × 0.95214… = 69.4270… % → 69.43 (averaging the machines' OEEs,
    (78.375 % + 55.96875 %)/2 = 67.17 %, would be wrong).
    """
    make_shift(plant)
    day = recent_day(TZ)
    line = make_line(plant)
    press = make_device(line, ideal_cycle_time=Decimal("2"))
    lathe = make_device(line, ideal_cycle_time=Decimal("30"))
    store(
        press, [(at(day, "06:00", TZ), "running", counts(0, 0)), (at(day, "14:00", TZ), "idle", counts(12000, 11400))]
    )
    store(
        lathe,
        [
            (at(day, "06:00", TZ), "running", counts(0, 0)),
            (at(day, "10:00", TZ), "down", None),
            (at(day, "12:00", TZ), "running", None),
            (at(day, "14:00", TZ), "idle", counts(600, 597)),
        ],
    )
    result = _oee(plant, [press, lathe], at(day, "00:00", TZ), at(day, "00:00", TZ, days=1))
    total = result["total"]
    assert (total["planned_seconds"], total["run_seconds"], total["ideal_seconds"]) == (57600, 50400, 42000)
    assert (total["availability"], total["performance"], total["quality"], total["oee"]) == (87.5, 83.33, 95.21, 69.43)
    assert result["periods"][0]["oee"] == 69.43


def test_changing_the_ideal_cycle_time_does_not_rewrite_past_results(plant):
    make_shift(plant)
    day = recent_day(TZ)
    device = make_device(make_line(plant), ideal_cycle_time=Decimal("2"))
    store(
        device,
        [
            (at(day, "06:00", TZ), "running", counts(0, 0)),
            (at(day, "10:00", TZ), None, counts(7200, 7200)),
            (at(day, "14:00", TZ), "idle", counts(10800, 10800)),
        ],
    )
    span = (at(day, "00:00", TZ), at(day, "00:00", TZ, days=1))
    before = _oee(plant, [device], *span)["total"]
    assert before["performance"] == 75.0  # (10,800 × 2 s) / 8 h
    ideal_cycle_time_set(device=device, seconds=Decimal("4"), valid_from=at(day, "10:00", TZ))
    after = _oee(plant, [device], *span)["total"]
    # Pieces up to 10:00 keep 2 s, the 3,600 after it weigh 4 s: (7,200 × 2 + 3,600 × 4) / 28,800.
    assert after["performance"] == 100.0
    assert after["ideal_seconds"] == 28800


def test_minor_stops_and_down_episodes_feed_losses_mtbf_and_mttr(plant, settings):
    settings.OEE_MINOR_STOP_SECONDS = 300
    make_shift(plant)
    day = recent_day(TZ)
    device = make_device(make_line(plant), ideal_cycle_time=Decimal("1"))
    store(
        device,
        [
            (at(day, "06:00", TZ), "running", counts(0, 0)),
            (at(day, "07:00", TZ), "down", None),  # 2 min: a minor stop
            (at(day, "07:02", TZ), "running", None),
            (at(day, "09:00", TZ), "down", None),  # 58 min: equipment failure
            (at(day, "09:58", TZ), "running", None),
            (at(day, "11:00", TZ), "setup", None),
            (at(day, "11:20", TZ), "running", None),
            (at(day, "14:00", TZ), "idle", counts(20000, 19000)),
        ],
    )
    total = _oee(plant, [device], at(day, "00:00", TZ), at(day, "00:00", TZ, days=1))["total"]
    losses = total["losses"]
    assert losses["idling_minor_stops"]["seconds"] == 120
    assert losses["equipment_failure"]["seconds"] == 58 * 60
    assert losses["setup_adjustment"]["seconds"] == 20 * 60
    assert losses["reduced_speed"]["seconds"] == total["run_seconds"] - 20000
    assert losses["process_defects"]["seconds"] == 1000
    assert total["down_episodes"] == 2 and total["mttr_seconds"] == 30 * 60
    assert total["mtbf_seconds"] == total["run_seconds"] / 2
    points = sum(v["points"] for v in losses.values())
    assert abs(points + total["oee"] - 100) < 0.05  # the losses and OEE make up planned time
