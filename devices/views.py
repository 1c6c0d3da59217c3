"""The devices' pages: plant overview (header and tiles) and device detail (session login).

The pages render the current state server-side (fast first paint, usable without JavaScript);
``static/devices/`` then subscribes to ``/ws/live/`` and loads history from the REST API. Every
page scopes through ``accounts.selectors``: a plant or device outside the user's plants is 404.
"""

from datetime import timedelta

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone

from accounts.roles import PERM_MANAGE
from accounts.selectors import plant_list_for, scope_to_plants, user_has_plant_perm
from alerts.selectors import alarm_counts_for, device_open_alarms, device_thresholds
from alerts.views import ALARM_STATE_WORDS
from analytics.selectors import machine_now, reason_labels, shift_current, shift_next
from commands.selectors import command_card
from devices.formats import format_number
from devices.models import Device, ProvisioningRequest
from devices.selectors import (
    latest_values,
    plant_devices_shown,
    plant_state_counts,
    provisioning_pending_list_for,
    state_timeline,
    tile_state,
)
from devices.services.broker import BrokerError
from devices.services.provisioning import provisioning_request_decide
from factory.pages import int_param, plant_nav

# The metric a tile shows (and draws as a sparkline): the first one the device reports.
KEY_METRICS = ("temperature", "power", "vibration", "humidity", "cpu_load", "count_total")
STATES = ("running", "idle", "setup", "down", "planned_stop", "offline")
STATE_WORDS = {
    "running": "Running",
    "idle": "Idle",
    "setup": "Setup",
    "down": "Down",
    "planned_stop": "Planned stop",
    "offline": "Offline",
    "unknown": "Unknown",
    "nodata": "No data",
}
TIMELINE_SPAN = timedelta(hours=24)
RANGES = (("15m", "15 min"), ("1h", "1 h"), ("8h", "8 h"), ("24h", "24 h"), ("7d", "7 days"), ("30d", "30 days"))


def key_metric(values: dict) -> str | None:
    for name in KEY_METRICS:
        if name in values:
            return name
    return min(values) if values else None


def duration_words(seconds: float) -> str:
    """``45 s``, ``12 min``, ``2 h 5 min``, ``3 d 4 h``: how long a state has lasted (overview.js: same words)."""
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def _since(device: Device, state: str):
    """When the tile's state began: a machine state's ``state_since``; offline: the last message."""
    if state == "offline":
        return device.last_seen_at
    if state in ("online", "unknown"):
        return None
    return device.state_since


def worst_severity(counts: dict | None) -> str:
    """The most severe level among a device's open alarms (``alarm_counts_for`` row), "" when none."""
    return next((s for s in ("critical", "warning", "info") if counts and counts.get(s)), "")


def _tile(device: Device, values: dict, metas: dict, alarms: dict | None, now) -> dict:
    metric = key_metric(values)
    meta = metas.get(metric) or {}
    state = tile_state(device, now)
    since = _since(device, state)
    return {
        "device": device,
        "state": state,
        "state_label": state.replace("_", " "),
        "since": since,
        "since_words": duration_words((now - since).total_seconds()) if since else "",
        "metric": metric,
        "label": meta.get("label") or (metric or "").replace("_", " ").capitalize(),
        "value": format_number(values[metric]["value"], meta.get("precision")) if metric else None,
        "unit": meta.get("unit", ""),
        "alarms": alarms["total"] if alarms else 0,
        "worst": worst_severity(alarms),
    }


def _device_liveness(device: Device) -> dict:
    """What the pages' scripts need to tell online from offline (and a machine from a sensor)."""
    return {
        "kind": device.kind,
        "lastSeen": device.last_seen_at.isoformat() if device.last_seen_at else None,
        "expected": device.expected_interval_seconds,
    }


def _overview_device(device: Device) -> dict:
    """What overview.js needs of each device of the plant to keep the header and tiles live."""
    return {
        **_device_liveness(device),
        "state": device.state,
        "since": device.state_since.isoformat() if device.state_since else None,
    }


def _occurrence(occ) -> dict | None:
    if occ is None:
        return None
    return {"shift": occ.shift_id, "name": occ.name, "start": occ.start.isoformat(), "end": occ.end.isoformat()}


@login_required
def plant_overview(request, plant_id: int):
    """The plant header (machines per state, open alarms per severity, OEE today and this shift, the
    shift and its time left) over every device of the plant, and one tile per device filtered by
    ``?line=`` and ``?group=``; 404 outside your plants."""
    plant = get_object_or_404(plant_list_for(request.user), pk=plant_id)
    line_id, group_id = int_param(request, "line"), int_param(request, "group")
    everything, devices = plant_devices_shown(plant, line_id=line_id, group_id=group_id)
    now = timezone.now()
    values = latest_values([device.pk for device in devices])
    alarms = alarm_counts_for(request.user, [plant.pk], per_device=True).get(plant.pk)
    alarms = alarms or {"critical": 0, "warning": 0, "info": 0, "devices": {}}
    shift, upcoming = shift_current(plant, now), shift_next(plant, now)
    nav = plant_nav(request, plant, "overview")
    metas = nav["formats"]["metrics"]  # the plant's units and precisions (factory.pages.plant_formats)
    context = {
        **nav,
        "tiles": [_tile(device, values[device.pk], metas, alarms["devices"].get(device.pk), now) for device in devices],
        "counts": plant_state_counts(everything, now),
        "alarms": alarms,
        "shift": shift,
        "shift_left": duration_words((shift.end - now).total_seconds()) if shift else "",
        "next_shift": upcoming,
        "has_sensors": any(d.kind != Device.Kind.MACHINE for d in everything),
        "lines": plant.lines.all(),
        "groups": plant.device_groups.all(),
        "line_id": line_id,
        "group_id": group_id,
        "config": {
            "plant": plant.pk,
            "devices": {d.pk: _overview_device(d) for d in everything},
            "shift": _occurrence(shift),
            "nextShift": _occurrence(upcoming),
            "keyMetrics": KEY_METRICS,
        },
    }
    return render(request, "devices/overview.html", context)


def _strip_x(ts, start) -> float:
    return round((ts - start) / TIMELINE_SPAN * 100, 3)


def _state_strip(device: Device, now) -> dict:
    """The 24-hour state strip: segments placed in percent of the span (what is unknown before the
    first state, or after the device went silent, is drawn as such), hour ticks in the plant's zone."""
    start = now - TIMELINE_SPAN
    changes = state_timeline(device, start, now)
    silent_from = None
    if not device.is_online(now) and device.last_seen_at is not None:
        # Offline: the last reported state held until the device was last heard of, not until now.
        silent_from = max(start, device.last_seen_at)
    segments = []
    if not changes or changes[0][0] > start:
        segments.append({"state": "nodata", "start": start, "end": changes[0][0] if changes else silent_from or now})
    for index, (ts, state) in enumerate(changes):
        end = changes[index + 1][0] if index + 1 < len(changes) else now
        if silent_from is not None:
            end = min(end, silent_from)
        if end > ts:
            segments.append({"state": state, "start": ts, "end": end})
    if silent_from is not None and changes:
        segments.append({"state": "offline", "start": max(silent_from, changes[-1][0]), "end": now})
    for segment in segments:
        segment.update(
            x=_strip_x(segment["start"], start),
            width=max(_strip_x(segment["end"], start) - _strip_x(segment["start"], start), 0.05),
            label=STATE_WORDS.get(segment["state"], segment["state"]),
        )
    tz = device.plant.tz
    local_start = start.astimezone(tz)
    first = local_start.replace(minute=0, second=0, microsecond=0) + timedelta(hours=3 - local_start.hour % 3)
    ticks = []
    at = first.astimezone(start.tzinfo)
    while at < now:
        ticks.append({"x": _strip_x(at, start), "label": at.astimezone(tz).strftime("%H:%M")})
        at += timedelta(hours=3)
    return {
        "segments": segments,
        "ticks": ticks,
        "known": any(s["state"] != "nodata" for s in segments) and bool(changes),
        "legend": [(state, STATE_WORDS[state]) for state in (*STATES, "nodata")],
    }


def _alarm_rows(device: Device, now) -> list[dict]:
    return [
        {"alarm": alarm, "state_label": ALARM_STATE_WORDS[alarm.state][0], "shelved": alarm.is_shelved(now)}
        for alarm in device_open_alarms(device)
    ]


def _device_config(device: Device, thresholds: dict, metrics: list[str], now) -> dict:
    """What ``static/devices/device.js`` needs (the page's JSON config)."""
    return {
        **_device_liveness(device),
        "plant": device.plant_id,
        "device": device.pk,
        "metrics": metrics,
        "tz": device.plant.time_zone,
        "thresholds": thresholds,
        "rawRetentionDays": settings.TELEMETRY_RETENTION_RAW_DAYS,
        "alarmStates": {str(state): words[0] for state, words in ALARM_STATE_WORDS.items()},
        "stateWords": STATE_WORDS,
        "consoleUrl": reverse("alarm_console", args=[device.plant_id]),
        "reasons": reason_labels(device.plant_id),
        "now": now.isoformat(),
    }


@login_required
def device_detail(request, device_id: int):
    """One device: open alarms, what a machine is doing now (and why it stopped), its 24-hour state
    strip, current values, charts with alert thresholds, CSV export, facts; 404 outside your plants.
    Sensors and gateways get no machine sections (state, stops, strip)."""
    visible = scope_to_plants(Device.objects.select_related("plant", "line"), request.user)
    device = get_object_or_404(visible, pk=device_id)
    now = timezone.now()
    values = latest_values([device.pk])[device.pk]
    machine = device.kind == Device.Kind.MACHINE
    thresholds = device_thresholds(device)
    nav = plant_nav(request, device.plant, "device")
    meta = nav["formats"]["metrics"]  # every metric the plant's devices report or its rules watch
    context = {
        **nav,
        "device": device,
        "machine": machine,
        "online": device.is_online(now),
        "now_state": machine_now(device, now) if machine else None,
        "alarms": _alarm_rows(device, now),
        "values": [(name, reading, meta.get(name)) for name, reading in sorted(values.items())],
        "charts": [(name, meta.get(name), thresholds.get(name, [])) for name in sorted(values)],
        "tokens": device.tokens.order_by("-created_at")[:20],
        "groups": device.groups.all(),
        "siblings": Device.objects.filter(plant=device.plant_id).only("pk", "uid", "name").order_by("uid"),
        "strip": _state_strip(device, now) if machine else None,
        "tz": device.plant.tz,
        "ranges": RANGES,
        "config": _device_config(device, thresholds, sorted(values), now),
        "commands": command_card(device, request.user),
    }
    return render(request, "devices/device.html", context)


def _managed_plant(request, plant_id: int):
    """The plant, if the user administers it: 404 outside their plants, 403 for its viewers and operators."""
    plant = get_object_or_404(plant_list_for(request.user), pk=plant_id)
    if not user_has_plant_perm(request.user, PERM_MANAGE, plant):
        raise PermissionDenied("Only the plant's admins approve devices.")
    return plant


@login_required
def provisioning_approvals(request, plant_id: int):
    """Devices waiting for approval (pending provisioning requests of the plant), oldest first, each
    with Approve and Reject; for plant admins only (403 to the plant's other roles, 404 outside your
    plants). ``?part=list`` answers the list alone (approvals.js reloads it on a live event)."""
    plant = _managed_plant(request, plant_id)
    pending = list(provisioning_pending_list_for(request.user, plant))
    if request.GET.get("part") == "list":
        return render(request, "devices/approvals_list.html", {"plant": plant, "pending": pending})
    context = {**plant_nav(request, plant, "approvals"), "pending": pending, "config": {"plant": plant.pk}}
    return render(request, "devices/approvals.html", context)


@login_required
def provisioning_decide(request, plant_id: int, request_id: int, approve: bool):
    """POST: approve or reject one waiting device of the plant (``provisioning_request_decide``, as
    the API and the admin do), then back to the list with a message saying what happened."""
    if request.method != "POST":
        return redirect("provisioning_approvals", plant_id)
    plant = _managed_plant(request, plant_id)
    waiting = get_object_or_404(ProvisioningRequest.objects.filter(key__plant=plant), pk=request_id)
    try:
        provisioning_request_decide(request=waiting, approve=approve, by=request.user)
    except ValidationError as exc:
        messages.error(request, f"{waiting.uid}: {' '.join(exc.messages)}")
    except BrokerError as exc:
        messages.error(request, f"{waiting.uid}: the MQTT broker refused the change ({exc}); try again.")
    else:
        done = "approved: it receives its token on its next provisioning call" if approve else "rejected"
        messages.success(request, f"Device {waiting.uid} {done}.")
    return redirect("provisioning_approvals", plant.pk)
