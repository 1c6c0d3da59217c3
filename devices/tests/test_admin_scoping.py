"""A plant admin's admin pages show, offer and change only the plants they administer."""

import re

import pytest
from django.test import Client

from accounts.models import User
from accounts.roles import Role
from accounts.services import member_set_role
from conftest import assert_status
from devices.models import Device, DeviceGroup, DeviceToken, Line, Plant
from devices.tests.factories import make_device, make_group, make_line, make_token

pytestmark = pytest.mark.django_db


@pytest.fixture
def rows(plant_a, plant_b):
    """Distinctly named rows in both plants, so the HTML can be searched for plant B's names."""
    line_a, line_b = make_line(plant_a, "alpha-line"), make_line(plant_b, "bravo-line")
    device_a = make_device(line_a, uid="alpha-press")
    device_b = make_device(line_b, uid="bravo-press", model="BRAVO-9000")
    group_a = make_group(plant_a, "alpha-group", devices=[device_a])
    group_b = make_group(plant_b, "bravo-group", devices=[device_b])
    token_a, _ = make_token(device_a, name="alpha-token")
    token_b, _ = make_token(device_b, name="bravo-token")
    return {
        "line_a": line_a, "line_b": line_b, "device_a": device_a, "device_b": device_b,
        "group_a": group_a, "group_b": group_b, "token_a": token_a, "token_b": token_b,
    }  # fmt: skip


def html(response) -> str:
    return response.content.decode()


def select_options(body: str, name: str) -> list[str]:
    """Visible labels of the <option>s of the <select name=...> in ``body`` (empty option left out)."""
    match = re.search(rf'<select name="{name}"[^>]*>(.*?)</select>', body, re.S)
    assert match, f"no <select name={name!r}> in the page"
    return [
        label.strip()
        for value, label in re.findall(r'<option value="([^"]*)"[^>]*>([^<]*)</option>', match[1])
        if value
    ]


@pytest.mark.parametrize(
    ("url", "seen", "hidden"),
    [
        ("/admin/devices/plant/", ["Plant A"], ["Plant B"]),
        ("/admin/devices/line/", ["alpha-line"], ["bravo-line", "Plant B"]),
        (
            "/admin/devices/device/",
            ["alpha-press", "alpha-line"],
            ["bravo-press", "bravo-line", "bravo-group", "BRAVO-9000", "Plant B"],
        ),
        ("/admin/devices/devicegroup/", ["alpha-group"], ["bravo-group", "Plant B"]),
        ("/admin/devices/devicetoken/", ["alpha-token", "alpha-press"], ["bravo-token", "bravo-press", "Plant B"]),
    ],
)
def test_changelist_shows_only_plant_a_rows_and_filters_when_user_is_plant_admin(
    plant_admin_client, rows, url, seen, hidden
):
    body = html(assert_status(plant_admin_client.get(url), 200))
    for text in seen:
        assert text in body
    for text in hidden:  # neither the rows nor the filter sidebar may name plant B's objects
        assert text not in body, f"{text!r} leaked into {url}"


def test_changelist_shows_both_plants_when_user_is_superuser(superuser, rows):
    client = Client()
    client.force_login(superuser)
    body = html(assert_status(client.get("/admin/devices/device/"), 200))
    assert "alpha-press" in body and "bravo-press" in body


@pytest.mark.parametrize(
    ("model", "key"),
    [(Plant, None), (Line, "line_b"), (Device, "device_b"), (DeviceGroup, "group_b"), (DeviceToken, "token_b")],
)
def test_hides_change_page_when_object_is_in_foreign_plant(plant_admin_client, rows, plant_b, model, key):
    obj = rows[key] if key else plant_b
    url = f"/admin/devices/{model._meta.model_name}/{obj.pk}/change/"
    response = plant_admin_client.get(url, follow=True)
    body = html(assert_status(response, 200))
    assert response.redirect_chain[-1][0] == "/admin/"
    assert "doesn’t exist" in body
    assert str(obj) not in body


def test_refuses_changing_foreign_device_when_posting_to_its_change_page(plant_admin_client, rows, plant_a):
    device_b = rows["device_b"]
    data = {"uid": "hijacked", "name": "Hijacked", "kind": "machine", "plant": plant_a.pk, "enabled": "on",
            "tokens-TOTAL_FORMS": "0", "tokens-INITIAL_FORMS": "0"}  # fmt: skip
    response = plant_admin_client.post(f"/admin/devices/device/{device_b.pk}/change/", data)
    assert_status(response, 302)
    assert response["Location"] == "/admin/"
    device_b.refresh_from_db()
    assert (device_b.uid, device_b.plant_id) == ("bravo-press", rows["line_b"].plant_id)


@pytest.mark.parametrize(("model", "key"), [(Device, "device_b"), (Line, "line_b"), (DeviceGroup, "group_b")])
def test_refuses_deleting_foreign_row_when_user_is_plant_admin(plant_admin_client, rows, model, key):
    obj = rows[key]
    response = plant_admin_client.post(f"/admin/devices/{model._meta.model_name}/{obj.pk}/delete/", {"post": "yes"})
    assert_status(response, 302)
    assert model.objects.filter(pk=obj.pk).exists()


def test_device_add_form_offers_only_plant_a_lines_and_plants_when_user_is_plant_admin(plant_admin_client, rows):
    body = html(assert_status(plant_admin_client.get("/admin/devices/device/add/"), 200))
    assert select_options(body, "plant") == ["Plant A"]
    assert select_options(body, "line") == ["Plant A / alpha-line"]
    assert "bravo" not in body and "Plant B" not in body


def test_group_form_offers_only_plant_a_devices_when_user_is_plant_admin(plant_admin_client, rows):
    body = html(assert_status(plant_admin_client.get("/admin/devices/devicegroup/add/"), 200))
    assert select_options(body, "plant") == ["Plant A"]
    assert select_options(body, "devices") == ["alpha-press"]


def device_form(plant, line=None, uid="alpha-drill") -> dict:
    return {
        "uid": uid, "name": "Drill", "kind": "machine", "plant": plant.pk, "line": line.pk if line else "",
        "enabled": "on", "tokens-TOTAL_FORMS": "0", "tokens-INITIAL_FORMS": "0",
    }  # fmt: skip


def test_creates_device_in_plant_a_when_plant_admin_submits_add_form(plant_admin_client, rows, plant_a):
    response = plant_admin_client.post("/admin/devices/device/add/", device_form(plant_a, rows["line_a"]))
    assert_status(response, 302)
    device = Device.objects.get(uid="alpha-drill")
    assert (device.plant_id, device.line_id) == (plant_a.pk, rows["line_a"].pk)


def test_rejects_device_when_add_form_names_a_foreign_line(plant_admin_client, rows, plant_a):
    before = Device.objects.count()
    response = plant_admin_client.post("/admin/devices/device/add/", device_form(plant_a, rows["line_b"]))
    body = html(assert_status(response, 200))
    assert "Select a valid choice" in body
    assert Device.objects.count() == before
    assert not Device.objects.filter(uid="alpha-drill").exists()


def test_rejects_device_when_add_form_names_a_foreign_plant(plant_admin_client, rows, plant_b):
    response = plant_admin_client.post("/admin/devices/device/add/", device_form(plant_b, rows["line_b"]))
    assert "Select a valid choice" in html(assert_status(response, 200))
    assert not Device.objects.filter(uid="alpha-drill").exists()


def test_rejects_moving_device_to_foreign_line_when_editing_it(plant_admin_client, rows, plant_a):
    device_a = rows["device_a"]
    data = device_form(plant_a, rows["line_b"], uid="alpha-press")
    response = plant_admin_client.post(f"/admin/devices/device/{device_a.pk}/change/", data)
    assert "Select a valid choice" in html(assert_status(response, 200))
    device_a.refresh_from_db()
    assert device_a.line_id == rows["line_a"].pk


@pytest.mark.parametrize(("model", "key"), [(Device, "device_a"), (Line, "line_a"), (DeviceGroup, "group_a")])
def test_keeps_plant_when_admin_of_both_plants_posts_another_plant(
    plant_admin_client, plant_admin, rows, plant_b, model, key
):
    member_set_role(plant=plant_b, user=plant_admin, role=Role.ADMIN)
    obj = rows[key]
    url = f"/admin/devices/{model._meta.model_name}/{obj.pk}/change/"
    assert 'name="plant"' not in html(assert_status(plant_admin_client.get(url), 200))
    data = {"uid": "alpha-press", "name": "renamed", "kind": "machine", "plant": plant_b.pk, "position": "0",
            "tokens-TOTAL_FORMS": "0", "tokens-INITIAL_FORMS": "0"}  # fmt: skip
    if model is Device:
        data["line"] = rows["line_a"].pk
    if model is DeviceGroup:
        data["devices"] = [rows["device_a"].pk]
    assert_status(plant_admin_client.post(url, data), 302)
    obj.refresh_from_db()
    assert obj.name == "renamed"
    assert obj.plant_id == rows["line_a"].plant_id


def test_refuses_plant_creation_when_user_is_plant_admin(plant_admin_client):
    assert_status(plant_admin_client.get("/admin/devices/plant/add/"), 403)
    response = plant_admin_client.post("/admin/devices/plant/add/", {"name": "Rogue", "time_zone": "UTC"})
    assert_status(response, 403)
    assert not Plant.objects.filter(name="Rogue").exists()


def test_rejects_line_of_other_plant_when_superuser_mixes_plants(superuser, rows, plant_a):
    client = Client()
    client.force_login(superuser)
    response = client.post("/admin/devices/device/add/", device_form(plant_a, rows["line_b"]))
    assert "belongs to another plant" in html(assert_status(response, 200))
    assert not Device.objects.filter(uid="alpha-drill").exists()


def test_rejects_group_with_foreign_devices_when_superuser_mixes_plants(superuser, rows, plant_a):
    client = Client()
    client.force_login(superuser)
    data = {"plant": plant_a.pk, "name": "mixed", "devices": [rows["device_a"].pk, rows["device_b"].pk]}
    response = client.post("/admin/devices/devicegroup/add/", data)
    assert "cannot hold bravo-press of another plant" in html(assert_status(response, 200))
    assert not DeviceGroup.objects.filter(name="mixed").exists()


def test_rejects_foreign_device_when_superuser_edits_a_group(superuser, rows):
    client = Client()
    client.force_login(superuser)
    group_a = rows["group_a"]
    data = {"name": "alpha-group", "devices": [rows["device_a"].pk, rows["device_b"].pk]}
    response = client.post(f"/admin/devices/devicegroup/{group_a.pk}/change/", data)
    assert "cannot hold bravo-press of another plant" in html(assert_status(response, 200))
    assert list(group_a.devices.values_list("uid", flat=True)) == ["alpha-press"]


def test_device_change_page_lists_its_tokens_when_user_is_plant_admin(plant_admin_client, rows):
    body = html(assert_status(plant_admin_client.get(f"/admin/devices/device/{rows['device_a'].pk}/change/"), 200))
    assert rows["token_a"].prefix in body
    assert rows["token_b"].prefix not in body


def test_hides_raw_object_permissions_when_user_is_plant_admin(plant_admin_client, plant_a, outsider):
    """Roles are granted on the members page only; raw guardian grants would bypass its checks."""
    response = plant_admin_client.get(f"/admin/devices/plant/{plant_a.pk}/permissions/", follow=True)
    assert "Object permissions" not in html(response)
    url = f"/admin/devices/plant/{plant_a.pk}/permissions/user-manage/{outsider.pk}/"
    response = plant_admin_client.post(url, {"permissions": ["manage_plant", "change_plant"]}, follow=True)
    assert "Permissions saved" not in html(response)
    assert not User.objects.get(pk=outsider.pk).has_perm("devices.manage_plant", plant_a)


def test_device_changelist_query_count_stays_constant_when_devices_grow(
    plant_admin_client, plant_a, django_assert_max_num_queries
):
    lines = [make_line(plant_a, f"line-{i}") for i in range(2)]
    group = make_group(plant_a, "all")
    bound = 15  # session, user, admin checks, sidebar filters, counts, one page of rows
    for i in range(5):
        group.devices.add(make_device(lines[i % 2], uid=f"dev-{i:02d}"))
    with django_assert_max_num_queries(bound) as small:
        assert_status(plant_admin_client.get("/admin/devices/device/"), 200)
    for i in range(5, 40):
        group.devices.add(make_device(lines[i % 2], uid=f"dev-{i:02d}"))
    with django_assert_max_num_queries(bound) as large:
        body = html(assert_status(plant_admin_client.get("/admin/devices/device/"), 200))
    assert "dev-39" in body and ">line-1<" in body
    assert len(large.captured_queries) == len(small.captured_queries)


def test_device_list_shows_state_and_the_change_page_latest_values_of_own_devices_only(plant_admin_client, rows):
    from django.core.cache import cache
    from django.utils import timezone

    from devices.selectors import latest_cache_key
    from devices.services.ingest import IngestItem, telemetry_store
    from devices.services.telemetry_payload import Message

    now = timezone.now().replace(microsecond=0)
    for device, temperature in ((rows["device_a"], 71.25), (rows["device_b"], 99.75)):
        message = Message(ts=now, values={"temperature": temperature, "vibration": 0.5}, state="running")
        telemetry_store([IngestItem(device=Device.objects.get(pk=device.pk), messages=[message])], received_at=now)
        cache.delete(latest_cache_key(device.pk))  # ids repeat between tests; a reader may cache for 2 s

    body = html(assert_status(plant_admin_client.get("/admin/devices/device/"), 200))
    assert "running" in body
    assert "71.25" not in body  # one line per device: the values are on the device's page
    page = html(assert_status(plant_admin_client.get(f"/admin/devices/device/{rows['device_a'].pk}/change/"), 200))
    assert "<th scope='row' title='temperature'>Temperature</th><td>71.3 °C</td>" in page  # rounded as the browser does
    assert "<td>0.500 mm/s</td>" in page
    assert plant_admin_client.get(f"/admin/devices/device/{rows['device_b'].pk}/change/").status_code in (302, 404)
