"""From raw PLC values to telemetry messages: scaling, state mapping, report by exception.

A PLC is read far more often than its values change; sending every sample would fill the queue
during an outage with copies. ``Reporter`` passes a value on only when it moved by more than the
tag's deadband (any change for counters and state), and again after ``max_interval`` seconds
unchanged (a heartbeat, so the platform sees the device is alive and the value still holds).
"""

import logging
import math
from dataclasses import dataclass
from datetime import UTC, datetime

from edge.config import COUNTERS, Tag

logger = logging.getLogger("edge.reporting")


class MappingError(ValueError):
    """A raw value that the tag's mapping cannot turn into a metric or state (logged, then skipped)."""


@dataclass(frozen=True)
class Reading:
    """One sample of a tag as read from the PLC, with the time it was taken."""

    tag: Tag
    raw: float | int | bool
    ts: datetime


def convert(tag: Tag, raw) -> float | int | str:
    """The value the platform gets for ``raw``: a state name, a whole counter, or ``raw * scale + offset``."""
    if tag.metric is None:
        return _state(tag, raw)
    if isinstance(raw, bool):
        raw = int(raw)
    if not isinstance(raw, int | float) or not math.isfinite(raw):
        raise MappingError(f"{tag.key}: {raw!r} is not a finite number")
    value = raw * tag.scale + tag.offset
    if tag.scale != 1 or tag.offset:  # 302 x 0.1 is 30.200000000000003 in binary: keep 12 significant digits
        value = float(f"{value:.12g}")
    if tag.metric in COUNTERS:
        if value < 0:
            raise MappingError(f"{tag.key}: a piece counter cannot be negative ({value})")
        return round(value)
    return value


def _state(tag: Tag, raw) -> str:
    number = int(raw)
    if tag.states:
        for value, state in tag.states:
            if value == number:
                return state
    else:
        for state, bit in tag.bits:
            if number >> bit & 1:
                return state
    if tag.default_state:
        return tag.default_state
    raise MappingError(f"{tag.key}: {raw!r} maps to no state and the tag has no default")


def iso(ts: datetime) -> str:
    """ISO 8601 in UTC with microseconds: two readings of one tag never share a timestamp by rounding."""
    return ts.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


class Reporter:
    """Report-by-exception state of every tag: the last value sent and when."""

    def __init__(self):
        self.last: dict[str, tuple[float | str, float]] = {}  # tag key -> (value, monotonic time sent)
        self.current: dict[str, tuple[Tag, float | str]] = {}  # tag key -> latest converted value

    def changed(self, tag: Tag, value, now: float) -> bool:
        """Whether ``value`` is to be sent now; remembers it as sent when it is."""
        self.current[tag.key] = (tag, value)
        previous = self.last.get(tag.key)
        if previous is None or _moved(tag, previous[0], value) or _due(tag, previous[1], now):
            self.last[tag.key] = (value, now)
            return True
        return False

    def heartbeats(self, now: float) -> list[tuple[Tag, float | str]]:
        """Tags whose ``max_interval`` passed without a report: their latest value, marked as sent."""
        due = []
        for key, (tag, value) in self.current.items():
            if _due(tag, self.last[key][1], now):
                self.last[key] = (value, now)
                due.append((tag, value))
        return due

    def forget(self, tags: list[Tag]) -> None:
        """After a reconnect the PLC may have restarted: report its next values whatever they are."""
        for tag in tags:
            self.last.pop(tag.key, None)
            self.current.pop(tag.key, None)


def _moved(tag: Tag, before, after) -> bool:
    if isinstance(before, str) or isinstance(after, str) or tag.metric in COUNTERS:
        return before != after
    return abs(after - before) > tag.deadband if tag.deadband else after != before


def _due(tag: Tag, sent_at: float, now: float) -> bool:
    return bool(tag.max_interval) and now - sent_at >= tag.max_interval


def messages(readings: list[tuple[Tag, float | str, datetime]]) -> list[tuple[str, dict]]:
    """Group converted values into one contract message per device and timestamp, in reading order."""
    grouped: dict[tuple[str, datetime], dict] = {}
    for tag, value, ts in readings:
        message = grouped.setdefault((tag.device, ts), {"ts": iso(ts)})
        if tag.metric is None:
            message["state"] = value
        else:
            message.setdefault("values", {})[tag.metric] = value
    return [(device, message) for (device, _), message in grouped.items()]
