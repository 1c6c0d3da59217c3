"""The browser stream ``/ws/live/``: who may subscribe to what, what reaches them, and how telemetry is coalesced.

Real parts: the project's ASGI application (origin check, session auth, routing), the configured
channel layer (in-memory, or Redis with REDIS_URL) and the real ingest service.
"""

import asyncio
from datetime import timedelta

import orjson
import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.contrib.sessions.models import Session
from django.test import Client
from django.utils import timezone

from devices.services.ingest import IngestItem, telemetry_store
from devices.services.telemetry_payload import Message
from devices.tests.factories import make_device, make_line
from factory.asgi import application
from live import bus, consumers
from live.bus import iso, plant_group

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]


def session_cookie(user) -> str:
    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value


async def connect(user=None, query: str = "", origin: bytes = b"http://localhost"):
    headers = [(b"origin", origin), (b"host", b"localhost")]
    if user is not None:
        key = await sync_to_async(session_cookie)(user)
        headers.append((b"cookie", f"sessionid={key}".encode()))
    communicator = WebsocketCommunicator(application, f"/ws/live/{query}", headers=headers)
    connected, _ = await communicator.connect()
    assert connected
    return communicator


async def receive(communicator, timeout: float = 2) -> dict:
    return orjson.loads(await communicator.receive_from(timeout=timeout))


async def expect_closed(communicator, code: int):
    while True:
        output = await communicator.receive_output(timeout=2)
        if output["type"] == "websocket.close":
            assert output["code"] == code
            return


async def subscribe(communicator, **target) -> dict:
    await communicator.send_to(text_data=orjson.dumps({"action": "subscribe", **target}).decode())
    return await receive(communicator)


@pytest.fixture
def press_a(plant_a):
    return make_device(make_line(plant_a, "Press line"), "press-a1")


@pytest.fixture
def press_b(plant_b):
    return make_device(make_line(plant_b, "Paint line"), "paint-b1")


async def test_closes_4401_with_a_reason_when_not_logged_in():
    communicator = await connect(None, "?plant=1")
    frame = await receive(communicator)
    assert frame == {"kind": "error", "status": 401, "detail": frame["detail"], "close": 4401}
    assert "log in" in frame["detail"].lower()
    await expect_closed(communicator, 4401)


async def test_refuses_a_browser_from_another_origin(viewer):
    headers = [(b"origin", b"http://evil.example.com")]
    communicator = WebsocketCommunicator(application, "/ws/live/", headers=headers)
    connected, _ = await communicator.connect()
    assert not connected


async def test_closes_4404_when_connecting_to_a_plant_that_is_not_yours(viewer, plant_b):
    communicator = await connect(viewer, f"?plant={plant_b.pk}")
    frame = await receive(communicator)
    assert frame["kind"] == "error" and frame["status"] == 404 and frame["close"] == 4404
    await expect_closed(communicator, 4404)


async def test_outsider_may_not_subscribe_to_any_plant(outsider, plant_a):
    communicator = await connect(outsider, f"?plant={plant_a.pk}")
    assert (await receive(communicator))["status"] == 404
    await expect_closed(communicator, 4404)


async def test_viewer_receives_events_of_the_plant_group_after_subscribing(viewer, plant_a):
    communicator = await connect(viewer)
    assert (await receive(communicator))["kind"] == "hello"
    assert await subscribe(communicator, plant=plant_a.pk) == {"kind": "subscribed", "plant": plant_a.pk}
    await get_channel_layer().group_send(
        plant_group(plant_a.pk), {"type": "live.event", "event": {"kind": "alarm", "id": 7, "severity": "high"}}
    )
    assert await receive(communicator) == {"kind": "alarm", "id": 7, "severity": "high"}
    await communicator.disconnect()


async def test_error_frame_without_closing_when_subscribing_to_a_foreign_device(viewer, plant_a, press_a, press_b):
    communicator = await connect(viewer, f"?plant={plant_a.pk}")
    assert (await receive(communicator))["plants"] == [plant_a.pk]
    frame = await subscribe(communicator, device=press_b.pk)
    assert frame["kind"] == "error" and frame["status"] == 404 and frame["device"] == press_b.pk
    assert f"No device {press_b.pk}" in frame["detail"]
    # Nothing of plant B reaches this browser, and the stream still works.
    await sync_to_async(bus.publish)(plant_id=press_b.plant_id, device_id=press_b.pk, event={"kind": "status"})
    assert await communicator.receive_nothing(timeout=0.3)
    assert await subscribe(communicator, device=press_a.pk) == {"kind": "subscribed", "device": press_a.pk}
    await communicator.disconnect()


@pytest.mark.parametrize(
    "frame",
    [
        "not json",
        "[1, 2]",
        '{"action": "subscribe"}',
        '{"action": "explode", "plant": 1}',
        '{"action": "subscribe", "plant": true}',
        '{"action": "subscribe", "plant": -3}',
        '{"action": "subscribe", "plant": "1; DROP TABLE"}',
        '{"action": "subscribe", "plant": 1, "device": 2}',
        '{"action": "subscribe", "plant": 1e400}',
        "x" * 10000,
    ],
)
async def test_answers_malformed_frames_with_an_error_frame_and_keeps_the_stream(viewer, plant_a, frame):
    communicator = await connect(viewer)
    await receive(communicator)  # hello
    await communicator.send_to(text_data=frame)
    reply = await receive(communicator)
    assert reply["kind"] == "error" and reply["status"] == 400, reply
    assert await subscribe(communicator, plant=plant_a.pk) == {"kind": "subscribed", "plant": plant_a.pk}
    await communicator.disconnect()


async def test_a_reading_stored_by_ingest_reaches_the_plant_and_device_subscribers(viewer, plant_a, press_a):
    by_plant = await connect(viewer, f"?plant={plant_a.pk}")
    by_device = await connect(viewer, f"?device={press_a.pk}")
    await receive(by_plant), await receive(by_device)
    now = timezone.now()
    message = Message(ts=now, values={"temperature": 71.5, "count_total": 10.0}, state="running")
    await sync_to_async(telemetry_store)([IngestItem(device=press_a, messages=[message])], received_at=now)
    for communicator in (by_plant, by_device):
        # The device was offline: its status change comes first, then the reading.
        assert await receive(communicator) == {
            "kind": "status",
            "plant_id": plant_a.pk,
            "device_id": press_a.pk,
            "online": True,
            "at": iso(now),
        }
        frame = await receive(communicator)
        assert frame["kind"] == "telemetry" and frame["device_id"] == press_a.pk and frame["state"] == "running"
        assert frame["values"]["temperature"]["value"] == 71.5
        assert frame["values"]["count_total"]["value"] == 10.0
        await communicator.disconnect()


async def test_an_event_reaches_a_browser_once_when_it_follows_both_the_plant_and_the_device(viewer, plant_a, press_a):
    communicator = await connect(viewer, f"?plant={plant_a.pk}&device={press_a.pk}")
    await receive(communicator)
    await sync_to_async(bus.publish)(plant_id=plant_a.pk, device_id=press_a.pk, event={"kind": "alarm", "id": 1})
    assert await receive(communicator) == {"kind": "alarm", "id": 1}
    assert await communicator.receive_nothing(timeout=0.3)
    await communicator.disconnect()


async def test_unsubscribing_leaves_the_group_without_reconnecting(viewer, plant_a, press_a):
    communicator = await connect(viewer, f"?device={press_a.pk}")
    await receive(communicator)
    await communicator.send_to(text_data=orjson.dumps({"action": "unsubscribe", "device": press_a.pk}).decode())
    assert await receive(communicator) == {"kind": "unsubscribed", "device": press_a.pk}
    await sync_to_async(bus.publish)(plant_id=plant_a.pk, device_id=press_a.pk, event={"kind": "x"})
    assert await communicator.receive_nothing(timeout=0.3)
    assert await subscribe(communicator, plant=plant_a.pk) == {"kind": "subscribed", "plant": plant_a.pk}
    await communicator.disconnect()


def telemetry(device_id: int, second: int, value: float) -> dict:
    ts = f"2026-11-27T10:00:{second:02d}Z"
    return {
        "kind": "telemetry",
        "device_id": device_id,
        "ts": ts,
        "values": {"temperature": {"ts": ts, "value": value}},
    }


async def events(communicator, count: int, timeout: float = 2) -> list[dict]:
    """The next ``count`` events, whether they came one per frame or several in one array frame."""
    found = []
    while len(found) < count:
        frame = await receive(communicator, timeout)
        found.extend(frame if isinstance(frame, list) else [frame])
    return found


async def test_coalesces_a_burst_of_telemetry_into_the_latest_values_but_not_other_events(viewer, plant_a):
    communicator = await connect(viewer, f"?plant={plant_a.pk}")
    await receive(communicator)
    layer, group = get_channel_layer(), plant_group(plant_a.pk)
    for second in range(10):
        await layer.group_send(group, {"type": "live.event", "event": telemetry(5, second, 60.0 + second)})
    await layer.group_send(group, {"type": "live.event", "event": {"kind": "alarm", "id": 3}})
    await layer.group_send(group, {"type": "live.event", "event": telemetry(6, 1, 20.0)})
    first = await receive(communicator)
    assert first["device_id"] == 5 and first["values"]["temperature"]["value"] == 60.0 and first["n"] == 1
    # The alarm and the other device's reading are not held back by device 5's burst: they come in
    # frames before the one that carries the burst, which waits out the coalescing window.
    before_merged = []
    while not any(event.get("device_id") == 5 for frame in before_merged for event in frame):
        frame = await receive(communicator, timeout=consumers.COALESCE_SECONDS + 2)
        before_merged.append(frame if isinstance(frame, list) else [frame])
    [merged] = before_merged.pop()
    alarm, other = (event for frame in before_merged for event in frame)
    assert alarm == {"kind": "alarm", "id": 3} and other["device_id"] == 6
    assert merged["device_id"] == 5 and merged["n"] == 9, "nine readings in one frame, none lost"
    assert merged["values"]["temperature"] == {"ts": "2026-11-27T10:00:09Z", "value": 69.0}
    assert await communicator.receive_nothing(timeout=consumers.COALESCE_SECONDS + 0.1)
    await communicator.disconnect()


async def test_an_ingest_batch_of_several_devices_reaches_the_browser_in_one_or_two_frames(viewer, plant_a, press_a):
    others = await sync_to_async(lambda: [make_device(press_a.line, f"press-a{i}") for i in (2, 3)])()
    communicator = await connect(viewer, f"?plant={plant_a.pk}")
    await receive(communicator)
    now = timezone.now()
    items = [
        IngestItem(device=d, messages=[Message(ts=now, values={"power": 5.0}, state=None)]) for d in [press_a, *others]
    ]
    await sync_to_async(telemetry_store)(items, received_at=now)
    received = await events(communicator, 6)
    assert [e["kind"] for e in received] == ["status"] * 3 + ["telemetry"] * 3
    readings = received[3:]
    assert sorted(e["device_id"] for e in readings) == sorted(d.pk for d in [press_a, *others])
    assert all(e["values"]["power"]["value"] == 5.0 for e in readings)
    await communicator.disconnect()


async def test_closes_4401_when_the_session_ends_while_connected(viewer, plant_a, monkeypatch):
    monkeypatch.setattr(consumers, "SESSION_RECHECK_SECONDS", 0)
    communicator = await connect(viewer)
    await receive(communicator)
    assert await subscribe(communicator, plant=plant_a.pk) == {"kind": "subscribed", "plant": plant_a.pk}
    await sync_to_async(Session.objects.update)(expire_date=timezone.now() - timedelta(seconds=1))
    await communicator.send_to(text_data=orjson.dumps({"action": "subscribe", "plant": plant_a.pk}).decode())
    frame = await receive(communicator)
    assert frame["kind"] == "error" and frame["close"] == 4401 and "session ended" in frame["detail"]
    await expect_closed(communicator, 4401)


@pytest.mark.parametrize(
    "backend", ["channels_redis.pubsub.RedisPubSubChannelLayer", "channels_redis.core.RedisChannelLayer"]
)
async def test_publishing_never_raises_when_the_channel_layer_is_down(settings, plant_a, caplog, backend):
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": backend, "CONFIG": {"hosts": ["redis://127.0.0.1:9/0"]}}}
    await sync_to_async(bus.publish)(plant_id=plant_a.pk, event={"kind": "status"})
    for _ in range(50):  # the sends run in the bus's loop after publish returned
        if "group sends failed" in caplog.text:
            break
        await asyncio.sleep(0.1)
    assert "group sends failed" in caplog.text or "publishing 1 events failed" in caplog.text


async def test_a_browser_following_one_device_gets_its_events_and_none_of_its_neighbours(viewer, plant_a, press_a):
    neighbour = await sync_to_async(make_device)(press_a.line, "press-a2")
    communicator = await connect(viewer, f"?device={press_a.pk}")
    await receive(communicator)
    now = timezone.now()
    items = [
        IngestItem(device=neighbour, messages=[Message(ts=now, values={"temperature": 20.0}, state=None)]),
        IngestItem(device=press_a, messages=[Message(ts=now, values={"temperature": 71.5}, state=None)]),
    ]
    await sync_to_async(telemetry_store)(items, received_at=now)
    found = await events(communicator, 2)  # press-a1's status (it came online), then its reading
    assert [(e["kind"], e["device_id"]) for e in found] == [("status", press_a.pk), ("telemetry", press_a.pk)]
    assert found[1]["values"]["temperature"]["value"] == 71.5
    assert await communicator.receive_nothing(timeout=0.3)  # nothing of press-a2
    await communicator.disconnect()


async def test_an_event_published_from_a_plain_thread_of_the_server_process_reaches_the_browser(viewer, plant_a):
    """Celery beat embedded in the web process (the embedded default) publishes from its own thread,
    which is no worker thread of the server: the event must still reach the browsers of this process
    (with the in-memory layer, only the server's loop may touch it)."""
    communicator = await connect(viewer, f"?plant={plant_a.pk}")
    await receive(communicator)
    event = {"kind": "alarm", "id": 7, "device_id": None}
    await asyncio.to_thread(bus.publish, plant_id=plant_a.pk, event=event)
    assert await receive(communicator) == event
    await communicator.disconnect()


async def test_browsers_of_one_plant_get_the_same_frames_encoded_once_for_all(viewer, plant_a, monkeypatch):
    """Fan-out cost per event must not grow with the number of wall screens (bench/latency.py):
    the hub coalesces and encodes a plant's frame once and sends every follower the same text."""
    from live import frames

    encoded = []
    real_dumps = frames.orjson.dumps

    class CountingOrjson:
        @staticmethod
        def dumps(value):
            encoded.append(value)
            return real_dumps(value)

    browsers = [await connect(viewer, f"?plant={plant_a.pk}") for _ in range(5)]
    for browser in browsers:
        await receive(browser)  # hello
    monkeypatch.setattr(frames, "orjson", CountingOrjson)
    layer, group = get_channel_layer(), plant_group(plant_a.pk)
    await layer.group_send(group, {"type": "live.events", "events": [telemetry(5, 1, 60.0), telemetry(6, 1, 20.0)]})
    texts = [await browser.receive_from(timeout=2) for browser in browsers]
    assert len(set(texts)) == 1 and [e["device_id"] for e in orjson.loads(texts[0])] == [5, 6]
    assert len(encoded) == 1, "one encoding for five browsers"
    for browser in browsers:
        await browser.disconnect()


def patch_socket(monkeypatch, marker: str, on_write) -> None:
    """Browsers connected with ``&<marker>=1`` await ``on_write()`` before each frame after the hello:
    a socket that is full (it blocks) or broken (it raises)."""
    real_send = consumers.LiveConsumer.send

    async def send(self, text_data=None, bytes_data=None, close=False):
        if f"{marker}=1".encode() in self.scope["query_string"] and '"hello"' not in (text_data or ""):
            await on_write()
        await real_send(self, text_data=text_data, bytes_data=bytes_data, close=close)

    monkeypatch.setattr(consumers.LiveConsumer, "send", send)


async def alarms_reach_at_once(browser, plant_id: int, count: int) -> None:
    """Publish ``count`` alarms to the plant, one frame apart; each must reach ``browser`` right away."""
    layer, group = get_channel_layer(), plant_group(plant_id)
    for i in range(count):
        await layer.group_send(group, {"type": "live.event", "event": {"kind": "alarm", "id": i}})
        assert await events(browser, 1) == [{"kind": "alarm", "id": i}], "this browser is not held up"
        await asyncio.sleep(consumers.BATCH_SECONDS * 2)  # one frame each


async def test_a_browser_that_cannot_keep_up_is_closed_without_holding_up_the_others(viewer, plant_a, monkeypatch):
    """A tablet on weak Wi-Fi stops reading: the wall screens of the same plant keep getting frames,
    and the stuck browser is closed with 4008 once MAX_QUEUED_FRAMES wait (it reconnects and catches
    up over REST). Before, the hub awaited each browser's send in turn: one stuck socket stopped all."""
    monkeypatch.setattr(consumers, "MAX_QUEUED_FRAMES", 3)
    unblock = asyncio.Event()
    patch_socket(monkeypatch, "slow", unblock.wait)
    slow = await connect(viewer, f"?plant={plant_a.pk}&slow=1")
    fast = await connect(viewer, f"?plant={plant_a.pk}")
    await receive(slow), await receive(fast)
    await alarms_reach_at_once(fast, plant_a.pk, 6)
    await expect_closed(slow, 4008)
    unblock.set()
    await fast.disconnect()


async def test_a_browser_whose_connection_broke_mid_write_costs_the_others_nothing(
    viewer, plant_a, monkeypatch, caplog
):
    async def broken_socket():
        raise ConnectionResetError("the tablet left the Wi-Fi")

    patch_socket(monkeypatch, "broken", broken_socket)
    broken = await connect(viewer, f"?plant={plant_a.pk}&broken=1")
    fast = await connect(viewer, f"?plant={plant_a.pk}")
    await receive(broken), await receive(fast)
    await alarms_reach_at_once(fast, plant_a.pk, 3)
    import gc

    gc.collect()  # an unretrieved task exception is logged when the task is collected
    await asyncio.sleep(0)
    assert not [r for r in caplog.records if r.levelname == "ERROR"], caplog.text
    await fast.disconnect()
    await broken.disconnect()
