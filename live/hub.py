"""Process-local fan-out of plant groups: one channel-layer subscription per plant and process.

With the Redis layer, a group send copies the message once per member channel: many browsers of
one plant on one Daphne would make every event as many Redis messages, each popped, decoded and
dispatched separately. Instead the hub joins ``live.plant.<id>`` once per process with its own
channel and hands each message to the local consumers that follow that plant, in the same event
loop. For the consumers that follow the whole plant it also builds the frames once
(``frames.Framer``) and sends each of them the same text; consumers that follow single devices of
the plant get the events and keep their own.
"""

import asyncio
import logging
import weakref

from channels.layers import get_channel_layer

from live.bus import plant_group
from live.frames import Framer

logger = logging.getLogger(__name__)
_hubs: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, PlantHub]" = weakref.WeakKeyDictionary()


class PlantHub:
    """Members per plant id, and per plant one channel joined to its group and one task reading it.

    The channel, not the message, tells the plant: publishers may send the bare contract message
    ``{"type": "live.event", "event": ...}``. Consumers that follow devices only join the hub of
    the device's plant and keep their devices' events.
    """

    def __init__(self):
        self.layer = get_channel_layer()
        self.members: dict[int, set] = {}
        self.readers: dict[int, tuple[str, asyncio.Task]] = {}
        self.framers: dict[int, Framer] = {}  # per plant: the frames of its whole-plant followers
        self.lock = asyncio.Lock()  # joins and leaves of one plant must not interleave their awaits

    async def join(self, plant_id: int, consumer) -> None:
        async with self.lock:
            self.members.setdefault(plant_id, set()).add(consumer)
            if plant_id not in self.framers:
                self.framers[plant_id] = Framer(self._sender(plant_id))
            if plant_id not in self.readers:
                # The default prefix: the Redis layer pops every process-local channel of one prefix
                # in one loop, and a second prefix would starve behind the consumers' receives.
                channel = await self.layer.new_channel()
                task = asyncio.get_running_loop().create_task(self._run(plant_id, channel))
                self.readers[plant_id] = (channel, task)
            # Also on every join: it renews the membership, which channels_redis' core layer
            # (CHANNEL_LAYER=core) expires after a day.
            await self.layer.group_add(plant_group(plant_id), self.readers[plant_id][0])

    async def leave(self, plant_id: int, consumer) -> None:
        async with self.lock:
            members = self.members.get(plant_id)
            if members is None:
                return
            members.discard(consumer)
            if not members:
                del self.members[plant_id]
                self.framers.pop(plant_id).close()
                channel, task = self.readers.pop(plant_id)
                task.cancel()
                await self.layer.group_discard(plant_group(plant_id), channel)

    async def _run(self, plant_id: int, channel: str) -> None:
        while True:
            try:
                message = await self.layer.receive(channel)
            except asyncio.CancelledError:
                raise
            except Exception:  # Redis restarting: keep the hub, retry shortly
                logger.warning("live hub: receive failed; retrying", exc_info=True)
                await asyncio.sleep(1)
                continue
            events = message.get("events") or [message.get("event")]
            device_ids = message.get("device_ids")
            if not isinstance(device_ids, list) or len(device_ids) != len(events):
                device_ids = [event.get("device_id") if isinstance(event, dict) else None for event in events]
            pairs = [pair for pair in zip(events, device_ids, strict=True) if isinstance(pair[0], dict)]
            members = self.members.get(plant_id, ())
            if any(plant_id in consumer.plants for consumer in members):
                self.framers[plant_id].add([event for event, _ in pairs])
            for consumer in [c for c in members if plant_id not in c.plants]:  # they follow some of its devices
                try:
                    consumer.deliver(pairs)
                except Exception:  # one broken browser connection must not stop the others
                    logger.warning("live hub: delivery failed", exc_info=True)

    def _sender(self, plant_id: int):
        def send(text: str) -> None:
            for consumer in [c for c in self.members.get(plant_id, ()) if plant_id in c.plants]:
                consumer.push_frame(text)  # queued per browser: a slow one holds up nobody

        return send


def hub() -> PlantHub:
    """The hub of the running event loop (a Daphne process has one; each test its own)."""
    loop = asyncio.get_running_loop()
    found = _hubs.get(loop)
    if found is None:
        found = _hubs[loop] = PlantHub()
    return found
