"""``seed_demo --history``: thirty days of plant history, so the OEE trend, the loss Pareto and the
charts look like a real plant from the first minute (not 29 days of 0 % and "Unclassified 1,186 h")."""

import random
from datetime import UTC, datetime, time, timedelta
from io import StringIO

import pytest
import time_machine
from django.core.management import call_command
from django.utils import timezone

from accounts.models import User
from analytics.models import OEEDayCache, StopReason
from devices.models import Device, MachineState, Plant, TelemetryReading, TelemetryRollup1h, TelemetryRollup1m
from devices.services.rollups import retention_enforce, rollups_refresh
from simulator.backfill import history_backfill

pytestmark = pytest.mark.django_db

ROWS = [MachineState, TelemetryReading, TelemetryRollup1m, TelemetryRollup1h, StopReason]


@pytest.fixture(autouse=True)
def _debug_on(settings):
    settings.DEBUG = True  # the command runs only on dev machines


def counts() -> dict[str, int]:
    return {model.__name__: model.objects.count() for model in ROWS}


# Mid-morning in the demo plant (Europe/Berlin): today's period then holds hours of production.
# At the real clock, just after the plant's midnight, today would hold minutes or nothing, and the
# first day would start mid-day unless read from midnight (both made this test fail by the hour).
@time_machine.travel(datetime(2026, 11, 27, 9, 30, tzinfo=UTC), tick=True)
def test_history_gives_the_30_day_trend_and_the_pareto_of_a_real_plant_once(client_for, settings):
    call_command("seed_demo", "--history", stdout=StringIO())
    seeded = counts()
    second = StringIO()
    call_command("seed_demo", "--history", stdout=second)
    assert counts() == seeded, "a second run adds nothing"
    assert "days before today" not in second.getvalue()
    now = timezone.now()
    plant = Plant.objects.get(name="Demo Plant")
    client = client_for(User.objects.get(username="operator"))
    # From the plant's midnight 30 days back: whole days. A window opened mid-day would take the
    # pieces of the 15-minute counter step before it (counts land where they are reported), so a
    # short first day could read over 100 % performance depending on the hour the test runs.
    midnight = datetime.combine(now.astimezone(plant.tz).date() - timedelta(days=30), time(), plant.tz)
    start = midnight.isoformat()
    trend = client.get("/api/v1/analytics/oee/", {"plant": plant.pk, "start": start, "group_by": "day"}).json()
    producing = [p for p in trend["periods"] if p["total_count"]]
    assert len(producing) == len(trend["periods"]) == 31  # 30 days back from now: 31 calendar days
    for day in producing:
        figures = (day["start"], day["availability"], day["performance"], day["quality"], day["oee"])
        assert day["data_gap_seconds"] == 0, figures
        assert 50 < day["availability"] < 100 and 60 < day["performance"] <= 100, figures
        assert 90 < day["quality"] < 100 and 30 < day["oee"] < 95, figures
    assert len({round(day["oee"]) for day in producing}) > 5, "days differ, as in a real plant"

    week = client.get("/api/v1/analytics/oee/", {"plant": plant.pk, "start": (now - timedelta(days=7)).isoformat(),
                                                 "group_by": "week"}).json()  # fmt: skip
    losses = {key: loss["seconds"] for key, loss in week["total"]["losses"].items()}
    assert losses["unclassified"] <= 0.01 * sum(losses.values()), losses
    for key in ("equipment_failure", "setup_adjustment", "idling_minor_stops", "reduced_speed", "process_defects"):
        assert losses[key] > 0, key
    assert StopReason.objects.filter(device__plant=plant, reason__code="breakdown").exists()

    press = Device.objects.get(uid="press-01")
    month = client.get(f"/api/v1/devices/{press.pk}/telemetry/", {"metric": "temperature", "start": start}).json()
    assert month["bucket"] == "1h" and len(month["points"]) >= 29 * 24
    while rollups_refresh(limit=50_000, now=now):  # beat's task: today's minutes, played through the ingest
        pass
    day = client.get(f"/api/v1/devices/{press.pk}/telemetry/",
                     {"metric": "count_total", "start": (now - timedelta(hours=24)).isoformat()}).json()  # fmt: skip
    assert day["bucket"] == "1m" and len(day["points"]) >= 23 * 60

    # A short raw retention deletes the counters of older days: their OEE was stored by the seed.
    settings.TELEMETRY_RETENTION_RAW_DAYS = 7
    assert retention_enforce(now=now)["raw"] > 0
    assert not TelemetryReading.objects.filter(ts__lt=now - timedelta(days=8)).exists()
    again = client.get("/api/v1/analytics/oee/", {"plant": plant.pk, "start": start, "group_by": "day"}).json()
    assert again["periods"][:-1] == trend["periods"][:-1]  # every closed day (today is read from raw)


def test_history_is_the_same_for_the_same_seed_and_moment(plant_a):
    """Deterministic: rebuilt from scratch, the same rows; and only before each device's first data."""
    from analytics.demo import demo_seed as analytics_seed
    from devices.tests.factories import make_device, make_line

    plant_a.time_zone = "Europe/Berlin"
    plant_a.save()
    analytics_seed(plant=plant_a)
    line = make_line(plant_a, "Stamping")
    for uid in ("press-a", "press-b"):
        make_device(line, uid, ideal_cycle_time=2.5)
    make_device(line, "temp-hall", kind="sensor", model="TH-1")
    now = datetime(2026, 11, 27, 9, 30, tzinfo=UTC)

    def snapshot():
        return {
            "states": list(
                MachineState.objects.order_by("device__uid", "ts").values_list("device__uid", "ts", "state")
            ),
            "readings": list(TelemetryReading.objects.order_by("device__uid", "metric", "ts").values_list("value")),
            "hours": list(TelemetryRollup1h.objects.order_by("device__uid", "metric", "bucket").values_list("sum")),
            "stops": list(StopReason.objects.order_by("device__uid", "start").values_list("start", "reason__code")),
        }

    history_backfill(plant=plant_a, now=now, days=3, seed=random.Random(1).randint(0, 99))
    first = snapshot()
    assert first["states"] and first["readings"] and first["hours"] and first["stops"]
    assert OEEDayCache.objects.filter(device__plant=plant_a).count() == 2 * 3  # the closed days, stored
    for model in ROWS:
        model.objects.all().delete()
    history_backfill(plant=plant_a, now=now, days=3, seed=random.Random(1).randint(0, 99))
    assert snapshot() == first
    assert history_backfill(plant=plant_a, now=now, days=3) == dict.fromkeys(
        ["states", "readings", "rollups_1m", "rollups_1h", "stop_reasons"], 0
    )
