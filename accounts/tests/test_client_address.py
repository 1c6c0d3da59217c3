"""One client address (factory/clientip.py): forwarded headers count only from TRUSTED_PROXIES, and
the login lockout (django-axes) uses that address."""

import pytest
from axes.models import AccessAttempt
from django.test import Client

from conftest import assert_status
from devices.tests.factories import PASSWORD
from factory.clientip import client_address

TOKEN_URL = "/api/v1/auth/token/"
WRONG = "not the password"
pytestmark = pytest.mark.usefixtures("login_limit_of_five")


def login(password: str, peer: str, forwarded_for: str | None = None, page: bool = False):
    headers = {"REMOTE_ADDR": peer}
    if forwarded_for is not None:
        headers["HTTP_X_FORWARDED_FOR"] = forwarded_for
    url = "/accounts/login/" if page else TOKEN_URL
    body = {"username": "alice", "password": password}
    if page:
        return Client().post(url, body, **headers)
    return Client().post(url, body, content_type="application/json", **headers)


@pytest.mark.parametrize(
    ("peer", "forwarded_for", "real_ip", "client"),
    [
        ("198.51.100.9", "203.0.113.7", None, "198.51.100.9"),  # untrusted peer: its headers are ignored
        ("10.0.0.2", "203.0.113.7", None, "203.0.113.7"),  # the trusted proxy's word
        ("10.0.0.2", "1.2.3.4, 203.0.113.7", None, "203.0.113.7"),  # what the client wrote on the left is not
        ("10.0.0.2", "203.0.113.7, 10.0.0.3", None, "203.0.113.7"),  # two proxies: skip the trusted hop
        ("10.0.0.2", "203.0.113.7:5123", None, "203.0.113.7"),
        ("10.0.0.2", "[2001:db8::7]:443", None, "2001:db8::7"),
        ("10.0.0.2", "not-an-address", None, "10.0.0.2"),
        ("10.0.0.2", None, "203.0.113.8", "203.0.113.8"),  # X-Real-IP when there is no X-Forwarded-For
        ("10.0.0.2", None, None, "10.0.0.2"),
        ("::ffff:10.0.0.2", "203.0.113.7", None, "203.0.113.7"),  # IPv4-mapped peer
    ],
)
def test_decides_the_client_address(settings, peer, forwarded_for, real_ip, client):
    settings.TRUSTED_PROXIES = ["10.0.0.0/24"]
    assert client_address(peer, forwarded_for, real_ip) == client


def test_ignores_forwarded_headers_when_no_proxy_is_trusted(settings):
    settings.TRUSTED_PROXIES = []
    assert client_address("127.0.0.1", "203.0.113.7", "203.0.113.8") == "127.0.0.1"


@pytest.mark.parametrize("page", [False, True], ids=["api", "login page"])
def test_locks_out_when_each_wrong_password_claims_a_new_forwarded_address(alice, settings, page):
    # The bypass of issue 15: a new X-Forwarded-For with each try, from a peer that is no proxy.
    settings.TRUSTED_PROXIES = ["10.0.0.0/24"]
    statuses = [login(WRONG, "198.51.100.9", f"203.0.113.{n}", page).status_code for n in range(1, 8)]
    refused = 200 if page else 401  # the login page answers a wrong password with the form again
    assert statuses == [refused] * 4 + [429] * 3
    assert_status(login(PASSWORD, "198.51.100.9", "203.0.113.99", page), 429)
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {"198.51.100.9"}


def test_counts_failures_per_forwarded_client_behind_a_trusted_proxy(alice, settings):
    settings.TRUSTED_PROXIES = ["10.0.0.0/24"]
    for _ in range(5):
        login(WRONG, "10.0.0.2", "203.0.113.7")
    assert_status(login(PASSWORD, "10.0.0.2", "203.0.113.7"), 429)
    assert_status(login(PASSWORD, "10.0.0.2", "1.2.3.4, 203.0.113.7"), 429)  # a spoofed left hop changes nothing
    assert_status(login(PASSWORD, "10.0.0.3", "203.0.113.8"), 200)  # another client behind the proxy
    assert list(AccessAttempt.objects.values_list("ip_address", flat=True)) == ["203.0.113.7"]
