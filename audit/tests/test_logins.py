"""Sign-ins, failed sign-ins and sign-outs, with the one trusted client address (factory/clientip.py)."""

import pytest
from django.test import Client

from audit.models import AuditEntry
from audit.tests.factories import entries
from conftest import assert_status
from devices.tests.factories import PASSWORD, make_user

TOKEN_URL = "/api/v1/auth/token/"


@pytest.fixture
def alice(db):
    return make_user("alice")


def jwt_login(password: str, peer: str, forwarded_for: str | None = None):
    headers = {"REMOTE_ADDR": peer}
    if forwarded_for:
        headers["HTTP_X_FORWARDED_FOR"] = forwarded_for
    body = {"username": "alice", "password": password}
    return Client().post(TOKEN_URL, body, content_type="application/json", **headers)


@pytest.mark.parametrize(
    ("peer", "forwarded_for", "recorded"),
    [
        ("10.0.0.2", "203.0.113.7", "203.0.113.7"),  # through the trusted proxy: the client it names
        ("198.51.100.9", "203.0.113.7", "198.51.100.9"),  # from anyone else: the header is not believed
    ],
)
def test_records_a_failed_login_with_the_trusted_client_address(settings, alice, peer, forwarded_for, recorded):
    settings.TRUSTED_PROXIES = ["10.0.0.0/24"]
    assert_status(jwt_login("wrong password", peer, forwarded_for), 401)
    [entry] = entries(event="login_failed")
    assert (entry.object_repr, entry.remote_addr, entry.actor) == ("alice", recorded, None)
    assert "wrong password" not in repr(entry.__dict__)


def test_records_a_jwt_login(alice):
    assert_status(jwt_login(PASSWORD, "198.51.100.9"), 200)
    [entry] = entries(event="login")
    assert (entry.actor, entry.object_id, entry.remote_addr) == (alice, alice.pk, "198.51.100.9")


def test_records_a_page_login_and_logout(alice):
    client = Client(REMOTE_ADDR="198.51.100.10")
    assert_status(client.post("/accounts/login/", {"username": "alice", "password": PASSWORD}), 302)
    assert_status(client.post("/accounts/logout/"), 302)
    assert [(e.event, e.actor, e.remote_addr) for e in entries(event__in=["login", "logout"])] == [
        ("login", alice, "198.51.100.10"),
        ("logout", alice, "198.51.100.10"),
    ]


def test_last_login_is_not_an_account_change(alice):
    assert_status(jwt_login(PASSWORD, "198.51.100.9"), 200)
    assert entries(content_type__model="user", object_id=alice.pk, action=AuditEntry.Action.UPDATE) == []


def test_records_a_password_change_without_the_hash(alice):
    from accounts.services import user_set_password

    user_set_password(user=alice, password="a new long passphrase 42")
    [entry] = entries(content_type__model="user", object_id=alice.pk, action=AuditEntry.Action.UPDATE)
    assert entry.changes == {"password": ["***", "***"]}
    alice.refresh_from_db()
    assert alice.password not in repr(AuditEntry.objects.values())
