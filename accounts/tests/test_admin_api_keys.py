"""Service accounts and API keys in the admin: plant admins for their plants, the key shown once."""

import hmac
import re

import pytest
from django.test import Client

from accounts.models import ApiKey, ServiceAccount
from accounts.services import api_key_issue
from conftest import assert_status

pytestmark = pytest.mark.django_db
ACCOUNTS = "/admin/accounts/serviceaccount/"
KEYS = "/admin/accounts/apikey/"


def test_plant_admin_adds_an_account_on_their_plant_only(plant_admin_client, plant_a, plant_b):
    form = {"name": "sap-erp", "description": "Orders", "plant": plant_b.pk, "role": "viewer"}
    body = assert_status(plant_admin_client.post(f"{ACCOUNTS}add/", form), 200).content.decode()
    assert "Select a valid choice" in body
    assert not ServiceAccount.objects.exists()
    assert_status(plant_admin_client.post(f"{ACCOUNTS}add/", {**form, "plant": plant_a.pk}), 302)
    account = ServiceAccount.objects.get(user__username="sap-erp")
    assert account.user.groups.get().plant_role.role == "viewer"
    assert not account.user.has_usable_password()


def test_plant_admin_issues_a_key_shown_once_and_revokes_it(plant_admin_client, erp, settings):
    page = assert_status(plant_admin_client.post(f"{KEYS}add/", {"account": erp.pk, "name": "prod"}), 200)
    plain = re.search(r"<code>([0-9a-f]+\.[\w-]+)</code>", page.content.decode()).group(1)
    key = ApiKey.objects.get(account=erp)
    assert key.hashed_key == hmac.new(settings.DEVICE_TOKEN_HASH_KEY.encode(), plain.encode(), "sha256").hexdigest()
    assert plain not in assert_status(plant_admin_client.get(KEYS), 200).content.decode()
    assert plain not in assert_status(plant_admin_client.get(f"{KEYS}{key.pk}/change/"), 200).content.decode()
    action = {"action": "revoke", "_selected_action": [key.pk]}
    assert_status(plant_admin_client.post(KEYS, action), 302)
    key.refresh_from_db()
    assert key.revoked_at is not None


def test_plant_admin_sees_nothing_of_other_plants(plant_admin_client, erp, foreign_account):
    api_key_issue(account=foreign_account, name="foreign")
    accounts = assert_status(plant_admin_client.get(ACCOUNTS), 200).content.decode()
    assert ">erp<" in accounts and "mes-b" not in accounts
    assert "foreign" not in assert_status(plant_admin_client.get(KEYS), 200).content.decode()
    assert plant_admin_client.get(f"{ACCOUNTS}{foreign_account.pk}/change/").status_code in (302, 404)
    response = plant_admin_client.post(f"{KEYS}add/", {"account": foreign_account.pk, "name": "steal"})
    assert "Select a valid choice" in assert_status(response, 200).content.decode()
    assert not ApiKey.objects.filter(name="steal").exists()


def test_viewer_cannot_open_the_pages(viewer, erp):
    client = Client()
    client.force_login(viewer)
    for path in (ACCOUNTS, KEYS, f"{KEYS}add/"):
        assert client.get(path).status_code in (302, 403), path


def test_superuser_opens_every_page_of_both(superuser, erp, foreign_account):
    key, _ = api_key_issue(account=foreign_account, name="foreign")
    client = Client()
    client.force_login(superuser)
    for path in (
        ACCOUNTS,
        f"{ACCOUNTS}add/",
        f"{ACCOUNTS}{erp.pk}/change/",
        KEYS,
        f"{KEYS}add/",
        f"{KEYS}{key.pk}/change/",
    ):
        assert_status(client.get(path), 200)
    body = client.get(ACCOUNTS).content.decode()
    assert ">erp<" in body and ">mes-b<" in body
    assert "Plant A: operator" in client.get(f"{ACCOUNTS}{erp.pk}/change/").content.decode()


def test_plant_admin_edits_the_description(plant_admin_client, erp):
    form = {"description": "Orders from SAP", "keys-TOTAL_FORMS": "0", "keys-INITIAL_FORMS": "0"}
    assert_status(plant_admin_client.post(f"{ACCOUNTS}{erp.pk}/change/", form), 302)
    erp.refresh_from_db()
    assert (erp.description, erp.user.username) == ("Orders from SAP", "erp")
