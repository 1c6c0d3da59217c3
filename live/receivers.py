"""Receivers that turn other apps' after-commit signals into live events (STYLE.md §15).

The domain apps send signals and never import the bus for them; ``live.apps`` connects these.
Every signal here is sent after the transaction that wrote its rows has committed.
"""

from datetime import datetime

from django.conf import settings

from live import bus


def telemetry_event(device, messages, received_at: datetime) -> dict:
    """The ``telemetry`` event of one device for one ingest batch: the newest value of each metric."""
    values: dict[str, tuple[datetime, float]] = {}
    newest = None
    for message in messages:
        newest = message.ts if newest is None or message.ts > newest else newest
        for name, value in message.values.items():
            if name not in values or values[name][0] < message.ts:
                values[name] = (message.ts, value)
    return {
        "kind": "telemetry",
        "plant_id": device.plant_id,
        "device_id": device.pk,
        "ts": bus.iso(newest),
        "values": {name: {"ts": bus.iso(ts), "value": value} for name, (ts, value) in sorted(values.items())},
        "state": device.state,
        "state_since": bus.iso(device.state_since),
        "online": True,
        "last_seen_at": bus.iso(received_at),
    }


def on_telemetry_ingested(sender, *, items, received_at, **kwargs) -> None:
    """``devices.signals.telemetry_ingested``: one ``telemetry`` event per device of the batch."""
    events = []
    for item in items:
        device = item.device
        events.append((device.plant_id, device.pk, telemetry_event(device, item.messages, received_at)))
    bus.publish_many(events)


def on_device_status_changed(sender, *, device_ids, online, at, **kwargs) -> None:
    """``devices.signals.device_status_changed``: one ``status`` event per device that went on/offline."""
    from devices.models import Device

    plants = dict(Device.objects.filter(pk__in=device_ids).values_list("pk", "plant_id"))
    events = []
    for pk in device_ids:
        if pk in plants:
            event = {"kind": "status", "plant_id": plants[pk], "device_id": pk, "online": online, "at": bus.iso(at)}
            events.append((plants[pk], pk, event))
    bus.publish_many(events)


def on_alarm_changed(sender, *, alarm, at, **kwargs) -> None:
    """``alerts.signals.alarm_changed``: the ``alarm`` event of every alarm transition."""
    from alerts.events import alarm_event

    bus.publish(plant_id=alarm.plant_id, device_id=alarm.device_id, event=alarm_event(alarm, at))


def on_rollout_progressed(sender, *, rollout_id, **kwargs) -> None:
    """``firmware.signals.rollout_progressed``: the rollout's ``rollout`` snapshot, throttled.

    A 5,000-device stage reports thousands of statuses a second and the browser needs a few
    pictures a second: at most one snapshot per ``FIRMWARE_LIVE_INTERVAL`` seconds per rollout and
    process, the last one taken after the last change.
    """
    from firmware.events import rollout_live_events

    interval = getattr(settings, "FIRMWARE_LIVE_INTERVAL", 0.5)
    bus.throttle(("rollout", rollout_id), interval=interval, build=lambda: rollout_live_events(rollout_id))
