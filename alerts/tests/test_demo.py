"""seed_demo adds alarm rules and channels the simulator's breakdowns trigger (idempotent)."""

import random
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from alerts.models import Alarm, AlertRule, NotificationChannel, NotificationRoute
from devices.models import Device
from devices.services.ingest import IngestItem, telemetry_store
from devices.services.telemetry_payload import Message
from simulator.machine import MachineModel
from simulator.runner import FIRST_BREAKDOWN_SECONDS

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


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_simulators_worn_machine_raises_a_demo_alarm_within_two_minutes(
    settings, django_capture_on_commit_callbacks, seed
):
    """The simulator starts one machine worn (``Runner._wear_one_machine``): against the demo rules its
    vibration raises "Vibration high" well within two minutes, then "Machine down" once it has been
    down for the rule's two minutes. Played through the real ingest and evaluation, 10 s per batch."""
    settings.DEBUG = True
    call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    press = Device.objects.get(uid="press-01")
    machine = MachineModel(ideal_cycle_time=2.5, rng=random.Random(seed), failure_rate=0.5)
    machine.wear_out(FIRST_BREAKDOWN_SECONDS)
    start = timezone.now().replace(microsecond=0) - timedelta(seconds=300)
    for batch in range(30):
        messages = []
        for n in range(batch * 10 + 1, batch * 10 + 11):
            sent = machine.step(start + timedelta(seconds=n), 1.0)
            messages.append(Message(ts=start + timedelta(seconds=n), values=sent["values"], state=sent["state"]))
        with django_capture_on_commit_callbacks(execute=True):
            telemetry_store([IngestItem(device=press, messages=messages)], received_at=messages[-1].ts)
    raised = {a.rule.name: (a.raised_at - start).total_seconds() for a in Alarm.objects.select_related("rule")}
    assert raised["Vibration high"] <= 120, raised
    assert raised["Machine down"] <= FIRST_BREAKDOWN_SECONDS + 120 + 5, raised
    assert set(raised) <= {"Vibration high", "Machine down", "Temperature high"}, raised
