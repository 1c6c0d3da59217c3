"""Operator dashboard pages: plant overview, device detail and alarm console (session login).

The pages render the current state server-side (fast first paint, usable without JavaScript);
``static/js/`` then subscribes to ``/ws/live/`` and loads history from the REST API. Every page
scopes through ``accounts.selectors``: a plant or device outside the user's plants is 404.
"""

from datetime import timedelta

from django.contrib.auth.decorators import login_required
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, render
from django.utils import timezone

from accounts.roles import PERM_OPERATE
from accounts.selectors import plant_list_for, scope_to_plants, user_has_plant_perm
from devices.models import Device
from devices.selectors import latest_values, state_timeline
from live.frames import COALESCE_SECONDS

# The metric a tile shows (and draws as a sparkline): the first one the device reports.
KEY_METRICS = ("temperature", "power", "vibration", "humidity", "cpu_load", "count_total")
STATES = ("running", "idle", "setup", "down", "planned_stop", "offline")
TIMELINE_SPAN = timedelta(hours=24)
RANGES = (("15m", "15 min"), ("1h", "1 h"), ("8h", "8 h"), ("24h", "24 h"), ("7d", "7 days"), ("30d", "30 days"))


def key_metric(values: dict) -> str | None:
    for name in KEY_METRICS:
        if name in values:
            return name
    return min(values) if values else None


def _int_param(request, name: str) -> int | None:
    try:
        value = int(request.GET.get(name, ""))
    except ValueError:
        return None
    return value if 0 < value < 2**63 else None


def _plant_nav(request, plant, page: str) -> dict:
    return {
        "plant": plant,
        "plants": plant_list_for(request.user).only("pk", "name"),
        "page": page,
        "can_operate": user_has_plant_perm(request.user, PERM_OPERATE, plant),
        "coalesce_ms": int(COALESCE_SECONDS * 1000),
    }


def _tile(device: Device, values: dict, now) -> dict:
    metric = key_metric(values)
    state = device.state if device.is_online(now) else "offline"
    return {
        "device": device,
        "state": state or "unknown",
        "state_label": (state or "unknown").replace("_", " "),
        "metric": metric,
        "value": values[metric]["value"] if metric else None,
        "unit": "",
    }


@login_required
def plant_overview(request, plant_id: int):
    """One tile per device of the plant, filtered by ``?line=`` and ``?group=``; 404 outside your plants."""
    plant = get_object_or_404(plant_list_for(request.user), pk=plant_id)
    line_id, group_id = _int_param(request, "line"), _int_param(request, "group")
    devices = Device.objects.filter(plant=plant).select_related("line").order_by("line__position", "line__name", "uid")
    if line_id is not None:
        devices = devices.filter(line_id=line_id)
    if group_id is not None:
        devices = devices.filter(groups__pk=group_id)
    devices = list(devices)
    now = timezone.now()
    values = latest_values([device.pk for device in devices])
    context = {
        **_plant_nav(request, plant, "overview"),
        "tiles": [_tile(device, values[device.pk], now) for device in devices],
        "lines": plant.lines.all(),
        "groups": plant.device_groups.all(),
        "line_id": line_id,
        "group_id": group_id,
        "config": {
            "plant": plant.pk,
            "expected": {d.pk: d.expected_interval_seconds for d in devices},
            "keyMetrics": KEY_METRICS,
        },
    }
    return render(request, "dashboard/overview.html", context)


def _timeline_segments(device: Device, now) -> list[dict]:
    start = now - TIMELINE_SPAN
    changes = state_timeline(device, start, now)
    segments = []
    for index, (ts, state) in enumerate(changes):
        end = changes[index + 1][0] if index + 1 < len(changes) else now
        share = (end - ts) / TIMELINE_SPAN * 100
        segments.append({"state": state, "start": ts, "end": end, "share": round(share, 3)})
    return segments


@login_required
def device_detail(request, device_id: int):
    """Live charts, current values, state timeline and facts of one device; 404 outside your plants."""
    visible = scope_to_plants(Device.objects.select_related("plant", "line"), request.user)
    device = get_object_or_404(visible, pk=device_id)
    now = timezone.now()
    values = latest_values([device.pk])[device.pk]
    context = {
        **_plant_nav(request, device.plant, "device"),
        "device": device,
        "online": device.is_online(now),
        "values": sorted(values.items()),
        "tokens": device.tokens.order_by("-created_at")[:20],
        "groups": device.groups.all(),
        "siblings": Device.objects.filter(plant=device.plant_id).only("pk", "uid", "name").order_by("uid"),
        "segments": _timeline_segments(device, now),
        "timeline_start": now - TIMELINE_SPAN,
        "ranges": RANGES,
        "config": {
            "plant": device.plant_id,
            "device": device.pk,
            "metrics": sorted(values),
            "expected": device.expected_interval_seconds,
        },
    }
    return render(request, "dashboard/device.html", context)


@login_required
def alarm_console(request, plant_id: int):
    """The plant's alarms: loaded from ``/api/v1/alarms/`` when that API exists, then live."""
    plant = get_object_or_404(plant_list_for(request.user), pk=plant_id)
    devices = dict(Device.objects.filter(plant=plant).values_list("pk", "uid"))
    context = {
        **_plant_nav(request, plant, "alarms"),
        "config": {"plant": plant.pk, "devices": devices},
    }
    return render(request, "dashboard/alarms.html", context)


@login_required
def rollout_board(request, plant_id: int):
    """The plant's firmware rollouts with per-stage progress, failing devices and audit trail, then
    live (``rollout`` events). ``Accept: application/json`` answers the snapshots (the page's
    catch-up after a reconnect); 404 outside your plants."""
    from firmware.events import rollout_snapshots

    plant = get_object_or_404(plant_list_for(request.user), pk=plant_id)
    snapshots = rollout_snapshots(plant)
    if "application/json" in request.headers.get("Accept", ""):
        return JsonResponse({"rollouts": snapshots})
    context = {**_plant_nav(request, plant, "rollouts"), "rollouts": snapshots, "config": {"plant": plant.pk}}
    return render(request, "dashboard/rollouts.html", context)
