"""Actions that are not plain model writes: rollout start/pause/cancel and downloads (exports)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from audit.tests.factories import entries
from conftest import assert_status
from devices.tests.factories import make_device, make_line
from firmware.tests.factories import make_fleet, make_image, make_rollout


@pytest.fixture
def draft(settings, tmp_path, plant_a):
    settings.MEDIA_ROOT = tmp_path / "media"
    make_fleet(plant_a, 2)
    return make_rollout(plant_a, make_image(plant_a, "2.0.0"), stages=[1, "100%"])


def test_records_rollout_actions_with_the_operator(client_for, operator, plant_admin, plant_a, draft):
    client = client_for(operator)
    for action, body in (("start", {}), ("pause", {"reason": "line 2 reports errors"}), ("cancel", {})):
        assert_status(client.post(f"/api/v1/rollouts/{draft.pk}/{action}/", body, format="json"), 200)

    log = [(e.event, e.actor, e.plant_id, e.additional_data) for e in entries(event__startswith="rollout_")]
    assert log[-3:] == [
        ("rollout_started", operator, plant_a.pk, None),
        ("rollout_paused", operator, plant_a.pk, {"detail": "line 2 reports errors"}),
        ("rollout_cancelled", operator, plant_a.pk, None),
    ]
    seen = assert_status(client_for(plant_admin).get("/api/v1/audit/", {"object_type": "firmware.rollout"}), 200)
    assert {"rollout_started", "rollout_paused", "rollout_cancelled"} <= {row["event"] for row in seen.data["results"]}


def test_records_a_device_export_per_plant_it_covers(client_for, plant_admin, plant_a):
    make_device(make_line(plant_a), uid="press-01")
    response = assert_status(client_for(plant_admin).get("/api/v1/devices/export/"), 200)
    assert b"press-01" in response.content
    [export] = entries(event="export")
    assert (export.actor, export.plant_id, export.content_type.model) == (plant_admin, plant_a.pk, "device")
    assert export.additional_data == {"format": "csv", "rows": 1}


def test_records_a_telemetry_csv_download(client_for, viewer, plant_a):
    device = make_device(make_line(plant_a), uid="press-02")
    end = timezone.now().replace(microsecond=0)
    query = {"start": (end - timedelta(hours=1)).isoformat(), "end": end.isoformat(), "bucket": "raw"}
    response = assert_status(client_for(viewer).get(f"/api/v1/devices/{device.pk}/telemetry.csv", query), 200)
    b"".join(response.streaming_content)
    [export] = entries(event="export")
    assert (export.actor, export.plant_id, export.object_id) == (viewer, plant_a.pk, device.pk)
    assert export.additional_data["metric"] == "all"
