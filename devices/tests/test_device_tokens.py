"""Device tokens (CONTRACT.md "Device authentication"): hashed at rest, checked on every request."""

import hashlib
import hmac
from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.test import Client
from django.utils import timezone

from conftest import assert_status
from devices.models import DeviceToken
from devices.services.tokens import token_revoke, token_rotate
from devices.tests.factories import make_device, make_line, make_token

pytestmark = pytest.mark.django_db

DEVICE_URL = "/api/v1/device/"


@pytest.fixture
def press(plant_a):
    return make_device(make_line(plant_a, "Press line"), "press-07")


def call(plain: str | None = None, *, header: str | None = None):
    """GET /api/v1/device/ as a device would, with ``Authorization: Device <plain>`` (or a raw header)."""
    if header is None and plain is not None:
        header = f"Device {plain}"
    extra = {"HTTP_AUTHORIZATION": header} if header is not None else {}
    return Client().get(DEVICE_URL, **extra)


def stored_values(token: DeviceToken) -> list[str]:
    """Every column of the token's row as the database holds it."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {DeviceToken._meta.db_table} WHERE id = %s", [token.pk])
        row = cursor.fetchone()
    return [str(value) for value in row]


def test_stores_only_prefix_and_hmac_when_token_is_issued(press, settings):
    token, plain = make_token(press, "line PLC")
    prefix, _, secret = plain.partition(".")
    assert len(secret) >= 32
    values = stored_values(token)
    assert not any(plain in value for value in values)
    assert not any(secret in value for value in values)
    expected = hmac.new(settings.DEVICE_TOKEN_HASH_KEY.encode(), plain.encode(), hashlib.sha256).hexdigest()
    assert token.key_hash == expected
    assert token.prefix == prefix


def test_issues_distinct_tokens_when_called_twice_for_one_device(press):
    (first, first_plain), (second, second_plain) = make_token(press), make_token(press)
    assert first_plain != second_plain
    assert first.prefix != second.prefix
    assert first.key_hash != second.key_hash


def test_never_returns_plain_token_again_when_tokens_are_listed_via_api(client_for, plant_admin, press):
    client = client_for(plant_admin)
    created = assert_status(client.post(f"/api/v1/devices/{press.pk}/tokens/", {"name": "PLC"}), 201).json()
    plain = created["token"]
    assert_status(call(plain), 200)
    listed = assert_status(client.get(f"/api/v1/devices/{press.pk}/tokens/"), 200).content.decode()
    detail = assert_status(client.get(f"/api/v1/device-tokens/{created['id']}/"), 200).content.decode()
    secret = plain.partition(".")[2]
    assert secret not in listed
    assert secret not in detail
    assert not any(secret in value for value in stored_values(DeviceToken.objects.get(pk=created["id"])))


def test_answers_200_with_uid_when_token_is_good(press):
    _, plain = make_token(press)
    response = assert_status(call(plain), 200)
    body = response.json()
    assert body["uid"] == "press-07"
    assert body["kind"] == "machine"
    assert body["firmware_version"] == "1.0.0"


def test_answers_401_when_token_is_unknown(press):
    _, plain = make_token(press)
    prefix = plain.partition(".")[0]
    response = assert_status(call(f"{prefix}.not-the-secret"), 401)
    assert "Unknown device token" in response.json()["detail"]
    response = assert_status(call("ffffffffffff.whatever"), 401)
    assert "Unknown device token" in response.json()["detail"]


@pytest.mark.parametrize("template", ["device {}", "DEVICE {}", "Device  {} "])
def test_answers_200_when_scheme_case_or_spacing_differs(press, template):
    _, plain = make_token(press)
    assert_status(call(header=template.format(plain)), 200)


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "Device",
        "Device ",
        "Bearer abc.def",
        "Token abc.def",
        "Device no-dot-here",
        "Device .secret-without-prefix",
        "Deviceabc.def",
    ],
)
def test_answers_401_json_when_header_is_malformed(press, header):
    response = assert_status(call(header=header), 401)
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["detail"]


def test_answers_401_when_token_of_another_device_is_tampered_with(press, plant_b):
    other = make_device(make_line(plant_b), "paint-01")
    _, mine = make_token(press)
    _, theirs = make_token(other)
    spliced = f"{mine.partition('.')[0]}.{theirs.partition('.')[2]}"
    assert_status(call(spliced), 401)


def test_answers_403_with_message_when_token_is_revoked(press):
    token, plain = make_token(press, "line PLC")
    assert token_revoke(token=token) is True
    response = assert_status(call(plain), 403)
    assert "revoked" in response.json()["detail"]
    assert "line PLC" in response.json()["detail"]
    # Idempotent: a second revoke changes nothing.
    revoked_at = DeviceToken.objects.get(pk=token.pk).revoked_at
    assert token_revoke(token=token) is False
    assert DeviceToken.objects.get(pk=token.pk).revoked_at == revoked_at


def test_answers_403_on_next_request_when_token_is_revoked_via_api(client_for, plant_admin, press):
    token, plain = make_token(press)
    assert_status(call(plain), 200)
    assert_status(client_for(plant_admin).post(f"/api/v1/device-tokens/{token.pk}/revoke/"), 200)
    assert_status(call(plain), 403)


def test_answers_403_with_message_when_device_is_disabled(press):
    _, plain = make_token(press)
    assert_status(call(plain), 200)
    press.enabled = False
    press.save(update_fields=["enabled"])
    response = assert_status(call(plain), 403)
    assert "press-07" in response.json()["detail"]
    assert "disabled" in response.json()["detail"]


def test_accepts_old_token_when_rotated_with_grace_and_still_within_it(press):
    old, old_plain = make_token(press, "PLC")
    new, new_plain = token_rotate(token=old, grace_seconds=3600)
    assert new.name == "PLC"
    with time_machine.travel(timezone.now() + timedelta(minutes=59), tick=False):
        assert_status(call(old_plain), 200)
        assert_status(call(new_plain), 200)


def test_answers_403_when_rotated_token_is_used_after_grace(press):
    old, old_plain = make_token(press, "PLC")
    _, new_plain = token_rotate(token=old, grace_seconds=3600)
    with time_machine.travel(timezone.now() + timedelta(seconds=3601), tick=False):
        response = assert_status(call(old_plain), 403)
        assert "expired" in response.json()["detail"]
        assert "PLC" in response.json()["detail"]
        assert_status(call(new_plain), 200)


def test_answers_403_at_once_when_rotated_without_grace(press):
    old, old_plain = make_token(press)
    _, new_plain = token_rotate(token=old)
    old.refresh_from_db()
    assert old.revoked_at is not None
    assert_status(call(old_plain), 403)
    assert_status(call(new_plain), 200)


def test_records_last_used_at_when_token_is_first_used(press):
    token, plain = make_token(press)
    assert token.last_used_at is None
    moment = timezone.now().replace(microsecond=0)
    with time_machine.travel(moment, tick=False):
        assert_status(call(plain), 200)
    token.refresh_from_db()
    assert token.last_used_at == moment


def test_updates_last_used_at_at_most_once_a_minute_when_device_calls_often(press):
    token, plain = make_token(press)
    start = timezone.now().replace(microsecond=0)
    with time_machine.travel(start, tick=False):
        assert_status(call(plain), 200)
    for seconds in (1, 30, 59):
        with time_machine.travel(start + timedelta(seconds=seconds), tick=False):
            assert_status(call(plain), 200)
        token.refresh_from_db()
        assert token.last_used_at == start
    with time_machine.travel(start + timedelta(seconds=61), tick=False):
        assert_status(call(plain), 200)
    token.refresh_from_db()
    assert token.last_used_at == start + timedelta(seconds=61)


def test_writes_nothing_when_token_is_used_within_the_minute(press, django_assert_num_queries):
    token, plain = make_token(press)
    assert_status(call(plain), 200)
    # One SELECT (token joined to device), no UPDATE.
    with django_assert_num_queries(1):
        assert_status(call(plain), 200)


def test_answers_405_json_when_device_endpoint_gets_a_post(press):
    _, plain = make_token(press)
    response = Client().post(DEVICE_URL, {}, HTTP_AUTHORIZATION=f"Device {plain}")
    assert_status(response, 405)
    assert response["Allow"] == "GET"
    assert response.json()["detail"]
