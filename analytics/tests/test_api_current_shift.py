"""The shift running now and the next one (the overview's header): ``shift_current``/``shift_next``
and ``GET /api/v1/shifts/current/?plant=``, scoped to the user's plants."""

from datetime import date, datetime, timedelta

import pytest
from django.utils import timezone

from analytics.models import NonProductionDay
from analytics.selectors import shift_current, shift_next
from analytics.tests.factories import at, make_shift
from conftest import assert_status

pytestmark = pytest.mark.django_db
BERLIN = "Europe/Berlin"
MONDAY = date(2026, 3, 2)  # a week without a DST change


@pytest.fixture
def shifts(plant_a):
    return make_shift(plant_a, "Early", "06:00", "14:00"), make_shift(plant_a, "Night", "22:00", "06:00")


def test_the_running_shift_is_the_one_whose_occurrence_holds_now(plant_a, shifts):
    early = shift_current(plant_a, at(MONDAY, "13:59", BERLIN))
    assert (early.name, early.start, early.end) == ("Early", at(MONDAY, "06:00", BERLIN), at(MONDAY, "14:00", BERLIN))
    night = shift_current(plant_a, at(MONDAY, "02:30", BERLIN))  # begun on Sunday evening
    assert (night.name, night.day, night.start) == (
        "Night",
        MONDAY - timedelta(days=1),
        at(MONDAY, "22:00", BERLIN, -1),
    )
    assert night.end == at(MONDAY, "06:00", BERLIN)
    assert shift_current(plant_a, at(MONDAY, "14:00", BERLIN)) is None, "the end is exclusive"


def test_between_shifts_the_next_one_is_the_first_to_start_later(plant_a, shifts):
    now = at(MONDAY, "15:10", BERLIN)
    assert shift_current(plant_a, now) is None
    upcoming = shift_next(plant_a, now)
    assert (upcoming.name, upcoming.start) == ("Night", at(MONDAY, "22:00", BERLIN))
    assert shift_next(plant_a, at(MONDAY, "07:00", BERLIN)).name == "Night", "not the one running"


def test_a_non_production_day_starts_no_shift(plant_a, shifts):
    NonProductionDay.objects.create(plant=plant_a, date=MONDAY, reason="Holiday")
    assert shift_current(plant_a, at(MONDAY, "10:00", BERLIN)) is None
    assert shift_current(plant_a, at(MONDAY, "03:00", BERLIN)).name == "Night", "Sunday's night shift runs on"
    assert shift_next(plant_a, at(MONDAY, "10:00", BERLIN)).start == at(MONDAY, "06:00", BERLIN, 1)


def test_api_answers_the_running_and_the_next_shift(client_for, viewer, plant_a):
    make_shift(plant_a, "All day", "00:00", "00:00")
    before = timezone.now()
    body = assert_status(client_for(viewer).get(f"/api/v1/shifts/current/?plant={plant_a.pk}"), 200).json()
    current, upcoming = body["current"], body["next"]
    assert body["plant"] == plant_a.pk and current["name"] == "All day"
    start, end = datetime.fromisoformat(current["start"]), datetime.fromisoformat(current["end"])
    assert start <= before < end and datetime.fromisoformat(body["now"]) >= before
    assert datetime.fromisoformat(upcoming["start"]) == end, "tomorrow's starts when today's ends"
    assert set(current) == {"shift", "name", "day", "start", "end"}


def test_api_says_null_without_a_shift(client_for, viewer, plant_a):
    body = assert_status(client_for(viewer).get(f"/api/v1/shifts/current/?plant={plant_a.pk}"), 200).json()
    assert body["current"] is None and body["next"] is None


@pytest.mark.parametrize("query", ["", "?plant=", "?plant=abc"])
def test_api_asks_for_the_plant_id(client_for, viewer, plant_a, query):
    body = assert_status(client_for(viewer).get(f"/api/v1/shifts/current/{query}"), 400).json()
    assert "plant" in str(body)


def test_api_answers_404_for_a_plant_that_is_not_yours(client_for, outsider, viewer, plant_a, plant_b):
    make_shift(plant_b, "Early", "06:00", "14:00")
    for user, plant in ((outsider, plant_a.pk), (viewer, plant_b.pk), (viewer, 2**70), (viewer, -1)):
        assert_status(client_for(user).get(f"/api/v1/shifts/current/?plant={plant}"), 404)


def test_api_needs_a_login(client, plant_a):
    assert client.get(f"/api/v1/shifts/current/?plant={plant_a.pk}").status_code in (401, 403)
