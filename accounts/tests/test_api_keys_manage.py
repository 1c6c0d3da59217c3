"""/api/v1/service-accounts/ and /api/v1/api-keys/: plant admins create accounts, issue keys (shown once), revoke."""

from datetime import datetime, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import ApiKey, ServiceAccount
from accounts.roles import Role
from accounts.services import api_key_issue, member_set_role, service_account_create
from conftest import assert_status

pytestmark = pytest.mark.django_db
ACCOUNTS = "/api/v1/service-accounts/"
KEYS = "/api/v1/api-keys/"


def test_plant_admin_creates_an_account_and_a_key_shown_only_once(client_for, plant_admin, plant_a):
    client = client_for(plant_admin)
    body = {"name": "sap-erp", "description": "Orders", "plant": plant_a.pk, "role": "operator"}
    account = assert_status(client.post(ACCOUNTS, body), 201).json()
    assert (account["name"], account["roles"], account["is_active"]) == ("sap-erp", {str(plant_a.pk): "operator"}, True)
    issued = assert_status(client.post(KEYS, {"service_account": account["id"], "name": "prod"}), 201).json()
    plain = issued["key"]
    assert plain.startswith(issued["prefix"] + ".") and issued["active"] is True
    lifetime = datetime.fromisoformat(issued["expires_at"]) - timezone.now()
    assert timedelta(days=364) < lifetime <= timedelta(days=365)  # API_KEY_DEFAULT_DAYS
    listed = assert_status(client.get(KEYS), 200).json()["results"]
    assert [row["id"] for row in listed] == [issued["id"]] and "key" not in listed[0]
    assert "key" not in assert_status(client.get(f"{KEYS}{issued['id']}/"), 200).json()
    user = ServiceAccount.objects.get(pk=account["id"]).user
    assert not user.has_usable_password() and not user.is_staff
    # The key works right away, as the account.
    me = APIClient()
    me.credentials(HTTP_AUTHORIZATION=f"Api-Key {plain}")
    assert assert_status(me.get("/api/v1/users/me/"), 200).json()["username"] == "sap-erp"


def test_revoke_stops_the_key_at_its_next_request(client_for, plant_admin, erp):
    key, plain = api_key_issue(account=erp, name="prod")
    body = assert_status(client_for(plant_admin).post(f"{KEYS}{key.pk}/revoke/"), 200).json()
    assert body["revoked_at"] is not None and body["active"] is False
    integration = APIClient()
    integration.credentials(HTTP_AUTHORIZATION=f"Api-Key {plain}")
    assert "revoked" in assert_status(integration.get("/api/v1/devices/"), 401).json()["detail"]


def test_lists_only_accounts_and_keys_of_administered_plants(client_for, plant_admin, erp, foreign_account):
    api_key_issue(account=erp, name="a")
    api_key_issue(account=foreign_account, name="b")
    client = client_for(plant_admin)
    assert [row["name"] for row in assert_status(client.get(ACCOUNTS), 200).json()["results"]] == ["erp"]
    assert [row["name"] for row in assert_status(client.get(KEYS), 200).json()["results"]] == ["a"]
    assert_status(client.get(f"{ACCOUNTS}{foreign_account.pk}/"), 404)


def test_viewer_and_outsider_see_no_accounts_and_cannot_create_them(client_for, viewer, outsider, plant_a, erp):
    for user in (viewer, outsider):
        client = client_for(user)
        assert assert_status(client.get(ACCOUNTS), 200).json()["results"] == []
        assert_status(client.get(f"{ACCOUNTS}{erp.pk}/"), 404)
        assert_status(client.post(KEYS, {"service_account": erp.pk, "name": "x"}), 400)
    response = client_for(viewer).post(ACCOUNTS, {"name": "mine", "plant": plant_a.pk, "role": "admin"})
    assert "admin role" in assert_status(response, 403).json()["detail"]
    assert not ServiceAccount.objects.filter(user__username="mine").exists()
    assert not ApiKey.objects.exists()


def test_plant_admin_cannot_create_an_account_on_a_plant_of_others(client_for, plant_admin, plant_b):
    response = client_for(plant_admin).post(ACCOUNTS, {"name": "sneaky", "plant": plant_b.pk, "role": "admin"})
    assert "plant" in assert_status(response, 400).json()["errors"]
    assert not ServiceAccount.objects.exists()


def test_key_of_an_account_on_two_plants_needs_an_admin_of_both(client_for, plant_admin, plant_b, erp, superuser):
    member_set_role(plant=plant_b, user=erp.user, role=Role.VIEWER)
    response = client_for(plant_admin).post(KEYS, {"service_account": erp.pk, "name": "prod"})
    assert "all of them" in assert_status(response, 403).json()["detail"]
    assert not ApiKey.objects.exists()
    key, _ = api_key_issue(account=erp, name="prod")
    assert_status(client_for(plant_admin).post(f"{KEYS}{key.pk}/revoke/"), 200)  # cutting access needs one plant
    assert_status(client_for(superuser).post(KEYS, {"service_account": erp.pk, "name": "root"}), 201)


def test_an_api_key_cannot_manage_keys_even_as_plant_admin(plant_a):
    account = service_account_create(name="script", plant=plant_a, role=Role.ADMIN)
    _, plain = api_key_issue(account=account, name="prod")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {plain}")
    response = assert_status(client.post(KEYS, {"service_account": account.pk, "name": "more"}), 403)
    assert "sign in as a person" in response.json()["detail"]
    assert_status(client.get(ACCOUNTS), 403)
    assert ApiKey.objects.count() == 1


def test_refuses_a_taken_name_and_a_past_expiry_with_400(client_for, plant_admin, plant_a, erp):
    client = client_for(plant_admin)
    response = client.post(ACCOUNTS, {"name": "erp", "plant": plant_a.pk, "role": "viewer"})
    assert "name" in assert_status(response, 400).json()["errors"]
    response = client.post(KEYS, {"service_account": erp.pk, "name": "old", "expires_at": "2020-01-01T00:00:00Z"})
    assert "future" in str(assert_status(response, 400).json()["errors"]["expires_at"])
    assert ServiceAccount.objects.count() == 1 and not ApiKey.objects.exists()


def test_a_service_account_does_not_count_as_the_plants_last_admin(plant_a, plant_admin):
    service_account_create(name="script", plant=plant_a, role=Role.ADMIN)
    with pytest.raises(ValidationError, match="last admin"):
        member_set_role(plant=plant_a, user=plant_admin, role=Role.VIEWER)


def test_schema_validates_and_documents_the_api_key_scheme(tmp_path):
    import yaml
    from django.core.management import call_command

    path = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(path))
    schema = yaml.safe_load(path.read_text())
    assert schema["components"]["securitySchemes"]["ApiKey"] == {
        "type": "apiKey",
        "in": "header",
        "name": "Authorization",
        "description": schema["components"]["securitySchemes"]["ApiKey"]["description"],
    }
    assert {"ApiKey": []} in schema["paths"]["/api/v1/devices/"]["get"]["security"]
    assert "/api/v1/api-keys/{id}/revoke/" in schema["paths"]


def test_lists_have_bounded_queries(client_for, plant_admin, plant_a, django_assert_max_num_queries):
    for n in range(5):
        account = service_account_create(name=f"script-{n}", plant=plant_a, role=Role.VIEWER)
        api_key_issue(account=account, name="prod")
    client = client_for(plant_admin)
    with django_assert_max_num_queries(6):
        rows = assert_status(client.get(ACCOUNTS), 200).json()["results"]
    assert [row["roles"] for row in rows] == [{str(plant_a.pk): "viewer"}] * 5
    with django_assert_max_num_queries(6):
        assert len(assert_status(client.get(KEYS), 200).json()["results"]) == 5
