"""The lean device endpoints have one route each: ``factory.asgi.LEAN_ROUTES``, not Django's URLconf."""

import pytest
from django.urls import resolve

from factory.asgi import LEAN_ROUTES
from factory.exceptions import not_found


@pytest.mark.parametrize("path", sorted(LEAN_ROUTES))
def test_django_urlconf_does_not_route_a_lean_endpoint(path):
    assert resolve(path, urlconf="factory.urls").func is not_found


def test_lean_routes_are_the_telemetry_and_firmware_status_endpoints():
    assert sorted(LEAN_ROUTES) == ["/api/v1/device/firmware/status/", "/api/v1/telemetry/"]
