"""Fixtures of the devices tests: plant A's press line with three presses, plant B's foreign line
and device (the API tests' rows; a module may override one, e.g. with another line position)."""

import pytest
from django.core.cache import cache

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


# Latest values are cached per device id for 2 s, and ids repeat across rolled-back tests: a module
# that reads them starts each test with an empty cache through one of these two.
@pytest.fixture
def cleared_cache():
    """The configured cache (Redis on the services leg), emptied."""
    cache.clear()


@pytest.fixture
def private_cache(settings):
    """A local cache of the test's own, empty (clearing a configured Redis would wipe shared data)."""
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "tests"}}
    cache.clear()
