"""Input the API cannot read answers 4xx saying what to do, never a silent default (issue 15 item 5).

Before: ``?plant=0.5`` and ``?enabled=-16667241`` listed everything, ``page_size=null`` the default
page, ``PUT lines/<id>/`` without ``plant`` and ``{"reason": 0}`` were accepted, another plant's
``?plant=`` answered an empty 200, and a 30 MB JSON body Django's HTML 400 page.
"""

import json

import pytest

from alerts.tests.factories import make_channel, make_route
from analytics.tests.factories import make_shift
from conftest import assert_status
from devices.models import Line
from devices.tests.factories import make_device, make_line
from firmware.models import Rollout
from firmware.tests.factories import make_image, make_rollout

pytestmark = pytest.mark.django_db


@pytest.fixture
def line_a(plant_a):
    return make_line(plant_a, "Press line")


@pytest.fixture
def rollout(plant_a, line_a):
    make_device(line_a, "press-001")
    return make_rollout(plant_a, make_image(plant_a, "2.0.0", content=b"firmware"))


@pytest.mark.parametrize(
    ("url", "params", "field"),
    [
        ("/api/v1/devices/", {"plant": "0.5"}, "plant"),
        ("/api/v1/devices/", {"enabled": "maybe"}, "enabled"),
        ("/api/v1/notification-routes/", {"enabled": "-16667241"}, "enabled"),
        ("/api/v1/lines/", {"page_size": "null"}, "page_size"),
        ("/api/v1/lines/", {"page_size": "0"}, "page_size"),
        ("/api/v1/lines/", {"page_size": "1001"}, "page_size"),
        ("/api/v1/shifts/", {"plant": "first"}, "plant"),
        ("/api/v1/alarms/", {"line": "99999999999999999999999"}, "line"),
    ],
)
def test_answers_400_naming_the_parameter_when_a_list_filter_cannot_be_read(client_for, viewer, url, params, field):
    response = assert_status(client_for(viewer).get(url, params), 400)
    assert field in response.json()["errors"], response.json()
    assert field in response.json()["detail"]


def test_answers_400_when_rollout_targets_stage_is_not_a_whole_number(client_for, viewer, rollout):
    response = assert_status(client_for(viewer).get(f"/api/v1/rollouts/{rollout.pk}/targets/", {"stage": "0.5"}), 400)
    assert "stage" in response.json()["errors"]


def test_filters_by_boolean_when_given_true_false_1_or_0(client_for, plant_admin, plant_a):
    channel = make_channel(plant_a)
    on, off = make_route(channel), make_route(channel, enabled=False)
    client = client_for(plant_admin)
    for value, expected in (("true", on), ("1", on), ("false", off), ("0", off), ("False", off)):
        body = assert_status(client.get("/api/v1/notification-routes/", {"enabled": value}), 200).json()
        assert [row["id"] for row in body["results"]] == [expected.pk], value


def test_answers_page_of_the_size_asked_when_page_size_is_in_range(client_for, viewer, plant_a):
    for index in range(3):
        make_line(plant_a, f"Line {index}")
    body = assert_status(client_for(viewer).get("/api/v1/lines/", {"page_size": "2"}), 200).json()
    assert (body["count"], len(body["results"])) == (3, 2)


@pytest.mark.parametrize(
    "url", ["/api/v1/lines/", "/api/v1/devices/", "/api/v1/alarms/", "/api/v1/shifts/", "/api/v1/reason-codes/"]
)
def test_answers_404_like_oee_when_plant_filter_names_a_plant_you_cannot_see(client_for, viewer, plant_b, url):
    response = assert_status(client_for(viewer).get(url, {"plant": plant_b.pk}), 404)
    assert "No such plant" in response.json()["detail"]
    oee = assert_status(client_for(viewer).get("/api/v1/analytics/oee/", {"plant": plant_b.pk}), 404)
    assert "plant" in oee.json()["detail"]


def test_lists_own_plant_and_404s_a_missing_one_when_superuser_filters(client_for, superuser, plant_a, line_a):
    client = client_for(superuser)
    body = assert_status(client.get("/api/v1/lines/", {"plant": plant_a.pk}), 200).json()
    assert [row["id"] for row in body["results"]] == [line_a.pk]
    assert_status(client.get("/api/v1/lines/", {"plant": plant_a.pk + 1000}), 404)


def test_answers_413_json_when_a_json_body_is_larger_than_the_upload_limit(client_for, plant_admin, plant_a):
    body = json.dumps({"plant": plant_a.pk, "name": "x" * 3_000_000})  # over Django's 2.5 MB default
    response = client_for(plant_admin).generic("POST", "/api/v1/lines/", body, content_type="application/json")
    assert_status(response, 413)
    assert response["Content-Type"] == "application/json"
    assert "too large" in response.json()["detail"]
    assert not Line.objects.exists()


def test_answers_400_and_keeps_the_rollout_when_cancel_reason_is_a_number(client_for, operator, rollout):
    response = client_for(operator).post(f"/api/v1/rollouts/{rollout.pk}/cancel/", {"reason": 0}, format="json")
    assert "string" in assert_status(response, 400).json()["errors"]["reason"][0]
    rollout.refresh_from_db()
    assert rollout.state == Rollout.State.DRAFT


def test_answers_400_when_a_text_field_of_a_resource_gets_a_number(client_for, plant_admin, plant_a):
    response = client_for(plant_admin).post("/api/v1/lines/", {"plant": plant_a.pk, "name": 7}, format="json")
    assert "name" in assert_status(response, 400).json()["errors"]
    assert not Line.objects.exists()


def test_put_needs_the_whole_line_and_keeps_its_plant(client_for, plant_admin, plant_a, plant_b, line_a):
    client, url = client_for(plant_admin), f"/api/v1/lines/{line_a.pk}/"
    missing = assert_status(client.put(url, {"name": "Renamed"}, format="json"), 400)
    assert "plant" in missing.json()["errors"]
    moved = assert_status(client.put(url, {"plant": plant_b.pk, "name": "Renamed"}, format="json"), 400)
    assert "plant" in moved.json()["errors"]
    line_a.refresh_from_db()
    assert (line_a.name, line_a.plant_id) == ("Press line", plant_a.pk)
    body = assert_status(client.put(url, {"plant": plant_a.pk, "name": "Renamed"}, format="json"), 200).json()
    assert (body["name"], body["plant"]) == ("Renamed", plant_a.pk)


def test_answers_400_saying_it_cannot_change_when_superuser_puts_another_plant(client_for, superuser, plant_b, line_a):
    response = client_for(superuser).put(
        f"/api/v1/lines/{line_a.pk}/", {"plant": plant_b.pk, "name": "Moved"}, format="json"
    )
    assert "cannot change" in assert_status(response, 400).json()["errors"]["plant"][0]


def test_shift_put_with_its_plant_updates_times(client_for, plant_admin, plant_a):
    shift = make_shift(plant_a)
    body = {"plant": plant_a.pk, "name": "Early", "start": "05:30", "end": "13:30", "weekdays": [0, 1]}
    answer = assert_status(client_for(plant_admin).put(f"/api/v1/shifts/{shift.pk}/", body, format="json"), 200)
    assert (answer.json()["start"], answer.json()["end"]) == ("05:30", "13:30")
