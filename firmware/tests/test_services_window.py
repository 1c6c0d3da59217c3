"""Maintenance windows: outside the plant's window a running rollout notifies nobody new."""

from datetime import UTC, datetime, time

import pytest

from firmware.models import MaintenanceWindow
from firmware.services.rollouts import rollout_advance, rollout_start
from firmware.tests.factories import make_fleet, make_image, make_rollout

pytestmark = pytest.mark.django_db


def at(hour: int, minute: int = 0, day: int = 27) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC)  # 2026-11-27 is a Friday (weekday 4)


@pytest.mark.parametrize(
    "start, end, weekdays, moment, expected",
    [
        (time(22), time(4), [], at(20, 59), False),  # plant A is Europe/Berlin (UTC+1): 21:59 local
        (time(22), time(4), [], at(21), True),  # 22:00 local
        (time(22), time(4), [], at(2, 59), True),  # 03:59 local, after midnight
        (time(22), time(4), [], at(3), False),  # 04:00 local
        (time(22), time(4), [3], at(1, day=27), True),  # Friday 02:00 belongs to Thursday's window
        (time(22), time(4), [4], at(1, day=27), False),
        (time(8), time(9), [4], at(7, 30), True),  # Friday 08:30 local
        (time(8), time(9), [0], at(7, 30), False),
    ],
)
def test_window_is_open_in_plant_local_time(plant_a, start, end, weekdays, moment, expected):
    window = MaintenanceWindow(plant=plant_a, start=start, end=end, weekdays=weekdays)
    assert window.is_open(moment) is expected


def test_rollout_waits_for_the_window(plant_a, on_commit, clock):
    make_fleet(plant_a, 2)
    MaintenanceWindow.objects.create(plant=plant_a, start=time(22), end=time(4))
    clock.move_to(at(12))
    rollout = make_rollout(plant_a, make_image(plant_a, "2.0.0"))
    on_commit(rollout_start, rollout=rollout)
    assert set(rollout.targets.values_list("status", flat=True)) == {"queued"}
    assert on_commit(rollout_advance, rollout_id=rollout.pk, now=at(20, 59)) == "outside_window"
    assert on_commit(rollout_advance, rollout_id=rollout.pk, now=at(21, 0)) == "waiting"
    assert set(rollout.targets.values_list("status", flat=True)) == {"notified"}
