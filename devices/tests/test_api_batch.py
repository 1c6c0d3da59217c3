"""POST /api/v1/devices/batch/: one action on a selection or a group of devices, all or nothing."""

import pytest
from django.db import connection
from django.test import Client

from accounts.roles import Role
from accounts.services import member_set_role
from conftest import assert_status
from devices.models import Device, DeviceGroup, DeviceToken
from devices.tests.factories import make_device, make_group, make_line

pytestmark = pytest.mark.django_db

URL = "/api/v1/devices/batch/"


@pytest.fixture
def line_a2(plant_a):
    return make_line(plant_a, "Paint shop")


@pytest.fixture
def group_a(plant_a):
    return make_group(plant_a, "Night shift")


@pytest.fixture
def group_b(plant_b):
    return make_group(plant_b, "Foreign group")


def ids(devices) -> list[int]:
    return [d.pk for d in devices]


def state() -> tuple:
    """Everything a batch may change: device rows, group members, tokens."""
    devices = list(Device.objects.order_by("pk").values_list("pk", "line_id", "enabled"))
    members = sorted(DeviceGroup.devices.through.objects.values_list("devicegroup_id", "device_id"))
    return devices, members, DeviceToken.objects.count()


def bodies(presses, line_a2, group_a) -> dict[str, dict]:
    """One valid request per action, on the first two presses."""
    selection = {"devices": ids(presses[:2])}
    return {
        "enable": {"action": "enable", **selection},
        "disable": {"action": "disable", **selection},
        "move": {"action": "move", "line": line_a2.pk, **selection},
        "add_to_group": {"action": "add_to_group", "target_group": group_a.pk, **selection},
        "remove_from_group": {"action": "remove_from_group", "target_group": group_a.pk, **selection},
        "issue_tokens": {"action": "issue_tokens", "token_name": "provisioned", **selection},
    }


ACTIONS = ["enable", "disable", "move", "add_to_group", "remove_from_group", "issue_tokens"]


@pytest.mark.parametrize("persona", ["viewer", "operator"])
@pytest.mark.parametrize("action", ACTIONS)
def test_answers_403_and_changes_nothing_when_non_admin_runs_batch(
    request, client_for, presses, line_a2, group_a, persona, action
):
    before = state()
    response = client_for(request.getfixturevalue(persona)).post(URL, bodies(presses, line_a2, group_a)[action])
    assert "admin role" in assert_status(response, 403).json()["detail"]
    assert state() == before


@pytest.mark.parametrize("action", ACTIONS)
def test_answers_400_does_not_exist_when_outsider_names_devices_of_plant_a(
    client_for, outsider, presses, line_a2, group_a, action
):
    before = state()
    response = assert_status(client_for(outsider).post(URL, bodies(presses, line_a2, group_a)[action]), 400)
    assert "does not exist" in str(response.json()["errors"]["devices"])
    assert "press-01" not in str(response.json())
    assert state() == before


def test_answers_400_does_not_exist_when_outsider_names_group_of_plant_a(client_for, outsider, presses, group_a):
    group_a.devices.add(*presses)
    before = state()
    response = assert_status(client_for(outsider).post(URL, {"action": "disable", "group": group_a.pk}), 400)
    assert "does not exist" in str(response.json()["errors"]["group"])
    assert state() == before


def test_answers_400_and_changes_nothing_when_one_device_is_invisible(client_for, plant_admin, presses, foreign):
    before = state()
    response = client_for(plant_admin).post(URL, {"action": "disable", "devices": [*ids(presses), foreign.pk]})
    assert "does not exist" in str(assert_status(response, 400).json()["errors"]["devices"])
    assert state() == before


def test_answers_403_and_changes_nothing_when_one_device_is_in_plant_where_only_viewer(
    client_for, plant_admin, plant_b, presses, foreign
):
    member_set_role(plant=plant_b, user=plant_admin, role=Role.VIEWER)
    before = state()
    response = client_for(plant_admin).post(URL, {"action": "disable", "devices": [*ids(presses), foreign.pk]})
    assert "Plant B" in assert_status(response, 403).json()["detail"]
    assert state() == before


def test_disables_then_enables_selected_devices_when_plant_admin_posts(client_for, plant_admin, presses):
    client = client_for(plant_admin)
    body = assert_status(client.post(URL, {"action": "disable", "devices": ids(presses[:2])}), 200).json()
    assert body == {"action": "disable", "count": 2, "devices": ids(presses[:2])}
    assert list(Device.objects.order_by("uid").values_list("enabled", flat=True)) == [False, False, True]
    assert_status(client.post(URL, {"action": "enable", "devices": ids(presses)}), 200)
    assert Device.objects.filter(enabled=True).count() == 3


def test_acts_on_every_member_when_selection_is_a_group(client_for, plant_admin, presses, group_a):
    group_a.devices.add(*presses[1:])
    body = assert_status(client_for(plant_admin).post(URL, {"action": "disable", "group": group_a.pk}), 200).json()
    assert (body["count"], sorted(body["devices"])) == (2, ids(presses[1:]))
    assert list(Device.objects.filter(enabled=False).order_by("uid").values_list("uid", flat=True)) == [
        "press-02", "press-03"
    ]  # fmt: skip


def test_moves_devices_within_plant_when_plant_admin_posts_move(client_for, plant_admin, presses, line_a2):
    assert_status(
        client_for(plant_admin).post(URL, {"action": "move", "devices": ids(presses[:2]), "line": line_a2.pk}), 200
    )
    assert list(Device.objects.order_by("uid").values_list("line_id", flat=True)) == [
        line_a2.pk, line_a2.pk, presses[2].line_id
    ]  # fmt: skip


def test_adds_then_removes_group_members_when_plant_admin_posts(client_for, plant_admin, presses, group_a):
    client = client_for(plant_admin)
    assert_status(
        client.post(URL, {"action": "add_to_group", "devices": ids(presses), "target_group": group_a.pk}), 200
    )
    assert sorted(group_a.devices.values_list("pk", flat=True)) == ids(presses)
    removal = {"action": "remove_from_group", "devices": ids(presses[:1]), "target_group": group_a.pk}
    assert_status(client.post(URL, removal), 200)
    assert sorted(group_a.devices.values_list("pk", flat=True)) == ids(presses[1:])


def test_issues_one_working_token_per_device_when_plant_admin_posts_issue_tokens(client_for, plant_admin, presses):
    body = {"action": "issue_tokens", "devices": ids(presses[:2]), "token_name": "provisioned"}
    result = assert_status(client_for(plant_admin).post(URL, body), 200).json()
    assert [(t["device"], t["uid"]) for t in result["tokens"]] == [
        (presses[0].pk, "press-01"),
        (presses[1].pk, "press-02"),
    ]
    tokens = DeviceToken.objects.filter(pk__in=[t["id"] for t in result["tokens"]])
    assert {(t.device_id, t.name, t.created_by_id) for t in tokens} == {
        (presses[0].pk, "provisioned", plant_admin.pk), (presses[1].pk, "provisioned", plant_admin.pk)
    }  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {DeviceToken._meta.db_table}")
        stored = " ".join(str(value) for row in cursor.fetchall() for value in row)
    for issued in result["tokens"]:
        assert issued["token"] not in stored
        assert issued["token"].partition(".")[2] not in stored
        response = Client().get("/api/v1/device/", HTTP_AUTHORIZATION=f"Device {issued['token']}")
        assert assert_status(response, 200).json()["uid"] == issued["uid"]


def test_acts_once_per_device_when_a_device_is_listed_twice(client_for, plant_admin, presses):
    body = {"action": "issue_tokens", "devices": [presses[0].pk, presses[0].pk], "token_name": "provisioned"}
    result = assert_status(client_for(plant_admin).post(URL, body), 200).json()
    assert (result["count"], len(result["tokens"])) == (1, 1)
    assert DeviceToken.objects.filter(device=presses[0]).count() == 1


def test_answers_400_and_moves_nothing_when_target_line_is_in_other_plant(client_for, superuser, presses, line_b):
    before = state()
    response = client_for(superuser).post(URL, {"action": "move", "devices": ids(presses), "line": line_b.pk})
    assert "Foreign line" in assert_status(response, 400).json()["errors"]["line"][0]
    assert state() == before


def test_answers_400_does_not_exist_when_admin_moves_to_invisible_line(client_for, plant_admin, presses, line_b):
    before = state()
    response = client_for(plant_admin).post(URL, {"action": "move", "devices": ids(presses), "line": line_b.pk})
    assert "does not exist" in str(assert_status(response, 400).json()["errors"]["line"])
    assert state() == before


def test_answers_400_and_moves_nothing_when_selection_spans_plants(client_for, superuser, presses, foreign, line_a2):
    before = state()
    body = {"action": "move", "devices": [*ids(presses), foreign.pk], "line": line_a2.pk}
    response = assert_status(client_for(superuser).post(URL, body), 400)
    assert "foreign-01" in response.json()["errors"]["line"][0]
    assert state() == before


@pytest.mark.parametrize("action", ["add_to_group", "remove_from_group"])
def test_answers_400_naming_target_group_when_group_is_in_other_plant(client_for, superuser, presses, group_b, action):
    before = state()
    response = client_for(superuser).post(URL, {"action": action, "devices": ids(presses), "target_group": group_b.pk})
    assert "Foreign group" in assert_status(response, 400).json()["errors"]["target_group"][0]
    assert state() == before


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"action": "explode"}, "action"),
        ({"action": None}, "action"),
        ({"action": "move"}, "line"),
        ({"action": "add_to_group"}, "target_group"),
        ({"action": "remove_from_group"}, "target_group"),
        ({"action": "issue_tokens"}, "token_name"),
        ({"action": "issue_tokens", "token_name": "x" * 101}, "token_name"),
        ({"devices": []}, "devices"),
        ({"devices": None}, "devices"),
        ({"devices": "1,2"}, "devices"),
        ({"devices": ["press-01"]}, "devices"),
        ({"devices": [999999]}, "devices"),
        ({"line": "first"}, "line"),
        ({"group": 999999}, "group"),
        ({"enabled": False}, "enabled"),
    ],
)
def test_answers_400_naming_field_and_changes_nothing_when_input_is_invalid(
    client_for, plant_admin, presses, extra, field
):
    before = state()
    response = assert_status(
        client_for(plant_admin).post(URL, {"action": "disable", "devices": ids(presses), **extra}), 400
    )
    assert field in response.json()["errors"]
    assert field in response.json()["detail"]
    assert state() == before


def test_answers_400_when_selection_names_both_devices_and_group(client_for, plant_admin, presses, group_a):
    before = state()
    response = client_for(plant_admin).post(URL, {"action": "disable", "devices": ids(presses), "group": group_a.pk})
    assert "either" in assert_status(response, 400).json()["errors"]["devices"][0]
    response = client_for(plant_admin).post(URL, {"action": "disable"})
    assert "either" in assert_status(response, 400).json()["errors"]["devices"][0]
    assert state() == before


@pytest.mark.parametrize("raw", ['{"action": "disable", "devices": [1,', "[]", '"disable"', ""])
def test_answers_400_and_changes_nothing_when_body_is_not_a_json_object(client_for, plant_admin, presses, raw):
    before = state()
    response = assert_status(client_for(plant_admin).post(URL, data=raw, content_type="application/json"), 400)
    assert response.json()["detail"]
    assert state() == before


@pytest.mark.parametrize("rows", [3, 30])
def test_keeps_query_count_constant_when_group_grows(
    client_for, plant_admin, line_a, group_a, rows, django_assert_max_num_queries
):
    group_a.devices.add(*[make_device(line_a, f"press-{index:03d}") for index in range(rows)])
    client = client_for(plant_admin)
    client.post(
        URL, {"action": "enable", "group": group_a.pk}
    )  # warm per-process caches (content types): count only what each request costs
    with django_assert_max_num_queries(10):
        response = assert_status(client.post(URL, {"action": "disable", "group": group_a.pk}), 200)
    assert response.json()["count"] == rows
    assert not Device.objects.filter(enabled=True).exists()
