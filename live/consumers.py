"""The browser's live stream, ``/ws/live/``: subscribe to plants and devices, receive their events.

Protocol (README "Live dashboard"):
- connect with the session cookie, optionally ``?plant=<id>`` and/or ``?device=<id>`` to subscribe
  at once (denied: an error frame, then close 4401 not logged in, 4404 not visible, 4403 no right);
- client frames ``{"action": "subscribe" | "unsubscribe", "plant": <id>}`` (or ``"device"``);
  the server answers ``{"kind": "subscribed" | "unsubscribed", ...}`` or, without closing,
  ``{"kind": "error", "status": 400 | 404, "detail": ...}``;
- server frames are the events of the live bus (``telemetry``, ``status``, ``alarm``, ...): one
  event object per frame, or a JSON array of events that were ready at the same moment.
"""

import asyncio
import logging
import time
from collections import deque
from urllib.parse import parse_qs

import orjson
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.sessions.backends.base import SessionBase
from django.db import close_old_connections

from accounts.selectors import plant_list_for, scope_to_plants
from devices.models import Device
from factory.metrics import LIVE_CONNECTIONS, LIVE_FRAMES_DROPPED, LIVE_FRAMES_SENT
from live.frames import BATCH_SECONDS, COALESCE_SECONDS, Framer
from live.hub import hub

__all__ = ["BATCH_SECONDS", "COALESCE_SECONDS", "LiveConsumer"]
logger = logging.getLogger(__name__)
# A session that expires or is logged out elsewhere ends the stream within this time.
SESSION_RECHECK_SECONDS = 30.0
MAX_SUBSCRIPTIONS = 200
MAX_FRAME_BYTES = 4096
# Frames waiting for one browser (5 s of them at 1/BATCH_SECONDS): a browser that cannot take its
# plant's frames as fast as they come (a tablet on weak Wi-Fi) is closed with 4008 instead of
# holding up the other browsers of its plant or growing server memory; it reconnects and catches
# up over REST (static/js/live.js).
MAX_QUEUED_FRAMES = 250


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


class LiveConsumer(AsyncWebsocketConsumer):
    """Authenticates the session user, checks every subscription through ``accounts.selectors``,
    follows plants and devices through the process's plant hub and forwards their events. Writes nothing;
    telemetry is coalesced per device (``frames.COALESCE_SECONDS``): for followed plants by the hub,
    once for all browsers of the process, for single devices here; closes 4401 when the session ends."""

    async def connect(self):
        self.user = self.scope.get("user")
        self.plants: set[int] = set()
        self.devices: dict[int, int] = {}  # device id → its plant id
        self.framer = Framer(self.push_frame)  # the events of single devices (plants: the hub's)
        self.backlog: deque[str] = deque()
        self.writer: asyncio.Task | None = None
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
        LIVE_CONNECTIONS.inc()
        self.counted = True
        self.session_checked = time.monotonic()
        self.watchdog = asyncio.get_running_loop().create_task(self._watch_session())

    async def disconnect(self, code):
        if getattr(self, "counted", False):
            LIVE_CONNECTIONS.dec()
            self.counted = False
        if self.watchdog:
            self.watchdog.cancel()
        if getattr(self, "framer", None):
            self.framer.close()
        if getattr(self, "writer", None):
            self.writer.cancel()
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
            await hub().join(pk, self)  # one group membership per process and plant (live/hub.py)
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

    def deliver(self, pairs: list[tuple[dict, int | None]]) -> None:
        """Keep the events of followed devices among a plant's ``(event, device id)`` pairs (handed over
        by the hub for plants this browser does not follow as a whole)."""
        mine = [event for event, device_id in pairs if device_id in self.devices]
        if mine:
            self.framer.add(mine)

    def push_frame(self, text: str) -> None:
        """Queue a frame of events, already encoded (the hub encodes once for every browser of a plant).

        Never waits for this browser's connection: its own task writes the queue in order.
        """
        if self.user is None:  # denied or given up: the connection is closing
            return
        if len(self.backlog) >= MAX_QUEUED_FRAMES:
            self._too_slow()
            return
        self.backlog.append(text)
        if self.writer is None or self.writer.done():
            self.writer = asyncio.get_running_loop().create_task(self._write())

    async def _write(self) -> None:
        sent = 0
        try:
            while self.backlog:
                await self.send(text_data=self.backlog.popleft())
                sent += 1
        except Exception:  # the connection went away mid-write: disconnect() follows, nothing to send to
            logger.debug("live: frame not sent, the browser is gone", exc_info=True)
            LIVE_FRAMES_DROPPED.inc(len(self.backlog) + 1)
            self.backlog.clear()
        finally:
            LIVE_FRAMES_SENT.inc(sent)  # once per burst written, not per frame

    def _too_slow(self) -> None:
        logger.info("live: closing a browser of %s that fell %d frames behind", self.user, len(self.backlog))
        LIVE_FRAMES_DROPPED.inc(len(self.backlog) + 1)  # the queue and the frame that did not fit
        self.backlog.clear()
        self.user = None
        self.closing = asyncio.get_running_loop().create_task(self.close(code=4008))

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
