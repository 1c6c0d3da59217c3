"""Management API: /api/v1/rollouts/. Operators create and steer rollouts; viewers read; others see nothing."""

import pytest

from conftest import assert_status
from devices.tests.factories import make_device, make_line
from firmware.models import Rollout, RolloutTarget
from firmware.services.updates import update_report
from firmware.tests.factories import make_fleet, make_image, make_rollout

pytestmark = pytest.mark.django_db


@pytest.fixture
def image(plant_a):
    return make_image(plant_a, "2.0.0")


@pytest.fixture
def draft(plant_a, fleet, image):
    return make_rollout(plant_a, image, stages=[1, "100%"])


def create(client, plant, image, **extra):
    body = {"plant": plant.pk, "name": "Spring update", "image": image.pk, "stages": [1, "50%", "100%"], **extra}
    return client.post("/api/v1/rollouts/", body, format="json")


def test_operator_creates_a_rollout_of_compatible_devices(client_for, operator, plant_a, fleet, image):
    make_device(fleet[0][0].line, "odd-1", model="HP-900")
    body = assert_status(create(client_for(operator), plant_a, image, error_threshold=10), 201).json()
    assert (body["state"], body["version"], body["error_threshold"], body["created_by"]) == (
        "draft", "2.0.0", 10, "operator"
    )  # fmt: skip
    assert [s["total"] for s in body["progress"]] == [1, 1, 2]
    assert not RolloutTarget.objects.filter(device__uid="odd-1").exists()


def test_viewer_cannot_create(client_for, viewer, plant_a, fleet, image):
    assert_status(create(client_for(viewer), plant_a, image), 403)
    assert not Rollout.objects.exists()


def test_outsider_cannot_name_the_plant_or_image(client_for, outsider, plant_a, fleet, image):
    errors = assert_status(create(client_for(outsider), plant_a, image), 400).json()["errors"]
    assert {"plant", "image"} <= set(errors)
    assert not Rollout.objects.exists()


def test_no_compatible_target_is_400(client_for, operator, plant_a):
    make_fleet(plant_a, 2, model="HP-900")
    image = make_image(plant_a, "2.0.0")
    response = assert_status(create(client_for(operator), plant_a, image), 400)
    assert "No compatible device" in str(response.json()["errors"]["targets"])
    assert not Rollout.objects.exists()


def test_malformed_stages_are_400(client_for, operator, plant_a, fleet, image):
    response = assert_status(create(client_for(operator), plant_a, image, stages=["50%", "10%"]), 400)
    assert "stages" in response.json()["errors"]


def test_line_of_another_plant_is_refused(client_for, superuser, plant_a, plant_b, fleet, image):
    response = assert_status(create(client_for(superuser), plant_a, image, line=make_line(plant_b).pk), 400)
    assert "line" in response.json()["errors"]


def test_list_shows_only_my_plants(client_for, viewer, plant_a, plant_b, draft, django_assert_max_num_queries):
    make_fleet(plant_b, 1)
    make_rollout(plant_b, make_image(plant_b, "2.0.0"))
    client = client_for(viewer)
    with django_assert_max_num_queries(8):
        body = assert_status(client.get("/api/v1/rollouts/"), 200).json()
    assert [row["id"] for row in body["results"]] == [draft.pk]


@pytest.mark.parametrize("action", ["start", "pause", "resume", "approve", "cancel", "retry", "rollback"])
def test_actions_trio(client_for, outsider, viewer, draft, action):
    url = f"/api/v1/rollouts/{draft.pk}/{action}/"
    assert_status(client_for(outsider).post(url, {}, format="json"), 404)
    assert_status(client_for(viewer).post(url, {}, format="json"), 403)
    draft.refresh_from_db()
    assert draft.state == "draft"


def test_operator_starts_pauses_resumes_and_cancels(client_for, operator, draft, django_capture_on_commit_callbacks):
    client = client_for(operator)
    with django_capture_on_commit_callbacks(execute=True):
        body = assert_status(client.post(f"/api/v1/rollouts/{draft.pk}/start/", {}, format="json"), 200).json()
    assert (body["state"], body["current_stage"]) == ("running", 1)
    body = assert_status(client.get(f"/api/v1/rollouts/{draft.pk}/"), 200).json()
    assert body["progress"][0]["counts"] == {"notified": 1}
    body = assert_status(client.post(f"/api/v1/rollouts/{draft.pk}/pause/", {"reason": "night"}, format="json"), 200)
    assert body.json()["pause_reason"] == "night"
    assert_status(client.post(f"/api/v1/rollouts/{draft.pk}/pause/", {}, format="json"), 400)
    assert_status(client.post(f"/api/v1/rollouts/{draft.pk}/resume/", {}, format="json"), 200)
    assert_status(client.post(f"/api/v1/rollouts/{draft.pk}/cancel/", {}, format="json"), 200)
    events = assert_status(client.get(f"/api/v1/rollouts/{draft.pk}/events/"), 200).json()["results"]
    assert [(e["action"], e["by"]) for e in events] == [
        ("created", None), ("started", "operator"), ("paused", "operator"), ("resumed", "operator"),
        ("cancelled", "operator"),
    ]  # fmt: skip


def test_targets_and_history(client_for, viewer, outsider, draft, django_capture_on_commit_callbacks):
    from firmware.services.rollouts import rollout_start

    with django_capture_on_commit_callbacks(execute=True):
        rollout_start(rollout=draft)
    target = draft.targets.get(stage=1)
    update_report(device=target.device, update_id=target.pk, status="failed", detail="flash error")
    client = client_for(viewer)
    body = assert_status(client.get(f"/api/v1/rollouts/{draft.pk}/targets/?status=failed"), 200).json()
    assert [(t["device_uid"], t["detail"]) for t in body["results"]] == [(target.device.uid, "flash error")]
    url = f"/api/v1/rollouts/{draft.pk}/targets/{target.pk}/history/"
    history = assert_status(client.get(url), 200).json()["results"]
    assert [h["status"] for h in history] == ["notified", "failed"]
    assert_status(client_for(outsider).get(f"/api/v1/rollouts/{draft.pk}/targets/"), 404)
    assert_status(client_for(outsider).get(f"/api/v1/rollouts/{draft.pk}/"), 404)


def test_rollouts_are_not_edited_or_deleted_through_the_api(client_for, operator, draft):
    assert_status(client_for(operator).delete(f"/api/v1/rollouts/{draft.pk}/"), 405)
    assert_status(client_for(operator).patch(f"/api/v1/rollouts/{draft.pk}/", {"name": "x"}, format="json"), 405)
