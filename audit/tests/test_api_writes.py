"""Writes through the API land in the audit log: who, when, which object, the changed fields."""

from datetime import timedelta

import pytest
from django.utils import timezone

from alerts.tests.factories import make_channel
from audit.models import AuditEntry
from audit.tests.factories import entries, every_entry_as_text, jwt_client
from conftest import assert_status
from devices.models import DeviceToken
from devices.tests.factories import make_device, make_line


@pytest.fixture
def device(plant_a):
    return make_device(make_line(plant_a, "Line 1"), uid="press-07", name="Press 7")


def test_records_who_when_and_the_changed_fields_of_an_api_write(plant_admin, plant_a, device):
    before = timezone.now()
    client = jwt_client(plant_admin, REMOTE_ADDR="198.51.100.23")
    assert_status(client.patch(f"/api/v1/devices/{device.pk}/", {"name": "Press 7 (rebuilt)"}), 200)

    [entry] = entries(content_type__model="device", object_id=device.pk, action=AuditEntry.Action.UPDATE)
    assert entry.actor == plant_admin  # known only after DRF authenticated the JWT
    assert entry.actor_email == plant_admin.email
    assert entry.remote_addr == "198.51.100.23"
    assert entry.plant_id == plant_a.pk
    assert entry.object_repr == "press-07"
    assert entry.changes == {"name": ["Press 7", "Press 7 (rebuilt)"]}
    assert before <= entry.timestamp <= timezone.now()


def test_records_a_delete_through_the_api(plant_admin, plant_a):
    line = make_line(plant_a, "Line 9")
    assert_status(jwt_client(plant_admin).delete(f"/api/v1/lines/{line.pk}/"), 204)
    [entry] = entries(content_type__model="line", object_id=line.pk, action=AuditEntry.Action.DELETE)
    assert (entry.actor, entry.plant_id, entry.object_repr) == (plant_admin, plant_a.pk, "Plant A / Line 9")


def test_records_role_changes_once_with_the_plant(plant_admin, plant_a, viewer):
    client = jwt_client(plant_admin)
    assert_status(client.post(f"/api/v1/plants/{plant_a.pk}/members/", {"username": "viewer", "role": "operator"}), 200)
    assert_status(client.delete(f"/api/v1/plants/{plant_a.pk}/members/{viewer.pk}/"), 204)

    changes = [
        (e.event, e.changes, e.actor, e.plant_id) for e in entries(content_type__model="user", object_id=viewer.pk)
    ]
    assert changes[-2:] == [
        ("role_set", {"role": ["viewer", "operator"]}, plant_admin, plant_a.pk),
        ("member_removed", {"role": ["operator", "None"]}, plant_admin, plant_a.pk),
    ]
    assert not entries(content_type__model="group", timestamp__gte=timezone.now() - timedelta(minutes=1))


def test_records_token_create_rotate_revoke_and_never_a_secret(plant_admin, plant_a, device):
    client = jwt_client(plant_admin)
    issued = assert_status(client.post(f"/api/v1/devices/{device.pk}/tokens/", {"name": "main"}), 201).data
    rotated = assert_status(client.post(f"/api/v1/device-tokens/{issued['id']}/rotate/", {}), 201).data
    assert_status(client.post(f"/api/v1/device-tokens/{rotated['id']}/revoke/"), 200)

    first, second = DeviceToken.objects.get(pk=issued["id"]), DeviceToken.objects.get(pk=rotated["id"])
    log = [
        (e.event or e.get_action_display(), e.object_id, e.actor) for e in entries(content_type__model="devicetoken")
    ]
    assert log == [
        ("create", first.pk, plant_admin),
        ("create", second.pk, plant_admin),
        ("token_rotated", first.pk, plant_admin),
        ("token_revoked", second.pk, plant_admin),
    ]
    assert {e.plant_id for e in entries(content_type__model="devicetoken")} == {plant_a.pk}
    text = every_entry_as_text()
    for plain, row in ((issued["token"], first), (rotated["token"], second)):
        assert plain not in text and plain.split(".")[1] not in text and row.key_hash not in text


def test_records_api_keys_and_provisioning_keys_without_their_secrets(plant_admin, plant_a):
    client = jwt_client(plant_admin)
    account = assert_status(
        client.post("/api/v1/service-accounts/", {"name": "erp", "plant": plant_a.pk, "role": "viewer"}), 201
    ).data
    key = assert_status(client.post("/api/v1/api-keys/", {"service_account": account["id"], "name": "k"}), 201).data
    assert_status(client.post(f"/api/v1/api-keys/{key['id']}/revoke/"), 200)
    provisioning = assert_status(
        client.post("/api/v1/provisioning-keys/", {"plant": plant_a.pk, "name": "line 1"}), 201
    ).data
    assert_status(client.post(f"/api/v1/provisioning-keys/{provisioning['id']}/revoke/"), 200)

    events = [e.event or e.get_action_display() for e in entries(content_type__model__in=["apikey", "provisioningkey"])]
    assert events == ["create", "api_key_revoked", "create", "provisioning_key_revoked"]
    assert all(e.plant_id == plant_a.pk for e in entries(content_type__model__in=["apikey", "provisioningkey"]))
    text = every_entry_as_text()
    for plain in (key["key"], provisioning["key"]):
        assert plain not in text and plain.split(".")[1] not in text


def test_records_where_a_channel_sends_but_not_its_secrets(plant_a):
    channel = make_channel(
        plant_a, "webhook",
        {"url": "https://hooks.example.com/services/T0001/B0002/pathsecret42", "secret": "hmac-secret-0123456789"},
    )  # fmt: skip
    [entry] = entries(content_type__model="notificationchannel", object_id=channel.pk)
    assert '"url": "https://hooks.example.com/…"' in entry.changes["config"][1]
    text = every_entry_as_text()
    assert "pathsecret42" not in text and "hmac-secret-0123456789" not in text
