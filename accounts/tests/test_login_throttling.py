"""Failed-login throttling (django-axes): per username and address, on the API and on the HTML login page."""

from datetime import timedelta

import pytest
import time_machine
from asgiref.sync import async_to_sync
from django.test import AsyncClient, Client
from django.utils import timezone
from rest_framework.test import APIClient

from conftest import assert_status
from devices.tests.factories import PASSWORD, make_user

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("login_limit_of_five")]

TOKEN_URL = "/api/v1/auth/token/"
LOGIN_URL = "/accounts/login/"
WRONG = "not the password"


@pytest.fixture
def bob(db):
    return make_user("bob")


def api_login(username: str, password: str):
    return APIClient().post(TOKEN_URL, {"username": username, "password": password})


def page_login(username: str, password: str, client: Client | None = None):
    return (client or Client()).post(LOGIN_URL, {"username": username, "password": password})


def fail_api(username: str, times: int = 5, limit: int = 5):
    """Send ``times`` wrong passwords; the one that reaches ``limit`` is already answered 429."""
    for attempt in range(1, times + 1):
        assert_status(api_login(username, WRONG), 429 if attempt >= limit else 401)


def fail_page(username: str, times: int = 5, limit: int = 5):
    for attempt in range(1, times + 1):
        response = page_login(username, WRONG)
        if attempt >= limit:
            assert_status(response, 429)
        else:
            assert "didn't match" in assert_status(response, 200).content.decode()


def test_accepts_right_password_when_failures_stay_below_the_limit(alice):
    fail_api("alice", times=4)
    response = assert_status(api_login("alice", PASSWORD), 200)
    assert "access" in response.json()


def test_answers_429_json_with_retry_after_when_api_login_is_locked_out(alice, settings):
    fail_api("alice")
    response = assert_status(api_login("alice", PASSWORD), 429)
    assert response["Content-Type"].startswith("application/json")
    assert "Too many failed login attempts" in response.json()["detail"]
    assert int(response["Retry-After"]) == int(settings.AXES_COOLOFF_TIME.total_seconds())
    assert "access" not in response.json()


def test_answers_429_when_the_failure_that_reaches_the_limit_is_sent(alice):
    fail_api("alice", times=4)
    response = assert_status(api_login("alice", WRONG), 429)
    assert "Retry-After" in response
    assert "Too many failed login attempts" in response.json()["detail"]


def test_locks_only_that_username_when_another_user_logs_in_from_the_same_address(alice, bob):
    fail_api("alice")
    assert_status(api_login("alice", PASSWORD), 429)
    response = assert_status(api_login("bob", PASSWORD), 200)
    assert "access" in response.json()


def test_counts_failures_per_username_when_wrong_passwords_are_spread_over_users(alice, bob):
    fail_api("alice", times=3)
    fail_api("bob", times=3)
    assert_status(api_login("alice", PASSWORD), 200)
    assert_status(api_login("bob", PASSWORD), 200)


def test_resets_the_count_when_the_right_password_is_given(alice):
    fail_api("alice", times=4)
    assert_status(api_login("alice", PASSWORD), 200)
    fail_api("alice", times=4)
    assert_status(api_login("alice", PASSWORD), 200)


def test_unlocks_when_the_cool_off_time_has_passed(alice, settings):
    fail_api("alice")
    assert_status(api_login("alice", PASSWORD), 429)
    with time_machine.travel(timezone.now() + settings.AXES_COOLOFF_TIME + timedelta(seconds=1), tick=False):
        assert_status(api_login("alice", PASSWORD), 200)


def test_follows_the_configured_limit_when_it_is_changed(alice, settings):
    settings.AXES_FAILURE_LIMIT = 2
    fail_api("alice", times=2, limit=2)
    assert_status(api_login("alice", PASSWORD), 429)


def test_shows_locked_out_page_with_429_when_html_login_is_locked_out(alice, settings):
    fail_page("alice")
    client = Client()
    response = assert_status(page_login("alice", PASSWORD, client), 429)
    html = response.content.decode()
    assert "Locked out" in html
    assert "Too many failed login attempts" in html
    assert response["Retry-After"] == str(int(settings.AXES_COOLOFF_TIME.total_seconds()))
    # Not logged in: the home page still sends this client to the login page.
    assert_status(client.get("/"), 302)


def test_locks_html_login_when_failures_came_through_the_api(alice):
    fail_api("alice")
    response = assert_status(page_login("alice", PASSWORD), 429)
    assert "Locked out" in response.content.decode()


def test_locks_api_login_when_failures_came_through_the_html_page(alice):
    fail_page("alice")
    assert_status(api_login("alice", PASSWORD), 429)


def test_logs_other_user_in_via_html_page_when_one_username_is_locked(alice, bob):
    fail_page("alice")
    response = page_login("bob", PASSWORD)
    assert_status(response, 302)
    assert response["Location"] == "/"


@pytest.mark.django_db(transaction=True)
def test_answers_429_json_when_locked_out_under_asgi(alice):
    # Production runs under ASGI (Daphne/Uvicorn), where axes' middleware takes its async path.
    async def attempts():
        client = AsyncClient()
        statuses = []
        for password in [WRONG] * 5 + [PASSWORD]:
            response = await client.post(
                TOKEN_URL, {"username": "alice", "password": password}, content_type="application/json"
            )
            statuses.append(response.status_code)
        return statuses, response

    statuses, last = async_to_sync(attempts)()
    assert statuses == [401, 401, 401, 401, 429, 429]
    assert last["Retry-After"]
    assert "Too many failed login attempts" in last.json()["detail"]
