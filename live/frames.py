"""From live events to WebSocket frames: telemetry coalesced per device, frames batched in time.

One ``Framer`` serves every browser of a process that follows a whole plant (``hub.PlantHub``):
the events of a plant are coalesced, batched and JSON-encoded once, and the same text goes to
each of those browsers: with many wall screens on one plant, one encoding per frame instead of one
per screen, and no per-browser work per event. A browser that follows single devices
only has its own ``Framer`` for the events it keeps.
"""

import asyncio
import time
from collections.abc import Callable

import orjson

# Telemetry frames per device and browser: at most one per interval; newer values replace older.
COALESCE_SECONDS = 0.25
# Frames per browser: events ready within this window leave together as one JSON array, so a busy
# plant costs a browser (and the server) at most 1/BATCH_SECONDS frames a second.
BATCH_SECONDS = 0.02


def _merge(pending: dict, event: dict) -> None:
    """Fold a newer telemetry event into the pending one: per metric the newer reading wins."""
    values = pending.setdefault("values", {})
    for name, reading in (event.get("values") or {}).items():
        if name not in values or (reading.get("ts") or "") >= (values[name].get("ts") or ""):
            values[name] = reading
    for key, value in event.items():
        if key not in ("values", "n"):
            pending[key] = value
    pending["n"] = pending.get("n", 1) + event.get("n", 1)


class Framer:
    """Coalesces telemetry per device (``COALESCE_SECONDS``; ``n`` counts the readings a frame carries)
    and hands ``emit`` the encoded frames: one event object, or a JSON array of the events that were
    ready within ``BATCH_SECONDS``. Events of other kinds are never coalesced or dropped.

    Runs in the event loop and never waits: ``emit`` only queues (``LiveConsumer.push_frame``), and
    what is held back is sent by loop timers.
    """

    def __init__(self, emit: Callable[[str], None]):
        self.emit = emit
        self.pending: dict[object, dict] = {}
        self.last_sent: dict[object, float] = {}
        self.outbox: list[dict] = []
        self.last_frame = -1e9
        self.flush_handle: asyncio.TimerHandle | None = None
        self.outbox_handle: asyncio.TimerHandle | None = None

    def add(self, events) -> None:
        now = time.monotonic()
        ready = []
        for event in events:
            if event.get("kind") != "telemetry":
                ready.append(event)
                continue
            key = event.get("device_id")
            if key in self.pending:
                _merge(self.pending[key], event)
            elif now - self.last_sent.get(key, -1e9) >= COALESCE_SECONDS:
                self.last_sent[key] = now
                ready.append(event if "n" in event else {**event, "n": 1})
            else:
                self.pending[key] = {**event, "values": dict(event.get("values") or {}), "n": event.get("n", 1)}
                self._schedule_flush(self.last_sent[key] + COALESCE_SECONDS - now)
        if ready:
            self._queue(ready)

    def close(self) -> None:
        for handle in (self.flush_handle, self.outbox_handle):
            if handle:
                handle.cancel()

    def _schedule_flush(self, delay: float) -> None:
        if self.flush_handle is None:
            self.flush_handle = asyncio.get_running_loop().call_later(max(delay, 0), self._flush)

    def _flush(self) -> None:
        """Send every coalesced reading whose device may have a frame again; wait for the rest."""
        self.flush_handle = None
        now = time.monotonic()
        due = [key for key in self.pending if now - self.last_sent.get(key, -1e9) >= COALESCE_SECONDS - 0.005]
        ready = []
        for key in due:
            ready.append(self.pending.pop(key))
            self.last_sent[key] = now
        if self.pending:
            self._schedule_flush(min(self.last_sent[k] for k in self.pending) + COALESCE_SECONDS - now)
        if ready:
            self._queue(ready)

    def _queue(self, events: list[dict]) -> None:
        """Send now when the last frame is older than ``BATCH_SECONDS``, else with the next batch."""
        self.outbox.extend(events)
        if self.outbox_handle is not None:
            return
        wait = self.last_frame + BATCH_SECONDS - time.monotonic()
        if wait <= 0:
            self._send_outbox()
        else:
            self.outbox_handle = asyncio.get_running_loop().call_later(wait, self._send_outbox)

    def _send_outbox(self) -> None:
        self.outbox_handle = None
        events, self.outbox = self.outbox, []
        if events:
            self.last_frame = time.monotonic()
            self.emit(orjson.dumps(events[0] if len(events) == 1 else events).decode())
