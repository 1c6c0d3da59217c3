"""Device tokens through the management API: issue (shown once), list, revoke, rotate.

/api/v1/devices/<id>/tokens/ and /api/v1/device-tokens/ (CONTRACT.md "Device authentication").
"""

from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.test import Client
from django.utils import timezone

from conftest import assert_status
from devices.models import DeviceToken
from devices.tests.factories import make_device, make_line, make_plant, make_token

pytestmark = pytest.mark.django_db

URL = "/api/v1/device-tokens/"


@pytest.fixture
def press(plant_a):
    return make_device(make_line(plant_a, "Press line"), "press-07")


@pytest.fixture
def foreign(plant_b):
    return make_device(make_line(plant_b, "Foreign line"), "foreign-01")


@pytest.fixture
def token_a(press):
    return make_token(press, "PLC")[0]


@pytest.fixture
def token_b(foreign):
    return make_token(foreign, "Foreign PLC")[0]


def issue_url(device) -> str:
    return f"/api/v1/devices/{device.pk}/tokens/"


def token_state() -> list[tuple]:
    return list(DeviceToken.objects.order_by("pk").values_list("pk", "device_id", "name", "expires_at", "revoked_at"))


def device_answers(plain: str) -> int:
    """What the device-facing endpoint answers to this token (200, 401 or 403)."""
    return Client().get("/api/v1/device/", HTTP_AUTHORIZATION=f"Device {plain}").status_code


def stored_columns() -> list[str]:
    """Every column of every DeviceToken row, as the database holds it."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {DeviceToken._meta.db_table}")
        return [str(value) for row in cursor.fetchall() for value in row]


def test_issues_token_shown_once_when_plant_admin_posts_name(client_for, plant_admin, press):
    client = client_for(plant_admin)
    response = assert_status(client.post(issue_url(press), {"name": "Line PLC"}), 201)
    body = response.json()
    token = DeviceToken.objects.get(pk=body["id"])
    assert (token.device_id, token.name, token.created_by_id) == (press.pk, "Line PLC", plant_admin.pk)
    assert body["token"].startswith(f"{token.prefix}.")
    assert body["active"] is True
    secret = body["token"].partition(".")[2]
    assert not any(body["token"] in value or secret in value for value in stored_columns())
    listed = assert_status(client.get(issue_url(press)), 200).content.decode()
    detail = assert_status(client.get(f"{URL}{token.pk}/"), 200).json()
    assert secret not in listed
    assert "token" not in detail
    assert device_answers(body["token"]) == 200


def test_lists_device_tokens_without_plain_token_when_viewer_reads(client_for, viewer, press, token_a):
    body = assert_status(client_for(viewer).get(issue_url(press)), 200).json()["results"]
    assert [(row["id"], row["name"], row["device_uid"], row["active"]) for row in body] == [
        (token_a.pk, "PLC", "press-07", True)
    ]
    assert "token" not in body[0]
    assert "key_hash" not in body[0]


@pytest.mark.parametrize("method", ["get", "post"])
def test_answers_404_when_outsider_uses_tokens_of_device_in_plant_a(client_for, outsider, press, token_a, method):
    before = token_state()
    assert_status(getattr(client_for(outsider), method)(issue_url(press), {"name": "x"}), 404)
    assert token_state() == before


@pytest.mark.parametrize("persona", ["viewer", "operator"])
def test_answers_403_and_issues_nothing_when_non_admin_posts(request, client_for, press, token_a, persona):
    before = token_state()
    response = assert_status(client_for(request.getfixturevalue(persona)).post(issue_url(press), {"name": "x"}), 403)
    assert "admin role" in response.json()["detail"]
    assert "token" not in response.json()
    assert token_state() == before


@pytest.mark.parametrize(
    ("body", "field"),
    [({}, "name"), ({"name": ""}, "name"), ({"name": "x" * 101}, "name"), ({"name": "x", "prefix": "abc"}, "prefix")],
)
def test_answers_400_naming_field_when_issue_body_is_invalid(client_for, plant_admin, press, body, field):
    response = assert_status(client_for(plant_admin).post(issue_url(press), body), 400)
    assert field in response.json()["errors"]
    assert not DeviceToken.objects.exists()


def test_answers_400_and_issues_nothing_when_issue_body_is_not_json(client_for, plant_admin, press):
    response = client_for(plant_admin).post(issue_url(press), data='{"name":', content_type="application/json")
    assert "JSON parse error" in assert_status(response, 400).json()["detail"]
    assert not DeviceToken.objects.exists()


def test_lists_only_plant_a_tokens_when_viewer_lists(client_for, viewer, token_a, token_b):
    body = assert_status(client_for(viewer).get(URL), 200).json()
    assert [row["id"] for row in body["results"]] == [token_a.pk]
    assert "token" not in body["results"][0]


def test_filters_tokens_by_device_and_revoked_when_query_given(client_for, plant_admin, press, token_a, token_b):
    revoked, _ = make_token(press, "old")
    revoked.revoke(timezone.now())
    client = client_for(plant_admin)
    assert [r["id"] for r in client.get(URL, {"revoked": "true"}).json()["results"]] == [revoked.pk]
    assert [r["id"] for r in client.get(URL, {"revoked": "false"}).json()["results"]] == [token_a.pk]
    assert client.get(URL, {"device": token_b.device_id}).json()["count"] == 0
    assert client.get(URL, {"device": token_b.device_id + 1000}).json()["count"] == 0


@pytest.mark.parametrize("action", ["", "revoke/", "rotate/"])
def test_answers_404_when_outsider_touches_token_of_plant_a(client_for, outsider, token_a, action):
    before = token_state()
    client = client_for(outsider)
    response = client.get(f"{URL}{token_a.pk}/") if not action else client.post(f"{URL}{token_a.pk}/{action}")
    assert_status(response, 404)
    assert token_state() == before


def test_answers_404_when_plant_admin_reads_token_of_plant_b(client_for, plant_admin, token_b):
    assert_status(client_for(plant_admin).get(f"{URL}{token_b.pk}/"), 404)


@pytest.mark.parametrize("method", ["patch", "put", "delete"])
def test_answers_405_and_keeps_token_when_client_edits_token_directly(client_for, plant_admin, token_a, method):
    before = token_state()
    assert_status(getattr(client_for(plant_admin), method)(f"{URL}{token_a.pk}/", {"name": "x"}), 405)
    assert token_state() == before


@pytest.mark.parametrize("persona", ["viewer", "operator"])
@pytest.mark.parametrize("action", ["revoke/", "rotate/"])
def test_answers_403_and_changes_nothing_when_non_admin_revokes_or_rotates(
    request, client_for, token_a, persona, action
):
    before = token_state()
    response = assert_status(client_for(request.getfixturevalue(persona)).post(f"{URL}{token_a.pk}/{action}"), 403)
    assert "admin role" in response.json()["detail"]
    assert token_state() == before


def test_revokes_token_at_once_when_plant_admin_revokes(client_for, plant_admin, press):
    token, plain = make_token(press, "PLC")
    body = assert_status(client_for(plant_admin).post(f"{URL}{token.pk}/revoke/"), 200).json()
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert (body["active"], body["revoked_at"] is not None) == (False, True)
    assert device_answers(plain) == 403


def test_keeps_first_revocation_time_when_token_is_revoked_twice(client_for, plant_admin, token_a):
    client = client_for(plant_admin)
    first = assert_status(client.post(f"{URL}{token_a.pk}/revoke/"), 200).json()["revoked_at"]
    with time_machine.travel(timezone.now() + timedelta(hours=1)):
        second = assert_status(client.post(f"{URL}{token_a.pk}/revoke/"), 200).json()["revoked_at"]
    assert first == second
    token_a.refresh_from_db()
    assert token_a.revoked_at.isoformat().replace("+00:00", "Z") == first


def test_issues_replacement_and_revokes_old_when_rotated_without_grace(client_for, plant_admin, press):
    old, old_plain = make_token(press, "PLC")
    body = assert_status(client_for(plant_admin).post(f"{URL}{old.pk}/rotate/"), 201).json()
    new = DeviceToken.objects.get(pk=body["id"])
    assert (new.device_id, new.name, new.created_by_id) == (press.pk, "PLC", plant_admin.pk)
    old.refresh_from_db()
    assert old.revoked_at is not None
    assert device_answers(old_plain) == 403
    assert device_answers(body["token"]) == 200
    assert body["token"] not in " ".join(stored_columns())


def test_keeps_old_token_working_until_grace_ends_when_rotated_with_grace(client_for, plant_admin, press):
    old, old_plain = make_token(press, "PLC")
    before = timezone.now()
    body = assert_status(client_for(plant_admin).post(f"{URL}{old.pk}/rotate/", {"grace_seconds": 3600}), 201).json()
    old.refresh_from_db()
    assert old.revoked_at is None
    assert before + timedelta(seconds=3600) <= old.expires_at <= timezone.now() + timedelta(seconds=3600)
    assert device_answers(old_plain) == 200
    assert device_answers(body["token"]) == 200
    with time_machine.travel(old.expires_at + timedelta(seconds=1)):
        assert device_answers(old_plain) == 403
        assert device_answers(body["token"]) == 200


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"grace_seconds": -1}, "grace_seconds"),
        ({"grace_seconds": "soon"}, "grace_seconds"),
        ({"grace_seconds": 30 * 86400 + 1}, "grace_seconds"),
        ({"grace_seconds": 1.5}, "grace_seconds"),
        ({"grace": 60}, "grace"),
    ],
)
def test_answers_400_and_rotates_nothing_when_rotate_body_is_invalid(client_for, plant_admin, token_a, body, field):
    before = token_state()
    response = assert_status(client_for(plant_admin).post(f"{URL}{token_a.pk}/rotate/", body), 400)
    assert field in response.json()["errors"]
    assert token_state() == before


def test_answers_400_and_rotates_nothing_when_rotate_body_is_not_json(client_for, plant_admin, token_a):
    before = token_state()
    response = client_for(plant_admin).post(f"{URL}{token_a.pk}/rotate/", data="{", content_type="application/json")
    assert_status(response, 400)
    assert token_state() == before


def test_answers_400_and_issues_nothing_when_revoked_token_is_rotated(client_for, plant_admin, press):
    old, old_plain = make_token(press, "PLC")
    old.revoke(timezone.now())
    before = token_state()
    response = assert_status(client_for(plant_admin).post(f"{URL}{old.pk}/rotate/", {"grace_seconds": 600}), 400)
    assert "revoked" in response.json()["detail"]
    assert token_state() == before
    assert device_answers(old_plain) == 403


def test_answers_400_and_keeps_token_dead_when_expired_token_is_rotated_with_grace(client_for, plant_admin, press):
    old, old_plain = make_token(press, "PLC")
    client = client_for(plant_admin)
    assert_status(client.post(f"{URL}{old.pk}/rotate/", {"grace_seconds": 60}), 201)
    with time_machine.travel(timezone.now() + timedelta(minutes=5)):
        before = token_state()
        response = assert_status(client.post(f"{URL}{old.pk}/rotate/", {"grace_seconds": 3600}), 400)
        assert "expired" in response.json()["detail"]
        assert token_state() == before
        assert device_answers(old_plain) == 403


def test_shortens_never_extends_grace_when_token_in_grace_is_rotated_again(client_for, plant_admin, press):
    old, _ = make_token(press, "PLC")
    client = client_for(plant_admin)
    assert_status(client.post(f"{URL}{old.pk}/rotate/", {"grace_seconds": 60}), 201)
    old.refresh_from_db()
    first_expiry = old.expires_at
    assert_status(client.post(f"{URL}{old.pk}/rotate/", {"grace_seconds": 86400}), 201)
    old.refresh_from_db()
    assert old.expires_at == first_expiry
    assert DeviceToken.objects.filter(device=press).count() == 3


@pytest.mark.parametrize("rows", [3, 30])
def test_keeps_list_query_count_constant_when_tokens_grow(
    client_for, plant_admin, plant_a, rows, django_assert_max_num_queries
):
    line = make_line(plant_a, "Press line")
    other = make_device(make_line(make_plant(), "Elsewhere"), "other-01")
    for index in range(rows):
        make_token(make_device(line, f"press-{index:03d}"), "PLC")
        make_token(other, f"other {index}")
    client = client_for(plant_admin)
    client.get(URL)  # warm per-process caches (content types): count only what each request costs
    with django_assert_max_num_queries(4):
        response = assert_status(client.get(URL), 200)
    assert response.json()["count"] == rows
    device = make_device(line, "many-tokens")
    for index in range(rows):
        make_token(device, f"t{index}")
    with django_assert_max_num_queries(8):  # paginated: one COUNT more
        listed = assert_status(client.get(issue_url(device)), 200)
    assert len(listed.json()["results"]) == rows
