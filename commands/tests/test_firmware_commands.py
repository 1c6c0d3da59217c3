"""Firmware pushes are commands too: recorded once per update, in the device's history, following
their update to the end; devices still answer them with the firmware status protocol."""

from datetime import timedelta

from django.utils import timezone

from commands.firmware import firmware_commands_sync
from commands.models import Command
from conftest import assert_status
from firmware.models import RolloutTarget
from firmware.services.notify import targets_notify, update_offer
from firmware.services.rollouts import rollout_advance, rollout_cancel, rollout_start
from firmware.services.updates import update_report, updates_time_out
from firmware.tests.factories import make_fleet, make_image, make_rollout


def started(plant, count: int):
    fleet = make_fleet(plant, count, prefix=f"fw{count}")
    rollout = make_rollout(plant, make_image(plant, "2.0.0"), devices=[d for d, _ in fleet])
    rollout_start(rollout=rollout)
    rollout_advance(rollout_id=rollout.pk)  # the stage opens: its targets are notified
    targets = list(RolloutTarget.objects.filter(rollout=rollout).select_related("device", "image").order_by("pk"))
    return rollout, targets, fleet


def history(command) -> list[tuple[str, str]]:
    return list(command.events.values_list("state", "via"))


def test_a_firmware_push_is_recorded_once_as_a_command_with_its_frame(plant_a, client_for, viewer):
    _, targets, _ = started(plant_a, 2)
    ids = [t.pk for t in targets]
    assert targets_notify(ids) == 2
    assert targets_notify(ids) == 2  # a retried push: nothing recorded twice
    commands = list(Command.objects.filter(name="firmware_update").order_by("update_id"))
    assert [(c.device_id, c.update_id, c.state) for c in commands] == [(t.device_id, t.pk, "pending") for t in targets]
    assert commands[0].params == {"type": "firmware_update", **update_offer(targets[0])}
    assert history(commands[0]) == [("pending", "firmware")]
    listed = assert_status(client_for(viewer).get(f"/api/v1/devices/{targets[0].device_id}/commands/"), 200).json()
    assert [c["name"] for c in listed["results"]] == ["firmware_update"]


def test_firmware_commands_follow_their_updates(plant_a):
    rollout, targets, fleet = started(plant_a, 3)
    targets_notify([t.pk for t in targets])
    (ok, ok_token), (broken, _), (silent, _) = fleet
    update_report(device=ok, update_id=targets[0].pk, status="downloading")
    update_report(device=broken, update_id=targets[1].pk, status="failed", detail="flash write error")
    assert firmware_commands_sync() == 2
    update_report(device=ok, update_id=targets[0].pk, status="succeeded")
    updates_time_out(now=timezone.now() + timedelta(days=1))  # the silent one
    assert firmware_commands_sync() == 2
    assert firmware_commands_sync() == 0  # idempotent
    done, failed, expired = (Command.objects.get(update_id=t.pk, name="firmware_update") for t in targets)
    assert (done.state, done.result) == ("succeeded", {"status": "succeeded", "detail": ""})
    assert history(done) == [("pending", "firmware"), ("delivered", "firmware"), ("succeeded", "firmware")]
    assert (failed.state, failed.result["detail"]) == ("failed", "flash write error")
    assert expired.state == "expired" and expired.result["status"] == "timed_out"


def test_a_cancel_is_a_command_and_fails_the_update_command(plant_a, client):
    rollout, targets, fleet = started(plant_a, 1)
    targets_notify([targets[0].pk])
    rollout_cancel(rollout=rollout)
    targets_notify([targets[0].pk], "firmware_cancel")
    assert firmware_commands_sync() == 2
    update = Command.objects.get(name="firmware_update")
    cancel = Command.objects.get(name="firmware_cancel")
    assert (update.state, update.result["status"]) == ("failed", "cancelled")
    assert cancel.state == "succeeded" and cancel.params == {"type": "firmware_cancel", "update_id": targets[0].pk}


def test_devices_answer_firmware_commands_with_the_firmware_protocol_only(plant_a, client):
    _, targets, fleet = started(plant_a, 1)
    targets_notify([targets[0].pk])
    command = Command.objects.get(name="firmware_update")
    headers = {"HTTP_AUTHORIZATION": f"Device {fleet[0][1]}"}
    assert assert_status(client.get("/api/v1/device/commands/", **headers), 200).json() == {"commands": []}
    response = client.post(
        f"/api/v1/device/commands/{command.pk}/result/",
        {"status": "succeeded"},
        content_type="application/json",
        **headers,
    )
    assert "POST /api/v1/device/firmware/status/" in assert_status(response, 409).json()["detail"]
    command.refresh_from_db()
    assert command.state == "pending"
