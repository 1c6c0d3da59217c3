"""``seed_demo --history`` (what `make run` runs): the demo machines show believable OEE today at once."""

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command
from django.utils import timezone

from accounts.models import User
from conftest import assert_status
from devices.models import Device, Plant, TelemetryReading

pytestmark = pytest.mark.django_db


def test_demo_machines_show_believable_oee_today_from_simulated_history(settings, client_for):
    settings.DEBUG = True
    local = timezone.now().astimezone(ZoneInfo("Europe/Berlin"))
    if local - datetime.combine(local.date(), time(), local.tzinfo) < timedelta(hours=1):
        pytest.skip("the demo plant's day is less than an hour old: too little history to judge")
    call_command("seed_demo", "--history", stdout=open("/dev/null", "w"))  # noqa: SIM115
    plant = Plant.objects.get(name="Demo Plant")
    assert TelemetryReading.objects.filter(device__plant=plant).exists()
    operator = User.objects.get(username="operator")
    response = client_for(operator).get("/api/v1/analytics/oee/", {"plant": plant.pk, "per_device": "true"})
    machines = assert_status(response, 200).json()["devices"]
    assert len(machines) == Device.objects.filter(plant=plant, kind="machine").count() == 8
    for machine in machines:
        # Healthy machines (no breakdowns in the history): some idling, setups and planned stops,
        # a little slower than ideal, a few percent rejects. Never a data gap beyond the first minute.
        assert 25 <= machine["oee"] < 100, machine
        assert 35 <= machine["availability"] <= 100 and 75 <= machine["performance"] <= 100, machine
        assert 90 <= machine["quality"] <= 100 and machine["data_gap_seconds"] <= 60, machine
    # Run again at once: every device is fresh, nothing more is stored.
    before = TelemetryReading.objects.count()
    call_command("seed_demo", "--history", stdout=open("/dev/null", "w"))  # noqa: SIM115
    assert TelemetryReading.objects.count() == before
