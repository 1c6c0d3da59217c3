"""The live bus's delivery: publish order from any thread, and the throttle.

Real parts: the project's ASGI application (which registers its loop with the bus), the browser
stream ``/ws/live/`` and the configured channel layer (in-memory, or Redis with REDIS_URL).
"""

import asyncio
import threading
import time

import pytest

from live import bus
from live.tests.test_consumers_live import connect, events, receive

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]


async def test_events_published_from_a_plain_thread_reach_the_browser_in_publish_order(viewer, plant_a):
    communicator = await connect(viewer, f"?plant={plant_a.pk}")
    await receive(communicator)

    def publish_all():
        for number in range(40):
            bus.publish(plant_id=plant_a.pk, event={"kind": "alarm", "id": number})

    await asyncio.to_thread(publish_all)
    assert [event["id"] for event in await events(communicator, 40)] == list(range(40))
    await communicator.disconnect()


async def test_throttle_publishes_the_first_change_at_once_and_the_last_change_when_the_interval_ends(viewer, plant_a):
    communicator = await connect(viewer, f"?plant={plant_a.pk}")
    await receive(communicator)
    picture = {"version": 0}

    def build():
        return [(plant_a.pk, None, {"kind": "rollout", "rollout_id": 1, "version": picture["version"]})]

    def change_five_times():
        for version in range(1, 6):
            picture["version"] = version
            bus.throttle(("test-rollout", plant_a.pk), interval=0.5, build=build)

    await asyncio.to_thread(change_five_times)
    threads = threading.active_count()
    leading = await receive(communicator)
    leading_at = time.monotonic()
    assert leading["version"] == 1  # the first change, at once
    # Waiting for the trailing edge takes a loop timer, not a thread of its own.
    assert not [thread for thread in threading.enumerate() if isinstance(thread, threading.Timer)]
    assert threading.active_count() == threads
    trailing = await receive(communicator, timeout=5)
    assert trailing["version"] == 5  # the last change, once the interval has passed
    assert time.monotonic() - leading_at > 0.3
    assert await communicator.receive_nothing(timeout=0.7)  # the four changes in between: one picture
    await communicator.disconnect()


async def test_throttle_publishes_a_change_after_the_trailing_edge_again(viewer, plant_a):
    communicator = await connect(viewer, f"?plant={plant_a.pk}")
    await receive(communicator)
    picture = {"version": 1}

    def build():
        return [(plant_a.pk, None, {"kind": "rollout", "rollout_id": 2, "version": picture["version"]})]

    key = ("test-rollout-again", plant_a.pk)
    await asyncio.to_thread(bus.throttle, key, interval=0.2, build=build)
    assert (await receive(communicator))["version"] == 1
    picture["version"] = 2
    await asyncio.to_thread(bus.throttle, key, interval=0.2, build=build)
    assert (await receive(communicator, timeout=5))["version"] == 2  # trailing
    picture["version"] = 3
    await asyncio.to_thread(bus.throttle, key, interval=0.2, build=build)  # during the next interval
    assert (await receive(communicator, timeout=5))["version"] == 3
    await communicator.disconnect()
