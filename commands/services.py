"""Commands to devices: send (checked against the catalogue), deliver, record results, expire.

Transitions are claims by conditional UPDATE (STYLE §4): each one changes a command only from the
states it expects, so a retried delivery, a poll racing the WebSocket, or a result racing the
expiry task changes a command once, and only that claim writes its ``CommandEvent`` and its live
event (published after commit through ``live.bus``).
"""

import logging
from datetime import datetime, timedelta

import orjson
from django.conf import settings
from django.db import transaction
from django.db.models.functions import Coalesce
from django.utils import timezone
from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from accounts.roles import PERM_MANAGE, PERM_OPERATE
from accounts.selectors import user_has_plant_perm
from commands.events import command_body, command_event
from commands.exceptions import CommandError
from commands.models import Command, CommandDefinition, CommandEvent
from devices.models import Device
from live.bus import publish

logger = logging.getLogger(__name__)

ROLE_PERMS = {CommandDefinition.Role.OPERATOR: PERM_OPERATE, CommandDefinition.Role.ADMIN: PERM_MANAGE}
RESULT_STATES = (Command.State.SUCCEEDED, Command.State.FAILED)


def definitions_for(device: Device) -> dict[str, CommandDefinition]:
    """The enabled catalogue of ``device``'s model by name: definitions for every model, overridden
    by those for the device's own model."""
    rows = CommandDefinition.objects.filter(enabled=True, model__in={"", device.model}).order_by("model", "name")
    return {definition.name: definition for definition in rows}  # "" sorts first: the model's own win


def definitions_allowed(device: Device, user) -> list[CommandDefinition]:
    """The catalogue entries ``user`` may send to ``device`` (by the role each one needs)."""
    return [d for d in definitions_for(device).values() if user_has_plant_perm(user, ROLE_PERMS[d.role], device.plant)]


def _json_size(value) -> int:
    return len(orjson.dumps(value))


def _check_params(definition: CommandDefinition, params) -> None:
    if not isinstance(params, dict):
        raise CommandError("params must be a JSON object.", errors={"params": ["Send the parameters as an object."]})
    if _json_size(params) > settings.COMMAND_MAX_BYTES:
        raise CommandError(f"params exceed {settings.COMMAND_MAX_BYTES} bytes as JSON.")
    error = best_match(Draft202012Validator(definition.params_schema).iter_errors(params))
    if error is not None:
        where = "params" + "".join(f"[{p!r}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
        message = f"{where}: {error.message}"
        raise CommandError(
            f"The parameters do not match the schema of '{definition.name}': {message}",
            errors={"params": [message], "schema": definition.params_schema},
        )


def command_transition_record(command: Command, state: str, at: datetime, via: str, by=None, detail: str = "") -> None:
    """The history row of a transition and, after commit, its live event. Call it only after the
    conditional UPDATE that claimed the transition, in the same transaction."""
    CommandEvent.objects.create(command=command, state=state, at=at, via=via, by=by, detail=detail[:500])
    plant_id, device_id, pk = command.device.plant_id, command.device_id, command.pk

    def announce():
        fresh = Command.objects.select_related("created_by").filter(pk=pk).first()
        if fresh is not None:
            publish(plant_id=plant_id, device_id=device_id, event=command_event(fresh))

    transaction.on_commit(announce)


def command_send(*, device: Device, name: str, params: dict | None, by, timeout: int | None = None) -> Command:
    """Create a command for ``device`` after checking it against the catalogue of its model and
    enqueue its delivery (MQTT and the device WebSocket) after commit; returns it ``pending``.

    Raises ``CommandError``: 400 for a name not in the catalogue (listing the allowed ones), params
    that fail the schema or a bad time-out; 403 when ``by`` lacks the role the command needs. The
    caller has already checked that ``by`` may operate the device's plant.
    """
    from commands.tasks import deliver_command as deliver_command_task

    catalogue = definitions_for(device)
    definition = catalogue.get(name)
    if definition is None:
        allowed = sorted(catalogue)
        names = ", ".join(allowed) if allowed else "none: ask an administrator to add commands to the catalogue"
        raise CommandError(
            f"'{name}' is not a command of model '{device.model or '(none)'}'. Allowed: {names}.",
            errors={"name": [f"Not in the catalogue of this device's model. Allowed: {names}."], "allowed": allowed},
        )
    if not user_has_plant_perm(by, ROLE_PERMS[definition.role], device.plant):
        raise CommandError(
            f"'{name}' needs the {definition.role} role on plant '{device.plant}'. Ask one of its admins.", status=403
        )
    params = {} if params is None else params
    _check_params(definition, params)
    timeout = definition.default_timeout if timeout is None else timeout
    if not 1 <= timeout <= settings.COMMAND_MAX_TIMEOUT:
        raise CommandError(
            f"timeout must be between 1 and {settings.COMMAND_MAX_TIMEOUT} seconds.",
            errors={"timeout": [f"Give 1 to {settings.COMMAND_MAX_TIMEOUT} seconds."]},
        )
    now = timezone.now()
    with transaction.atomic():
        command = Command(
            device=device, name=name, params=params, created_by=by, created_at=now,
            expires_at=now + timedelta(seconds=timeout),
        )  # fmt: skip
        command.full_clean()
        command.save()
        command_transition_record(
            command, Command.State.PENDING, now, CommandEvent.Via.API, by=by, detail=f"time-out {timeout} s"
        )
        transaction.on_commit(lambda: deliver_command_task.delay(command.pk))
    return command


def command_mark_delivered(*, command_id: int, device_id: int, via: str, now: datetime | None = None) -> bool:
    """``pending`` → ``delivered`` for the device's own open command; False when it was not pending
    (delivered before, finished, another device's). Idempotent."""
    now = now or timezone.now()
    with transaction.atomic():
        claimed = Command.objects.filter(
            pk=command_id, device_id=device_id, state=Command.State.PENDING, expires_at__gt=now
        ).update(state=Command.State.DELIVERED, delivered_at=now)
        if claimed:
            command = Command.objects.select_related("device").get(pk=command_id)
            command_transition_record(command, Command.State.DELIVERED, now, via)
    return bool(claimed)


def command_deliver(*, command_id: int) -> str:
    """Offer an open command to its device: on its WebSocket (if connected; the consumer marks it
    delivered) and, with ``MQTT_URL``, on ``factory/devices/<uid>/commands`` (delivered when the
    broker had a subscriber). Returns what happened. Raises ``TransientDeliveryError`` when the
    broker is unreachable (the task retries; the device can still poll). Safe to repeat: a device
    acts on a command id once."""
    from commands.transport import commands_topic, mqtt_publish
    from live.bus import send_device_command

    command = Command.objects.select_related("device").filter(pk=command_id).first()
    if command is None or not command.is_open or command.expires_at <= timezone.now():
        return "not open"
    body = command_body(command)
    send_device_command(command.device_id, body)
    if not (settings.MQTT_URL and settings.COMMAND_NOTIFY_MQTT):
        return "websocket"
    [received] = mqtt_publish([(commands_topic(command.device.uid), orjson.dumps(body))])
    if received:
        command_mark_delivered(command_id=command.pk, device_id=command.device_id, via=CommandEvent.Via.MQTT)
        return "mqtt delivered"
    return "mqtt: no subscriber"


def commands_poll(*, device: Device, now: datetime | None = None) -> list[dict]:
    """The device's open, unexpired commands (oldest first) as it receives them; the pending ones
    become ``delivered`` (over HTTP). A command delivered before is listed again until it has a
    result, so a device that lost one after receiving it can still answer it."""
    now = now or timezone.now()
    # Firmware commands are offered by GET /api/v1/device/firmware/ (their own protocol).
    open_ = Command.objects.filter(device=device, state__in=Command.OPEN, expires_at__gt=now, update_id=None)
    commands = list(open_.order_by("pk")[:100])
    for command in commands:
        if command.state == Command.State.PENDING:
            command_mark_delivered(command_id=command.pk, device_id=device.pk, via=CommandEvent.Via.HTTP, now=now)
    return [command_body(command) for command in commands]


def _expire(command: Command, now: datetime) -> bool:
    with transaction.atomic():
        claimed = Command.objects.filter(pk=command.pk, state__in=Command.OPEN, expires_at__lte=now).update(
            state=Command.State.EXPIRED, finished_at=now
        )
        if claimed:
            command_transition_record(
                command, Command.State.EXPIRED, now, CommandEvent.Via.EXPIRY, detail="no result before expires_at"
            )
    return bool(claimed)


def commands_expire(*, now: datetime | None = None, limit: int = 1000) -> int:
    """Mark open commands past ``expires_at`` ``expired`` (up to ``limit`` per call); returns how
    many this call claimed. Idempotent: a second run finds nothing."""
    now = now or timezone.now()
    # Firmware commands finish with their update (commands.firmware), not by this clock.
    due = Command.objects.filter(state__in=Command.OPEN, expires_at__lte=now, update_id=None).select_related("device")
    return sum(_expire(command, now) for command in due.order_by("expires_at")[:limit])


def _check_result(status, result) -> dict:
    if status not in RESULT_STATES:
        raise CommandError(
            "status must be 'succeeded' or 'failed'.", errors={"status": ["Use 'succeeded' or 'failed'."]}
        )
    result = {} if result is None else result
    if not isinstance(result, dict):
        raise CommandError("result must be a JSON object.", errors={"result": ["Send the result as an object."]})
    if _json_size(result) > settings.COMMAND_MAX_BYTES:
        raise CommandError(f"result exceeds {settings.COMMAND_MAX_BYTES} bytes as JSON.")
    return result


def command_result_record(
    *, device: Device, command_id, status, result, via: str, now: datetime | None = None
) -> Command:
    """Record the device's answer to its own command: ``succeeded`` or ``failed`` with a result
    object. Returns the command.

    Raises ``CommandError``: 400 bad status or result; 404 when the command is not this device's;
    409 when it expired (a late result is refused, the command stays ``expired``) or already has
    another result. The same result sent again (an MQTT redelivery) changes nothing and is fine.
    """
    now = now or timezone.now()
    result = _check_result(status, result)
    if isinstance(command_id, bool) or not isinstance(command_id, int | str) or not str(command_id).isdigit():
        raise CommandError("id must be the command's integer id.", errors={"id": ["Give the command's id."]})
    pk = int(command_id)
    command = None
    if pk < 2**63:  # beyond a BIGINT no command exists (and SQLite would overflow)
        command = Command.objects.select_related("device").filter(pk=pk, device=device).first()
    if command is None:
        raise CommandError(f"This device has no command {command_id}.", status=404)
    if command.update_id is not None:
        raise CommandError(
            f"Command {command.pk} is a firmware update: report on it with POST /api/v1/device/firmware/status/.", 409
        )
    if command.is_open and command.expires_at <= now:
        _expire(command, now)
        command.refresh_from_db()
    if command.state == Command.State.EXPIRED:
        raise CommandError(
            f"Command {command.pk} expired at {command.expires_at.isoformat()}; its result is refused. "
            "Answer before expires_at, or ask the sender for a longer time-out.",
            status=409,
        )
    if command.state in RESULT_STATES:
        if command.state == status and command.result == result:
            return command
        raise CommandError(f"Command {command.pk} already has a result ({command.state}); it cannot change.", 409)
    with transaction.atomic():
        claimed = Command.objects.filter(pk=command.pk, state__in=Command.OPEN, expires_at__gt=now).update(
            state=status, result=result, finished_at=now, delivered_at=Coalesce("delivered_at", now)
        )
        if not claimed:  # expired or answered between our read and this update
            raise CommandError(f"Command {command.pk} is no longer open; its result is refused.", status=409)
        command_transition_record(command, status, now, via)
    command.refresh_from_db()
    return command
