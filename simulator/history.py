"""Today's history for the demo plant, so its OEE tiles are believable from the first minute.

OEE counts planned time without any known state as an ``offline`` data gap (README "OEE
analytics"). A demo started at 10:00 would therefore show a few tenths of a percent until
evening: eight hours of the day's planned time have no telemetry. ``seed_demo`` calls
``history_fill`` to play each demo device's model from the plant's local midnight (or from its
last message, when that is later) up to now, through the real ingest service, as if the plant had
run all along. Healthy machines only (no breakdowns): historic readings must not raise alarms
with old timestamps; the live simulator's breakdowns do that.
"""

import logging
import random
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings

from devices.models import Device, Plant
from devices.services.ingest import IngestItem, telemetry_store
from devices.services.telemetry_payload import Message
from simulator.machine import behaviour_for

logger = logging.getLogger("simulator")

STEP_SECONDS = 60.0  # states dwell minutes (5 s at least): a minute per message is enough for OEE
FRESH = timedelta(minutes=2)  # a device that sent this recently needs no history


def history_fill(*, plant: Plant, now: datetime, seed: int | None = None, step: float = STEP_SECONDS) -> int:
    """Store simulated telemetry, one message every ``step`` seconds, for each enabled device of
    ``plant`` from ``max(local midnight, its last message)`` to ``now``; return how many messages.

    Idempotent in effect: a device seen within the last two minutes gets nothing, and re-sent
    readings (same device, metric and ts) are ignored by the ingest. Machines play without
    breakdowns; counters start from 0 (a reset for the ingest, never phantom pieces).
    """
    midnight = datetime.combine(now.astimezone(ZoneInfo(plant.time_zone)).date(), time(), ZoneInfo(plant.time_zone))
    rng = random.Random(seed)  # noqa: S311 (behaviour, not secrets)
    planned = _planned(plant, midnight, now)
    stored = 0
    for device in Device.objects.filter(plant=plant, enabled=True).order_by("pk"):
        start = max(midnight, device.last_seen_at or midnight)
        if now - start < FRESH:
            continue
        model = behaviour_for(
            kind=device.kind, uid=device.uid, name=device.name, model=device.model,
            ideal_cycle_time=device.ideal_cycle_time, rng=random.Random(rng.random()), failure_rate=0,  # noqa: S311
        )  # fmt: skip
        messages = []
        ts = start + timedelta(seconds=step)
        off_shift = False
        while ts < now:
            if planned is not None and device.kind == Device.Kind.MACHINE and not _in(planned, ts):
                # Breaks and time between shifts: the crew stops the machine (planned_stop, no
                # pieces) instead of producing into time the OEE does not plan, which made
                # performance exceed 100 % (pieces without planned run time).
                model.state, model.dwell_left, off_shift = "planned_stop", 1e9, True
            elif off_shift:
                model.dwell_left, off_shift = 0.0, False  # back on shift: the next state is drawn now
            sent = model.step(ts, step)
            messages.append(Message(ts=ts, values=sent["values"], state=sent.get("state")))
            ts += timedelta(seconds=step)
        for first in range(0, len(messages), settings.TELEMETRY_MAX_BATCH):
            batch = messages[first : first + settings.TELEMETRY_MAX_BATCH]
            stored += telemetry_store([IngestItem(device=device, messages=batch)], received_at=batch[-1].ts)
    if stored:
        logger.info("Demo history: %d message(s) for '%s' since %s.", stored, plant.name, midnight.isoformat())
    return stored


def _planned(plant: Plant, start: datetime, end: datetime) -> list[tuple[datetime, datetime]] | None:
    """The plant's planned production time in ``[start, end)``: its shifts minus breaks (analytics);
    None for a plant without a shift calendar (its machines then play around the clock)."""
    from analytics.calendar import occurrences
    from analytics.models import NonProductionDay, Shift

    shifts = Shift.objects.filter(plant=plant).prefetch_related("breaks")
    if not shifts:
        return None
    closed = set(NonProductionDay.objects.filter(plant=plant).values_list("date", flat=True))
    tz = ZoneInfo(plant.time_zone)
    return [interval for occ in occurrences(shifts, start, end, tz, closed) for interval in occ.planned()]


def _in(intervals: list[tuple[datetime, datetime]], at: datetime) -> bool:
    return any(begin <= at < finish for begin, finish in intervals)
