"""JWT for the management API (CONTRACT.md "Management API"): obtain, use, rotate, blacklist."""

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone
from rest_framework.test import APIClient
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken

from accounts.services import member_set_role
from conftest import assert_status
from devices.tests.factories import PASSWORD, make_user

pytestmark = pytest.mark.django_db

TOKEN_URL = "/api/v1/auth/token/"
REFRESH_URL = "/api/v1/auth/token/refresh/"
BLACKLIST_URL = "/api/v1/auth/token/blacklist/"
ME_URL = "/api/v1/users/me/"


def obtain(username: str, password: str = PASSWORD) -> dict:
    response = assert_status(APIClient().post(TOKEN_URL, {"username": username, "password": password}), 200)
    return response.json()


def bearer(access: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    return client


def test_returns_access_and_refresh_when_credentials_are_right(alice):
    tokens = obtain("alice")
    assert set(tokens) == {"access", "refresh"}
    assert tokens["access"] != tokens["refresh"]
    alice.refresh_from_db()
    assert alice.last_login is not None


def test_identifies_the_user_and_roles_when_access_token_is_sent_as_bearer(alice, plant_a):
    member_set_role(plant=plant_a, user=alice, role="operator")
    tokens = obtain("alice")
    response = assert_status(bearer(tokens["access"]).get(ME_URL), 200)
    body = response.json()
    assert body["username"] == "alice"
    assert body["roles"] == {str(plant_a.pk): "operator"}


def test_answers_401_json_when_password_is_wrong(alice):
    response = assert_status(APIClient().post(TOKEN_URL, {"username": "alice", "password": "wrong password"}), 401)
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["detail"]


def test_answers_401_json_when_user_is_unknown(db):
    response = assert_status(APIClient().post(TOKEN_URL, {"username": "nobody", "password": PASSWORD}), 401)
    assert response.json()["detail"]


def test_answers_401_when_user_is_inactive(db):
    make_user("gone", is_active=False)
    assert_status(APIClient().post(TOKEN_URL, {"username": "gone", "password": PASSWORD}), 401)


def test_answers_400_json_when_password_is_missing(alice):
    response = assert_status(APIClient().post(TOKEN_URL, {"username": "alice"}), 400)
    assert "password" in response.json()["errors"]


def test_answers_401_when_bearer_token_is_garbage(db):
    response = assert_status(bearer("not-a-jwt").get(ME_URL), 401)
    assert response.json()["detail"]


def test_answers_401_when_no_credentials_are_sent(db):
    response = assert_status(APIClient().get(ME_URL), 401)
    assert response.json()["detail"]


def test_refuses_refresh_token_as_access_token_when_sent_as_bearer(alice):
    tokens = obtain("alice")
    assert_status(bearer(tokens["refresh"]).get(ME_URL), 401)


def test_rotates_refresh_token_when_refreshing(alice):
    tokens = obtain("alice")
    response = assert_status(APIClient().post(REFRESH_URL, {"refresh": tokens["refresh"]}), 200)
    rotated = response.json()
    assert set(rotated) == {"access", "refresh"}
    assert rotated["refresh"] != tokens["refresh"]
    assert_status(bearer(rotated["access"]).get(ME_URL), 200)
    # The new refresh token works in turn.
    assert_status(APIClient().post(REFRESH_URL, {"refresh": rotated["refresh"]}), 200)


def test_refuses_old_refresh_token_with_401_when_it_was_rotated(alice):
    tokens = obtain("alice")
    assert_status(APIClient().post(REFRESH_URL, {"refresh": tokens["refresh"]}), 200)
    assert BlacklistedToken.objects.filter(token__user=alice).count() == 1
    response = assert_status(APIClient().post(REFRESH_URL, {"refresh": tokens["refresh"]}), 401)
    assert "blacklisted" in response.json()["detail"].lower()


def test_refuses_refresh_with_401_when_logged_out_via_blacklist(alice):
    tokens = obtain("alice")
    assert_status(APIClient().post(BLACKLIST_URL, {"refresh": tokens["refresh"]}), 200)
    response = assert_status(APIClient().post(REFRESH_URL, {"refresh": tokens["refresh"]}), 401)
    assert response.json()["detail"]
    # Logging out twice is refused too, rather than silently succeeding.
    assert_status(APIClient().post(BLACKLIST_URL, {"refresh": tokens["refresh"]}), 401)


def test_keeps_other_sessions_when_one_refresh_token_is_blacklisted(alice):
    laptop, phone = obtain("alice"), obtain("alice")
    assert_status(APIClient().post(BLACKLIST_URL, {"refresh": laptop["refresh"]}), 200)
    assert_status(APIClient().post(REFRESH_URL, {"refresh": phone["refresh"]}), 200)


def test_refuses_refresh_with_401_when_token_is_tampered(alice):
    tokens = obtain("alice")
    head, payload, signature = tokens["refresh"].split(".")
    tampered = f"{head}.{payload}.{signature[::-1]}"
    assert_status(APIClient().post(REFRESH_URL, {"refresh": tampered}), 401)


def test_refuses_access_token_when_it_has_expired(alice, settings):
    tokens = obtain("alice")
    lifetime = settings.SIMPLE_JWT["ACCESS_TOKEN_LIFETIME"]
    with time_machine.travel(timezone.now() + lifetime + timedelta(seconds=5), tick=False):
        response = assert_status(bearer(tokens["access"]).get(ME_URL), 401)
    assert response.json()["detail"]


def test_refuses_access_token_when_user_was_deactivated(alice):
    tokens = obtain("alice")
    alice.is_active = False
    alice.save(update_fields=["is_active"])
    assert_status(bearer(tokens["access"]).get(ME_URL), 401)


def test_signs_with_a_key_of_32_bytes_or_more_when_using_hs256(settings):
    # PyJWT warns on HMAC keys under 32 bytes (STACK.md "Gotchas").
    assert len(settings.SIMPLE_JWT["SIGNING_KEY"].encode()) >= 32
