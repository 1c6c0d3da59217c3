"""Structured logs: a request id on every line, JSON lines (``LOG_FORMAT=json``), secrets scrubbed.

- ``request_id`` (a context variable) names the work a line belongs to. ``RequestIdMiddleware``
  sets it for a Django request, the lean device endpoints for theirs (``factory.lean_http``), and
  the Celery signals below carry it into every task a request queues (a message header), and from
  there into the tasks those tasks queue. ``RequestIdFilter`` writes it into each log record.
- ``JsonFormatter``: one JSON object per line (``time``, ``level``, ``logger``, ``message``,
  ``request_id``, ``process``, ``exc_info``), python-json-logger underneath.
- Both formatters scrub what looks like a credential (``redact``): Authorization values, JWTs,
  our ``<prefix>.<secret>`` device tokens and API keys, ``password=``-style pairs. A belt to the
  braces: the code logs no secrets in the first place.

Nothing here imports Django at module level: Uvicorn's own ``--log-config`` (deploy/uvicorn-logging.json)
loads ``console_formatter`` before the application exists.
"""

import json
import logging
import os
import re
import uuid
from contextvars import ContextVar

from pythonjsonlogger.json import JsonFormatter as BaseJsonFormatter

request_id: ContextVar[str | None] = ContextVar("request_id", default=None)

HEADER = "X-Request-ID"
# An incoming id is kept only from a trusted proxy, and only when it is short and plain: it ends up
# in log lines, task headers and a response header.
_SAFE_ID = re.compile(r"[A-Za-z0-9._:-]{8,64}")
PLAIN_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
REDACTED = "[redacted]"
_SECRETS = [
    # Authorization values of opaque schemes (Bearer, Basic). Device tokens and API keys have a
    # shape of their own (below): "Device press-001" is a device's name, not a credential.
    (re.compile(r"\b(Bearer|bearer|Basic|basic|Token)\s+[A-Za-z0-9._~+/=-]{8,}"), rf"\1 {REDACTED}"),
    # JSON Web Tokens anywhere (access and refresh tokens).
    (re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"), REDACTED),
    # Device tokens, API keys and provisioning keys: <12 hex>.<urlsafe secret> (devices/services/tokens.py).
    (re.compile(r"\b[0-9a-f]{12}\.[A-Za-z0-9_-]{20,}"), REDACTED),
    # password=..., "token": "...", secret: ..., api_key=... (form bodies, dict reprs, URLs).
    (
        re.compile(
            r"""(?i)(["']?\b[\w-]*(?:password|passwd|secret|token|api[_-]?key|authorization)["']?\s*[:=]\s*)"""
            r"""(?:"[^"]*"|'[^']*'|[^\s,;&}]+)"""
        ),
        rf"\1{REDACTED}",
    ),
    # Credentials in URLs: scheme://user:password@host.
    (re.compile(r"(\b[a-z][a-z0-9+.-]*://[^\s:/@]*:)[^\s@/]+@", re.I), rf"\1{REDACTED}@"),
]


def redact(text: str) -> str:
    """``text`` with anything that looks like a credential replaced by ``[redacted]``."""
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text


def new_request_id() -> str:
    return uuid.uuid4().hex


def incoming_request_id(value: str | None, *, trusted: bool) -> str:
    """The id of a request: the incoming header's value from a trusted proxy when it is safe, else a new one."""
    if trusted and value and _SAFE_ID.fullmatch(value):
        return value
    return new_request_id()


def joined_request_ids(ids: list[str]) -> str | None:
    """One id for work done for several requests at once (a group commit): them all, comma-separated,
    so that a search for any one of them finds the work; at most ten are named."""
    ids = [value for value in ids if value]
    if len(ids) > 10:
        return ",".join(ids[:10]) + f",+{len(ids) - 10}"
    return ",".join(ids) or None


class RequestIdFilter(logging.Filter):
    """Writes the current ``request_id`` (None outside a request or task) into every record."""

    def filter(self, record):
        if not hasattr(record, "request_id"):
            record.request_id = request_id.get()
        return True


class PlainFormatter(logging.Formatter):
    """The console's plain lines, credentials scrubbed."""

    def format(self, record):
        return redact(super().format(record))


class JsonFormatter(BaseJsonFormatter):
    """One JSON object per line: ``time`` (ISO 8601, UTC), ``level``, ``logger``, ``message``,
    ``request_id``, ``process``, and ``exc_info`` with a traceback; credentials scrubbed.

    Extra attributes passed with ``extra=`` become fields of their own, as python-json-logger does.
    """

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("rename_fields", {"levelname": "level", "name": "logger"})
        kwargs.setdefault("timestamp", "time")
        super().__init__("%(levelname)s %(name)s %(message)s %(request_id)s %(process)d", *args, **kwargs)

    def add_fields(self, log_record, record, message_dict):
        if not hasattr(record, "request_id"):  # a handler without RequestIdFilter (Uvicorn's own)
            record.request_id = request_id.get()
        super().add_fields(log_record, record, message_dict)
        log_record.pop("color_message", None)  # Uvicorn's copy of the message with terminal colours

    def process_log_record(self, log_data):
        # Before encoding: in the JSON text a quoted secret ("password": "...") has escaped quotes.
        log_data = super().process_log_record(log_data)
        return {key: redact(value) if isinstance(value, str) else value for key, value in log_data.items()}

    def format(self, record):
        return redact(super().format(record))  # and nested values (``extra=`` dicts) once encoded


def console_formatter() -> logging.Formatter:
    """The formatter ``LOG_FORMAT`` asks for (``plain``, the default, or ``json``): for logging configs
    that are read before Django's settings (Uvicorn's ``--log-config``)."""
    if os.environ.get("LOG_FORMAT", "plain") == "json":
        return JsonFormatter()
    return PlainFormatter(PLAIN_FORMAT)


def json_line(logger: str, message: str, level: str = "INFO") -> str:
    """One log line in ``JsonFormatter``'s shape, without the logging machinery (for signal handlers)."""
    from datetime import UTC, datetime

    record = {"level": level, "logger": logger, "message": redact(message), "request_id": None}
    record.update(process=os.getpid(), time=datetime.now(UTC).isoformat())
    return json.dumps(record)


def json_logging_now(level: str = "INFO") -> None:
    """JSON lines on stderr from now on, warnings included, until Django configures ``LOGGING``."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level)
    logging.captureWarnings(True)


def logging_config(log_format: str, level: str, loggers: dict) -> dict:
    """``LOGGING`` for the settings: one console handler in ``log_format``, request ids and scrubbing on
    every record. With JSON, Uvicorn's and Daphne's loggers go through it too (one format per stream)."""
    config = {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": "factory.logs.RequestIdFilter"}},
        "formatters": {
            "plain": {"()": "factory.logs.PlainFormatter", "format": PLAIN_FORMAT},
            "json": {"()": "factory.logs.JsonFormatter"},
        },
        "handlers": {
            "console": {"class": "logging.StreamHandler", "formatter": log_format, "filters": ["request_id"]},
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": dict(loggers),
    }
    if log_format == "json":
        # Not uvicorn.access: Uvicorn decides whether it logs (--no-access-log) and how (--log-config).
        for name in ("uvicorn", "uvicorn.error", "daphne"):
            config["loggers"].setdefault(name, {})
            config["loggers"][name].update(handlers=["console"], propagate=False)
    return config
