"""The schema says what the API answers (issue 15 item 5): the shapes schemathesis found wrong.

Before: shift times were typed ``format: time`` (RFC 3339 "HH:MM:SS") though CONTRACT.md answers
"HH:MM"; five detail lists answered bare arrays where paginated objects were documented; an
alarm's ``acknowledged_by``/``shelved_by`` were null but typed plain strings; error codes were not
documented at all.
"""

import re
from datetime import timedelta

import pytest
import yaml
from django.utils import timezone

from alerts.services.alarms import alarm_raise
from alerts.tests.factories import make_rule
from analytics.tests.factories import make_shift
from conftest import assert_status
from devices.tests.factories import make_device, make_line, make_token
from firmware.tests.factories import make_image, make_rollout

pytestmark = pytest.mark.django_db


@pytest.fixture
def schema(client_for, viewer):
    return yaml.safe_load(assert_status(client_for(viewer).get("/api/schema/"), 200).content)


def _component(schema, name):
    return schema["components"]["schemas"][name]


def test_shift_times_are_documented_and_answered_as_hh_mm(client_for, viewer, plant_a, schema):
    shift = make_shift(plant_a, start="06:00", end="14:00", breaks=[("09:00", "09:15")])
    for name in ("Shift", "ShiftRequest", "Break"):
        start = _component(schema, name)["properties"]["start"]
        assert "format" not in start and start["type"] == "string", (name, start)
    pattern = re.compile(_component(schema, "Shift")["properties"]["start"]["pattern"])
    body = assert_status(client_for(viewer).get(f"/api/v1/shifts/{shift.pk}/"), 200).json()
    assert [body["start"], body["end"], body["breaks"][0]["start"]] == ["06:00", "14:00", "09:00"]
    assert all(pattern.fullmatch(value) for value in (body["start"], body["end"], body["breaks"][0]["end"]))


def test_alarm_people_are_documented_nullable_and_answered_null_before_anyone_acts(client_for, viewer, plant_a, schema):
    device = make_device(make_line(plant_a), "press-001")
    alarm = alarm_raise(rule=make_rule(plant_a), device=device, value=90.0, at=timezone.now() - timedelta(minutes=1))
    for field in ("acknowledged_by", "shelved_by"):
        assert _component(schema, "Alarm")["properties"][field].get("nullable") is True, field
    assert _component(schema, "AlarmEvent")["properties"]["user"].get("nullable") is True
    body = assert_status(client_for(viewer).get(f"/api/v1/alarms/{alarm.pk}/"), 200).json()
    assert (body["acknowledged_by"], body["shelved_by"]) == (None, None)


def test_detail_lists_answer_the_paginated_object_they_document(client_for, viewer, plant_a, schema):
    line = make_line(plant_a)
    device = make_device(line, "press-001")
    make_token(device)
    alarm = alarm_raise(rule=make_rule(plant_a), device=device, value=90.0, at=timezone.now() - timedelta(minutes=1))
    rollout = make_rollout(plant_a, make_image(plant_a, "2.0.0", content=b"firmware"))
    target = rollout.targets.get()
    client = client_for(viewer)
    for template, url in (
        ("/api/v1/devices/{id}/tokens/", f"/api/v1/devices/{device.pk}/tokens/"),
        ("/api/v1/plants/{id}/members/", f"/api/v1/plants/{plant_a.pk}/members/"),
        ("/api/v1/alarms/{id}/events/", f"/api/v1/alarms/{alarm.pk}/events/"),
        ("/api/v1/rollouts/{id}/events/", f"/api/v1/rollouts/{rollout.pk}/events/"),
        (
            "/api/v1/rollouts/{id}/targets/{target_id}/history/",
            f"/api/v1/rollouts/{rollout.pk}/targets/{target.pk}/history/",
        ),
    ):
        documented = schema["paths"][template]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
        assert documented["$ref"].split("/")[-1].startswith("Paginated"), template
        body = assert_status(client.get(url, {"page_size": 1}), 200).json()
        assert set(body) == {"count", "next", "previous", "results"}, url
        assert len(body["results"]) == min(1, body["count"]), url


def test_every_operation_documents_its_error_answers(schema):
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            if path.startswith("/api/v1/device/") or path == "/api/v1/telemetry/":
                continue  # the device protocol's own codes (CONTRACT.md), documented by hand
            assert "401" in operation["responses"], (method, path)
            if "{" in path:
                assert "404" in operation["responses"], (method, path)
            if "requestBody" in operation:
                assert {"400", "413", "415"} <= set(operation["responses"]), (method, path)
    error = schema["paths"]["/api/v1/lines/{id}/"]["put"]["responses"]["400"]["content"]["application/json"]
    assert error["schema"]["$ref"] == "#/components/schemas/Error"
