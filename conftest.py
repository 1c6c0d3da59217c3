"""Shared fixtures: the personas of every permission test and helpers that print bodies on failure.

Personas (STYLE.md §11): ``outsider`` (no plant), ``viewer``, ``operator`` and ``plant_admin``
of plant A; plant B is the foreign plant; ``superuser`` sees everything.
"""

import os

import httpx
import pytest
import pytest_asyncio
from django.conf import settings as django_settings
from django.test import Client
from rest_framework.test import APIClient

from accounts.roles import Role
from devices.tests.factories import make_plant, make_user

REQUIRE_SERVICES = os.environ.get("REQUIRE_SERVICES") == "1"

# Shared fixtures: Chromium and its pages, the device pool of tests sharing one server stack, the
# SMTP server, the Celery worker process.
pytest_plugins = ["tests.browser", "tests.shared_stack", "tests.mail", "tests.worker"]


def require_service(setting_name: str) -> str:
    """Return the URL of a real service, or skip (fail under ``REQUIRE_SERVICES=1``) when it is not configured."""
    value = getattr(django_settings, setting_name, None)
    if not value or value == "memory://":
        message = f"{setting_name} is not set: this test needs the real service."
        if REQUIRE_SERVICES:
            pytest.fail(message)
        pytest.skip(message)
    return value


def assert_status(response, expected: int):
    """Assert the HTTP status and show the body when it differs."""
    if getattr(response, "streaming", False):
        body = "(streamed body)"  # reading it here would consume what the test wants to read
    else:
        body = getattr(response, "data", None) or response.content[:2000]
    assert response.status_code == expected, f"expected {expected}, got {response.status_code}: {body}"
    return response


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix):
    """Give each pytest process its own test database on a shared server (parallel runs, CI beside dev)."""
    from django.db import connections

    suffix = f"p{os.getpid()}"
    for alias in connections:
        test = connections[alias].settings_dict.setdefault("TEST", {})
        if connections[alias].settings_dict["ENGINE"].endswith("mysql"):
            test["NAME"] = f"test_{connections[alias].settings_dict['NAME']}_{suffix}"


@pytest.fixture(scope="session", autouse=True)
def _lean_routes_for_the_test_client():
    """Django's test client reaches the lean device endpoints through tests/urls.py (tests/lean_routes.py)."""
    from django.urls import clear_url_caches

    django_settings.ROOT_URLCONF = "tests.urls"
    clear_url_caches()


@pytest.fixture(autouse=True)
def _fast_hashing_and_var(settings, tmp_path):
    # Argon2 costs ~100 ms per hash; the hasher itself is covered by test_passwords.py.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.VAR_DIR = tmp_path / "var"


@pytest.fixture(autouse=True)
def _fresh_metric_cache():
    """Ingest caches metric ids per process; a test's rollback removes the rows (and executed
    on-commit callbacks would keep their ids), so every test starts clean."""
    from devices.services import ingest

    ingest._metric_ids.clear()
    yield
    ingest._metric_ids.clear()


@pytest.fixture
def plant_a(db):
    return make_plant("Plant A")


@pytest.fixture
def plant_b(db):
    return make_plant("Plant B")


def _member(username: str, plant, role: str):
    return make_user(username, plant=plant, role=role)


@pytest.fixture
def outsider(db, plant_a, plant_b):
    return make_user("outsider")


@pytest.fixture
def viewer(plant_a):
    return _member("viewer", plant_a, Role.VIEWER)


@pytest.fixture
def operator(plant_a):
    return _member("operator", plant_a, Role.OPERATOR)


@pytest.fixture
def plant_admin(plant_a):
    return _member("plantadmin", plant_a, Role.ADMIN)


@pytest.fixture
def superuser(db):
    return make_user("root", is_superuser=True, is_staff=True)


@pytest.fixture
def plant_admin_client(plant_admin):
    """The Django test client logged in as plant A's admin (the admin site, scoped to plant A)."""
    client = Client()
    client.force_login(plant_admin)
    return client


@pytest_asyncio.fixture
async def asgi_client():
    """An httpx client on the project's ASGI application (the lean routes, as a device calls them)."""
    from factory.asgi import application

    transport = httpx.ASGITransport(app=application)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


@pytest.fixture
def client_for():
    """``client_for(user)`` → an APIClient logged in as ``user`` (session auth, as the browser)."""

    def make(user):
        client = APIClient()
        if user is not None:
            client.force_login(user)
        return client

    return make
