"""Parse and validate telemetry payloads exactly as CONTRACT.md defines them.

A payload is one message or ``{"messages": [...]}``. The whole payload is valid or nothing of it
is: ``payload_parse`` returns every message or raises ``PayloadError`` with one entry per problem
(``{"index", "field", "message"}``). The fast path is a typed msgspec decode; when it fails, a
plain decode plus a field-by-field check finds *every* error and names the metric (msgspec's own
error path does not name dict keys).
"""

import json
import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Literal

import msgspec

STATES = ("running", "idle", "down", "setup", "planned_stop", "offline")
COUNTERS = ("count_total", "count_good")
METRIC_NAME = re.compile(r"[a-z][a-z0-9_]{0,62}\Z")
# "product"/"order" (production context): an ERP-style code, or "" for "nothing from this ts on".
CONTEXT_CODE = r"^(?:[A-Za-z0-9][A-Za-z0-9 ._/#:+-]{0,63})?\Z"
CONTEXT_FIELDS = ("product", "order")
CODE_HINT = (
    "Must be a product code or order number of 1-64 letters, digits, spaces or . _ / # : + -, starting with a"
    ' letter or digit, or "" for none.'
)
MAX_VALUES_PER_MESSAGE = 200
MAX_ERRORS = 100
FUTURE_TOLERANCE = timedelta(minutes=5)
INVALID = 'Invalid payload: send one message object or {"messages": [message, ...]} (CONTRACT.md).'
FINITE = "Must be a finite number (NaN, Infinity and numbers beyond ±1.8e308 are not allowed)."

# \Z, not $: msgspec matches with re.search, where $ also matches before a trailing newline.
_Name = Annotated[str, msgspec.Meta(pattern=r"^[a-z][a-z0-9_]{0,62}\Z")]
_Ts = Annotated[datetime, msgspec.Meta(tz=True)]
_Code = Annotated[str, msgspec.Meta(pattern=CONTEXT_CODE)]


class _Message(msgspec.Struct, forbid_unknown_fields=True):
    values: dict[_Name, float] = {}
    ts: _Ts | None = None
    state: Literal[STATES] | None = None
    product: _Code | None = None
    order: _Code | None = None


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
    # Production context (CONTRACT.md): None when the message does not say; "" means none.
    product: str | None = None
    order: str | None = None


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
    try:
        decoded, is_batch = _decode_typed(body)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:  # (ValidationError is a DecodeError)
        raise PayloadError(_explain(body, _reason(exc), now=now, oldest=oldest, max_batch=max_batch)) from None
    if is_batch and not decoded:
        raise PayloadError([_error(None, "messages", "The batch is empty: send at least one message.")])
    if len(decoded) > max_batch:
        raise PayloadError(
            [_error(None, "messages", f"{len(decoded)} messages exceed the limit of {max_batch} per request.")]
        )
    errors = []
    messages = []
    if b'"product"' in body or b'"order"' in body:  # a substring test: free for the usual payload
        for index, raw in enumerate(decoded):
            context = raw.product is not None or raw.order is not None
            errors.extend(
                _check_semantics(index if is_batch else None, raw.ts, raw.values, raw.state, now, oldest, context)
            )
            messages.append(Message(raw.ts or now, raw.values, raw.state, raw.product, raw.order))
    else:
        for index, raw in enumerate(decoded):
            errors.extend(_check_semantics(index if is_batch else None, raw.ts, raw.values, raw.state, now, oldest))
            messages.append(Message(ts=raw.ts or now, values=raw.values, state=raw.state))
    if errors:
        raise PayloadError(errors)
    return messages


def _decode_typed(body: bytes) -> tuple[list, bool]:
    """The fast path: ``(messages, is_batch)``. Raises msgspec's errors or ``UnicodeDecodeError``.

    The batch decoder is tried first when the body mentions "messages"; a single message may
    have a metric of that name too, so the single-message decoder gets its turn when the batch
    one refuses (it fails at the first unknown key of a real batch, so that costs next to nothing).
    """
    if b'"messages"' in body:
        try:
            return _batch.decode(body).messages, True
        except msgspec.ValidationError as exc:
            batch_error = exc
        try:
            return [_single.decode(body)], False
        except msgspec.ValidationError:
            raise batch_error from None
    return [_single.decode(body)], False


def _check_semantics(index, ts, values, state, now, oldest, context=False) -> list[dict]:
    """Rules a type check cannot express: finiteness, time window, counters, non-empty."""
    errors = []
    if not values and state is None and not context:
        errors.append(_error(index, "values", "The message has no values, state, product or order: nothing to store."))
    if len(values) > MAX_VALUES_PER_MESSAGE:
        errors.append(_error(index, "values", f"{len(values)} values exceed the limit of {MAX_VALUES_PER_MESSAGE}."))
    for name, value in values.items():
        if not math.isfinite(value):
            errors.append(_error(index, f"values.{name}", FINITE))
        elif name in COUNTERS and (value < 0 or value != int(value)):
            errors.append(_error(index, f"values.{name}", "A piece counter is a whole number >= 0."))
    if ts is not None:
        if ts > now + FUTURE_TOLERANCE:
            errors.append(
                _error(index, "ts", f"{ts.isoformat()} is more than 5 minutes in the future; check the device clock.")
            )
        elif ts < oldest:
            errors.append(
                _error(index, "ts", f"{ts.isoformat()} is older than the raw retention window ({oldest.isoformat()}).")
            )
    return errors


def _reason(exc: Exception) -> str:
    """What to tell the device when the slow path finds nothing more precise."""
    if isinstance(exc, msgspec.ValidationError):
        return INVALID
    if isinstance(exc, UnicodeDecodeError):
        return f"Body is not valid UTF-8 (byte {exc.start}); send JSON encoded as UTF-8."
    return f'Body is not valid JSON ({exc}); send one message object or {{"messages": [...]}}.'


def _decode_plain(body: bytes):
    """The body as plain Python data, for the slow path.

    NaN, Infinity and numbers beyond the float range are not JSON and msgspec refuses them, but
    Python's ``json`` module reads them as non-finite floats, so the error can name the metric.
    """
    try:
        return _plain.decode(body)
    except msgspec.DecodeError:
        return json.loads(body)


def _explain(body: bytes, fallback: str, *, now, oldest, max_batch) -> list[dict]:
    """The slow path: find every error of a payload the typed decoder refused.

    ``fallback`` is the one error reported when the body cannot be decoded at all, or when the
    slow path finds nothing more precise to say.
    """
    try:
        data = _decode_plain(body)
    except (ValueError, RecursionError):  # (json.JSONDecodeError and UnicodeDecodeError are ValueErrors)
        return [_error(None, "", fallback)]
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
    return errors or [_error(None, "", fallback)]


def _explain_message(index, item, now, oldest) -> list[dict]:
    if not isinstance(item, dict):
        return [_error(index, "", "A message must be a JSON object.")]
    errors = [
        _error(index, key, "Unknown field: a message has ts, values, state, product and order.")
        for key in item
        if key not in ("ts", "values", "state", *CONTEXT_FIELDS)
    ]
    for key in CONTEXT_FIELDS:
        code = item.get(key)
        if code is not None and (not isinstance(code, str) or not re.match(CONTEXT_CODE, code)):
            errors.append(_error(index, key, CODE_HINT))
    ts = None
    if item.get("ts") is not None:
        try:
            ts = msgspec.convert(item["ts"], _Ts)
        except msgspec.ValidationError:
            errors.append(
                _error(index, "ts", "Must be an ISO 8601 timestamp with an offset or Z, e.g. 2026-11-26T16:00:00Z.")
            )
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
        context = any(item.get(key) is not None for key in CONTEXT_FIELDS)
        errors = _check_semantics(index, ts, clean, state, now, oldest, context)
    return errors
