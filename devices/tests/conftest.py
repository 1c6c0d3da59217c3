"""Fixtures of the devices tests: plant A's press line with three presses, plant B's foreign line
and device (the API tests' rows; a module may override one, e.g. with another line position)."""

import pytest

from devices.tests.factories import make_device, make_line


@pytest.fixture
def line_a(plant_a):
    return make_line(plant_a, "Press line")


@pytest.fixture
def line_b(plant_b):
    return make_line(plant_b, "Foreign line")


@pytest.fixture
def presses(line_a):
    return [make_device(line_a, f"press-{n:02d}") for n in (1, 2, 3)]


@pytest.fixture
def foreign(line_b):
    return make_device(line_b, "foreign-01")
