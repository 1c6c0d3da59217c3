"""OEE of a machine that runs product A, changes over, then runs product B (issue 16, item 1).

Performance weighs each piece with the ideal cycle time of the run in force when it was made;
the time from B's start until the machine runs again is a changeover: setup loss.
"""

import json
from datetime import timedelta
from decimal import Decimal

import pytest
from django.test import Client

from analytics.models import LossCategory, OEEDayCache, ReasonCode
from analytics.services import stop_classify
from analytics.tests.factories import at, counts, make_shift, recent_day, store
from conftest import assert_status
from devices.tests.factories import make_device, make_line, make_token
from production.models import Run
from production.services.runs import run_end, run_save, run_start
from production.tests.factories import make_product

pytestmark = pytest.mark.django_db
TZ = "UTC"


@pytest.fixture
def floor(plant_a):
    """Shift 06:00-14:00 (no breaks) two days ago; machine default 10 s/piece; A: 20 s on the machine
    (its line says 25 s: the machine's row wins); B: 30 s per cycle of 2 pieces on the line = 15 s/piece."""
    plant_a.time_zone = TZ
    plant_a.save()
    make_shift(plant_a, start="06:00", end="14:00")
    line = make_line(plant_a, "Moulding")
    machine = make_device(line, "moulder-01", ideal_cycle_time=Decimal("10"))
    a = make_product(plant_a, "A-100", name="Housing", machines=[(machine, 20)], lines=[(line, 25)])
    b = make_product(plant_a, "B-200", name="Lid", lines=[(line, 30)], units_per_cycle=2)
    day = recent_day(TZ)
    return plant_a, machine, a, b, day, lambda clock: at(day, clock, TZ)


def _total(client, machine, t, group_by="shift"):
    query = {"device": machine.pk, "start": t("00:00").isoformat(), "end": (t("00:00") + timedelta(days=1)).isoformat()}
    return assert_status(client.get("/api/v1/analytics/oee/", {**query, "group_by": group_by}), 200).json()["total"]


def _run_a_then_b(floor, operator):
    plant, machine, a, b, day, t = floor
    run_a = run_start(device=machine, product=a, at=t("06:00"), by=operator)
    run_b = run_start(device=machine, product=b, at=t("10:00"), by=operator)
    run_end(run=run_b, at=t("14:00"), by=operator)
    store(
        machine,
        [
            (t("06:00"), "running", counts(0, 0)),
            (t("10:00"), "idle", counts(600, 590)),  # A's 600 pieces reported as B starts
            (t("10:30"), "running", None),  # the changeover to B took 30 minutes
            (t("14:00"), "idle", counts(1020, 1000)),  # B's 420 pieces
        ],
    )
    return run_a, run_b


def test_performance_weighs_each_product_with_its_own_cycle_time_when_a_machine_changes_over(
    floor, operator, viewer, client_for
):
    """By hand:
    planned = 06:00-14:00 = 28,800 s; run = 4 h of A + 3.5 h of B = 14,400 + 12,600 = 27,000 s;
    changeover 10:00-10:30 = 1,800 s of stop time, as setup loss (the machine said ``idle``, which
    would otherwise be "idling and minor stops").
    ideal time = 600 A x 20 s + 420 B x (30 s / 2 pieces) = 12,000 + 6,300 = 18,300 s.
    Availability = 27,000 / 28,800 = 93.75 %; Performance = 18,300 / 27,000 = 67.777… → 67.78 %
    (with the machine's own 10 s it would be 10,200 / 27,000 = 37.78 %);
    Quality = 1,000 / 1,020 = 98.039… → 98.04 %;
    OEE = A × P × Q = 18,300 / 28,800 × 1,000 / 1,020 = 0.62295… → 62.30 % (from exact factors).
    """
    _run_a_then_b(floor, operator)
    plant, machine, a, b, day, t = floor
    total = _total(client_for(viewer), machine, t)
    assert (total["planned_seconds"], total["run_seconds"], total["stop_seconds"]) == (28800, 27000, 1800)
    assert total["ideal_seconds"] == 18300
    assert (total["availability"], total["performance"], total["quality"], total["oee"]) == (93.75, 67.78, 98.04, 62.30)
    assert total["changeover_seconds"] == 1800 and total["changeovers"] == 1
    assert total["losses"]["setup_adjustment"]["seconds"] == 1800
    assert total["losses"]["idling_minor_stops"]["seconds"] == 0
    # The day grouping (stored closed days) gives the same figures.
    day_total = _total(client_for(viewer), machine, t, group_by="day")
    assert (day_total["performance"], day_total["oee"], day_total["changeover_seconds"]) == (67.78, 62.30, 1800)


def test_changing_a_past_run_recomputes_the_stored_day(floor, operator, viewer, client_for):
    """B's run corrected to 30 s per piece: ideal = 12,000 + 420 x 30 = 24,600 s;
    Performance = 24,600 / 27,000 = 91.11 %."""
    _, run_b = _run_a_then_b(floor, operator)
    plant, machine, a, b, day, t = floor
    assert _total(client_for(viewer), machine, t, group_by="day")["performance"] == 67.78
    assert OEEDayCache.objects.filter(device=machine, day=day, stale=False).exists()

    run_b.ideal_cycle_time = Decimal("30")
    run_save(run=run_b)
    assert OEEDayCache.objects.get(device=machine, day=day).stale
    assert _total(client_for(viewer), machine, t, group_by="day")["performance"] == 91.11


def test_a_stop_the_operator_classified_keeps_its_reason_inside_a_changeover(floor, operator, viewer, client_for):
    _run_a_then_b(floor, operator)
    plant, machine, a, b, day, t = floor
    reason = ReasonCode.objects.create(plant=plant, code="jam", name="Jam", category=LossCategory.EQUIPMENT_FAILURE)
    stop_classify(device=machine, start=t("10:00"), reason=reason, by=operator)
    total = _total(client_for(viewer), machine, t)
    assert total["losses"]["equipment_failure"]["seconds"] == 1800
    assert total["losses"]["setup_adjustment"]["seconds"] == 0
    assert total["changeover_seconds"] == 1800  # still a changeover, by time


def test_no_changeover_when_the_machine_is_running_as_a_run_starts(floor, operator, viewer, client_for):
    plant, machine, a, b, day, t = floor
    run_start(device=machine, product=a, at=t("06:00"), by=operator)
    store(machine, [(t("06:00"), "running", counts(0, 0)), (t("14:00"), "idle", counts(1000, 1000))])
    total = _total(client_for(viewer), machine, t)
    assert total["changeovers"] == 0 and total["changeover_seconds"] == 0
    assert total["ideal_seconds"] == 20000  # 1,000 x 20 s


def test_pieces_outside_every_run_use_the_machine_cycle_time(floor, operator, viewer, client_for):
    """No run before 10:00: 600 x 10 s (machine) + 420 x 15 s (B) = 6,000 + 6,300 = 12,300 s."""
    plant, machine, a, b, day, t = floor
    run_start(device=machine, product=b, at=t("10:00"), by=operator)
    store(
        machine,
        [
            (t("06:00"), "running", counts(0, 0)),
            (t("10:00"), "idle", counts(600, 590)),
            (t("10:30"), "running", None),
            (t("14:00"), "idle", counts(1020, 1000)),
        ],
    )
    assert _total(client_for(viewer), machine, t)["ideal_seconds"] == 12300
    assert Run.objects.get(device=machine).ideal_cycle_time == Decimal("15")


def test_the_same_figures_when_the_machine_itself_reports_product_a_then_b_over_http(floor, viewer, client_for):
    """The first test's day, told by the machine: ``product`` on its messages starts the runs."""
    plant, machine, a, b, day, t = floor
    _, token = make_token(machine)
    iso = lambda ts: ts.isoformat().replace("+00:00", "Z")  # noqa: E731
    messages = [
        {"ts": iso(t("06:00")), "state": "running", "values": counts(0, 0), "product": "A-100"},
        {"ts": iso(t("10:00")), "state": "idle", "values": counts(600, 590), "product": "B-200"},
        {"ts": iso(t("10:30")), "state": "running", "product": "B-200"},
        {"ts": iso(t("14:00")), "state": "idle", "values": counts(1020, 1000), "product": ""},
    ]
    response = Client().post(
        "/api/v1/telemetry/", json.dumps({"messages": messages}), content_type="application/json",
        HTTP_AUTHORIZATION=f"Device {token}",
    )  # fmt: skip
    assert_status(response, 202)
    assert [(r.product.code, r.start, r.end) for r in Run.objects.filter(device=machine).order_by("start")] == [
        ("A-100", t("06:00"), t("10:00")),
        ("B-200", t("10:00"), t("14:00")),
    ]
    total = _total(client_for(viewer), machine, t)
    assert (total["ideal_seconds"], total["performance"], total["oee"], total["changeover_seconds"]) == (
        18300, 67.78, 62.30, 1800,
    )  # fmt: skip
