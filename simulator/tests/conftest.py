"""Fixtures of the simulator tests: the OTA device side runs against the firmware endpoints."""

from firmware.tests.conftest import on_commit  # noqa: F401 - call a service, run what it enqueues
