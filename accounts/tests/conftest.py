"""Fixtures shared by the accounts tests (the personas of every app are in the root conftest.py)."""

import pytest

from accounts.roles import Role
from accounts.services import service_account_create
from devices.tests.factories import make_user


@pytest.fixture
def alice(db):
    """A user with no role anywhere yet (password ``PASSWORD``)."""
    return make_user("alice")


@pytest.fixture
def login_limit_of_five(settings):
    """The login lockout (django-axes) on, at five failures per username and address."""
    settings.AXES_ENABLED = True
    settings.AXES_FAILURE_LIMIT = 5


@pytest.fixture
def erp(plant_a):
    """A service account, operator on plant A."""
    return service_account_create(name="erp", plant=plant_a, role=Role.OPERATOR)


@pytest.fixture
def foreign_account(plant_b):
    """A service account, viewer on plant B only."""
    return service_account_create(name="mes-b", plant=plant_b, role=Role.VIEWER)
