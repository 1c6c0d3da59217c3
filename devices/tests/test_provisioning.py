"""Zero-touch provisioning (issue 14 item 4): provisioning keys and ``POST /api/v1/device/provision/``."""

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.test import Client
from django.utils import timezone

from conftest import assert_status
from devices.models import Device, DeviceToken, ProvisioningKey, ProvisioningRequest
from devices.services.provisioning import provisioning_key_create
from devices.tests.factories import make_device, make_line

URL = "/api/v1/device/provision/"
KEYS = "/api/v1/provisioning-keys/"
REQUESTS = "/api/v1/provisioning-requests/"


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    cache.clear()


def provision(key: str | None, body: dict, address: str = "10.0.0.7"):
    headers = {"HTTP_AUTHORIZATION": f"Provision {key}"} if key else {}
    return Client().post(URL, body, content_type="application/json", REMOTE_ADDR=address, **headers)


def fields(uid: str, **extra) -> dict:
    return {"uid": uid, "name": f"Device {uid}", "kind": "sensor", "model": "TH-20", **extra}


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.django_db
def test_a_device_with_an_auto_approving_key_gets_its_device_and_a_working_token(plant_a):
    line = make_line(plant=plant_a)
    key, plain = provisioning_key_create(plant=plant_a, line=line, name="Hall sensors", model="TH-20")
    response = provision(plain, fields("th-001"))
    assert_status(response, 201)
    body = response.json()
    device = Device.objects.get(uid="th-001")
    assert body["device"] == device.pk and body["uid"] == "th-001"
    assert (device.plant, device.line, device.kind, device.model) == (plant_a, line, "sensor", "TH-20")
    me = Client().get("/api/v1/device/", HTTP_AUTHORIZATION=f"Device {body['token']}")
    assert_status(me, 200)
    assert me.json()["uid"] == "th-001"
    key.refresh_from_db()
    assert key.uses == 1
    assert list(ProvisioningRequest.objects.values_list("uid", "status", "address")) == [
        ("th-001", "delivered", "10.0.0.7")
    ]
    # The key is stored as a hash only.
    assert plain not in str(ProvisioningKey.objects.values().get())


@pytest.mark.django_db
def test_a_device_waits_until_a_plant_admin_approves_it_then_collects_its_token_once(plant_a, plant_admin):
    key, plain = provisioning_key_create(plant=plant_a, name="Approved by hand", needs_approval=True)
    assert_status(provision(plain, fields("th-002")), 202)
    response = provision(plain, fields("th-002"))  # asking again: still pending, no second use
    assert_status(response, 202)
    assert response.json()["status"] == "pending"
    assert not Device.objects.filter(uid="th-002").exists()
    key.refresh_from_db()
    assert key.uses == 1

    admin = logged_in(plant_admin)
    pending = admin.get(REQUESTS, {"status": "pending"}).json()["results"]
    assert [r["uid"] for r in pending] == ["th-002"]
    assert_status(admin.post(f"{REQUESTS}{pending[0]['id']}/approve/"), 200)

    response = provision(plain, fields("th-002"))
    assert_status(response, 201)
    token = response.json()["token"]
    assert_status(Client().get("/api/v1/device/", HTTP_AUTHORIZATION=f"Device {token}"), 200)
    assert_status(provision(plain, fields("th-002")), 409)  # the token was delivered: no second one
    assert DeviceToken.objects.filter(device__uid="th-002").count() == 1


@pytest.mark.django_db
def test_a_rejected_device_is_not_created(plant_a, plant_admin):
    _, plain = provisioning_key_create(plant=plant_a, name="Approved by hand", needs_approval=True)
    assert_status(provision(plain, fields("th-003")), 202)
    pending = ProvisioningRequest.objects.get(uid="th-003")
    assert_status(logged_in(plant_admin).post(f"{REQUESTS}{pending.pk}/reject/"), 200)
    assert not Device.objects.filter(uid="th-003").exists()


@pytest.mark.django_db
def test_unknown_expired_revoked_and_used_up_keys_answer_401_and_create_nothing(plant_a):
    now = timezone.now()
    _, expired = provisioning_key_create(plant=plant_a, name="old", expires_at=now - timedelta(seconds=1))
    revoked_key, revoked = provisioning_key_create(plant=plant_a, name="gone")
    ProvisioningKey.objects.filter(pk=revoked_key.pk).update(revoked_at=now)
    _, single = provisioning_key_create(plant=plant_a, name="one device", max_uses=1)
    assert_status(provision(single, fields("th-010")), 201)
    for key, expected in [
        ("abc.def", "Unknown provisioning key"),
        (None, "Authorization: Provision"),
        (expired, "expired"),
        (revoked, "revoked"),
        (single, "registered its 1 device"),
    ]:
        response = provision(key, fields("th-011"))
        assert_status(response, 401)
        assert expected in response.json()["detail"]
    assert not Device.objects.filter(uid="th-011").exists()


@pytest.mark.django_db
def test_an_existing_uid_answers_409_and_no_token_is_issued(plant_a):
    device = make_device(line=make_line(plant=plant_a), uid="press-77")
    _, plain = provisioning_key_create(plant=plant_a, name="k")
    response = provision(plain, fields("press-77"))
    assert_status(response, 409)
    assert "exists" in response.json()["detail"]
    assert not DeviceToken.objects.filter(device=device).exists()


@pytest.mark.django_db
def test_bad_fields_answer_400_naming_them_and_change_nothing(plant_a):
    key, plain = provisioning_key_create(plant=plant_a, name="k", model="TH-20")
    response = provision(plain, {"uid": "Bad UID!", "name": "", "kind": "robot", "model": "XX-1", "color": "red"})
    assert_status(response, 400)
    assert set(response.json()["errors"]) == {"uid", "name", "kind", "model", "body"}
    assert not Device.objects.exists()
    key.refresh_from_db()
    assert key.uses == 0
    assert ProvisioningRequest.objects.get().status == "invalid"  # the use is recorded


@pytest.mark.django_db
def test_calls_over_the_rate_limits_answer_429_with_retry_after(plant_a, settings):
    settings.PROVISION_RATE_PER_KEY, settings.PROVISION_RATE_PER_ADDRESS = 2, 3
    _, plain = provisioning_key_create(plant=plant_a, name="k", needs_approval=True)
    for n in range(2):
        assert_status(provision(plain, fields(f"th-{n}"), address="10.0.0.1"), 202)
    response = provision(plain, fields("th-9"), address="10.0.0.2")
    assert_status(response, 429)  # per key, whatever the address
    assert 0 < int(response["Retry-After"]) <= 60
    for _ in range(3):
        provision("abc.def", fields("x"), address="10.0.0.3")
    assert_status(provision("abc.def", fields("x"), address="10.0.0.3"), 429)  # per address, even guessing keys


@pytest.mark.django_db
def test_only_plant_admins_manage_keys_and_the_plain_key_is_shown_once(plant_a, plant_b, outsider, viewer, plant_admin):
    body = {"plant": plant_a.pk, "name": "Line 1 sensors", "needs_approval": True, "max_uses": 50}
    assert_status(logged_in(viewer).post(KEYS, body, content_type="application/json"), 403)
    created = logged_in(plant_admin).post(KEYS, body, content_type="application/json")
    assert_status(created, 201)
    plain = created.json()["key"]
    assert_status(provision(plain, fields("th-100")), 202)
    listed = logged_in(viewer).get(KEYS).json()["results"]
    assert [k["name"] for k in listed] == ["Line 1 sensors"] and "key" not in listed[0]
    assert_status(logged_in(outsider).get(f"{KEYS}{created.json()['id']}/"), 404)
    foreign, _ = provisioning_key_create(plant=plant_b, name="B")
    assert_status(logged_in(plant_admin).post(f"{KEYS}{foreign.pk}/revoke/"), 404)
    assert_status(logged_in(plant_admin).post(f"{KEYS}{created.json()['id']}/revoke/"), 200)
    assert_status(provision(plain, fields("th-101")), 401)


@pytest.mark.django_db
def test_a_plant_admin_approves_waiting_devices_in_the_admin(plant_a, plant_b, plant_admin_client):
    _, plain = provisioning_key_create(plant=plant_a, name="Approved by hand", needs_approval=True)
    _, foreign = provisioning_key_create(plant=plant_b, name="B", needs_approval=True)
    assert_status(provision(plain, fields("th-200")), 202)
    assert_status(provision(foreign, fields("th-201")), 202)
    listed = plant_admin_client.get("/admin/devices/provisioningrequest/", {"status__exact": "pending"})
    assert_status(listed, 200)
    assert "th-200" in listed.content.decode() and "th-201" not in listed.content.decode()
    ours, theirs = ProvisioningRequest.objects.get(uid="th-200"), ProvisioningRequest.objects.get(uid="th-201")
    response = plant_admin_client.post(
        "/admin/devices/provisioningrequest/",
        {"action": "approve", "_selected_action": [ours.pk, theirs.pk], "index": "0", "select_across": "0"},
        follow=True,
    )
    assert_status(response, 200)
    assert "Approved 1 device(s)" in response.content.decode()
    assert Device.objects.filter(uid="th-200").exists() and not Device.objects.filter(uid="th-201").exists()
    assert_status(provision(plain, fields("th-200")), 201)
