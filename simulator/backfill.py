"""Thirty days of believable plant history before today, written directly (``seed_demo --history``).

The OEE page's 30-day trend and its loss Pareto read closed days from what a plant records:
machine states (``MachineState``) and piece counters (raw ``TelemetryReading`` rows), per day
stored once in ``OEEDayCache`` (``analytics.cache``); charts of 7 and 30 days read 1-hour
rollups, the 24-hour chart 1-minute rollups. Without history every past day is a data gap
("Unclassified") and the trend sits at 0 %. Playing a month through the ingest, one message a
minute per device, would store millions of rows and take minutes, so this module writes what
those readers read, and nothing else:

- machines: a state timeline along the shift calendar (running, minor stops, waiting for
  material, changeovers, breakdowns with their repairs, ``planned_stop`` in breaks and between
  shifts), with the stops classified by reason code as operators would (most, not all); piece
  counters every 15 minutes and at each state change (every minute on the last day), made at the
  machine's ideal cycle time slowed by a per-day factor, with rejects (more after a restart);
- every device: 1-hour rollups of its metrics for the whole window, 1-minute rollups for its last
  day (the 24-hour chart). No raw analog readings: the charts that read raw (an hour or less) show
  today, which ``simulator.history.history_fill`` plays through the ingest.

Then the OEE days of the window are computed and stored (``day_inputs``), so they survive raw
retention. Deterministic for a given ``seed`` and ``now`` (one ``random.Random`` per device, seeded
from its uid); idempotent: a device gets history only before its first recorded data, so a second
run writes nothing. Nothing is sent on the live bus, no alarm is evaluated: this is the past.
"""

import bisect
import logging
import math
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Min

from devices.models import (
    Device,
    MachineState,
    Plant,
    TelemetryReading,
    TelemetryRollup1h,
    TelemetryRollup1m,
)
from devices.services.ingest import metric_ids
from devices.services.rollups import rollup_aggregate
from simulator.history import _planned
from simulator.machine import sensor_profile

logger = logging.getLogger("simulator")

DAYS = 30
COUNTER_STEP = timedelta(minutes=15)  # piece counters between state changes (the OEE reads them)
MINUTE_WINDOW = timedelta(days=1)  # the last day gets 1-minute rollups and counters every minute
MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)
BATCH = 2000

# Stops after a running spell: (kind, probability, state). Durations in ``_stop_seconds``.
STOPS = (("jam", 0.6, "idle"), ("material", 0.2, "idle"), ("changeover", 0.14, "setup"), ("breakdown", 0.06, "down"))
REASON_OF = {"breakdown": "breakdown", "changeover": "tool-change", "material": "material"}  # analytics/demo.py codes
RUN_MEAN = 50 * 60.0  # seconds of running between stops, on an average day
METRICS = {
    "machine": ("temperature", "vibration", "power", "count_total", "count_good"),
    "climate": ("temperature", "humidity"),
    "vibration": ("vibration",),
    "power": ("power",),
    "gateway": ("cpu_load", "memory_used", "rssi"),
}


@dataclass
class Past:
    """One device's generated history: rows to write, and the machine's stops to classify."""

    states: list[tuple[datetime, str]] = field(default_factory=list)
    counters: list[tuple[datetime, int, int]] = field(default_factory=list)  # (ts, total, good)
    stops: list[tuple[datetime, str]] = field(default_factory=list)  # (start, kind)
    hours: dict[tuple[str, datetime], tuple] = field(default_factory=dict)  # (metric, bucket) -> aggregate
    minutes: dict[tuple[str, datetime], tuple] = field(default_factory=dict)


def history_backfill(*, plant: Plant, now: datetime, days: int = DAYS, seed: int = 7) -> dict[str, int]:
    """Write ``days`` days of history before the plant's local midnight today for each enabled device
    of ``plant`` that has no data that old; return the row counts written per kind."""
    from analytics.cache import closed_days, day_cache_invalidate, day_inputs
    from analytics.models import ReasonCode, StopReason

    tz = plant.tz
    today = datetime.combine(now.astimezone(tz).date(), time(), tz).astimezone(UTC)
    start = datetime.combine(now.astimezone(tz).date() - timedelta(days=days), time(), tz).astimezone(UTC)
    devices = list(Device.objects.filter(plant=plant, enabled=True).order_by("pk"))
    firsts = _first_data([d.pk for d in devices])
    planned = _planned(plant, start, today)
    reasons = dict(ReasonCode.objects.filter(plant=plant).values_list("code", "pk"))
    written = {"states": 0, "readings": 0, "rollups_1m": 0, "rollups_1h": 0, "stop_reasons": 0}
    filled = []
    with transaction.atomic():
        for device in devices:
            end = today if firsts.get(device.pk) is None else min(today, _floor(firsts[device.pk], HOUR))
            if end - start < HOUR:
                continue  # it has history already (a second run, or a plant that ran for weeks)
            rng = random.Random(f"{seed}:{device.uid}")  # noqa: S311 (behaviour, not secrets)
            past = _generate(rng, device, start, end, planned, tz)
            written = _write(device, past, end, reasons, written, rng, StopReason)
            if device.kind == Device.Kind.MACHINE:
                filled.append(device)
        if filled:
            # Days stored before (a plant page opened on an empty demo) are recomputed from the new rows.
            day_cache_invalidate(device_ids=[d.pk for d in filled], since=start.astimezone(tz).date())
            days_closed, _, _ = closed_days(start, today, tz)
            day_inputs(plant, filled, days_closed, settings.OEE_MINOR_STOP_SECONDS)
    if any(written.values()):
        logger.info("Demo history: %s for '%s' since %s.", written, plant.name, start.isoformat())
    return written


def _first_data(ids: list[int]) -> dict[int, datetime]:
    """Each device's oldest state, reading or hourly rollup (None: nothing recorded yet)."""
    firsts: dict[int, datetime] = {}
    for model, column in ((MachineState, "ts"), (TelemetryReading, "ts"), (TelemetryRollup1h, "bucket")):
        rows = model.objects.filter(device_id__in=ids).values("device_id").annotate(first=Min(column))
        for row in rows.values_list("device_id", "first"):
            if row[0] not in firsts or row[1] < firsts[row[0]]:
                firsts[row[0]] = row[1]
    return firsts


def _floor(ts: datetime, step: timedelta) -> datetime:
    epoch = datetime(2000, 1, 1, tzinfo=UTC)
    return ts - (ts - epoch) % step


# --- generation (pure: rng and calendar in, rows out) -------------------------------------------------


def _generate(rng: random.Random, device: Device, start: datetime, end: datetime, planned, tz) -> Past:
    past = Past()
    intervals = [(max(a, start), min(b, end)) for a, b in (planned or [(start, end)]) if a < end and b > start]
    if device.kind == Device.Kind.MACHINE:
        _machine_timeline(rng, float(device.ideal_cycle_time or 1), start, end, intervals, tz, past)
        profile = "machine"
    elif device.kind == Device.Kind.SENSOR:
        profile = sensor_profile(device.uid, device.name, device.model)
    else:
        profile = "gateway"
    _analog(rng, profile, start, end, intervals, past)
    _counter_rollups(past, end)
    return past


def _machine_timeline(rng, cycle: float, start: datetime, end: datetime, intervals, tz, past: Past) -> None:
    """States, stops and piece counters along the planned intervals (shift time minus breaks)."""
    states, changes = past.states, []  # changes: (ts, total, good) at every state change
    total = rng.randint(200_000, 2_000_000)
    good = total - int(total * 0.02)
    slowness = rng.uniform(1.06, 1.2)  # this machine runs a little below its ideal rate
    base_reject = rng.uniform(0.01, 0.03)
    condition: dict = {}  # plant-local day -> how rough that day is for this machine (1 = average)

    def day_factor(ts: datetime) -> float:
        day = ts.astimezone(tz).date()
        if day not in condition:
            condition[day] = min(2.5, rng.lognormvariate(0.0, 0.35))
        return condition[day]

    def enter(ts: datetime, state: str) -> bool:
        """Record a state change at ``ts`` (with the counters then); False when it is the current state."""
        if states and states[-1][1] == state:
            return False
        states.append((ts, state))
        changes.append((ts, total, good))
        return True

    repair_left = 0.0
    warm_up = 0.0  # seconds of running with more rejects (after a changeover or a repair)
    cursor = start
    for a, b in intervals:
        if cursor < a:  # a break or the time between shifts: planned_stop, unless a repair goes on
            if repair_left > (a - cursor).total_seconds():
                enter(cursor, "down")
                repair_left -= (a - cursor).total_seconds()
            else:
                if repair_left > 0:
                    enter(cursor, "down")
                    cursor += timedelta(seconds=round(repair_left))
                    repair_left = 0.0
                enter(min(cursor, a), "planned_stop")
            cursor = a
        bad = day_factor(a)
        if repair_left <= 0 and rng.random() < 0.2:  # back from a break or a new shift: a changeover first
            length = min((b - a).total_seconds(), round(rng.gammavariate(2.0, 8 * 60.0 / 2)))
            if enter(a, "setup"):
                past.stops.append((a, "changeover"))
            cursor, warm_up = a + timedelta(seconds=length), 600.0
        while cursor < b:
            if repair_left > 0:
                length = min(repair_left, (b - cursor).total_seconds())
                enter(cursor, "down")
                repair_left -= length
                cursor += timedelta(seconds=length)
                warm_up = 600.0
                continue
            length = min((b - cursor).total_seconds(), max(60.0, round(rng.gammavariate(2.0, RUN_MEAN / bad / 2))))
            enter(cursor, "running")
            pieces_rate = 1.0 / (cycle * slowness * (1.0 + 0.04 * (bad - 1.0)))
            made = int(length * pieces_rate + rng.random())
            hot = min(length, warm_up)
            rejects = _binomial(rng, int(made * hot / length), min(0.5, base_reject * 5))
            rejects += _binomial(rng, made - int(made * hot / length), base_reject * (0.7 + 0.3 * bad))
            warm_up -= hot
            total, good = total + made, good + made - rejects
            cursor += timedelta(seconds=length)
            if cursor >= b:
                break
            kind, state = _pick(rng)
            seconds = _stop_seconds(rng, kind, bad)
            if enter(cursor, state) and kind != "jam":
                past.stops.append((cursor, kind))
            if kind == "breakdown":
                repair_left = seconds
                continue
            seconds = min(seconds, (b - cursor).total_seconds())
            cursor += timedelta(seconds=seconds)
            if kind == "changeover":
                warm_up = 600.0
    if cursor < end:
        enter(cursor, "down" if repair_left > 0 else "planned_stop")
    changes.append((end, total, good))
    past.counters = _counter_readings(states, changes, start, end)


def _pick(rng) -> tuple[str, str]:
    draw = rng.random()
    for kind, probability, state in STOPS:
        if draw < probability:
            return kind, state
        draw -= probability
    return STOPS[-1][0], STOPS[-1][2]


def _stop_seconds(rng, kind: str, bad: float) -> float:
    if kind == "jam":  # a minor stop: shorter than OEE_MINOR_STOP_SECONDS (120 s by default)
        return float(rng.randint(20, 100))
    if kind == "material":
        return round(60 + rng.gammavariate(2.0, 7 * 60.0 * bad / 2))
    if kind == "changeover":
        return round(300 + rng.gammavariate(3.0, 15 * 60.0 / 3))
    if rng.random() < 0.04:  # now and then a long one: waiting for a spare part
        return float(rng.randint(2 * 3600, 5 * 3600))
    return round(300 + rng.gammavariate(1.5, 35 * 60.0 * bad / 1.5))


def _binomial(rng, n: int, p: float) -> int:
    """Rejects among ``n`` pieces: normal approximation (exact enough, and fast for thousands)."""
    if n <= 0 or p <= 0:
        return 0
    mean, sd = n * p, math.sqrt(n * p * (1 - p))
    return max(0, min(n, round(rng.gauss(mean, sd))))


def _counter_readings(states, changes, start: datetime, end: datetime) -> list[tuple[datetime, int, int]]:
    """Counter readings at every state change and on a clock grid (every minute on the last day):
    pieces grow evenly while running, stand still otherwise."""
    grid, ts = [], _floor(start, COUNTER_STEP) + COUNTER_STEP
    fine_from = end - MINUTE_WINDOW
    while ts < end:
        grid.append(ts)
        ts += MINUTE if ts >= fine_from else COUNTER_STEP
    by_ts = {ts: (total, good) for ts, total, good in changes}
    starts = [ts for ts, _, _ in changes]
    running = dict(states)
    for ts in grid:
        if ts in by_ts:
            continue
        k = bisect.bisect_right(starts, ts) - 1
        if k < 0 or k + 1 >= len(changes):
            continue
        (t0, total0, good0), (t1, total1, good1) = changes[k], changes[k + 1]
        if running.get(t0) != "running" or total1 == total0:
            by_ts[ts] = (total0, good0)
            continue
        share = (ts - t0) / (t1 - t0)
        made = int((total1 - total0) * share)
        by_ts[ts] = (total0 + made, good0 + int((good1 - good0) * made / (total1 - total0)))
    return [(ts, total, good) for ts, (total, good) in sorted(by_ts.items()) if start < ts < end]


def _running_share(states, start: datetime, end: datetime, step: timedelta) -> dict[datetime, float]:
    """Share of each ``step`` bucket in ``[start, end)`` the machine was running."""
    shares: dict[datetime, float] = {}
    for index, (ts, state) in enumerate(states):
        if state != "running":
            continue
        until = states[index + 1][0] if index + 1 < len(states) else end
        cursor = max(ts, start)
        while cursor < until:
            bucket = _floor(cursor, step)
            piece_end = min(until, bucket + step)
            shares[bucket] = shares.get(bucket, 0.0) + (piece_end - cursor) / step
            cursor = piece_end
    return shares


def _analog(rng, profile: str, start: datetime, end: datetime, planned, past: Past) -> None:
    """1-hour aggregates of the device's analog metrics over the window, and 1-minute ones on its last day."""
    rated, base_temp, base_vib = rng.uniform(8.0, 30.0), rng.uniform(55.0, 68.0), rng.uniform(0.015, 0.03)
    levels = {"cpu_load": rng.uniform(12, 28), "memory_used": rng.uniform(32, 48), "rssi": rng.uniform(-68, -52),
              "power": rng.uniform(60, 140), "humidity": rng.uniform(38, 52)}  # fmt: skip
    breakdowns = {_floor(ts, HOUR) for ts, kind in past.stops if kind == "breakdown"}
    hour_share = _running_share(past.states, start, end, HOUR) if profile == "machine" else {}
    planned_share = _share_of(planned, start, end, HOUR) if profile != "machine" else {}
    fine_from = max(start, _floor(end - MINUTE_WINDOW, HOUR))
    minute_share = _running_share(past.states, fine_from, end, MINUTE) if profile == "machine" else {}

    def value(metric: str, at: datetime, share: float, activity: float) -> float:
        """The level of ``metric`` at ``at`` for a running share (machines) or plant activity (sensors)."""
        hour = at.hour + at.minute / 60
        ambient = 22.0 + 3.0 * math.sin((hour - 9.0) / 24 * 2 * math.pi)
        if profile == "machine":
            return {
                "temperature": ambient + (base_temp - 22.0) * (0.35 + 0.65 * share),
                "vibration": 0.004 + (base_vib - 0.004) * share,
                "power": rated * (0.12 + 0.88 * share),
            }[metric]
        if metric == "temperature":
            return ambient + 1.5 * activity
        if metric == "vibration":
            return 0.008 + 0.004 * activity
        if metric == "power":
            return levels["power"] * (0.35 + 0.65 * activity)
        if metric == "cpu_load":
            return levels["cpu_load"] + 8 * activity
        return levels[metric]

    metrics = [m for m in METRICS[profile] if not m.startswith("count_")]
    bucket = _floor(start, HOUR)
    while bucket < fine_from:
        share, activity = hour_share.get(bucket, 0.0), planned_share.get(bucket, 0.0)
        for metric in metrics:
            avg = value(metric, bucket + HOUR / 2, share, activity) * rng.uniform(0.97, 1.03)
            spread = abs(avg) * (0.03 + 0.25 * min(share, 1 - share)) + 0.02 * abs(avg)
            high = avg + spread
            if metric == "vibration" and bucket in breakdowns:  # the wear before a breakdown shows
                high = max(high, base_vib * rng.uniform(2.2, 3.2))
            last = avg + rng.uniform(-spread, spread) / 2
            past.hours[(metric, bucket)] = (avg - spread, high, avg * 60, 60, last, bucket + HOUR - MINUTE)
        bucket += HOUR
    minute = fine_from
    current = {m: value(m, minute, 0.0, 0.0) for m in metrics}
    while minute < end:
        share = minute_share.get(minute, 0.0)
        activity = planned_share.get(_floor(minute, HOUR), 0.0) if profile != "machine" else 0.0
        for metric in metrics:
            target = value(metric, minute, share, activity)
            current[metric] += (target - current[metric]) * 0.3 + rng.gauss(0.0, abs(target) * 0.01)
            v = round(current[metric], 4)
            past.minutes[(metric, minute)] = (v, v, v, 1, v, minute)
        minute += MINUTE
    _hours_from_minutes(past, fine_from, end)


def _share_of(intervals, start: datetime, end: datetime, step: timedelta) -> dict[datetime, float]:
    return _running_share([state for a, b in intervals for state in ((a, "running"), (b, "off"))], start, end, step)


def _rollup_hours(past: Past, rows) -> None:
    """Merge ``(metric, ts, (min, max, sum, count, last, last_ts))`` rows into ``past.hours`` the way
    ``rollups_refresh`` builds 1-hour rollups (``devices.services.rollups.rollup_aggregate``)."""
    flat = ((metric, _floor(ts, HOUR), r[5], *r[:5]) for metric, ts, r in rows)
    past.hours.update({key: tuple(agg) for key, agg in rollup_aggregate(flat).items()})


def _hours_from_minutes(past: Past, start: datetime, end: datetime) -> None:
    rows = [(metric, minute, row) for (metric, minute), row in past.minutes.items() if start <= minute < end]
    _rollup_hours(past, rows)


def _counter_rollups(past: Past, end: datetime) -> None:
    """Rollups of the piece counters, exactly from the raw readings written (1 minute on the last day)."""
    fine_from = end - MINUTE_WINDOW
    rows = []
    for ts, total, good in past.counters:
        for metric, value in (("count_total", total), ("count_good", good)):
            row = (value, value, value, 1, value, ts)
            if ts >= fine_from:
                past.minutes[(metric, _floor(ts, MINUTE))] = row
            rows.append((metric, ts, row))
    _rollup_hours(past, rows)


# --- writing ----------------------------------------------------------------------------------------


def _write(device: Device, past: Past, end: datetime, reasons: dict, written: dict, rng, StopReason) -> dict:
    ids = metric_ids(sorted({metric for metric, _ in past.hours} | {metric for metric, _ in past.minutes}))
    pk = device.pk
    _insert(MachineState, ["device", "ts", "state"], [(pk, _db(ts), state) for ts, state in past.states])
    readings = [
        (pk, ids[metric], _db(ts), float(value))
        for ts, total, good in past.counters
        for metric, value in (("count_total", total), ("count_good", good))
    ]
    _insert(TelemetryReading, ["device", "metric", "ts", "value"], readings)
    columns = ["device", "metric", "bucket", "min", "max", "sum", "count", "last", "last_ts"]
    for model, rows, key in (
        (TelemetryRollup1m, past.minutes, "rollups_1m"),
        (TelemetryRollup1h, past.hours, "rollups_1h"),
    ):
        _insert(
            model,
            columns,
            [
                (pk, ids[metric], _db(bucket), r[0], r[1], r[2], r[3], r[4], _db(r[5]))
                for (metric, bucket), r in rows.items()
            ],
        )
        written[key] += len(rows)
    # Operators classify most stops; some of the last day's are still waiting for them.
    fine_from = end - MINUTE_WINDOW
    classified = [
        StopReason(device_id=pk, start=ts, reason_id=reasons[REASON_OF[kind]])
        for ts, kind in past.stops
        if REASON_OF[kind] in reasons and rng.random() < (0.6 if ts >= fine_from else 0.9)
    ]
    StopReason.objects.bulk_create(classified, batch_size=BATCH)
    written["states"] += len(past.states)
    written["readings"] += len(readings)
    written["stop_reasons"] += len(classified)
    return written


def _db(ts: datetime) -> str:
    """A UTC instant as the database column holds it (what Django's backends write for USE_TZ)."""
    return str(ts.astimezone(UTC).replace(tzinfo=None))


def _insert(model, fields: list[str], rows: list[tuple]) -> None:
    """Plain multi-row INSERTs: ``bulk_create`` builds a model instance per row, ten times slower here."""
    if not rows:
        return
    quote = connection.ops.quote_name
    columns = ", ".join(quote(model._meta.get_field(name).column) for name in fields)
    # Names from the model's metadata, values as parameters: nothing user-supplied reaches the SQL text.
    sql = f"INSERT INTO {quote(model._meta.db_table)} ({columns}) VALUES ({', '.join(['%s'] * len(fields))})"  # noqa: S608
    with connection.cursor() as cursor:
        for first in range(0, len(rows), BATCH):
            cursor.executemany(sql, rows[first : first + BATCH])
