"""Fixtures of the command tests: plant A's press (model HP-400) with the catalogue, plant B's device."""

import pytest

from commands.tests.factories import make_catalogue
from devices.tests.factories import make_device, make_line, make_token


@pytest.fixture
def catalogue(db):
    return make_catalogue()


@pytest.fixture
def press(plant_a, catalogue):
    return make_device(make_line(plant_a, "Press line"), "press-01")


@pytest.fixture
def press_token(press):
    return make_token(press)[1]


@pytest.fixture
def foreign(plant_b, catalogue):
    return make_device(make_line(plant_b, "Foreign line"), "foreign-01")
