"""/api/v1/devices/: plant-scoped CRUD, filters and search of machines, sensors and gateways."""

from decimal import Decimal

import pytest

from accounts.roles import Role
from accounts.services import member_set_role
from conftest import assert_status
from devices.models import Device, DeviceToken
from devices.tests.factories import make_device, make_group, make_line, make_plant, make_token

pytestmark = pytest.mark.django_db

URL = "/api/v1/devices/"

CONTRACT_BODY = {"uid": "press-08", "name": "Press 8", "kind": "machine", "model": "HP-400", "ideal_cycle_time": 2.5}


@pytest.fixture
def press(line_a):
    return make_device(line_a, "press-07")


def device_state() -> list[tuple]:
    """Every device's editable columns, to prove a rejected request wrote nothing."""
    return list(
        Device.objects.order_by("pk").values_list(
            "pk", "uid", "name", "kind", "plant_id", "line_id", "model", "ideal_cycle_time", "enabled"
        )
    )


def uids(response) -> list[str]:
    return [row["uid"] for row in response.json()["results"]]


def test_lists_only_plant_a_devices_when_viewer_lists(client_for, viewer, press, foreign):
    response = assert_status(client_for(viewer).get(URL), 200)
    assert uids(response) == ["press-07"]
    row = response.json()["results"][0]
    assert (row["plant"], row["line"], row["kind"], row["online"]) == (press.plant_id, press.line_id, "machine", False)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"kind": "sensor"}, ["temp-01"]),
        ({"enabled": "false"}, ["press-09"]),
        ({"enabled": "true"}, ["press-07", "temp-01"]),
        ({"model": "hp-400"}, ["press-07", "press-09"]),
        ({"search": "temp"}, ["temp-01"]),
        ({"search": "Hall 3"}, ["press-09"]),
        ({"firmware_version": "2.0.0"}, ["temp-01"]),
    ],
)
def test_filters_devices_when_query_names_a_field(client_for, viewer, line_a, press, foreign, query, expected):
    make_device(line_a, "temp-01", kind="sensor", model="TS-1", firmware_version="2.0.0", ideal_cycle_time=None)
    make_device(line_a, "press-09", enabled=False, location="Hall 3")
    make_device(foreign.line, "foreign-temp", kind="sensor", model="TS-1", firmware_version="2.0.0")
    assert uids(assert_status(client_for(viewer).get(URL, query), 200)) == expected


def test_filters_by_plant_line_and_group_when_superuser_lists(client_for, superuser, plant_a, line_a, press, foreign):
    other_line = make_line(plant_a, "Paint shop")
    painter = make_device(other_line, "paint-01")
    group = make_group(plant_a, "Night shift", devices=[painter])
    client = client_for(superuser)
    assert uids(assert_status(client.get(URL, {"plant": plant_a.pk}), 200)) == ["paint-01", "press-07"]
    assert uids(assert_status(client.get(URL, {"line": line_a.pk}), 200)) == ["press-07"]
    assert uids(assert_status(client.get(URL, {"group": group.pk}), 200)) == ["paint-01"]


def test_answers_the_same_when_filters_name_invisible_or_missing_ids(client_for, viewer, press, foreign):
    client = client_for(viewer)
    # A plant answers 404 (as the OEE endpoint does), a line an empty page: alike for both.
    invisible = assert_status(client.get(URL, {"plant": foreign.plant_id}), 404).json()
    assert invisible == assert_status(client.get(URL, {"plant": foreign.plant_id + 1000}), 404).json()
    invisible = assert_status(client.get(URL, {"line": foreign.line_id}), 200).json()
    missing = assert_status(client.get(URL, {"line": foreign.line_id + 1000}), 200).json()
    assert invisible == missing == {"count": 0, "next": None, "previous": None, "results": []}


def test_answers_400_naming_filter_when_filter_value_is_malformed(client_for, viewer, press):
    response = assert_status(client_for(viewer).get(URL, {"kind": "robot"}), 400)
    assert "kind" in response.json()["errors"]


def test_answers_200_when_viewer_reads_device(client_for, viewer, press):
    body = assert_status(client_for(viewer).get(f"{URL}{press.pk}/"), 200).json()
    assert (body["uid"], body["ideal_cycle_time"], body["groups"]) == ("press-07", "2.500", [])


@pytest.mark.parametrize(
    ("method", "body"), [("get", None), ("patch", {"name": "Stolen"}), ("put", CONTRACT_BODY), ("delete", None)]
)
def test_answers_404_when_outsider_touches_device_of_plant_a(client_for, outsider, press, method, body):
    before = device_state()
    response = assert_status(getattr(client_for(outsider), method)(f"{URL}{press.pk}/", body), 404)
    assert "detail" in response.json()
    assert device_state() == before


def test_answers_404_when_plant_admin_reads_device_of_plant_b(client_for, plant_admin, foreign):
    assert_status(client_for(plant_admin).get(f"{URL}{foreign.pk}/"), 404)


@pytest.mark.parametrize("persona", ["viewer", "operator"])
def test_answers_403_and_changes_nothing_when_non_admin_writes_device(request, client_for, line_a, press, persona):
    client = client_for(request.getfixturevalue(persona))
    before = device_state()
    created = assert_status(client.post(URL, {**CONTRACT_BODY, "line": line_a.pk}), 403)
    assert "admin role" in created.json()["detail"]
    assert_status(client.patch(f"{URL}{press.pk}/", {"enabled": False}), 403)
    assert_status(client.delete(f"{URL}{press.pk}/"), 403)
    assert device_state() == before


def test_creates_device_when_plant_admin_posts_contract_body(client_for, plant_admin, plant_a, line_a):
    response = assert_status(client_for(plant_admin).post(URL, {**CONTRACT_BODY, "line": line_a.pk}), 201)
    body = response.json()
    device = Device.objects.get(pk=body["id"])
    assert (device.uid, device.plant_id, device.line_id, device.model) == ("press-08", plant_a.pk, line_a.pk, "HP-400")
    assert device.ideal_cycle_time == Decimal("2.5")
    assert (body["uid"], body["plant"], body["enabled"]) == ("press-08", plant_a.pk, True)


def test_creates_sensor_when_ideal_cycle_time_is_null(client_for, plant_admin, line_a):
    body = {**CONTRACT_BODY, "uid": "temp-01", "kind": "sensor", "ideal_cycle_time": None, "line": line_a.pk}
    created = assert_status(client_for(plant_admin).post(URL, body), 201).json()
    assert created["ideal_cycle_time"] is None
    assert Device.objects.get(uid="temp-01").kind == "sensor"


def test_creates_device_outside_any_line_when_only_plant_is_given(client_for, plant_admin, plant_a):
    body = {"uid": "gw-01", "name": "Gateway", "kind": "gateway", "plant": plant_a.pk}
    created = assert_status(client_for(plant_admin).post(URL, body), 201).json()
    assert (created["plant"], created["line"]) == (plant_a.pk, None)


def test_updates_device_when_plant_admin_patches(client_for, plant_admin, plant_a, press):
    paint = make_line(plant_a, "Paint shop")
    body = {"name": "Press Seven", "line": paint.pk, "enabled": False, "ideal_cycle_time": "3.25"}
    response = assert_status(client_for(plant_admin).patch(f"{URL}{press.pk}/", body), 200)
    assert response.json()["line"] == paint.pk
    press.refresh_from_db()
    assert (press.name, press.line_id, press.enabled, press.ideal_cycle_time) == (
        "Press Seven", paint.pk, False, Decimal("3.25")
    )  # fmt: skip


def test_deletes_device_and_its_tokens_when_plant_admin_deletes(client_for, plant_admin, press):
    token, _ = make_token(press)
    assert_status(client_for(plant_admin).delete(f"{URL}{press.pk}/"), 204)
    assert not Device.objects.filter(pk=press.pk).exists()
    assert not DeviceToken.objects.filter(pk=token.pk).exists()


def test_answers_400_does_not_exist_when_admin_creates_device_on_invisible_line(client_for, plant_admin, line_b):
    before = device_state()
    response = assert_status(client_for(plant_admin).post(URL, {**CONTRACT_BODY, "line": line_b.pk}), 400)
    body = response.json()
    assert "does not exist" in str(body["errors"]["line"])
    assert "Foreign line" not in str(body)
    assert device_state() == before


def test_answers_403_when_admin_of_a_creates_device_on_line_where_only_viewer(client_for, plant_admin, plant_b, line_b):
    member_set_role(plant=plant_b, user=plant_admin, role=Role.VIEWER)
    response = assert_status(client_for(plant_admin).post(URL, {**CONTRACT_BODY, "line": line_b.pk}), 403)
    assert "Plant B" in response.json()["detail"]
    assert not Device.objects.filter(uid="press-08").exists()


def test_answers_400_and_keeps_line_when_device_is_moved_to_line_of_other_plant(client_for, superuser, press, line_b):
    before = device_state()
    response = assert_status(client_for(superuser).patch(f"{URL}{press.pk}/", {"line": line_b.pk}), 400)
    assert "Plant B" in response.json()["errors"]["line"][0]
    assert device_state() == before


def test_answers_400_does_not_exist_when_admin_moves_device_to_invisible_line(client_for, plant_admin, press, line_b):
    before = device_state()
    response = assert_status(client_for(plant_admin).patch(f"{URL}{press.pk}/", {"line": line_b.pk}), 400)
    assert "does not exist" in response.json()["errors"]["line"][0]
    assert device_state() == before


def test_answers_400_and_keeps_plant_when_patch_names_another_plant(client_for, superuser, press, plant_b):
    before = device_state()
    response = assert_status(client_for(superuser).patch(f"{URL}{press.pk}/", {"plant": plant_b.pk}), 400)
    assert "cannot change" in response.json()["errors"]["plant"][0]
    assert device_state() == before


def test_answers_400_when_created_with_plant_and_line_of_different_plants(client_for, superuser, plant_a, line_b):
    response = assert_status(
        client_for(superuser).post(URL, {**CONTRACT_BODY, "plant": plant_a.pk, "line": line_b.pk}), 400
    )
    assert "line" in response.json()["errors"]
    assert not Device.objects.filter(uid="press-08").exists()


def test_answers_400_and_writes_nothing_when_body_is_not_json(client_for, plant_admin, press):
    before = device_state()
    client = client_for(plant_admin)
    response = assert_status(client.post(URL, data="{'uid': 'x'}", content_type="application/json"), 400)
    assert "JSON parse error" in response.json()["detail"]
    assert_status(client.patch(f"{URL}{press.pk}/", data="[1,", content_type="application/json"), 400)
    assert device_state() == before


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"ideal_cyle_time": 2.5}, "ideal_cyle_time"),
        ({"last_seen_at": "2026-01-01T00:00:00Z"}, "last_seen_at"),
        ({"online": True}, "online"),
        ({"ideal_cycle_time": "fast"}, "ideal_cycle_time"),
        ({"ideal_cycle_time": 0}, "ideal_cycle_time"),
        ({"ideal_cycle_time": -1}, "ideal_cycle_time"),
        ({"enabled": "maybe"}, "enabled"),
        ({"kind": "robot"}, "kind"),
        ({"expected_interval": -5}, "expected_interval"),
        ({"name": ""}, "name"),
        ({"line": "first"}, "line"),
        ({"line": None}, "line"),
        ({"uid": ""}, "uid"),
        ({"uid": "Press-07"}, "uid"),
        ({"uid": "press 07"}, "uid"),
        ({"uid": "../etc"}, "uid"),
        ({"uid": "-press"}, "uid"),
        ({"uid": "presse-ü"}, "uid"),
        ({"uid": "p" * 65}, "uid"),
        ({"uid": ["press-08"]}, "uid"),
        ({"uid": "press-07"}, "uid"),
    ],
)
def test_answers_400_naming_field_when_create_input_is_invalid(client_for, plant_admin, line_a, press, change, field):
    before = device_state()
    response = assert_status(client_for(plant_admin).post(URL, {**CONTRACT_BODY, "line": line_a.pk, **change}), 400)
    body = response.json()
    assert field in body["errors"]
    assert field in body["detail"]
    assert device_state() == before


def test_answers_400_naming_uid_when_renamed_to_a_taken_uid(client_for, plant_admin, line_a, press):
    other = make_device(line_a, "press-09")
    before = device_state()
    response = assert_status(client_for(plant_admin).patch(f"{URL}{other.pk}/", {"uid": "press-07"}), 400)
    assert "uid" in response.json()["errors"]
    assert device_state() == before


def test_answers_400_naming_uid_when_uid_is_taken_in_an_invisible_plant(client_for, plant_admin, line_a, foreign):
    response = assert_status(
        client_for(plant_admin).post(URL, {**CONTRACT_BODY, "uid": "foreign-01", "line": line_a.pk}), 400
    )
    assert "uid" in response.json()["errors"]
    assert Device.objects.filter(uid="foreign-01").count() == 1


@pytest.mark.parametrize("rows", [3, 30])
def test_keeps_list_query_count_constant_when_devices_grow(
    client_for, plant_admin, plant_a, rows, django_assert_max_num_queries
):
    line = make_line(plant_a, "Press line")
    group = make_group(plant_a, "All presses")
    other_line = make_line(make_plant(), "Elsewhere")
    for index in range(rows):
        group.devices.add(make_device(line, f"press-{index:03d}"))
        make_device(other_line, f"other-{index:03d}")
    client = client_for(plant_admin)
    client.get(URL)  # warm per-process caches (content types): count only what each request costs
    with django_assert_max_num_queries(5):
        response = assert_status(client.get(URL), 200)
    assert response.json()["count"] == rows
    assert all(row["groups"] == [group.pk] for row in response.json()["results"])


def test_refuses_uid_change_when_device_exists(client_for, plant_admin, press):
    response = assert_status(client_for(plant_admin).patch(f"/api/v1/devices/{press.pk}/", {"uid": "renamed"}), 400)
    assert "uid" in response.data["errors"]
    press.refresh_from_db()
    assert press.uid != "renamed"
