"""The device WebSocket (``/ws/devices/``, CONTRACT.md): telemetry frames and command results in,
acknowledgements and commands out."""

import time

import orjson
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.db import DatabaseError, close_old_connections
from django.utils import timezone

from commands.exceptions import CommandError
from commands.models import CommandEvent
from commands.services import command_mark_delivered, command_result_record
from devices.exceptions import DeviceAuthError
from devices.services.ingest import IngestItem, rate_limit_retry_after, telemetry_parse, telemetry_store
from devices.services.telemetry_payload import PayloadError
from devices.services.tokens import token_authenticate, token_from_authorization
from factory.metrics import count_rejected
from live.bus import command_group

# A revoked token or a disabled device must stop working on the next message, yet a lookup per
# frame would double the database work of a chatty device: re-check at most this often.
REAUTH_SECONDS = 5.0


def _authenticate(token: str):
    close_old_connections()
    return token_authenticate(token)


def _command_delivered(command_id: int, device_id: int) -> None:
    close_old_connections()
    command_mark_delivered(command_id=command_id, device_id=device_id, via=CommandEvent.Via.WEBSOCKET)


def _command_result(device, answer) -> dict:
    """Record ``{"command_result": {"id", "status", "result"}}``; the reply names the command and its
    state, or the refusal with its HTTP status (404, 409, 400) and why."""
    close_old_connections()
    if not isinstance(answer, dict):
        return {"command_result": {"id": None, "status": 400, "error": 'Send {"id", "status", "result"}.'}}
    try:
        command = command_result_record(
            device=device, command_id=answer.get("id"), status=answer.get("status"), result=answer.get("result"),
            via=CommandEvent.Via.WEBSOCKET,
        )  # fmt: skip
    except CommandError as exc:
        return {"command_result": {"id": answer.get("id"), "status": exc.status, "error": exc.message}}
    except DatabaseError:
        return {"command_result": {"id": answer.get("id"), "status": 503, "error": "Storage unavailable. Resend."}}
    return {"command_result": {"id": command.pk, "state": command.state}}


def _result_frame(body: bytes):
    """The answer object of a command-result frame, or None for anything else (telemetry)."""
    if b'"command_result"' not in body:  # cheap: telemetry frames skip a second parse
        return None
    try:
        frame = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if isinstance(frame, dict) and set(frame) == {"command_result"}:
        return frame["command_result"]
    return None


def _ingest(device, body: bytes) -> dict:
    """Validate and store one frame for ``device``; returns the reply to send (never raises)."""
    close_old_connections()
    retry_after = rate_limit_retry_after(device.pk)
    if retry_after:
        count_rejected("websocket", "rate_limited")
        message = f"Rate limited: slow down or batch messages; retry in {retry_after} s."
        return {"errors": [{"index": None, "field": "", "message": message}], "retry_after": retry_after}
    now = timezone.now()
    try:
        messages = telemetry_parse(body, now=now)
    except PayloadError as exc:
        count_rejected("websocket", "invalid")
        return {"errors": exc.errors}
    try:
        items = [IngestItem(device=device, messages=messages)]
        return {"accepted": telemetry_store(items, received_at=now, transport="websocket")}
    except DatabaseError:
        count_rejected("websocket", "unavailable")
        return {"errors": [{"index": None, "field": "", "message": "Storage unavailable; nothing stored. Resend."}]}


class DeviceConsumer(AsyncWebsocketConsumer):
    """Authenticates with ``Authorization: Device <token>`` at connect, then answers every frame with
    ``{"accepted": N}`` or ``{"errors": [...]}`` exactly like the HTTP endpoint. Closes with 4401
    (unknown token) or 4403 (revoked token, disabled device) after sending ``{"detail": ...}``.
    Commands for the device arrive through its group (``live.bus.send_device_commands``) and are
    forwarded as ``{"command": ...}`` (a general command is then ``delivered``); the device answers
    one with a ``{"command_result": {"id", "status", "result"}}`` frame (README "Device commands")."""

    async def connect(self):
        headers = dict(self.scope.get("headers", []))
        try:
            self.token = token_from_authorization(headers.get(b"authorization", b"").decode("latin-1"))
        except DeviceAuthError as exc:
            await self._refuse(exc.message, exc.status)
            return
        if not await self._reauthenticate():
            return
        # Join before accepting: a command sent right after the handshake must not be missed.
        await self.channel_layer.group_add(command_group(self.device.pk), self.channel_name)
        await self.accept()
        self.accepted = True

    async def _reauthenticate(self) -> bool:
        try:
            self.device = await database_sync_to_async(_authenticate)(self.token)
        except DeviceAuthError as exc:
            await self._refuse(exc.message, exc.status)
            return False
        self.authenticated_at = time.monotonic()
        return True

    async def _refuse(self, message: str, status: int):
        """Tell the device why (a handshake rejection carries no body), then close with 4401/4403."""
        if not getattr(self, "accepted", False):
            await self.accept()
            self.accepted = True
        await self.send(text_data=orjson.dumps({"detail": message}).decode())
        await self.close(code=4000 + status)

    async def disconnect(self, code):
        if getattr(self, "device", None) is not None:
            await self.channel_layer.group_discard(command_group(self.device.pk), self.channel_name)

    async def receive(self, text_data=None, bytes_data=None):
        if getattr(self, "device", None) is None:
            return
        if time.monotonic() - self.authenticated_at > REAUTH_SECONDS and not await self._reauthenticate():
            return
        body = bytes_data if bytes_data is not None else text_data.encode()
        answer = _result_frame(body)
        if answer is not None:
            reply = await database_sync_to_async(_command_result)(self.device, answer)
        else:
            reply = await database_sync_to_async(_ingest)(self.device, body)
        await self.send(text_data=orjson.dumps(reply).decode())

    async def device_command(self, event):
        command = event["command"]
        await self.send(text_data=orjson.dumps({"command": command}).decode())
        if command.get("type") == "command" and isinstance(command.get("id"), int):
            await database_sync_to_async(_command_delivered)(command["id"], self.device.pk)
