"""The admin: writes there are recorded; the audit log pages are read-only and scoped like the API."""

import pytest
from django.test import Client

from audit.models import AuditEntry
from audit.tests.factories import entries
from conftest import assert_status
from devices.tests.factories import make_line

CHANGELIST = "/admin/audit/auditentry/"


@pytest.fixture
def lines(plant_a, plant_b):
    return make_line(plant_a, "Assembly A"), make_line(plant_b, "Assembly B")


def test_records_an_admin_write_with_the_admin_user(plant_admin_client, plant_admin, plant_a, lines):
    line = lines[0]
    data = {"name": "Assembly A (north)", "description": "", "position": 3}
    response = plant_admin_client.post(f"/admin/devices/line/{line.pk}/change/", data, REMOTE_ADDR="192.0.2.44")
    assert_status(response, 302)
    [entry] = entries(content_type__model="line", object_id=line.pk, action=AuditEntry.Action.UPDATE)
    assert (entry.actor, entry.remote_addr, entry.plant_id) == (plant_admin, "192.0.2.44", plant_a.pk)
    assert entry.changes == {"name": ["Assembly A", "Assembly A (north)"], "position": ["0", "3"]}


def test_plant_admin_sees_their_plants_entries_in_the_admin(plant_admin_client, lines):
    page = assert_status(plant_admin_client.get(CHANGELIST), 200).content.decode()
    assert "Assembly A" in page and "Assembly B" not in page
    foreign = AuditEntry.objects.get(content_type__model="line", object_id=lines[1].pk)
    assert_status(plant_admin_client.get(f"{CHANGELIST}{foreign.pk}/change/"), 302)  # not theirs: "does not exist"


def test_superuser_sees_every_plant_in_the_admin(superuser, lines):
    client = Client()
    client.force_login(superuser)
    page = assert_status(client.get(CHANGELIST), 200).content.decode()
    assert "Assembly A" in page and "Assembly B" in page


def test_nobody_adds_changes_or_deletes_an_entry_in_the_admin(superuser, lines):
    client = Client()
    client.force_login(superuser)
    entry = AuditEntry.objects.get(content_type__model="line", object_id=lines[0].pk)
    assert_status(client.get(f"{CHANGELIST}add/"), 403)
    assert_status(client.post(f"{CHANGELIST}{entry.pk}/change/", {"object_repr": "forged"}), 403)
    assert_status(client.post(f"{CHANGELIST}{entry.pk}/delete/", {"post": "yes"}), 403)
    bulk = {"action": "delete_selected", "_selected_action": [entry.pk], "post": "yes"}
    client.post(CHANGELIST, bulk)
    entry.refresh_from_db()
    assert entry.object_repr == "Plant A / Assembly A"


def test_viewer_cannot_open_the_audit_log_in_the_admin(viewer, lines):
    client = Client()
    client.force_login(viewer)
    assert_status(client.get(CHANGELIST), 302)  # to the admin login: not an administrator of any plant


def test_admin_csv_export_is_recorded(plant_admin_client, plant_admin, plant_a, lines):
    mine = AuditEntry.objects.get(content_type__model="line", object_id=lines[0].pk)
    response = plant_admin_client.post(CHANGELIST, {"action": "export_csv", "_selected_action": [mine.pk]})
    assert_status(response, 200)
    body = b"".join(response.streaming_content).decode()
    assert "Plant A / Assembly A" in body
    [export] = entries(event="export")
    assert (export.actor, export.plant_id) == (plant_admin, plant_a.pk)
