"""/api/v1/alert-rules/: plant admins manage rules; invalid definitions answer 400 with field errors."""

import pytest

from alerts.models import AlertRule
from alerts.tests.factories import make_rule
from conftest import assert_status
from devices.tests.factories import make_group

pytestmark = pytest.mark.django_db
URL = "/api/v1/alert-rules/"


def valid(plant, **fields):
    body = {"plant": plant.pk, "name": "Oil hot", "metric": "temperature", "condition": "gt", "threshold": 80,
            "clear_threshold": 75, "severity": "critical", "on_delay": 30, "action": "Stop the press."}  # fmt: skip
    return {**body, **fields}


def rules() -> list[tuple]:
    return list(AlertRule.objects.order_by("pk").values_list("pk", "name", "threshold"))


def test_creates_rule_when_plant_admin_posts(client_for, plant_admin, plant_a):
    body = assert_status(client_for(plant_admin).post(URL, valid(plant_a)), 201).json()
    rule = AlertRule.objects.get(pk=body["id"])
    assert (rule.name, rule.clear_threshold, rule.on_delay, rule.scope) == ("Oil hot", 75, 30, "plant")
    assert body["action"] == "Stop the press."


def test_answers_403_when_operator_creates_and_404_when_outsider_reads(client_for, operator, outsider, plant_a):
    rule = make_rule(plant_a)
    response = assert_status(client_for(operator).post(URL, valid(plant_a)), 403)
    assert "admin role" in response.json()["detail"]
    assert_status(client_for(outsider).get(f"{URL}{rule.pk}/"), 404)
    assert_status(client_for(operator).patch(f"{URL}{rule.pk}/", {"threshold": 1}), 403)
    assert rules() == [(rule.pk, rule.name, 80.0)]


def test_lists_only_plant_a_rules_with_bounded_queries(
    client_for, viewer, plant_a, plant_b, django_assert_max_num_queries
):
    mine = [make_rule(plant_a) for _ in range(3)]
    make_rule(plant_b)
    client = client_for(viewer)
    with django_assert_max_num_queries(6):
        body = assert_status(client.get(URL), 200).json()
    assert sorted(row["id"] for row in body["results"]) == sorted(r.pk for r in mine)


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"clear_threshold": 85}, "clear_threshold"),  # deadband on the wrong side of a '>' threshold
        ({"condition": "lt", "threshold": 10, "clear_threshold": 5}, "clear_threshold"),
        ({"scope": "device"}, "device"),  # empty scope
        ({"scope": "line"}, "line"),
        ({"metric": ""}, "metric"),
        ({"threshold": None}, "threshold"),
        ({"condition": "outside", "threshold": 10, "threshold_high": 5, "clear_threshold": None}, "threshold_high"),
        ({"condition": "state", "metric": "", "threshold": None, "clear_threshold": None}, "state"),
        ({"condition": "no_data", "threshold": None, "clear_threshold": None}, "no_data_seconds"),
        ({"condition": "rate", "threshold": -1, "clear_threshold": None}, "threshold"),
        ({"severity": "panic"}, "severity"),
        ({"on_delay": -5}, "on_delay"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_rejects_invalid_rule_with_field_error(client_for, plant_admin, plant_a, fields, field):
    body = assert_status(client_for(plant_admin).post(URL, valid(plant_a, **fields)), 400).json()
    assert field in body["errors"], body
    assert body["detail"]
    assert rules() == []


def test_rejects_a_group_of_another_plant_as_if_it_did_not_exist(client_for, plant_admin, plant_a, plant_b):
    foreign = make_group(plant_b, "Foreign")
    body = assert_status(client_for(plant_admin).post(URL, valid(plant_a, scope="group", group=foreign.pk)), 400).json()
    assert "does not exist" in str(body["errors"]["group"])


def test_rejects_duplicate_name_in_the_plant(client_for, plant_admin, plant_a):
    make_rule(plant_a, name="Oil hot")
    body = assert_status(client_for(plant_admin).post(URL, valid(plant_a)), 400).json()
    assert "name" in body["errors"]


def test_rejects_an_update_that_moves_the_deadband_to_the_wrong_side(client_for, plant_admin, plant_a):
    rule = make_rule(plant_a, threshold=80, clear_threshold=75)
    body = assert_status(client_for(plant_admin).patch(f"{URL}{rule.pk}/", {"threshold": 70}), 400).json()
    assert "clear_threshold" in body["errors"]
    rule.refresh_from_db()
    assert rule.threshold == 80
