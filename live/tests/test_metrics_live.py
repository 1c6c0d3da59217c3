"""The live stream's metrics move with real browsers (README "Metrics"): open connections, frames
written, frames dropped for a browser that fell behind. Same real parts as test_consumers_live.py."""

import asyncio

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer

from factory.tests.test_metrics import TOKEN, value
from factory.tests.test_metrics import scrape as scrape_now
from live import consumers
from live.bus import plant_group
from live.tests.test_consumers_live import alarms_reach_at_once, connect, expect_closed, patch_socket, receive

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def metrics_token(settings):
    settings.METRICS_TOKEN, settings.METRICS_ALLOWED_IPS = TOKEN, []


async def scrape() -> dict:
    return await sync_to_async(scrape_now)()


async def test_connections_and_frames_sent_are_counted(viewer, plant_a, metrics_token):
    before = await scrape()
    browser = await connect(viewer, f"?plant={plant_a.pk}")
    await receive(browser)  # hello
    opened = await scrape()
    assert value(opened, "factory_live_connections") == value(before, "factory_live_connections") + 1
    await alarms_reach_at_once(browser, plant_a.pk, 3)  # three frames
    sent = await scrape()
    assert value(sent, "factory_live_frames_sent_total") - value(before, "factory_live_frames_sent_total") == 3
    await browser.disconnect()
    closed = await scrape()
    assert value(closed, "factory_live_connections") == value(before, "factory_live_connections")


async def test_frames_of_a_browser_that_fell_behind_are_counted_as_dropped(viewer, plant_a, metrics_token, monkeypatch):
    monkeypatch.setattr(consumers, "MAX_QUEUED_FRAMES", 3)
    unblock = asyncio.Event()
    patch_socket(monkeypatch, "slow", unblock.wait)
    before = await scrape()
    slow = await connect(viewer, f"?plant={plant_a.pk}&slow=1")
    await receive(slow)
    layer, group = get_channel_layer(), plant_group(plant_a.pk)
    for i in range(6):
        await layer.group_send(group, {"type": "live.event", "event": {"kind": "alarm", "id": i}})
        await asyncio.sleep(consumers.BATCH_SECONDS * 2)  # one frame each
    await expect_closed(slow, 4008)
    after = await scrape()
    # One frame waits in the blocked write; the next three fill the queue, the fifth does not fit.
    dropped = value(after, "factory_live_frames_dropped_total") - value(before, "factory_live_frames_dropped_total")
    assert dropped == 4
    unblock.set()
