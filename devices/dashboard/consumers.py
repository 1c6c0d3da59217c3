"""The browser's live stream, ``/ws/live/``: subscribe to plants and devices, receive their events.

Protocol (README "Live dashboard"):
- connect with the session cookie, optionally ``?plant=<id>`` and/or ``?device=<id>`` to subscribe
  at once (denied: an error frame, then close 4401 not logged in, 4404 not visible, 4403 no right);
- client frames ``{"action": "subscribe" | "unsubscribe", "plant": <id>}`` (or ``"device"``);
  the server answers ``{"kind": "subscribed" | "unsubscribed", ...}`` or, without closing,
  ``{"kind": "error", "status": 400 | 404, "detail": ...}``;
- server frames are the events of ``devices.live`` (``telemetry``, ``status``, ``alarm``, ...): one
  event object per frame, or a JSON array of events that were ready at the same moment.
"""

import asyncio
import time
from urllib.parse import parse_qs

import orjson
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.sessions.backends.base import SessionBase
from django.db import close_old_connections

from accounts.selectors import plant_list_for, scope_to_plants
from devices.dashboard.hub import hub
from devices.models import Device

# Telemetry frames per device and browser: at most one per interval; newer values replace older.
COALESCE_SECONDS = 0.25
# Frames per browser: events ready within this window leave together as one JSON array, so a busy
# plant costs a browser (and the server) at most 1/BATCH_SECONDS frames a second.
BATCH_SECONDS = 0.02
# A session that expires or is logged out elsewhere ends the stream within this time.
SESSION_RECHECK_SECONDS = 30.0
MAX_SUBSCRIPTIONS = 200
MAX_FRAME_BYTES = 4096


def _session_still_valid(session: SessionBase, user) -> bool:
    """The session still exists, is unexpired, and still names this active user."""
    close_old_connections()
    if not user.is_authenticated or not session.exists(session.session_key):
        return False
    fresh = session.__class__(session.session_key)
    if str(fresh.get(SESSION_KEY)) != str(user.pk) or not fresh.get(BACKEND_SESSION_KEY):
        return False
    user.refresh_from_db(fields=["is_active", "password"])
    return user.is_active and fresh.get(HASH_SESSION_KEY) == user.get_session_auth_hash()


def _visible_plant(user, plant_id: int) -> int | None:
    close_old_connections()
    return plant_list_for(user).filter(pk=plant_id).values_list("pk", flat=True).first()


def _visible_device_plant(user, device_id: int) -> int | None:
    """The plant of the device when the user may see it, else None (the same selector as the API)."""
    close_old_connections()
    return scope_to_plants(Device.objects.filter(pk=device_id), user).values_list("plant_id", flat=True).first()


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


class LiveConsumer(AsyncWebsocketConsumer):
    """Authenticates the session user, checks every subscription through ``accounts.selectors``,
    follows plants and devices through the process's plant hub and forwards their events. Writes nothing;
    coalesces telemetry per device (``COALESCE_SECONDS``); closes 4401 when the session ends."""

    async def connect(self):
        self.user = self.scope.get("user")
        self.plants: set[int] = set()
        self.devices: dict[int, int] = {}  # device id → its plant id
        self.pending: dict[object, dict] = {}
        self.last_sent: dict[object, float] = {}
        self.flush_handle: asyncio.TimerHandle | None = None
        self.outbox: list[dict] = []
        self.outbox_handle: asyncio.TimerHandle | None = None
        self.last_frame = -1e9
        self.watchdog = None
        await self.accept()
        if self.user is None or not self.user.is_authenticated:
            await self._deny(4401, "Not logged in (or the session expired): log in again.")
            return
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        for kind in ("plant", "device"):
            for raw in query.get(kind, []):
                error = await self._subscribe(kind, raw)
                if error:
                    await self._deny(4000 + error[0], error[1])
                    return
        await self._send({"kind": "hello", "user": self.user.get_username(), "plants": sorted(self.plants)})
        self.session_checked = time.monotonic()
        self.watchdog = asyncio.get_running_loop().create_task(self._watch_session())

    async def disconnect(self, code):
        if self.watchdog:
            self.watchdog.cancel()
        for handle in (getattr(self, "flush_handle", None), getattr(self, "outbox_handle", None)):
            if handle:
                handle.cancel()
        for plant_id in set(getattr(self, "plants", ())) | set(getattr(self, "devices", {}).values()):
            await hub().leave(plant_id, self)

    async def receive(self, text_data=None, bytes_data=None):
        if not await self._session_ok():
            return
        try:
            if text_data is None or len(text_data) > MAX_FRAME_BYTES:
                raise ValueError
            frame = orjson.loads(text_data)
            action = frame["action"]
            (kind,) = [key for key in ("plant", "device") if key in frame]
            if action not in ("subscribe", "unsubscribe"):
                raise ValueError
        except (ValueError, KeyError, TypeError):
            await self._error(400, 'Send JSON like {"action": "subscribe", "plant": 3} (or "unsubscribe", "device").')
            return
        if action == "subscribe":
            error = await self._subscribe(kind, frame[kind])
        else:
            error = await self._unsubscribe(kind, frame[kind])
        if error:
            await self._error(*error, **{kind: frame[kind]})
        else:
            await self._send({"kind": f"{action}d", kind: int(frame[kind])})

    async def _subscribe(self, kind: str, raw) -> tuple[int, str] | None:
        """Join the group of a plant or device the user may see; ``(status, detail)`` when refused."""
        pk = _as_id(raw)
        if pk is None:
            return 400, f"{kind} must be a positive integer id."
        if len(self.plants) + len(self.devices) >= MAX_SUBSCRIPTIONS:
            return 400, f"At most {MAX_SUBSCRIPTIONS} subscriptions per connection."
        if kind == "plant":
            if await database_sync_to_async(_visible_plant)(self.user, pk) is None:
                return 404, f"No plant {pk} among your plants."
            await hub().join(pk, self)  # one group membership per process and plant (dashboard/hub.py)
            self.plants.add(pk)
        else:
            plant_id = await database_sync_to_async(_visible_device_plant)(self.user, pk)
            if plant_id is None:
                return 404, f"No device {pk} in your plants."
            # A device's events travel in its plant's group: the hub hands them over, deliver() filters.
            await hub().join(plant_id, self)
            self.devices[pk] = plant_id
        return None

    async def _unsubscribe(self, kind: str, raw) -> tuple[int, str] | None:
        pk = _as_id(raw)
        if pk is None:
            return 400, f"{kind} must be a positive integer id."
        if kind == "plant" and pk in self.plants:
            self.plants.discard(pk)
            plant_id = pk
        elif kind == "device" and pk in self.devices:
            plant_id = self.devices.pop(pk)
        else:
            return None
        if plant_id not in self.plants and plant_id not in self.devices.values():
            await hub().leave(plant_id, self)
        return None

    async def deliver(self, events: list, message: dict, plant_id: int | None = None):
        """Forward the events of a plant message (handed over by the hub) that this browser follows.

        All of them when it follows the plant; those of its devices when it follows devices only.
        Telemetry is coalesced per device; everything else goes at once (within ``BATCH_SECONDS``).
        """
        plant_id = message.get("plant_id") if plant_id is None else plant_id
        whole_plant = plant_id in self.plants
        device_ids = message.get("device_ids")
        if not isinstance(device_ids, list) or len(device_ids) != len(events):
            device_ids = [event.get("device_id") if isinstance(event, dict) else None for event in events]
        now = time.monotonic()
        ready = []
        for event, device_id in zip(events, device_ids, strict=True):
            if not isinstance(event, dict) or not (whole_plant or device_id in self.devices):
                continue
            if event.get("kind") != "telemetry":
                ready.append(event)
                continue
            key = event.get("device_id")
            if key in self.pending:
                _merge(self.pending[key], event)
            elif now - self.last_sent.get(key, -1e9) >= COALESCE_SECONDS:
                self.last_sent[key] = now
                ready.append({**event, "n": event.get("n", 1)})
            else:
                self.pending[key] = {**event, "values": dict(event.get("values") or {}), "n": event.get("n", 1)}
                self._schedule_flush(self.last_sent[key] + COALESCE_SECONDS - now)
        if ready:
            await self._emit(ready)

    def _schedule_flush(self, delay: float):
        if self.flush_handle is None:
            self.flush_handle = asyncio.get_running_loop().call_later(max(delay, 0), self._start_flush)

    def _start_flush(self):
        self.flush_handle = None
        self.flush_task = asyncio.ensure_future(self._flush())

    async def _flush(self):
        """Send every coalesced reading whose device may have a frame again; wait for the rest."""
        now = time.monotonic()
        due = [key for key in self.pending if now - self.last_sent.get(key, -1e9) >= COALESCE_SECONDS - 0.005]
        ready = []
        for key in due:
            ready.append(self.pending.pop(key))
            self.last_sent[key] = now
        if self.pending:
            self._schedule_flush(min(self.last_sent[k] for k in self.pending) + COALESCE_SECONDS - now)
        if ready:
            await self._emit(ready)

    async def _emit(self, events: list[dict]):
        """Send now when the last frame is older than ``BATCH_SECONDS``, else with the next batch."""
        self.outbox.extend(events)
        if self.outbox_handle is not None:
            return
        wait = self.last_frame + BATCH_SECONDS - time.monotonic()
        if wait <= 0:
            await self._send_outbox()
        else:
            self.outbox_handle = asyncio.get_running_loop().call_later(wait, self._start_outbox)

    def _start_outbox(self):
        self.outbox_handle = None
        self.outbox_task = asyncio.ensure_future(self._send_outbox())

    async def _send_outbox(self):
        events, self.outbox = self.outbox, []
        if events and self.user is not None:
            self.last_frame = time.monotonic()
            await self._send(events[0] if len(events) == 1 else events)

    async def _watch_session(self):
        while True:
            await asyncio.sleep(SESSION_RECHECK_SECONDS)
            if not await self._session_ok(force=True):
                return

    async def _session_ok(self, force: bool = False) -> bool:
        if self.user is None or not self.user.is_authenticated:
            return False
        if not force and time.monotonic() - self.session_checked < SESSION_RECHECK_SECONDS:
            return True
        session = self.scope.get("session")
        valid = session is not None and await database_sync_to_async(_session_still_valid)(session, self.user)
        self.session_checked = time.monotonic()
        if not valid:
            await self._deny(4401, "Your session ended: log in again.")
        return valid

    async def _deny(self, code: int, detail: str):
        await self._send({"kind": "error", "status": code - 4000, "detail": detail, "close": code})
        self.user = None
        await self.close(code=code)

    async def _error(self, status: int, detail: str, **extra):
        await self._send({"kind": "error", "status": status, "detail": detail, **extra})

    async def _send(self, payload: dict):
        await self.send(text_data=orjson.dumps(payload).decode())


def _as_id(raw) -> int | None:
    if isinstance(raw, bool):
        return None
    try:
        pk = int(raw)
    except (TypeError, ValueError):
        return None
    return pk if 0 < pk < 2**63 else None
