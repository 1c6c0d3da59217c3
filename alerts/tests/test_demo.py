"""seed_demo adds alarm rules and channels the simulator's breakdowns trigger (idempotent)."""

import pytest
from django.core.management import call_command

from alerts.models import AlertRule, NotificationChannel, NotificationRoute

pytestmark = pytest.mark.django_db


def test_seeds_demo_rules_and_channels_once(settings):
    settings.DEBUG = True
    call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    rules = dict(AlertRule.objects.values_list("name", "severity"))
    assert rules == {
        "Machine down": "critical",
        "Vibration high": "warning",
        "Temperature high": "warning",
        "No data": "info",
    }
    assert sorted(NotificationChannel.objects.values_list("kind", flat=True)) == ["email", "email", "inapp"]
    assert NotificationRoute.objects.filter(delay_minutes=10).count() == 1
