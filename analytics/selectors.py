"""OEE reads: the scoped target (device, line or plant), its telemetry, and the per-period figures.

Everything is computed from stored telemetry at read time. Queries per call: the calendar (2),
states (1 + one "state before the window" per machine), counters (1 + one baseline per machine
and counter), cycle times (1), stop classifications (1) and runs with their changeovers (1).
"""

import bisect
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from decimal import Decimal

from django.conf import settings
from django.db.models import OuterRef, Q, Subquery
from django.utils import timezone

from accounts.roles import PERM_VIEW
from accounts.selectors import scope_to_plants
from analytics.cache import closed_days, day_inputs
from analytics.calendar import Occurrence, calendar_periods, clip, local, occurrences
from analytics.models import IdealCycleTime, NonProductionDay, ReasonCode, Shift, StopReason
from analytics.oee import Inputs, figures
from analytics.timeline import MachineData, PeriodSpec, machine_inputs, stop_category
from devices.models import Device, MachineState, Metric, Plant, TelemetryReading
from production.models import Run

GROUP_BY = ("hour", "shift", "day", "week")
MAX_RANGE = {
    "hour": timedelta(days=31),
    "shift": timedelta(days=92),
    "day": timedelta(days=366),
    "week": timedelta(days=1098),
}


class OEEQueryError(ValueError):
    """The query cannot be answered as asked; ``field`` names the parameter to change."""

    def __init__(self, message: str, field: str):
        super().__init__(message)
        self.field = field


@dataclass(slots=True)
class Target:
    plant: Plant
    devices: list[Device]
    kind: str
    id: int


def oee_target_get_for(user, *, device: int | None = None, line: int | None = None, plant: int | None = None) -> Target:
    """The machines a query is about, scoped to ``user``'s plants. Raises ``Device.DoesNotExist`` etc. (404)."""
    machines = Device.objects.filter(kind=Device.Kind.MACHINE).select_related("plant").order_by("uid")
    if device is not None:
        found = scope_to_plants(Device.objects.select_related("plant"), user, PERM_VIEW).get(pk=device)
        return Target(found.plant, [found], "device", found.pk)
    if line is not None:
        from devices.models import Line

        found = scope_to_plants(Line.objects.select_related("plant"), user, PERM_VIEW).get(pk=line)
        return Target(found.plant, list(machines.filter(line=found)), "line", found.pk)
    found = scope_to_plants(Plant.objects.all(), user, PERM_VIEW, "").get(pk=plant)
    return Target(found, list(machines.filter(plant=found)), "plant", found.pk)


def shift_occurrences(plant: Plant, start: datetime, end: datetime) -> list[Occurrence]:
    """The plant's shift occurrences intersecting ``[start, end)``, by start; none starts on a
    non-production day (``analytics.calendar.occurrences`` on its calendar). 3 queries (shifts, breaks, days)."""
    shifts = Shift.objects.filter(plant=plant).prefetch_related("breaks")
    closed = set(NonProductionDay.objects.filter(plant=plant).values_list("date", flat=True))
    return occurrences(shifts, start, end, plant.tz, closed)


def period_specs(plant: Plant, start: datetime, end: datetime, group_by: str) -> list[PeriodSpec]:
    """The periods of ``[start, end)`` with their planned intervals and piece windows (2 queries)."""
    tz = plant.tz
    occs = shift_occurrences(plant, start, end)
    if group_by == "shift":
        specs = []
        for o in occs:
            span = clip([(o.start, o.end)], start, end)
            specs.append(PeriodSpec(span[0][0], span[0][1], clip(o.planned(), start, end), span))
        return specs
    specs = []
    for p_start, p_end in calendar_periods(start, end, group_by, tz):
        spec = PeriodSpec(p_start, p_end, [])
        for o in occs:
            spec.planned += clip(o.planned(), p_start, p_end)
            spec.count_windows += clip([(o.start, o.end)], p_start, p_end)
        specs.append(spec)
    return specs


def shift_current(plant: Plant, now: datetime) -> Occurrence | None:
    """The shift occurrence running at ``now`` (the earliest started, if shifts overlap), or None.

    Non-production days start no occurrence; a night shift begun yesterday still runs. 2 queries.
    """
    running = shift_occurrences(plant, now, now + timedelta(seconds=1))
    return running[0] if running else None


def shift_next(plant: Plant, now: datetime, within: timedelta = timedelta(days=8)) -> Occurrence | None:
    """The first shift occurrence starting after ``now`` (within ``within``), or None. 2 queries."""
    later = shift_occurrences(plant, now, now + within)
    return next((o for o in later if o.start > now), None)


def _counter_rows(device_ids: list[int], metric: Metric | None, start: datetime, end: datetime) -> dict[int, list]:
    """Readings in ``(start, end]`` per device, each preceded by its last reading at or before ``start``."""
    rows: dict[int, list] = {pk: [] for pk in device_ids}
    if metric is None:
        return rows
    for pk in device_ids:
        base = (
            TelemetryReading.objects.filter(device_id=pk, metric=metric, ts__lte=start)
            .order_by("-ts")
            .values_list("ts", "value")[:1]
        )
        rows[pk].extend(base)
    inside = TelemetryReading.objects.filter(device_id__in=device_ids, metric=metric, ts__gt=start, ts__lte=end)
    for pk, ts, value in inside.order_by("device_id", "ts").values_list("device_id", "ts", "value"):
        rows[pk].append((ts, value))
    return rows


def _state_rows(device_ids: list[int], start: datetime, end: datetime) -> dict[int, list]:
    """Collapsed state changes per device: the one in force at ``start`` (real ts) then those in ``[start, end)``."""
    rows: dict[int, list] = {}
    for pk in device_ids:
        before = MachineState.objects.filter(device_id=pk, ts__lt=start).order_by("-ts").values_list("ts", "state")[:1]
        rows[pk] = list(before)
    inside = MachineState.objects.filter(device_id__in=device_ids, ts__gte=start, ts__lt=end)
    for pk, ts, state in inside.order_by("device_id", "ts").values_list("device_id", "ts", "state"):
        if not rows[pk] or rows[pk][-1][1] != state:
            rows[pk].append((ts, state))
    return rows


def _run_rows(device_ids: list[int], start: datetime, end: datetime) -> tuple[dict[int, list], dict[int, list]]:
    """Per device, its runs overlapping ``[start, end)`` and their changeovers (one query).

    A changeover lasts from the run's start until the machine's first ``running`` state after it
    (none when the machine was running at the start), and at most until the run's or the window's end.
    """
    states = MachineState.objects.filter(device_id=OuterRef("device_id"))
    rows = (
        Run.objects.filter(Q(end__isnull=True) | Q(end__gt=start), device_id__in=device_ids, start__lt=end)
        .annotate(
            state_at_start=Subquery(states.filter(ts__lte=OuterRef("start")).order_by("-ts").values("state")[:1]),
            first_running=Subquery(
                states.filter(ts__gt=OuterRef("start"), ts__lt=end, state="running").order_by("ts").values("ts")[:1]
            ),
        )
        .order_by("device_id", "start")
        .values_list("device_id", "start", "end", "ideal_cycle_time", "state_at_start", "first_running")
    )
    runs: dict[int, list] = {pk: [] for pk in device_ids}
    changeovers: dict[int, list] = {pk: [] for pk in device_ids}
    for pk, run_start, run_end, per_piece, at_start, first_running in rows:
        runs[pk].append((run_start, run_end, per_piece))
        if at_start != "running":
            co_end = min(t for t in (first_running, run_end, end) if t is not None)
            if co_end > run_start:
                changeovers[pk].append((run_start, co_end))
    return runs, changeovers


def machine_data(devices: list[Device], start: datetime, end: datetime) -> dict[int, MachineData]:
    """Load what ``machine_inputs`` needs for ``devices`` over ``[start, end)``."""
    ids = [d.pk for d in devices]
    metrics = {m.name: m for m in Metric.objects.filter(name__in=("count_total", "count_good"))}
    totals = _counter_rows(ids, metrics.get("count_total"), start, end)
    goods = _counter_rows(ids, metrics.get("count_good"), start, end)
    states = _state_rows(ids, start, end)
    cycle: dict[int, list] = {pk: [] for pk in ids}
    for pk, valid_from, secs in (
        IdealCycleTime.objects.filter(device_id__in=ids)
        .order_by("valid_from")
        .values_list("device_id", "valid_from", "seconds")
    ):
        cycle[pk].append((valid_from, secs))
    reasons: dict[int, dict] = {pk: {} for pk in ids}
    classified = StopReason.objects.filter(Q(device_id__in=ids), start__lt=end).values_list(
        "device_id", "start", "reason__category"
    )
    for pk, at, category in classified:
        reasons[pk][at] = category
    runs, changeovers = _run_rows(ids, start, end)
    return {
        d.pk: MachineData(
            states=states[d.pk],
            window_end=end,
            total=totals[d.pk],
            good=goods[d.pk],
            cycle_times=cycle[d.pk],
            default_cycle_time=d.ideal_cycle_time if d.ideal_cycle_time is not None else Decimal(0),
            stop_categories=reasons[d.pk],
            runs=runs[d.pk],
            changeovers=changeovers[d.pk],
        )
        for d in devices
    }


def _machine_periods(target: Target, start: datetime, end: datetime, group_by: str, minor: int):
    """``(periods, {device_id: [Inputs per period]})``. Days and weeks sum stored closed days
    (``analytics.cache``) and compute only partial days at the edges from telemetry."""
    devices = target.devices
    if group_by in ("hour", "shift"):
        specs = period_specs(target.plant, start, end, group_by)
        data = machine_data(devices, start, end)
        per = {pk: machine_inputs(specs, d, minor_stop_seconds=minor) for pk, d in data.items()}
        return [(spec.start, spec.end) for spec in specs], per
    tz = target.plant.tz
    periods = calendar_periods(start, end, group_by, tz)
    starts = [a for a, _ in periods]
    per = {d.pk: [Inputs() for _ in periods] for d in devices}

    def add(pk: int, at: datetime, inputs: Inputs) -> None:
        per[pk][bisect.bisect_right(starts, at) - 1].add(inputs)

    days, first_midnight, last_midnight = closed_days(start, end, tz)
    edges = [(start, first_midnight), (last_midnight, end)] if days else [(start, end)]
    for a, b in edges:
        if a >= b or not devices:
            continue
        specs = period_specs(target.plant, a, b, group_by)
        for pk, data in machine_data(devices, a, b).items():
            for spec, inputs in zip(specs, machine_inputs(specs, data, minor_stop_seconds=minor), strict=True):
                add(pk, spec.start, inputs)
    for (pk, day), inputs in day_inputs(target.plant, devices, days, minor).items():
        add(pk, local(day, time(), tz), inputs)
    return periods, per


def _summed(rows: list[Inputs]) -> Inputs:
    total = Inputs()
    for inputs in rows:
        total.add(inputs)
    return total


def oee_compute(target: Target, start: datetime, end: datetime, group_by: str, *, per_device: bool = False) -> dict:
    """The OEE API body for ``target`` over ``[start, end)`` grouped by ``group_by``.

    ``{"start", "end", "group_by", "periods": [...], "total": {...}}`` (plus ``devices``, each
    machine's total, with ``per_device``). Line and plant figures come from summed inputs.
    ``end`` is capped at now (the future is not a data gap). Raises ``OEEQueryError``. Read-only.
    """
    if group_by not in GROUP_BY:
        raise OEEQueryError(f"Unknown group_by {group_by!r}; use one of {', '.join(GROUP_BY)}.", "group_by")
    end = min(end, timezone.now())
    if end <= start:
        raise OEEQueryError("end must be after start (and start in the past).", "end")
    if end - start > MAX_RANGE[group_by]:
        raise OEEQueryError(
            f"group_by={group_by} covers at most {MAX_RANGE[group_by].days} days; "
            "shorten the range or group by a longer period (day or week).",
            "group_by",
        )
    periods, per_machine = _machine_periods(target, start, end, group_by, settings.OEE_MINOR_STOP_SECONDS)
    sums = [Inputs() for _ in periods]
    for rows in per_machine.values():
        for n, inputs in enumerate(rows):
            sums[n].add(inputs)
    # Calendar time (TEEP's base) is summed per machine-period, like planned time.
    body_periods = [{"start": a, "end": b, **figures(inputs)} for (a, b), inputs in zip(periods, sums, strict=True)]
    total = Inputs()
    for inputs in sums:
        total.add(inputs)
    body = {"start": start, "end": end, "group_by": group_by, "periods": body_periods, "total": figures(total)}
    if per_device:
        body["devices"] = [
            {"device": d.pk, "uid": d.uid, "name": d.name, **figures(_summed(per_machine[d.pk]))}
            for d in target.devices
        ]
    return body


def stop_list(device: Device, start: datetime, end: datetime) -> list[dict]:
    """The machine's stops (down/idle/setup/offline episodes) overlapping ``[start, end)``, oldest first.

    Each: ``device``, ``start`` (the stop's key for classification), ``end`` (None while it lasts),
    ``state``, ``planned_seconds`` inside planned production time, ``reason`` and loss ``category``
    (the reason's, else automatic as in the OEE losses). Read-only.
    """
    end = min(end, timezone.now())
    data = machine_data([device], start, end)[device.pk]
    planned = [iv for spec in period_specs(device.plant, start, end, "day") for iv in spec.planned]
    reasons = dict(StopReason.objects.filter(device=device, start__lt=end).values_list("start", "reason_id"))
    stops = []
    for index, (ts, state) in enumerate(data.states):
        if state not in ("down", "idle", "setup", "offline"):
            continue
        nxt = data.states[index + 1][0] if index + 1 < len(data.states) else None
        a, b = max(ts, start), nxt or end
        overlap = sum(((min(y, b) - max(x, a)) for x, y in planned if x < b and y > a), timedelta())
        stops.append(
            {
                "device": device.pk,
                "start": ts,
                "end": nxt,
                "state": state,
                "planned_seconds": overlap.total_seconds(),
                "reason": reasons.get(ts),
                "category": stop_category(data, index, state, settings.OEE_MINOR_STOP_SECONDS * 1_000_000),
            }
        )
    return stops


def machine_now(device: Device, now: datetime) -> dict:
    """What a machine is doing now, for its page: ``{"state", "since", "stop", "reason"}``.

    ``state`` is ``offline`` (``since`` = last seen, None if never) when the machine has not been
    heard from within three expected intervals, else its reported state since ``state_since``.
    ``stop`` says whether that is a stop (down, idle, setup, offline); ``reason`` is the operator's
    classification of the stop that began at ``since`` (``{"id", "code", "name", "category",
    "note"}``), None while unclassified. Read-only, at most one query.
    """
    if not device.is_online(now):
        return {"state": "offline", "since": device.last_seen_at, "stop": True, "reason": None}
    state = device.state or ""
    stop = state in ("down", "idle", "setup", "offline")
    reason = None
    if stop and device.state_since is not None:
        row = StopReason.objects.filter(device=device, start=device.state_since).select_related("reason").first()
        if row is not None:
            reason = {
                "id": row.reason_id,
                "code": row.reason.code,
                "name": row.reason.name,
                "category": row.reason.get_category_display(),
                "note": row.note,
            }
    return {"state": state or "unknown", "since": device.state_since, "stop": stop, "reason": reason}


def reason_labels(plant_id: int) -> dict[int, str]:
    """The plant's stop reason codes as pages name them: ``{id: "Name (category)"}``."""
    return {
        code.pk: f"{code.name} ({code.get_category_display()})" for code in ReasonCode.objects.filter(plant=plant_id)
    }
