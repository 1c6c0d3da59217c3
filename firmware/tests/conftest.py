"""Fixtures of the firmware tests: eager Celery (the worker test switches it off), a media dir per test."""

import pytest
import time_machine

from firmware.tests.factories import make_fleet


@pytest.fixture(autouse=True)
def _eager_and_media(settings, tmp_path):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.SITE_URL = "http://factory.test"
    settings.FIRMWARE_SIGNING_KEY = ""
    # Rollout progress publishes on every change, built inline: a trailing snapshot, built after
    # the throttle's interval, would outlive the test's database.
    settings.FIRMWARE_LIVE_INTERVAL = 0


@pytest.fixture
def fleet(plant_a):
    return make_fleet(plant_a, 4)


@pytest.fixture
def clock():
    with time_machine.travel("2026-11-27 08:00:00+00:00", tick=False) as traveller:
        yield traveller


@pytest.fixture
def on_commit(django_capture_on_commit_callbacks):
    """``on_commit(fn, **kwargs)``: call a service and run the tasks it enqueues after commit (eagerly)."""

    def call(fn, *args, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return fn(*args, **kwargs)

    return call
