"""Rollout progress on the browser stream ``/ws/live/``: a device's status report reaches the
subscribers of its plant as a ``rollout`` snapshot, and nobody else.

Real parts: the project's ASGI application (the lean status route, session auth, the live
consumer), the configured channel layer (in-memory, or Redis with REDIS_URL), the real services.
"""

import httpx
import orjson
import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client

from accounts.roles import Role
from devices.tests.factories import make_user
from factory.asgi import application
from firmware.models import RolloutTarget
from firmware.services.rollouts import rollout_pause, rollout_resume, rollout_start
from firmware.tests.factories import make_fleet, make_image, make_rollout

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]


async def connect(user) -> WebsocketCommunicator:
    client = Client()
    await sync_to_async(client.force_login)(user)
    headers = [(b"origin", b"http://localhost"), (b"host", b"localhost"),
               (b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode())]  # fmt: skip
    communicator = WebsocketCommunicator(application, "/ws/live/", headers=headers)
    assert (await communicator.connect())[0]
    assert orjson.loads(await communicator.receive_from(timeout=2))["kind"] == "hello"
    return communicator


async def subscribe(communicator, plant_id: int) -> None:
    await communicator.send_to(text_data=orjson.dumps({"action": "subscribe", "plant": plant_id}).decode())
    assert orjson.loads(await communicator.receive_from(timeout=2)) == {"kind": "subscribed", "plant": plant_id}


async def next_rollout_event(communicator) -> dict:
    while True:
        frame = orjson.loads(await communicator.receive_from(timeout=3))
        for event in frame if isinstance(frame, list) else [frame]:
            if event["kind"] == "rollout":
                return event


def _running(plant):
    fleet = make_fleet(plant, 2)
    rollout = make_rollout(plant, make_image(plant, "2.0.0"), name="Presses to 2.0.0")
    rollout_start(rollout=rollout)
    target = RolloutTarget.objects.get(rollout=rollout, device=fleet[0][0])
    return rollout, target.pk, fleet[0][1]


async def test_status_report_reaches_a_plant_subscriber_as_rollout_progress(plant_a, plant_b):
    viewer = await sync_to_async(make_user)("viewer", plant=plant_a, role=Role.VIEWER)
    foreigner = await sync_to_async(make_user)("viewer_b", plant=plant_b, role=Role.VIEWER)
    rollout, update_id, token = await sync_to_async(_running)(plant_a)
    watcher, other = await connect(viewer), await connect(foreigner)
    await subscribe(watcher, plant_a.pk)
    await subscribe(other, plant_b.pk)

    transport = httpx.ASGITransport(app=application)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        body = {"update_id": update_id, "status": "failed", "detail": "flash write error at 0x4000"}
        response = await client.post("/api/v1/device/firmware/status/", json=body,
                                     headers={"Authorization": f"Device {token}"})  # fmt: skip
    assert response.status_code == 200, response.text

    event = await next_rollout_event(watcher)
    assert (event["rollout_id"], event["name"], event["version"]) == (rollout.pk, "Presses to 2.0.0", "2.0.0")
    assert event["counts"] == {"failed": 1, "notified": 1}
    [stage] = event["stages"]
    assert (stage["total"], stage["failed"], stage["active"], stage["finished"]) == (2, 1, 1, 1)
    [failing] = event["failing"]
    assert (failing["update_id"], failing["status"], failing["detail"]) == (update_id, "failed", body["detail"])
    # Eager Celery stepped the rollout inline: 1 of 2 failed is above the 20 % error threshold.
    while event["state"] != "paused":
        event = await next_rollout_event(watcher)
    assert [e["action"] for e in event["audit"]][:2] == ["auto_paused", "started"]
    assert await other.receive_nothing(timeout=0.3)

    await watcher.disconnect()
    await other.disconnect()


async def test_a_pause_by_a_person_is_published_with_who_did_it(plant_a):
    operator = await sync_to_async(make_user)("operator", plant=plant_a, role=Role.OPERATOR)
    rollout, _, _ = await sync_to_async(_running)(plant_a)
    watcher = await connect(operator)
    await subscribe(watcher, plant_a.pk)

    await sync_to_async(rollout_pause)(rollout=rollout, by=operator, reason="line 2 is in production")

    event = await next_rollout_event(watcher)
    assert (event["state"], event["pause_reason"]) == ("paused", "line 2 is in production")
    assert event["audit"][0] == {**event["audit"][0], "action": "paused", "by": "operator"}
    await watcher.disconnect()


async def test_changes_within_the_live_interval_are_folded_into_one_picture_and_the_last_shows(plant_a, settings):
    """The live bus throttles rollout snapshots (FIRMWARE_LIVE_INTERVAL): a pause and a resume in
    quick succession (several changes each) give at most a leading and a trailing picture, and the
    last one, built from the database after both, shows the rollout running again."""
    operator = await sync_to_async(make_user)("operator", plant=plant_a, role=Role.OPERATOR)
    rollout, _, _ = await sync_to_async(_running)(plant_a)
    watcher = await connect(operator)
    await subscribe(watcher, plant_a.pk)
    settings.FIRMWARE_LIVE_INTERVAL = 0.5

    def pause_then_resume():
        rollout_pause(rollout=rollout, by=operator, reason="shift change")
        rollout.refresh_from_db()
        rollout_resume(rollout=rollout, by=operator)

    await sync_to_async(pause_then_resume)()
    pictures = [await next_rollout_event(watcher)]
    while pictures[-1]["state"] != "running" or pictures[-1]["audit"][0]["action"] != "resumed":
        pictures.append(await next_rollout_event(watcher))
    assert len(pictures) <= 2
    assert [e["action"] for e in pictures[-1]["audit"]][:2] == ["resumed", "paused"]
    assert await watcher.receive_nothing(timeout=0.8)  # nothing after the last change's picture
    await watcher.disconnect()
