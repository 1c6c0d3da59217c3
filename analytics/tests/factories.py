"""Helpers that build a plant's calendar and post a machine's telemetry as the machine would."""

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from analytics.services import shift_save
from devices.services.ingest import IngestItem, telemetry_store
from devices.services.telemetry_payload import Message

ALL_DAYS = [0, 1, 2, 3, 4, 5, 6]


def hm(text: str) -> time:
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


def make_shift(plant, name="Early", start="06:00", end="14:00", breaks=(), weekdays=ALL_DAYS):
    return shift_save(
        plant=plant,
        name=name,
        start=hm(start),
        end=hm(end),
        weekdays=list(weekdays),
        breaks=[{"start": hm(a), "end": hm(b)} for a, b in breaks],
    )


def at(day: date, clock: str, tz: str, days: int = 0) -> datetime:
    """UTC instant of wall-clock ``clock`` on ``day`` (+ ``days``) in zone ``tz``."""
    local = datetime.combine(day + timedelta(days=days), hm(clock), tzinfo=ZoneInfo(tz))
    return local.astimezone(UTC)


def store(device, events) -> None:
    """Store ``(ts, state or None, values or None)`` events for ``device`` through the ingest service."""
    messages = [Message(ts=ts, values=values or {}, state=state) for ts, state, values in events]
    telemetry_store([IngestItem(device=device, messages=messages)], received_at=max(m.ts for m in messages))


def counts(total: int, good: int) -> dict:
    return {"count_total": float(total), "count_good": float(good)}


def recent_day(tz: str, days_ago: int = 2) -> date:
    """A plant-local date ``days_ago`` days back: inside raw retention, wholly in the past."""
    return (datetime.now(UTC).astimezone(ZoneInfo(tz)) - timedelta(days=days_ago)).date()
