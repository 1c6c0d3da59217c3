"""``Authorization: Api-Key <key>``: a service account's key on the management API, under its plant role."""

import hmac
from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import ApiKey
from accounts.roles import Role
from accounts.services import api_key_issue, api_key_revoke, service_account_create
from alerts.models import Alarm
from alerts.services.alarms import alarm_raise
from alerts.tests.factories import at, make_rule
from conftest import assert_status
from devices.models import Device
from devices.tests.factories import make_device, make_line

pytestmark = pytest.mark.django_db


@pytest.fixture
def press(plant_a):
    return make_device(make_line(plant_a, "Stamping"), "press-01")


@pytest.fixture
def foreign_press(plant_b):
    return make_device(make_line(plant_b, "Welding"), "weld-01")


@pytest.fixture
def alarm(plant_a, press):
    return alarm_raise(rule=make_rule(plant_a, name="Hot"), device=press, value=91.0, at=at(0))


@pytest.fixture
def foreign_alarm(plant_b, foreign_press):
    return alarm_raise(rule=make_rule(plant_b), device=foreign_press, value=91.0, at=at(0))


@pytest.fixture
def key_for(plant_a):
    """``key_for(role)`` → (row, plain key) of a new service account holding ``role`` on plant A."""

    def make(role: str, name: str = "erp"):
        account = service_account_create(name=name, plant=plant_a, role=role)
        return api_key_issue(account=account, name="prod")

    return make


def api(plain: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {plain}")
    return client


def test_viewer_key_reads_plant_a_devices_and_alarms_and_nothing_of_plant_b(
    key_for, press, foreign_press, alarm, foreign_alarm
):
    _, plain = key_for(Role.VIEWER)
    client = api(plain)
    devices = assert_status(client.get("/api/v1/devices/"), 200).json()["results"]
    assert [row["uid"] for row in devices] == ["press-01"]
    alarms = assert_status(client.get("/api/v1/alarms/"), 200).json()["results"]
    assert [row["id"] for row in alarms] == [alarm.pk]
    assert_status(client.get(f"/api/v1/devices/{foreign_press.pk}/"), 404)
    assert_status(client.get(f"/api/v1/alarms/{foreign_alarm.pk}/"), 404)
    me = assert_status(client.get("/api/v1/users/me/"), 200).json()
    assert (me["username"], me["roles"]) == ("erp", {str(press.plant_id): "viewer"})


def test_viewer_key_gets_403_naming_the_role_on_writes(key_for, plant_a, press, alarm):
    _, plain = key_for(Role.VIEWER)
    client = api(plain)
    body = {"uid": "press-02", "name": "Press 2", "kind": "machine", "plant": plant_a.pk}
    response = assert_status(client.post("/api/v1/devices/", body), 403)
    assert "admin role" in response.json()["detail"]
    response = assert_status(client.post(f"/api/v1/alarms/{alarm.pk}/acknowledge/", {}), 403)
    assert "operator role" in response.json()["detail"]
    assert not Device.objects.filter(uid="press-02").exists()
    alarm.refresh_from_db()
    assert alarm.state == Alarm.State.ACTIVE_UNACK


def test_operator_key_acknowledges_an_alarm(key_for, alarm):
    _, plain = key_for(Role.OPERATOR, name="mes")
    body = assert_status(api(plain).post(f"/api/v1/alarms/{alarm.pk}/acknowledge/", {"comment": "MES"}), 200).json()
    assert (body["state"], body["acknowledged_by"]) == ("active_ack", "mes")
    alarm.refresh_from_db()
    assert alarm.state == Alarm.State.ACTIVE_ACK


def test_admin_key_creates_a_device_in_its_plant_only(key_for, plant_a, plant_b):
    _, plain = key_for(Role.ADMIN)
    client = api(plain)
    body = {"uid": "press-02", "name": "Press 2", "kind": "machine", "plant": plant_a.pk}
    created = assert_status(client.post("/api/v1/devices/", body), 201).json()
    assert Device.objects.get(pk=created["id"]).plant_id == plant_a.pk
    foreign = {"uid": "weld-02", "name": "Weld 2", "kind": "machine", "plant": plant_b.pk}
    assert_status(client.post("/api/v1/devices/", foreign), 400)
    assert not Device.objects.filter(uid="weld-02").exists()


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("Api-Key", "Send the key as 'Authorization: Api-Key <key>'"),
        ("Api-Key two words", "Send the key as 'Authorization: Api-Key <key>'"),
        ("Api-Key no-dot-in-it", "Unknown API key"),
        ("Api-Key abcdefgh.not-the-secret", "Unknown API key"),
    ],
)
def test_malformed_or_unknown_key_answers_401_with_what_to_do(key_for, press, header, message):
    key_for(Role.ADMIN)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    response = assert_status(client.get("/api/v1/devices/"), 401)
    assert message in response.json()["detail"]
    assert response["WWW-Authenticate"]


def test_wrong_secret_of_a_real_prefix_is_unknown(key_for, press):
    key, plain = key_for(Role.ADMIN)
    response = assert_status(api(f"{key.prefix}.{'x' * 40}").get("/api/v1/devices/"), 401)
    assert "Unknown API key" in response.json()["detail"]


def test_revoked_key_answers_401_and_writes_nothing(key_for, plant_a):
    key, plain = key_for(Role.ADMIN)
    client = api(plain)
    assert_status(client.get("/api/v1/devices/"), 200)
    api_key_revoke(key=key)
    body = {"uid": "press-02", "name": "Press 2", "kind": "machine", "plant": plant_a.pk}
    response = assert_status(client.post("/api/v1/devices/", body), 401)
    assert "has been revoked" in response.json()["detail"]
    assert not Device.objects.filter(uid="press-02").exists()


def test_expired_key_answers_401_saying_when_it_expired(key_for):
    key, plain = key_for(Role.VIEWER)
    with time_machine.travel(key.expires_at + timedelta(seconds=1)):
        response = assert_status(api(plain).get("/api/v1/devices/"), 401)
    assert f"expired at {key.expires_at.isoformat()}" in response.json()["detail"]


def test_key_of_a_disabled_service_account_answers_401(key_for):
    key, plain = key_for(Role.VIEWER)
    key.account.user.is_active = False
    key.account.user.save()
    response = assert_status(api(plain).get("/api/v1/devices/"), 401)
    assert "is disabled" in response.json()["detail"]


def test_key_is_stored_only_as_its_hmac(key_for, settings):
    key, plain = key_for(Role.VIEWER)
    row = ApiKey.objects.filter(pk=key.pk).values().get()
    stored = " ".join(str(value) for value in row.values())
    secret = plain.partition(".")[2]
    assert secret not in stored and plain not in stored
    assert row["hashed_key"] == hmac.new(settings.DEVICE_TOKEN_HASH_KEY.encode(), plain.encode(), "sha256").hexdigest()
    assert row["prefix"] == plain.partition(".")[0]


def test_last_used_is_written_on_use_and_at_most_once_a_minute(key_for):
    key, plain = key_for(Role.VIEWER)
    assert key.last_used_at is None
    start = timezone.now().replace(microsecond=0)
    with time_machine.travel(start, tick=False) as clock:
        assert_status(api(plain).get("/api/v1/devices/"), 200)
        key.refresh_from_db()
        assert key.last_used_at == start
        clock.shift(30)
        assert_status(api(plain).get("/api/v1/devices/"), 200)
        key.refresh_from_db()
        assert key.last_used_at == start  # not written again within the minute
        clock.shift(31)
        assert_status(api(plain).get("/api/v1/devices/"), 200)
        key.refresh_from_db()
        assert key.last_used_at == start + timedelta(seconds=61)


def test_pages_and_admin_do_not_accept_a_key(key_for, client, plant_a):
    _, plain = key_for(Role.ADMIN)
    for path in ("/admin/", f"/plants/{plant_a.pk}/"):
        response = client.get(path, HTTP_AUTHORIZATION=f"Api-Key {plain}")
        assert response.status_code == 302 and "login" in response["Location"], (path, response.status_code)


def test_service_account_cannot_log_in_with_a_password(key_for):
    key_for(Role.ADMIN)
    response = APIClient().post("/api/v1/auth/token/", {"username": "erp", "password": ""})
    assert response.status_code in (400, 401), response.content
    assert "access" not in response.json()


def test_a_named_key_is_judged_alone_even_beside_a_session(key_for, client_for, plant_admin):
    key, plain = key_for(Role.VIEWER)
    api_key_revoke(key=key)
    browser = client_for(plant_admin)
    browser.credentials(HTTP_AUTHORIZATION=f"Api-Key {plain}")
    assert "revoked" in assert_status(browser.get("/api/v1/devices/"), 401).json()["detail"]
