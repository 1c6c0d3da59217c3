"""Parse and validate telemetry payloads exactly as CONTRACT.md defines them.

A payload is one message or ``{"messages": [...]}``. The whole payload is valid or nothing of it
is: ``payload_parse`` returns every message or raises ``PayloadError`` with one entry per problem
(``{"index", "field", "message"}``). The fast path is a typed msgspec decode; when it fails, a
plain decode plus a field-by-field check finds *every* error and names the metric (msgspec's own
error path does not name dict keys).
"""

import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Literal

import msgspec

STATES = ("running", "idle", "down", "setup", "planned_stop", "offline")
COUNTERS = ("count_total", "count_good")
METRIC_NAME = re.compile(r"[a-z][a-z0-9_]{0,62}\Z")
MAX_VALUES_PER_MESSAGE = 200
MAX_ERRORS = 100
FUTURE_TOLERANCE = timedelta(minutes=5)

_Name = Annotated[str, msgspec.Meta(pattern=r"^[a-z][a-z0-9_]{0,62}$")]
_Ts = Annotated[datetime, msgspec.Meta(tz=True)]


class _Message(msgspec.Struct, forbid_unknown_fields=True):
    values: dict[_Name, float] = {}
    ts: _Ts | None = None
    state: Literal[STATES] | None = None


class _Batch(msgspec.Struct, forbid_unknown_fields=True):
    messages: list[_Message]


_single = msgspec.json.Decoder(_Message)
_batch = msgspec.json.Decoder(_Batch)
_plain = msgspec.json.Decoder()


@dataclass(slots=True)
class Message:
    ts: datetime
    values: dict[str, float]
    state: str | None


class PayloadError(Exception):
    """The payload is refused; ``errors`` lists ``{"index", "field", "message"}`` dicts."""

    def __init__(self, errors: list[dict], status: int = 400):
        super().__init__(errors[0]["message"] if errors else "invalid payload")
        self.errors = errors[:MAX_ERRORS]
        self.status = status


def _error(index, field, message):
    return {"index": index, "field": field, "message": message}


def payload_parse(body: bytes, *, now: datetime, oldest: datetime, max_batch: int) -> list[Message]:
    """Decode and validate ``body``; messages without ``ts`` get ``now``. Raises ``PayloadError``."""
    stripped = body.lstrip()
    is_batch = stripped.startswith(b"{") and b'"messages"' in stripped[:64 * 1024]
    try:
        if is_batch:
            decoded = _batch.decode(body).messages
        else:
            decoded = [_single.decode(body)]
    except msgspec.ValidationError:  # (a subclass of DecodeError: catch it first)
        raise PayloadError(_explain(body, now=now, oldest=oldest, max_batch=max_batch)) from None
    except msgspec.DecodeError as exc:
        raise PayloadError([_error(None, "", f"Body is not valid JSON ({exc}). NaN and Infinity are not JSON.")]) from None
    if is_batch and not decoded:
        raise PayloadError([_error(None, "messages", "The batch is empty: send at least one message.")])
    if len(decoded) > max_batch:
        raise PayloadError([_error(None, "messages", f"{len(decoded)} messages exceed the limit of {max_batch} per request.")])
    errors = []
    messages = []
    for index, raw in enumerate(decoded):
        errors.extend(_check_semantics(index if is_batch else None, raw.ts, raw.values, raw.state, now, oldest))
        messages.append(Message(ts=raw.ts or now, values=raw.values, state=raw.state))
    if errors:
        raise PayloadError(errors)
    return messages


def _check_semantics(index, ts, values, state, now, oldest) -> list[dict]:
    """Rules a type check cannot express: finiteness, time window, counters, non-empty."""
    errors = []
    if not values and state is None:
        errors.append(_error(index, "values", "The message has no values and no state: nothing to store."))
    if len(values) > MAX_VALUES_PER_MESSAGE:
        errors.append(_error(index, "values", f"{len(values)} values exceed the limit of {MAX_VALUES_PER_MESSAGE}."))
    for name, value in values.items():
        if not math.isfinite(value):
            errors.append(_error(index, f"values.{name}", "Must be a finite number."))
        elif name in COUNTERS and (value < 0 or value != int(value)):
            errors.append(_error(index, f"values.{name}", "A piece counter is a whole number >= 0."))
    if ts is not None:
        if ts > now + FUTURE_TOLERANCE:
            errors.append(_error(index, "ts", f"{ts.isoformat()} is more than 5 minutes in the future; check the device clock."))
        elif ts < oldest:
            errors.append(_error(index, "ts", f"{ts.isoformat()} is older than the raw retention window ({oldest.isoformat()})."))
    return errors


def _explain(body: bytes, *, now, oldest, max_batch) -> list[dict]:
    """The slow path: find every error of a payload the typed decoder refused."""
    try:
        data = _plain.decode(body)
    except msgspec.DecodeError as exc:
        return [_error(None, "", f"Body is not valid JSON ({exc}).")]
    if isinstance(data, dict) and "messages" in data:
        extra = sorted(set(data) - {"messages"})
        if extra:
            return [_error(None, extra[0], "Unknown field: a batch has only 'messages'.")]
        items = data["messages"]
        if not isinstance(items, list):
            return [_error(None, "messages", "Must be a list of messages.")]
        if len(items) > max_batch:
            return [_error(None, "messages", f"{len(items)} messages exceed the limit of {max_batch} per request.")]
        indexed = list(enumerate(items))
    else:
        indexed = [(None, data)]
    errors = []
    for index, item in indexed:
        errors.extend(_explain_message(index, item, now, oldest))
        if len(errors) >= MAX_ERRORS:
            break
    return errors or [_error(None, "", "Invalid payload.")]


def _explain_message(index, item, now, oldest) -> list[dict]:
    if not isinstance(item, dict):
        return [_error(index, "", "A message must be a JSON object.")]
    errors = [_error(index, key, "Unknown field: a message has ts, values and state.") for key in item if key not in ("ts", "values", "state")]
    ts = None
    if item.get("ts") is not None:
        try:
            ts = msgspec.convert(item["ts"], _Ts)
        except msgspec.ValidationError:
            errors.append(_error(index, "ts", "Must be an ISO 8601 timestamp with an offset or Z, e.g. 2026-11-26T16:00:00Z."))
    state = item.get("state")
    if state is not None and state not in STATES:
        errors.append(_error(index, "state", f"Unknown state {state!r}; use one of {', '.join(STATES)}."))
    values = item.get("values", {})
    clean = {}
    if not isinstance(values, dict):
        errors.append(_error(index, "values", "Must be an object of metric name to number."))
        values = {}
    for name, value in values.items():
        field = f"values.{name}"
        if not METRIC_NAME.match(name):
            errors.append(_error(index, field, "Metric names match [a-z][a-z0-9_]{0,62}."))
        elif isinstance(value, bool) or not isinstance(value, int | float):
            kind = "a nested value" if isinstance(value, dict | list) else type(value).__name__
            errors.append(_error(index, field, f"Must be a number, not {kind}."))
        else:
            try:
                clean[name] = float(value)
            except OverflowError:
                clean[name] = math.inf  # reported as not finite below
    if not errors:
        errors = _check_semantics(index, ts, clean, state, now, oldest)
    return errors
