"""Batch actions of the device admin and the token admin, as a plant manager uses them."""

import re

import pytest
from django.contrib.sessions.models import Session
from django.test import Client

from accounts.roles import Role
from accounts.services import member_set_role
from conftest import assert_status
from devices.exceptions import DeviceAuthError
from devices.models import Device, DeviceToken
from devices.services.tokens import token_authenticate
from devices.tests.factories import make_device, make_group, make_line, make_token

pytestmark = pytest.mark.django_db

DEVICES_URL = "/admin/devices/device/"
TOKENS_URL = "/admin/devices/devicetoken/"


@pytest.fixture
def line_a(plant_a):
    return make_line(plant_a, "alpha-line")


@pytest.fixture
def line_a2(plant_a):
    return make_line(plant_a, "alpha-second")


@pytest.fixture
def line_b(plant_b):
    return make_line(plant_b, "bravo-line")


@pytest.fixture
def presses(line_a):
    return [make_device(line_a, uid=f"alpha-press-{i}") for i in range(3)]


def run_action(client, action: str, devices, url: str = DEVICES_URL, **extra):
    """POST the changelist's action form the way the browser does (the "Go" button sends ``index``)."""
    data = {"action": action, "_selected_action": [d.pk for d in devices], "index": "0", "select_across": "0"}
    return client.post(url, data, **extra)


def apply_action(client, action: str, devices, target, url: str = DEVICES_URL):
    """POST the intermediate form back with ``apply``, as its "Apply" button does."""
    data = {"action": action, "_selected_action": [d.pk for d in devices], "target": target, "apply": "Apply"}
    return client.post(url, data)


def html(response) -> str:
    return response.content.decode()


def target_options(body: str) -> list[str]:
    select = re.search(r'<select name="target"[^>]*>(.*?)</select>', body, re.S)
    assert select, "the intermediate page has no target choice"
    return [label for value, label in re.findall(r'<option value="([^"]*)"[^>]*>([^<]*)</option>', select[1]) if value]


def enabled_flags(devices) -> list[bool]:
    return list(Device.objects.filter(pk__in=[d.pk for d in devices]).order_by("uid").values_list("enabled", flat=True))


def test_disables_then_enables_devices_when_plant_admin_runs_the_actions(plant_admin_client, presses):
    chosen = presses[:2]
    response = run_action(plant_admin_client, "disable", chosen, follow=True)
    assert "Disable: 2 device(s)." in html(assert_status(response, 200))
    assert enabled_flags(presses) == [False, False, True]
    response = run_action(plant_admin_client, "enable", chosen, follow=True)
    assert "Enable: 2 device(s)." in html(assert_status(response, 200))
    assert enabled_flags(presses) == [True, True, True]


def test_leaves_foreign_device_alone_when_its_pk_is_posted_with_an_action(plant_admin_client, presses, line_b):
    foreign = make_device(line_b, uid="bravo-press")
    response = run_action(plant_admin_client, "disable", [presses[0], foreign], follow=True)
    assert "Disable: 1 device(s)." in html(assert_status(response, 200))
    foreign.refresh_from_db()
    assert foreign.enabled is True


def test_shows_line_choice_first_then_moves_when_apply_is_posted(plant_admin_client, presses, line_a2, line_b):
    response = assert_status(run_action(plant_admin_client, "move", presses[:2]), 200)
    body = html(response)
    assert "Move selected devices to a line" in body
    assert "alpha-press-0, alpha-press-1" in body
    assert target_options(body) == ["Plant A / alpha-line", "Plant A / alpha-second"]
    assert list(Device.objects.filter(line=line_a2)) == []  # the first POST only asks

    response = assert_status(apply_action(plant_admin_client, "move", presses[:2], line_a2.pk), 302)
    messages = html(plant_admin_client.get(response["Location"]))
    assert "Move: 2 device(s)." in messages
    assert sorted(Device.objects.filter(line=line_a2).values_list("uid", flat=True)) == [
        "alpha-press-0",
        "alpha-press-1",
    ]


def test_refuses_move_when_target_line_is_in_foreign_plant(plant_admin_client, presses, line_a, line_b):
    body = html(assert_status(apply_action(plant_admin_client, "move", presses, line_b.pk), 200))
    assert "Select a valid choice" in body
    assert "bravo-line" not in body
    assert Device.objects.filter(line=line_a).count() == 3
    assert not Device.objects.filter(line=line_b).exists()


def test_refuses_move_with_message_when_admin_of_both_plants_picks_other_plants_line(
    plant_admin_client, plant_admin, plant_b, presses, line_a, line_b
):
    member_set_role(plant=plant_b, user=plant_admin, role=Role.ADMIN)
    assert "Plant B / bravo-line" in target_options(html(run_action(plant_admin_client, "move", presses)))
    response = apply_action(plant_admin_client, "move", presses, line_b.pk)
    body = html(assert_status(plant_admin_client.get(assert_status(response, 302)["Location"]), 200))
    assert "belongs to plant" in body and "Plant B" in body
    assert Device.objects.filter(line=line_a).count() == 3


def test_adds_and_removes_group_members_when_plant_admin_applies_group_actions(
    plant_admin_client, plant_a, plant_b, presses
):
    group = make_group(plant_a, "alpha-group")
    make_group(plant_b, "bravo-group")
    body = html(assert_status(run_action(plant_admin_client, "add_to_group", presses[:2]), 200))
    assert target_options(body) == ["alpha-group"]

    assert_status(apply_action(plant_admin_client, "add_to_group", presses[:2], group.pk), 302)
    assert sorted(group.devices.values_list("uid", flat=True)) == ["alpha-press-0", "alpha-press-1"]

    assert_status(apply_action(plant_admin_client, "remove_from_group", presses[:1], group.pk), 302)
    assert list(group.devices.values_list("uid", flat=True)) == ["alpha-press-1"]


def test_refuses_add_to_group_when_group_is_in_foreign_plant(plant_admin_client, plant_b, presses):
    foreign_group = make_group(plant_b, "bravo-group")
    body = html(assert_status(apply_action(plant_admin_client, "add_to_group", presses, foreign_group.pk), 200))
    assert "Select a valid choice" in body
    assert foreign_group.devices.count() == 0


def issued_tokens(body: str) -> dict[str, str]:
    table = re.search(r'<table id="issued-tokens">(.*?)</table>', body, re.S)
    assert table, "no table of issued tokens"
    return dict(re.findall(r"<tr><td>([^<]+)</td><td><code>([^<]+)</code></td></tr>", table[1]))


def test_shows_each_plain_token_once_when_tokens_are_issued(plant_admin_client, presses):
    chosen = presses[:2]
    body = html(assert_status(run_action(plant_admin_client, "issue_tokens", chosen), 200))
    assert "Issue device tokens" in body and 'name="target"' in body
    assert not DeviceToken.objects.exists()  # the first POST only asks for the name

    body = html(assert_status(apply_action(plant_admin_client, "issue_tokens", chosen, "line-gateway"), 200))
    tokens = issued_tokens(body)
    assert sorted(tokens) == ["alpha-press-0", "alpha-press-1"]
    for uid, plain in tokens.items():
        assert token_authenticate(plain).uid == uid
    rows = DeviceToken.objects.filter(device__in=chosen)
    assert sorted(rows.values_list("name", flat=True)) == ["line-gateway", "line-gateway"]
    assert rows.filter(created_by__username="plantadmin").count() == 2


def test_keeps_plain_tokens_out_of_db_session_and_messages_when_tokens_are_issued(plant_admin_client, presses):
    body = html(apply_action(plant_admin_client, "issue_tokens", presses[:2], "provisioned"))
    plains = list(issued_tokens(body).values())
    assert len(plains) == 2
    stored = [str(value) for row in DeviceToken.objects.values() for value in row.values()]
    sessions = [str(s.get_decoded()) + s.session_data for s in Session.objects.all()]
    later = html(plant_admin_client.get(DEVICES_URL))  # any message left over would show here
    cookies = str(plant_admin_client.cookies)
    for plain in plains:
        secret = plain.split(".", 1)[1]
        assert not any(secret in value for value in stored)
        assert not any(secret in value for value in sessions)
        assert secret not in later and secret not in cookies


def test_issues_no_token_for_foreign_device_when_its_pk_is_posted(plant_admin_client, presses, line_b):
    foreign = make_device(line_b, uid="bravo-press")
    body = html(apply_action(plant_admin_client, "issue_tokens", [presses[0], foreign], "provisioned"))
    assert sorted(issued_tokens(body)) == ["alpha-press-0"]
    assert not DeviceToken.objects.filter(device=foreign).exists()


def test_revokes_token_when_plant_admin_runs_revoke_action(plant_admin_client, presses):
    row, plain = make_token(presses[0], name="alpha-token")
    kept, kept_plain = make_token(presses[1], name="alpha-kept")
    assert token_authenticate(plain) == presses[0]
    response = run_action(plant_admin_client, "revoke", [row], url=TOKENS_URL, follow=True)
    assert "Revoked 1 token(s)." in html(assert_status(response, 200))
    with pytest.raises(DeviceAuthError) as refused:
        token_authenticate(plain)
    assert refused.value.status == 403
    assert token_authenticate(kept_plain) == presses[1]


def test_leaves_foreign_token_active_when_its_pk_is_posted_to_revoke(plant_admin_client, presses, line_b):
    foreign_row, foreign_plain = make_token(make_device(line_b, uid="bravo-press"))
    response = run_action(plant_admin_client, "revoke", [foreign_row], url=TOKENS_URL, follow=True)
    assert_status(response, 200)
    assert token_authenticate(foreign_plain).uid == "bravo-press"


@pytest.mark.parametrize("persona", ["plant_admin", "superuser"])
def test_offers_no_add_page_when_user_opens_token_admin(persona, request, presses):
    client = Client()
    client.force_login(request.getfixturevalue(persona))
    assert "/admin/devices/devicetoken/add/" not in html(assert_status(client.get(TOKENS_URL), 200))
    assert_status(client.get("/admin/devices/devicetoken/add/"), 403)
    assert not DeviceToken.objects.exists()


@pytest.mark.parametrize("persona", ["plant_admin", "superuser"])
def test_offers_no_token_delete_when_user_opens_token_admin(persona, request, presses):
    # A deleted row would also forget that the MQTT broker holds the token as the device's
    # password (DeviceToken.mqtt_password_at): the broker would accept it on. Tokens are revoked.
    client = Client()
    client.force_login(request.getfixturevalue(persona))
    row, plain = make_token(presses[0], name="alpha-token")
    delete_url = f"{TOKENS_URL}{row.pk}/delete/"
    assert delete_url not in html(assert_status(client.get(f"{TOKENS_URL}{row.pk}/change/"), 200))
    assert 'value="delete_selected"' not in html(assert_status(client.get(TOKENS_URL), 200))
    assert_status(client.get(delete_url), 403)
    assert_status(client.post(delete_url, {"post": "yes"}), 403)
    client.post(TOKENS_URL, {"action": "delete_selected", "_selected_action": [row.pk], "index": "0", "post": "yes"})
    assert DeviceToken.objects.filter(pk=row.pk).exists()
    assert token_authenticate(plain) == presses[0]
