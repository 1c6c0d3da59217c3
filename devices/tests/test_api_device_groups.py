"""/api/v1/device-groups/: named sets of devices of one plant (CONTRACT.md "Vocabulary and roles")."""

import pytest

from accounts.roles import Role
from accounts.services import member_set_role
from conftest import assert_status
from devices.models import Device, DeviceGroup
from devices.tests.factories import make_device, make_group, make_line, make_plant

pytestmark = pytest.mark.django_db

URL = "/api/v1/device-groups/"


@pytest.fixture
def group_a(plant_a, presses):
    return make_group(plant_a, "Night shift", devices=presses[:2])


@pytest.fixture
def group_b(plant_b, foreign):
    return make_group(plant_b, "Foreign group", devices=[foreign])


def group_state() -> list[tuple]:
    """Every group with its sorted members, to prove a rejected request wrote nothing."""
    return [
        (g.pk, g.plant_id, g.name, g.description, sorted(d.pk for d in g.devices.all()))
        for g in DeviceGroup.objects.order_by("pk").prefetch_related("devices")
    ]


def test_lists_only_plant_a_groups_when_viewer_lists(client_for, viewer, plant_a, presses, group_a, group_b):
    body = assert_status(client_for(viewer).get(URL), 200).json()
    assert body["count"] == 1
    row = body["results"][0]
    assert (row["id"], row["plant"], row["name"]) == (group_a.pk, plant_a.pk, "Night shift")
    assert sorted(row["devices"]) == sorted(d.pk for d in presses[:2])


def test_filters_groups_by_plant_and_device_when_superuser_lists(
    client_for, superuser, plant_a, presses, group_a, group_b
):
    make_group(plant_a, "Empty")
    client = client_for(superuser)
    by_plant = assert_status(client.get(URL, {"plant": plant_a.pk}), 200).json()
    assert [row["name"] for row in by_plant["results"]] == ["Empty", "Night shift"]
    by_device = assert_status(client.get(URL, {"device": presses[0].pk}), 200).json()
    assert [row["id"] for row in by_device["results"]] == [group_a.pk]


def test_answers_same_404_when_filter_names_invisible_or_missing_plant(client_for, viewer, plant_b, group_b):
    client = client_for(viewer)
    invisible = assert_status(client.get(URL, {"plant": plant_b.pk}), 404).json()
    missing = assert_status(client.get(URL, {"plant": plant_b.pk + 1000}), 404).json()
    assert invisible == missing


def test_answers_200_when_viewer_reads_group(client_for, viewer, group_a):
    body = assert_status(client_for(viewer).get(f"{URL}{group_a.pk}/"), 200).json()
    assert body["name"] == "Night shift"


@pytest.mark.parametrize(
    ("method", "body"), [("get", None), ("patch", {"name": "Stolen"}), ("put", {"name": "Stolen"}), ("delete", None)]
)
def test_answers_404_when_outsider_touches_group_of_plant_a(client_for, outsider, group_a, method, body):
    before = group_state()
    response = assert_status(getattr(client_for(outsider), method)(f"{URL}{group_a.pk}/", body), 404)
    assert "detail" in response.json()
    assert group_state() == before


@pytest.mark.parametrize("persona", ["viewer", "operator"])
def test_answers_403_and_changes_nothing_when_non_admin_writes_group(
    request, client_for, plant_a, presses, group_a, persona
):
    client = client_for(request.getfixturevalue(persona))
    before = group_state()
    created = assert_status(client.post(URL, {"plant": plant_a.pk, "name": "Mine", "devices": [presses[2].pk]}), 403)
    assert "admin role" in created.json()["detail"]
    assert_status(client.patch(f"{URL}{group_a.pk}/", {"devices": [presses[2].pk]}), 403)
    assert_status(client.delete(f"{URL}{group_a.pk}/"), 403)
    assert group_state() == before


def test_creates_group_with_devices_when_plant_admin_posts(client_for, plant_admin, plant_a, presses):
    body = {"plant": plant_a.pk, "name": "Presses", "devices": [d.pk for d in presses]}
    created = assert_status(client_for(plant_admin).post(URL, body), 201).json()
    group = DeviceGroup.objects.get(pk=created["id"])
    assert (group.plant_id, group.name) == (plant_a.pk, "Presses")
    assert sorted(group.devices.values_list("pk", flat=True)) == sorted(d.pk for d in presses)
    assert sorted(created["devices"]) == sorted(d.pk for d in presses)


def test_creates_empty_group_when_devices_are_omitted(client_for, plant_admin, plant_a):
    created = assert_status(client_for(plant_admin).post(URL, {"plant": plant_a.pk, "name": "Later"}), 201).json()
    assert created["devices"] == []
    assert DeviceGroup.objects.get(pk=created["id"]).devices.count() == 0


def test_replaces_members_when_plant_admin_patches_devices(client_for, plant_admin, presses, group_a):
    response = assert_status(client_for(plant_admin).patch(f"{URL}{group_a.pk}/", {"devices": [presses[2].pk]}), 200)
    assert response.json()["devices"] == [presses[2].pk]
    assert list(group_a.devices.values_list("pk", flat=True)) == [presses[2].pk]


def test_keeps_members_when_patch_only_renames(client_for, plant_admin, presses, group_a):
    assert_status(client_for(plant_admin).patch(f"{URL}{group_a.pk}/", {"name": "Late shift"}), 200)
    group_a.refresh_from_db()
    assert group_a.name == "Late shift"
    assert group_a.devices.count() == 2


def test_deletes_group_but_keeps_devices_when_plant_admin_deletes(client_for, plant_admin, presses, group_a):
    assert_status(client_for(plant_admin).delete(f"{URL}{group_a.pk}/"), 204)
    assert not DeviceGroup.objects.filter(pk=group_a.pk).exists()
    assert Device.objects.filter(pk__in=[d.pk for d in presses]).count() == 3


def test_answers_400_and_creates_nothing_when_group_mixes_plants(client_for, superuser, plant_a, presses, foreign):
    before = group_state()
    body = {"plant": plant_a.pk, "name": "Mixed", "devices": [presses[0].pk, foreign.pk]}
    response = assert_status(client_for(superuser).post(URL, body), 400)
    assert "foreign-01" in response.json()["errors"]["devices"][0]
    assert group_state() == before


def test_answers_400_and_keeps_members_when_patch_adds_device_of_other_plant(
    client_for, superuser, presses, group_a, foreign
):
    before = group_state()
    patch = {"devices": [presses[0].pk, foreign.pk]}
    response = assert_status(client_for(superuser).patch(f"{URL}{group_a.pk}/", patch), 400)
    assert "foreign-01" in response.json()["errors"]["devices"][0]
    assert group_state() == before


def test_answers_400_does_not_exist_when_admin_adds_invisible_device(
    client_for, plant_admin, plant_a, presses, foreign
):
    before = group_state()
    body = {"plant": plant_a.pk, "name": "Sneaky", "devices": [presses[0].pk, foreign.pk]}
    response = assert_status(client_for(plant_admin).post(URL, body), 400)
    assert "does not exist" in str(response.json()["errors"]["devices"])
    assert "foreign-01" not in str(response.json())
    assert group_state() == before


def test_answers_400_does_not_exist_when_admin_creates_group_in_invisible_plant(client_for, plant_admin, plant_b):
    response = assert_status(client_for(plant_admin).post(URL, {"plant": plant_b.pk, "name": "Sneaky"}), 400)
    assert "does not exist" in str(response.json()["errors"]["plant"])
    assert not DeviceGroup.objects.exists()


def test_answers_403_when_admin_of_a_creates_group_in_plant_where_only_viewer(
    client_for, plant_admin, plant_b, foreign
):
    member_set_role(plant=plant_b, user=plant_admin, role=Role.VIEWER)
    body = {"plant": plant_b.pk, "name": "Sneaky", "devices": [foreign.pk]}
    response = assert_status(client_for(plant_admin).post(URL, body), 403)
    assert "Plant B" in response.json()["detail"]
    assert not DeviceGroup.objects.exists()


def test_answers_400_and_keeps_plant_when_patch_names_another_plant(client_for, superuser, group_a, plant_b):
    before = group_state()
    response = assert_status(client_for(superuser).patch(f"{URL}{group_a.pk}/", {"plant": plant_b.pk}), 400)
    assert "cannot change" in response.json()["errors"]["plant"][0]
    assert group_state() == before


def test_answers_400_and_writes_nothing_when_body_is_not_json(client_for, plant_admin, group_a):
    before = group_state()
    client = client_for(plant_admin)
    response = assert_status(client.post(URL, data='{"name": "x"', content_type="application/json"), 400)
    assert "JSON parse error" in response.json()["detail"]
    assert_status(client.patch(f"{URL}{group_a.pk}/", data="devices=1", content_type="application/json"), 400)
    assert group_state() == before


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"devices": "press-01"}, "devices"),
        ({"devices": ["press-01"]}, "devices"),
        ({"devices": [999999]}, "devices"),
        ({"plant": None}, "plant"),
        ({"members": []}, "members"),
        ({"created_at": "2026-01-01T00:00:00Z"}, "created_at"),
    ],
)
def test_answers_400_naming_field_when_create_input_is_invalid(
    client_for, plant_admin, plant_a, group_a, change, field
):
    before = group_state()
    response = assert_status(client_for(plant_admin).post(URL, {"plant": plant_a.pk, "name": "New", **change}), 400)
    assert field in response.json()["errors"]
    assert field in response.json()["detail"]
    assert group_state() == before


def test_answers_400_naming_name_when_group_name_is_taken_in_plant(client_for, plant_admin, plant_a, group_a):
    before = group_state()
    response = assert_status(client_for(plant_admin).post(URL, {"plant": plant_a.pk, "name": "Night shift"}), 400)
    assert "already has a device group named 'Night shift'" in response.json()["errors"]["name"][0]
    assert group_state() == before


def test_answers_400_naming_name_when_rename_collides_with_another_group(client_for, plant_admin, plant_a, group_a):
    other = make_group(plant_a, "Day shift")
    before = group_state()
    response = assert_status(client_for(plant_admin).patch(f"{URL}{other.pk}/", {"name": "Night shift"}), 400)
    assert "already has a device group named 'Night shift'" in response.json()["errors"]["name"][0]
    assert group_state() == before


def test_allows_same_group_name_when_plants_differ(client_for, superuser, plant_b, group_a):
    created = assert_status(client_for(superuser).post(URL, {"plant": plant_b.pk, "name": "Night shift"}), 201).json()
    assert DeviceGroup.objects.get(pk=created["id"]).plant_id == plant_b.pk


@pytest.mark.parametrize("rows", [3, 30])
def test_keeps_list_query_count_constant_when_groups_grow(
    client_for, plant_admin, plant_a, rows, django_assert_max_num_queries
):
    line = make_line(plant_a, "Press line")
    other = make_plant()
    for index in range(rows):
        make_group(plant_a, f"Group {index:02d}", devices=[make_device(line, f"press-{index:03d}")])
        make_group(other, f"Other {index:02d}")
    client = client_for(plant_admin)
    client.get(URL)  # warm per-process caches (content types): count only what each request costs
    with django_assert_max_num_queries(5):
        response = assert_status(client.get(URL), 200)
    assert response.json()["count"] == rows
    assert all(len(row["devices"]) == 1 for row in response.json()["results"])
