"""Structured logs (README "Logs"): the request id of a request, JSON lines, scrubbed credentials.

The whole chain on real processes (web request → Celery task → e-mail, every line JSON, nothing
secret in any line) is test_logs_scenario.py.
"""

import io
import json
import logging

import pytest
from django.test import Client

from conftest import assert_status
from factory.logs import JsonFormatter, PlainFormatter, RequestIdFilter, redact, request_id


def formatted(formatter: logging.Formatter, message: str, *args, exc: BaseException | None = None) -> str:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    handler.addFilter(RequestIdFilter())
    logger = logging.Logger("factory.test")
    logger.addHandler(handler)
    if exc is not None:
        try:
            raise exc
        except type(exc):
            logger.exception(message, *args)
    else:
        logger.warning(message, *args)
    return stream.getvalue()


@pytest.mark.django_db
def test_a_request_gets_a_new_id_in_its_response_header():
    first = Client().get("/healthz")
    second = Client().get("/healthz")
    assert len(first["X-Request-ID"]) == 32
    assert first["X-Request-ID"] != second["X-Request-ID"]


@pytest.mark.django_db
def test_an_incoming_request_id_is_kept_only_from_a_trusted_proxy_and_only_when_plain(settings):
    settings.TRUSTED_PROXIES = ["172.30.80.0/24"]
    proxied = Client(REMOTE_ADDR="172.30.80.2").get("/healthz", HTTP_X_REQUEST_ID="edge-4f1c2a9b")
    assert proxied["X-Request-ID"] == "edge-4f1c2a9b"
    direct = Client(REMOTE_ADDR="192.0.2.9").get("/healthz", HTTP_X_REQUEST_ID="edge-4f1c2a9b")
    assert direct["X-Request-ID"] != "edge-4f1c2a9b"
    unsafe = Client(REMOTE_ADDR="172.30.80.2").get("/healthz", HTTP_X_REQUEST_ID='x" onmouseover=alert(1) y')
    assert unsafe["X-Request-ID"] != 'x" onmouseover=alert(1) y' and len(unsafe["X-Request-ID"]) == 32


@pytest.mark.django_db
def test_the_lean_telemetry_endpoint_answers_a_request_id_too():
    response = Client().post("/api/v1/telemetry/", "{}", content_type="application/json")
    assert_status(response, 401)
    assert len(response["X-Request-ID"]) == 32


def test_json_lines_carry_the_request_id_and_a_traceback_in_one_line():
    token = request_id.set("req-0123456789")
    try:
        line = formatted(JsonFormatter(), "stored %d readings", 5, exc=ValueError("boom"))
    finally:
        request_id.reset(token)
    assert line.count("\n") == 1
    record = json.loads(line)
    assert record["message"] == "stored 5 readings"
    assert record["level"] == "ERROR" and record["logger"] == "factory.test"
    assert record["request_id"] == "req-0123456789"
    assert "ValueError: boom" in record["exc_info"]
    assert record["time"].startswith("20") and isinstance(record["process"], int)


def test_lines_outside_a_request_have_a_null_request_id():
    assert json.loads(formatted(JsonFormatter(), "beat tick"))["request_id"] is None


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJ1c2VyX2lkIjoxfQ.c2lnbmF0dXJlLWhlcmU", "eyJhbGciOiJIUzI1NiJ9"),
        ("refresh=eyJhbGciOiJIUzI1NiJ9.eyJ0b2tlbl90eXBlIjoicmVmcmVzaCJ9.abc", "eyJ0b2tlbl90eXBlIjoicmVmcmVzaCJ9"),
        ("header Device 3f9a0c1b2d4e.Zm9vYmFyYmF6cXV4cXV1eHF1dXhxdXV4cXV1eA", "Zm9vYmFyYmF6cXV4"),
        ("key 3f9a0c1b2d4e.Zm9vYmFyYmF6cXV4cXV1eHF1dXhxdXV4cXV1eA sent", "Zm9vYmFyYmF6cXV4"),
        ("Api-Key 0a1b2c3d4e5f.c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0", "c2VjcmV0LXNlY3JldC1z"),
        ("login with password=correct-horse-battery", "correct-horse-battery"),
        ("{'username': 'ann', 'password': 'hunter2hunter2'}", "hunter2hunter2"),
        ('{"token": "abcdefghijklmnop", "n": 1}', "abcdefghijklmnop"),
        ("broker at redis://:s3cretpass@redis:6379/1", "s3cretpass"),
        ("SMS_AUTH_TOKEN=0f0f0f0f0f0f0f0f", "0f0f0f0f0f0f0f0f"),
    ],
)
def test_credentials_are_scrubbed_from_log_lines(text, secret):
    assert secret not in redact(text)
    assert "[redacted]" in redact(text)
    for formatter in (JsonFormatter(), PlainFormatter("%(message)s")):
        assert secret not in formatted(formatter, "%s", text)


def test_scrubbing_leaves_ordinary_lines_alone():
    line = "Task alerts.tasks.evaluate_rules[0d5c2a1e-3b7f-4c2d-9a8e-1f2b3c4d5e6f] succeeded in 0.01s: None"
    assert redact(line) == line
    assert redact("POST /api/v1/auth/token/ 200, device press-001 token issued") == (
        "POST /api/v1/auth/token/ 200, device press-001 token issued"
    )
