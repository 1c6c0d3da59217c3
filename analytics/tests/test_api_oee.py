"""OEE API: shifts, reason codes, stop classification and the OEE query; scoping and bad input."""

from datetime import timedelta
from decimal import Decimal

import pytest

from analytics.models import IdealCycleTime, ReasonCode, Shift, StopReason
from analytics.services import reason_code_create
from analytics.tests.factories import at, make_shift, recent_day, store
from conftest import assert_status
from devices.tests.factories import make_device, make_line

pytestmark = pytest.mark.django_db
TZ = "Europe/Berlin"
SHIFT = {"name": "Early", "start": "06:00", "end": "14:00", "weekdays": [0, 1, 2, 3, 4], "breaks": []}


def test_plant_admin_creates_a_night_shift_with_breaks(plant_a, plant_admin, client_for):
    body = {**SHIFT, "plant": plant_a.pk, "name": "Night", "start": "22:00", "end": "06:00"}
    body["breaks"] = [{"start": "23:30", "end": "23:45"}, {"start": "02:00", "end": "02:30"}]
    created = assert_status(client_for(plant_admin).post("/api/v1/shifts/", body, format="json"), 201).json()
    assert (
        created["breaks"] == body["breaks"] and created["start"] == "22:00" and created["weekdays"] == SHIFT["weekdays"]
    )
    assert Shift.objects.get(pk=created["id"]).breaks.count() == 2


def test_viewer_cannot_create_a_shift_and_outsider_does_not_see_one(plant_a, viewer, outsider, client_for):
    response = client_for(viewer).post("/api/v1/shifts/", {**SHIFT, "plant": plant_a.pk}, format="json")
    assert_status(response, 403)
    shift = make_shift(plant_a)
    assert_status(client_for(outsider).get(f"/api/v1/shifts/{shift.pk}/"), 404)
    assert client_for(outsider).get("/api/v1/shifts/").json()["results"] == []
    assert_status(client_for(viewer).get(f"/api/v1/shifts/{shift.pk}/"), 200)


def test_rejects_overlapping_shifts_with_a_field_error(plant_a, plant_admin, client_for):
    make_shift(plant_a, "Night", "22:00", "06:00", weekdays=[4])  # Friday night into Saturday
    body = {**SHIFT, "plant": plant_a.pk, "name": "Saturday", "weekdays": [5], "start": "05:00", "end": "13:00"}
    response = assert_status(client_for(plant_admin).post("/api/v1/shifts/", body, format="json"), 400)
    assert "Night" in response.json()["errors"]["start"][0]
    assert Shift.objects.count() == 1


def test_rejects_breaks_outside_their_shift(plant_a, plant_admin, client_for):
    body = {**SHIFT, "plant": plant_a.pk, "breaks": [{"start": "13:45", "end": "14:15"}]}
    response = assert_status(client_for(plant_admin).post("/api/v1/shifts/", body, format="json"), 400)
    assert "not inside the shift" in response.json()["errors"]["breaks"][0]
    assert not Shift.objects.exists()


def test_rejects_negative_ideal_cycle_time_and_keeps_history_of_changes(plant_a, plant_admin, client_for):
    device = make_device(make_line(plant_a), ideal_cycle_time=Decimal("2.5"))
    client = client_for(plant_admin)
    response = client.patch(f"/api/v1/devices/{device.pk}/", {"ideal_cycle_time": "-1"}, format="json")
    assert "ideal_cycle_time" in assert_status(response, 400).json()["errors"]
    assert_status(client.patch(f"/api/v1/devices/{device.pk}/", {"ideal_cycle_time": "3"}, format="json"), 200)
    history = list(IdealCycleTime.objects.filter(device=device).values_list("seconds", flat=True))
    assert history == [Decimal("2.5"), Decimal("3")]


def test_refuses_hourly_grouping_over_a_long_range_with_a_clear_message(plant_a, viewer, client_for):
    device = make_device(make_line(plant_a))
    end = at(recent_day(TZ), "00:00", TZ)
    query = {"device": device.pk, "start": (end - timedelta(days=365)).isoformat(), "end": end.isoformat()}
    response = client_for(viewer).get("/api/v1/analytics/oee/", {**query, "group_by": "hour"})
    message = assert_status(response, 400).json()["errors"]["group_by"][0]
    assert "at most 31 days" in message
    assert_status(client_for(viewer).get("/api/v1/analytics/oee/", {**query, "group_by": "week"}), 200)


def test_oee_of_another_plant_is_404_and_a_target_is_required(plant_b, viewer, client_for):
    foreign = make_device(make_line(plant_b))
    client = client_for(viewer)
    assert_status(client.get("/api/v1/analytics/oee/", {"device": foreign.pk}), 404)
    assert_status(client.get("/api/v1/analytics/oee/", {"plant": plant_b.pk}), 404)
    assert "device" in assert_status(client.get("/api/v1/analytics/oee/"), 400).json()["errors"]


def test_plant_oee_lists_each_machine_for_the_overview_tiles(plant_a, viewer, client_for):
    make_shift(plant_a, start="00:00", end="00:00")
    line = make_line(plant_a)
    machines = [make_device(line), make_device(line)]
    response = client_for(viewer).get("/api/v1/analytics/oee/", {"plant": plant_a.pk, "per_device": "true"})
    body = assert_status(response, 200).json()
    assert [d["device"] for d in body["devices"]] == sorted((m.pk for m in machines), key=lambda pk: pk)
    assert body["target"] == {"kind": "plant", "id": plant_a.pk, "plant": plant_a.pk}


@pytest.fixture
def stopped(plant_a):
    plant_a.time_zone = TZ
    plant_a.save()
    make_shift(plant_a)
    day = recent_day(TZ)
    device = make_device(make_line(plant_a))
    store(device, [(at(day, "06:00", TZ), "running", None), (at(day, "09:00", TZ), "down", None)])
    store(device, [(at(day, "10:00", TZ), "running", None)])
    return device, at(day, "09:00", TZ)


def test_operator_classifies_a_stop_and_losses_follow_the_reason(plant_a, operator, client_for, stopped):
    device, start = stopped
    reason = reason_code_create(plant=plant_a, code="mold-change", name="Mold change", category="setup_adjustment")
    client = client_for(operator)
    body = {"device": device.pk, "start": start.isoformat(), "reason": reason.pk, "note": "planned late"}
    stop = assert_status(client.post("/api/v1/analytics/stops/", body, format="json"), 201).json()
    assert (stop["reason"], stop["category"], stop["planned_seconds"]) == (reason.pk, "setup_adjustment", 3600)
    query = {"device": device.pk, "start": (start - timedelta(hours=9)).isoformat()}
    listed = assert_status(client.get("/api/v1/analytics/stops/", query), 200).json()
    assert [s["category"] for s in listed] == ["setup_adjustment"]
    oee = assert_status(
        client.get("/api/v1/analytics/oee/", {**query, "end": (start + timedelta(hours=15)).isoformat()}), 200
    )
    assert oee.json()["total"]["losses"]["setup_adjustment"]["seconds"] == 3600
    assert oee.json()["total"]["losses"]["equipment_failure"]["seconds"] == 0


def test_viewer_cannot_classify_and_another_plants_stop_is_404(plant_a, plant_b, viewer, operator, client_for, stopped):
    device, start = stopped
    reason = reason_code_create(plant=plant_a, code="jam", name="Jam", category="equipment_failure")
    body = {"device": device.pk, "start": start.isoformat(), "reason": reason.pk}
    assert_status(client_for(viewer).post("/api/v1/analytics/stops/", body, format="json"), 403)
    foreign = make_device(make_line(plant_b))
    store(foreign, [(start, "down", None)])
    response = client_for(operator).post("/api/v1/analytics/stops/", {**body, "device": foreign.pk}, format="json")
    assert_status(response, 404)
    other_reason = ReasonCode.objects.create(plant=plant_b, code="x", name="X", category="equipment_failure")
    response = client_for(operator).post("/api/v1/analytics/stops/", {**body, "reason": other_reason.pk}, format="json")
    assert "reason" in assert_status(response, 400).json()["errors"]
    response = client_for(operator).post(
        "/api/v1/analytics/stops/", {**body, "start": (start + timedelta(seconds=1)).isoformat()}, format="json"
    )
    assert "start" in assert_status(response, 400).json()["errors"]
    assert not StopReason.objects.exists()


def test_shift_and_report_lists_use_a_fixed_number_of_queries(
    plant_a, viewer, client_for, django_assert_max_num_queries
):
    from analytics.models import OEEReport

    for n in range(5):
        make_shift(
            plant_a,
            f"Shift {n}",
            f"{n * 2:02d}:00",
            f"{n * 2 + 1:02d}:00",
            breaks=[(f"{n * 2:02d}:30", f"{n * 2:02d}:40")],
        )
        OEEReport.objects.create(plant=plant_a, kind="day", period_start=at(recent_day(TZ, n + 1), "00:00", TZ),
                                 period_end=at(recent_day(TZ, n), "00:00", TZ))  # fmt: skip
    client = client_for(viewer)
    with django_assert_max_num_queries(8):
        assert len(assert_status(client.get("/api/v1/shifts/"), 200).json()["results"]) == 5
    with django_assert_max_num_queries(8):
        assert len(assert_status(client.get("/api/v1/analytics/reports/"), 200).json()["results"]) == 5


def test_reason_codes_are_written_by_plant_admins_and_read_by_members(
    plant_a, plant_b, plant_admin, operator, outsider, client_for
):
    body = {"plant": plant_a.pk, "code": "jam", "name": "Jam", "category": "idling_minor_stops"}
    assert_status(client_for(operator).post("/api/v1/reason-codes/", body, format="json"), 403)
    created = assert_status(client_for(plant_admin).post("/api/v1/reason-codes/", body, format="json"), 201).json()
    duplicate = client_for(plant_admin).post("/api/v1/reason-codes/", body, format="json")
    assert "code" in str(assert_status(duplicate, 400).json()["errors"])
    bad = client_for(plant_admin).post("/api/v1/reason-codes/", {**body, "code": "x", "category": "bad"}, format="json")
    assert "category" in assert_status(bad, 400).json()["errors"]
    assert_status(client_for(operator).get(f"/api/v1/reason-codes/{created['id']}/"), 200)
    assert_status(client_for(outsider).get(f"/api/v1/reason-codes/{created['id']}/"), 404)
    foreign = client_for(plant_admin).post("/api/v1/reason-codes/", {**body, "plant": plant_b.pk}, format="json")
    assert "plant" in assert_status(foreign, 400).json()["errors"]
