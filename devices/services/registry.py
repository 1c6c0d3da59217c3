"""Writes for devices and device groups, including the batch operations of the API and admin."""

from collections.abc import Iterable

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from analytics.services import ideal_cycle_time_record
from devices.models import Device, DeviceGroup, Line, Plant
from devices.services import broker
from devices.services.tokens import broker_password_holders, token_issue


def device_create(*, uid: str, name: str, plant: Plant | None = None, line: Line | None = None, **fields) -> Device:
    """Create a device in ``line`` (its plant is the line's) or directly in ``plant``.

    Raises ``ValidationError`` naming the field: duplicate uid, a line of another plant, no plant.
    """
    if plant is None and line is None:
        raise ValidationError({"line": "Give the device's line (or its plant for devices outside a line)."})
    if plant is None:
        plant = line.plant
    device = Device(uid=uid, name=name, plant=plant, line=line, **fields)
    device.full_clean()
    device.save()
    return device


@transaction.atomic
def device_update(*, device: Device, **fields) -> Device:
    """Change a device's editable fields (the API's and the admin's edits) and save it.

    ``fields`` may be empty when the caller (the admin's form) has set them on ``device`` already.
    A changed ideal cycle time is recorded in the machine's history
    (``analytics.services.ideal_cycle_time_record``), so OEE keeps weighing earlier pieces with
    the old value. Raises ``ValidationError`` naming the field.
    """
    previous, was_enabled, old_uid = (
        Device.objects.filter(pk=device.pk).values_list("ideal_cycle_time", "enabled", "uid").get()
    )
    for name, value in fields.items():
        setattr(device, name, value)
    device.full_clean()
    device.save()
    if device.ideal_cycle_time is not None and device.ideal_cycle_time != previous:
        ideal_cycle_time_record(device=device, previous=previous)
    if device.uid != old_uid and broker.broker_managed():
        # The broker knows the device by its uid: the old client goes; the new uid needs a new token.
        broker.broker_device_delete(uid=old_uid)
    elif device.enabled != was_enabled:
        broker_sync_devices(devices=[device])
    return device


def broker_sync_devices(*, devices: list[Device]) -> None:
    """Enable or disable the devices' MQTT clients as the registry says (when the platform manages
    the broker): enabled devices whose newest broker password is an active token may connect."""
    if not broker.broker_managed() or not devices:
        return
    ids = [d.pk for d in devices]
    enabled = dict(Device.objects.filter(pk__in=ids).values_list("pk", "enabled"))
    holders = broker_password_holders(ids)
    now = timezone.now()
    for device in devices:
        holder = holders.get(device.pk)
        if enabled.get(device.pk) and holder is not None and holder.is_active(now):
            broker.broker_device_enable(uid=device.uid)
        else:
            broker.broker_device_disable(uid=device.uid)


@transaction.atomic
def device_delete(*, device: Device) -> None:
    """Delete ``device`` (its tokens go with it); the broker forgets it before this commits."""
    uid = device.uid
    device.delete()
    if broker.broker_managed():
        broker.broker_device_delete(uid=uid)


def _same_plant(devices: list[Device], plant: Plant, field: str, what: str) -> None:
    foreign = [d.uid for d in devices if d.plant_id != plant.pk]
    if foreign:
        raise ValidationError({field: f"{what} belongs to plant '{plant.name}' but {', '.join(foreign)} do(es) not."})


@transaction.atomic
def group_set_devices(*, group: DeviceGroup, devices: Iterable[Device]) -> DeviceGroup:
    """Replace the group's members. All devices must be in the group's plant."""
    devices = list(devices)
    _same_plant(devices, group.plant, "devices", f"Group '{group.name}'")
    group.devices.set(devices)
    return group


def devices_set_enabled(*, devices: list[Device], enabled: bool) -> int:
    """Enable or disable devices; a disabled device is refused at ingest from its next request
    and at the MQTT broker at once. Call it inside a transaction (``devices_batch``): a broker that
    does not answer then rolls the change back."""
    count = Device.objects.filter(pk__in=[d.pk for d in devices]).update(enabled=enabled)
    broker_sync_devices(devices=devices)
    return count


def devices_move(*, devices: list[Device], line: Line) -> int:
    """Move devices to ``line``. Devices never change plant this way."""
    _same_plant(devices, line.plant, "line", f"Line '{line.name}'")
    return Device.objects.filter(pk__in=[d.pk for d in devices]).update(line=line)


def devices_add_to_group(*, devices: list[Device], group: DeviceGroup) -> int:
    _same_plant(devices, group.plant, "target_group", f"Group '{group.name}'")
    group.devices.add(*devices)
    return len(devices)


def devices_remove_from_group(*, devices: list[Device], group: DeviceGroup) -> int:
    # A group of another plant cannot hold these devices: say so rather than report a no-op as done.
    _same_plant(devices, group.plant, "target_group", f"Group '{group.name}'")
    group.devices.remove(*devices)
    return len(devices)


@transaction.atomic
def tokens_issue(*, devices: list[Device], name: str, by=None) -> list[tuple[Device, object, str]]:
    """Issue one token named ``name`` per device; returns (device, token, plain) triples."""
    return [(device, *token_issue(device=device, name=name, by=by)) for device in devices]


@transaction.atomic
def devices_batch(
    *, action: str, devices: list[Device], by=None, line=None, target_group=None, token_name=None
) -> dict:
    """Apply one batch action to ``devices``, all or nothing; the API and the admin both call this.

    Returns ``{"action", "count", "devices"}`` plus ``tokens`` (plain, shown once) for
    ``issue_tokens``. Raises ``ValidationError`` when a device is outside the target's plant.
    """
    result = {"action": action, "count": len(devices), "devices": [d.pk for d in devices]}
    if action in ("enable", "disable"):
        devices_set_enabled(devices=devices, enabled=action == "enable")
    elif action == "move":
        devices_move(devices=devices, line=line)
    elif action == "add_to_group":
        devices_add_to_group(devices=devices, group=target_group)
    elif action == "remove_from_group":
        devices_remove_from_group(devices=devices, group=target_group)
    elif action == "issue_tokens":
        result["tokens"] = [
            {"device": d.pk, "uid": d.uid, "id": t.pk, "prefix": t.prefix, "token": plain}
            for d, t, plain in tokens_issue(devices=devices, name=token_name, by=by)
        ]
    else:
        raise ValidationError({"action": f"Unknown batch action {action!r}."})
    return result
