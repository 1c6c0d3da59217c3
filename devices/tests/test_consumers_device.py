"""The device WebSocket (/ws/devices/) through the real ASGI application and channel layer."""

import json

import pytest
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.utils import timezone

from devices import consumers
from devices.consumers import command_group
from devices.models import Device, TelemetryReading
from devices.services.tokens import token_revoke
from devices.tests.factories import make_device, make_token
from factory.asgi import application

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]


def _connect(token: str | None):
    headers = [(b"authorization", f"Device {token}".encode())] if token else []
    return WebsocketCommunicator(application, "/ws/devices/", headers=headers)


async def _provisioned():
    from channels.db import database_sync_to_async

    def make():
        device = make_device()
        token, plain = make_token(device)
        return device, token, plain

    return await database_sync_to_async(make)()


async def test_acknowledges_each_frame_when_token_is_valid():
    device, _, plain = await _provisioned()
    ws = _connect(plain)
    connected, _ = await ws.connect()
    assert connected
    now = timezone.now().isoformat()
    await ws.send_to(text_data=json.dumps({"ts": now, "values": {"temperature": 71.5}, "state": "running"}))
    assert await ws.receive_json_from(timeout=5) == {"accepted": 1}
    await ws.send_to(text_data=json.dumps({"messages": [{"values": {"a": 1}}, {"values": {"b": 2}}]}))
    assert await ws.receive_json_from(timeout=5) == {"accepted": 2}
    await ws.disconnect()
    assert await TelemetryReading.objects.filter(device_id=device.pk).acount() == 3
    refreshed = await Device.objects.aget(pk=device.pk)
    assert refreshed.state == "running" and refreshed.online


async def test_answers_errors_and_stores_nothing_when_frame_is_invalid():
    device, _, plain = await _provisioned()
    ws = _connect(plain)
    await ws.connect()
    await ws.send_to(text_data=json.dumps({"messages": [{"values": {"ok": 1}}, {"values": {"temperature": "hot"}}]}))
    reply = await ws.receive_json_from(timeout=5)
    assert reply["errors"] == [{"index": 1, "field": "values.temperature", "message": "Must be a number, not str."}]
    await ws.send_to(text_data="{not json")
    assert "not valid JSON" in (await ws.receive_json_from(timeout=5))["errors"][0]["message"]
    await ws.disconnect()
    assert await TelemetryReading.objects.filter(device_id=device.pk).acount() == 0


async def test_closes_with_4401_when_token_is_unknown():
    ws = _connect("deadbeef0000.not-a-real-secret")
    connected, _ = await ws.connect()
    assert connected
    assert "Unknown device token" in (await ws.receive_json_from(timeout=5))["detail"]
    assert (await ws.receive_output(timeout=5)) == {"type": "websocket.close", "code": 4401}


async def test_closes_with_4401_when_authorization_header_is_missing():
    ws = _connect(None)
    await ws.connect()
    assert "Authorization: Device" in (await ws.receive_json_from(timeout=5))["detail"]
    assert (await ws.receive_output(timeout=5))["code"] == 4401


async def test_closes_with_4403_when_token_is_revoked_during_the_session(monkeypatch):
    from channels.db import database_sync_to_async

    device, token, plain = await _provisioned()
    monkeypatch.setattr(consumers, "REAUTH_SECONDS", 0.0)
    ws = _connect(plain)
    await ws.connect()
    await database_sync_to_async(token_revoke)(token=token)
    await ws.send_to(text_data=json.dumps({"values": {"temperature": 1}}))
    assert "revoked" in (await ws.receive_json_from(timeout=5))["detail"]
    assert (await ws.receive_output(timeout=5))["code"] == 4403
    assert await TelemetryReading.objects.filter(device_id=device.pk).acount() == 0


async def test_forwards_commands_sent_to_the_device_group():
    device, _, plain = await _provisioned()
    ws = _connect(plain)
    await ws.connect()
    command = {"type": "firmware_update", "update_id": 7}
    await get_channel_layer().group_send(command_group(device.pk), {"type": "device.command", "command": command})
    assert await ws.receive_json_from(timeout=5) == {"command": command}
    await ws.disconnect()
