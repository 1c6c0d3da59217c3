"""Password storage: Argon2 for new passwords, older hashes still accepted (and upgraded) at login."""

import pytest
from django.contrib.auth.hashers import make_password
from django.core.exceptions import ValidationError
from rest_framework.test import APIClient

from accounts.models import User
from accounts.services import user_create
from conftest import assert_status
from devices.tests.factories import PASSWORD, make_user
from factory import settings as project_settings

pytestmark = pytest.mark.django_db

TOKEN_URL = "/api/v1/auth/token/"


@pytest.fixture(autouse=True)
def _production_hashers(settings):
    # conftest swaps in MD5 for speed; these tests are about the real list.
    settings.PASSWORD_HASHERS = project_settings.PASSWORD_HASHERS


def test_production_prefers_argon2_when_hashing_new_passwords():
    assert project_settings.PASSWORD_HASHERS[0] == "django.contrib.auth.hashers.Argon2PasswordHasher"
    assert "django.contrib.auth.hashers.MD5PasswordHasher" not in project_settings.PASSWORD_HASHERS


def test_stores_argon2_hash_when_user_is_created_by_the_service():
    user = user_create(username="alice", password=PASSWORD, email="alice@example.com")
    user.refresh_from_db()
    assert user.password.startswith("argon2$")
    assert PASSWORD not in user.password
    assert user.check_password(PASSWORD)


def test_stores_argon2_hash_when_superuser_creates_user_via_api(client_for, superuser):
    response = assert_status(
        client_for(superuser).post(
            "/api/v1/users/", {"username": "bob", "password": PASSWORD, "email": "bob@example.com"}
        ),
        201,
    )
    body = response.json()
    assert "password" not in body
    user = User.objects.get(pk=body["id"])
    assert user.password.startswith("argon2$")
    assert user.check_password(PASSWORD)


def test_rejects_weak_password_when_user_is_created_by_the_service():
    with pytest.raises(ValidationError) as excinfo:
        user_create(username="weak", password="password", email="weak@example.com")
    assert "password" in str(excinfo.value).lower()
    assert not User.objects.filter(username="weak").exists()


def test_answers_400_and_creates_nothing_when_api_password_is_too_short(client_for, superuser):
    response = assert_status(
        client_for(superuser).post("/api/v1/users/", {"username": "carol", "password": "Xy7!", "email": ""}), 400
    )
    assert "password" in response.json()["errors"]
    assert not User.objects.filter(username="carol").exists()


def test_accepts_bcrypt_hash_when_logging_in_via_api():
    user = make_user("legacy")
    user.password = make_password(PASSWORD, hasher="bcrypt_sha256")
    user.save(update_fields=["password"])
    assert user.password.startswith("bcrypt_sha256$")

    response = assert_status(APIClient().post(TOKEN_URL, {"username": "legacy", "password": PASSWORD}), 200)
    assert "access" in response.json()
    # A successful login re-hashes the password with the preferred hasher.
    user.refresh_from_db()
    assert user.password.startswith("argon2$")


def test_accepts_bcrypt_hash_when_logging_in_via_the_login_page(client):
    user = make_user("legacy")
    user.password = make_password(PASSWORD, hasher="bcrypt_sha256")
    user.save(update_fields=["password"])

    response = client.post("/accounts/login/", {"username": "legacy", "password": PASSWORD})
    assert_status(response, 302)
    assert response["Location"] == "/"


def test_refuses_bcrypt_hash_when_password_is_wrong():
    user = make_user("legacy")
    user.password = make_password(PASSWORD, hasher="bcrypt_sha256")
    user.save(update_fields=["password"])

    assert_status(APIClient().post(TOKEN_URL, {"username": "legacy", "password": "not the password"}), 401)
    user.refresh_from_db()
    assert user.password.startswith("bcrypt_sha256$")
