"""A device connected to /ws/devices/ receives its firmware command through the real ASGI app and channel layer."""

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from factory.asgi import application
from firmware.models import RolloutTarget
from firmware.services.rollouts import rollout_cancel, rollout_start
from firmware.tests.factories import make_fleet, make_image, make_rollout

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]


async def test_started_stage_pushes_update_to_the_device_websocket(plant_a):
    def setup():
        [(device, token)] = make_fleet(plant_a, 1)
        make_fleet(plant_a, 1, prefix="zeta")  # stage 2 (uids sort after press-)
        return device, token, make_rollout(plant_a, make_image(plant_a, "2.0.0"), stages=[1, "100%"])

    device, token, rollout = await database_sync_to_async(setup)()
    ws = WebsocketCommunicator(application, "/ws/devices/", headers=[(b"authorization", f"Device {token}".encode())])
    assert (await ws.connect())[0]
    await database_sync_to_async(rollout_start)(rollout=rollout)  # on commit: advance → notify (eager tasks)
    target = await RolloutTarget.objects.aget(rollout=rollout, device=device)
    frame = await ws.receive_json_from(timeout=5)
    assert frame["command"]["type"] == "firmware_update"
    assert frame["command"]["update_id"] == target.pk
    assert frame["command"]["url"].endswith(f"/api/v1/device/firmware/{target.pk}/download/")
    assert await ws.receive_nothing(timeout=0.3)  # stage 2's device is not this one, and nothing repeats

    await database_sync_to_async(rollout_cancel)(rollout=rollout)
    assert (await ws.receive_json_from(timeout=5))["command"] == {"type": "firmware_cancel", "update_id": target.pk}
    await ws.disconnect()
