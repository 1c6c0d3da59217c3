"""A device names its product over the device WebSocket (/ws/devices/), the real ASGI application."""

import json

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.utils import timezone

from devices.tests.factories import make_device, make_token
from factory.asgi import application
from production.models import Run

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]


async def test_starts_a_run_when_a_device_names_its_product_over_the_websocket():
    device, plain = await database_sync_to_async(lambda: (d := make_device(), make_token(d)[1]))()
    ws = WebsocketCommunicator(application, "/ws/devices/", headers=[(b"authorization", f"Device {plain}".encode())])
    assert (await ws.connect())[0]
    now = timezone.now().replace(microsecond=0)
    await ws.send_to(text_data=json.dumps({"ts": now.isoformat(), "values": {"count_total": 3}, "product": "WS-1"}))
    assert await ws.receive_json_from(timeout=5) == {"accepted": 1}
    await ws.send_to(text_data=json.dumps({"values": {"count_total": 4}, "order": ["PO-1"]}))
    reply = await ws.receive_json_from(timeout=5)
    assert [e["field"] for e in reply["errors"]] == ["order"]
    await ws.disconnect()
    run = await Run.objects.select_related("product").aget(device_id=device.pk)
    assert (run.product.code, run.start, run.end) == ("WS-1", now, None)
