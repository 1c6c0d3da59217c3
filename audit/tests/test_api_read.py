"""Reading the audit log: plant admins their plants' entries, superusers all, everyone else 403;
filters, CSV export (itself audited) and no way to change an entry."""

import csv
import io
from datetime import timedelta

import pytest
from django.utils import timezone

from audit.models import AuditEntry
from audit.services import audit_record
from audit.tests.factories import entries, jwt_client
from conftest import assert_status
from devices.tests.factories import make_line, make_plant

URL = "/api/v1/audit/"


@pytest.fixture
def lines(plant_a, plant_b):
    """One line written in each plant (outside a request: no actor)."""
    return make_line(plant_a, "Assembly A"), make_line(plant_b, "Assembly B")


def reprs(response) -> set[str]:
    return {row["object_repr"] for row in response.data["results"]}


def test_plant_admin_reads_only_the_entries_of_their_plant(plant_admin, plant_a, lines):
    response = assert_status(jwt_client(plant_admin).get(URL, {"page_size": 1000}), 200)
    assert {row["plant"] for row in response.data["results"]} == {plant_a.pk}
    assert "Plant A / Assembly A" in reprs(response)
    assert "Plant B / Assembly B" not in reprs(response)
    # Naming the other plant finds nothing of it either.
    foreign = assert_status(jwt_client(plant_admin).get(URL, {"plant": lines[1].plant_id}), 200)
    assert foreign.data["results"] == []


def test_superuser_reads_every_plant_and_the_account_entries(superuser, plant_a, plant_b, lines, alice_login_failed):
    response = assert_status(jwt_client(superuser).get(URL, {"page_size": 1000}), 200)
    assert {"Plant A / Assembly A", "Plant B / Assembly B", "alice"} <= reprs(response)


@pytest.fixture
def alice_login_failed(db):
    from django.contrib.auth import get_user_model

    return audit_record(event="login_failed", model=get_user_model(), object_repr="alice")


@pytest.mark.parametrize("persona", ["outsider", "viewer", "operator"])
def test_refuses_everyone_but_plant_admins_and_superusers(request, persona, lines):
    user = request.getfixturevalue(persona)
    for url in (URL, f"{URL}export/"):
        response = assert_status(jwt_client(user).get(url), 403)
        assert "plant admins" in response.json()["detail"]


def test_refuses_an_anonymous_reader(lines):
    from rest_framework.test import APIClient

    assert_status(APIClient().get(URL), 401)


def test_filters_by_action_object_actor_and_time(plant_admin, plant_a, lines):
    line = lines[0]
    jwt_client(plant_admin).patch(f"/api/v1/lines/{line.pk}/", {"name": "Assembly A2"})
    client = jwt_client(plant_admin)
    query = {"action": "update", "object_type": "devices.line", "object_id": line.pk, "actor": "plantadmin"}
    [row] = assert_status(client.get(URL, query), 200).data["results"]
    assert (row["event"], row["changes"], row["actor_username"]) == (
        "update",
        {"name": ["Assembly A", "Assembly A2"]},
        "plantadmin",
    )
    later = (timezone.now() + timedelta(minutes=1)).isoformat()
    assert assert_status(client.get(URL, {**query, "since": later}), 200).data["results"] == []
    assert len(assert_status(client.get(URL, {**query, "until": later}), 200).data["results"]) == 1
    assert len(assert_status(client.get(URL, {"search": "Assembly A2"}), 200).data["results"]) == 1


@pytest.mark.parametrize(
    ("query", "field"),
    [({"plant": "0.5"}, "plant"), ({"object_type": "device"}, "object_type"), ({"since": "yesterday"}, "since"),
     ({"action": "erase"}, "action")],
)  # fmt: skip
def test_answers_a_bad_filter_with_400_naming_it(plant_admin, plant_a, query, field):
    response = assert_status(jwt_client(plant_admin).get(URL, query), 400)
    assert field in str(response.json())


def test_list_costs_a_constant_number_of_queries(plant_admin, plant_a, lines, django_assert_max_num_queries):
    for n in range(30):
        make_line(plant_a, f"Extra {n}")
    client = jwt_client(plant_admin)
    with django_assert_max_num_queries(6):
        response = assert_status(client.get(URL, {"page_size": 1000}), 200)
    assert response.data["count"] >= 31


def test_exports_the_filtered_list_as_csv_and_records_the_export(plant_admin, plant_a, lines):
    response = assert_status(jwt_client(plant_admin).get(f"{URL}export/", {"object_type": "devices.line"}), 200)
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"].startswith('attachment; filename="audit-')
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [(r["plant"], r["object"], r["event"]) for r in rows] == [("Plant A", "Plant A / Assembly A", "create")]
    [export] = entries(event="export")
    assert (export.actor, export.plant_id, export.additional_data) == (
        plant_admin,
        plant_a.pk,
        {"format": "csv", "rows": 1},
    )


def test_csv_cells_never_start_a_formula(superuser):
    make_plant('=HYPERLINK("http://evil.example")')
    response = assert_status(jwt_client(superuser).get(f"{URL}export/", {"object_type": "devices.plant"}), 200)
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0]["object"].startswith("'=HYPERLINK")


def test_nobody_changes_or_deletes_an_entry_through_the_api(superuser, lines):
    entry = AuditEntry.objects.get(content_type__model="line", object_id=lines[0].pk)
    client = jwt_client(superuser)
    for method in ("put", "patch", "delete"):
        assert_status(getattr(client, method)(f"{URL}{entry.pk}/", {"object_repr": "forged"}), 405)
    assert_status(client.post(URL, {"object_repr": "forged"}), 405)
    entry.refresh_from_db()
    assert entry.object_repr == "Plant A / Assembly A"


def test_an_entry_refuses_to_be_saved_again_or_deleted(lines):
    from django.core.exceptions import PermissionDenied

    entry = AuditEntry.objects.get(content_type__model="line", object_id=lines[0].pk)
    entry.object_repr = "forged"
    with pytest.raises(PermissionDenied):
        entry.save()
    with pytest.raises(PermissionDenied):
        entry.delete()
