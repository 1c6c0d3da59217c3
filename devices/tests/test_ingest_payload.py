"""``POST /api/v1/telemetry/`` through Django: the bad-payload battery and the good cases.

Every refused request answers the documented status with a message naming the field (and the
message index for the batch form; ``null`` for a single message) and leaves the readings, the
latest values and the state timeline exactly as they were.
"""

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from conftest import assert_status
from devices.models import Device, LatestValue, MachineState, Metric, TelemetryReading
from devices.services.tokens import token_revoke
from devices.tests.factories import make_device, make_token

URL = "/api/v1/telemetry/"
GOOD = {"values": {"temperature": 71.5}}


@pytest.fixture
def device(db):
    return make_device(uid="press-07")


@pytest.fixture
def plain(device):
    return make_token(device)[1]


def post(client, plain, body, *, content_type="application/json", **extra):
    """POST ``body`` (a dict/list is sent as JSON, str/bytes as they are) with the device token."""
    if not isinstance(body, str | bytes):
        body = json.dumps(body)
    return client.post(URL, body, content_type=content_type, HTTP_AUTHORIZATION=f"Device {plain}", **extra)


def stored() -> tuple:
    """Everything ingest writes that a refused request must leave alone."""
    return (
        sorted(TelemetryReading.objects.values_list("device_id", "metric_id", "ts", "value")),
        sorted(LatestValue.objects.values_list("device_id", "metric_id", "ts", "value")),
        sorted(MachineState.objects.values_list("device_id", "ts", "state")),
    )


@pytest.fixture
def before(client, plain):
    """One reading already stored, so "unchanged" is checked against real rows, not empty tables."""
    at = (timezone.now() - timedelta(minutes=1)).isoformat()
    assert_status(post(client, plain, {"ts": at, "values": {"temperature": 70.0}, "state": "running"}), 202)
    return stored()


def errors_of(response) -> list[dict]:
    errors = response.json()["errors"]
    assert errors and all(error["message"] for error in errors), errors
    return errors


def iso(delta: timedelta) -> str:
    return (timezone.now() + delta).isoformat()


BAD_MESSAGES = [
    ("malformed JSON", b'{"values": {"temperature": 7', None, ""),
    ("NaN", b'{"values": {"temperature": NaN}}', None, "values.temperature"),
    ("Infinity", b'{"values": {"temperature": Infinity}}', None, "values.temperature"),
    ("-Infinity", b'{"values": {"temperature": -Infinity}}', None, "values.temperature"),
    ("1e400", b'{"values": {"temperature": 1e400}}', None, "values.temperature"),
    ("string value", {"values": {"temperature": "71.5"}}, None, "values.temperature"),
    ("boolean value", {"values": {"temperature": True}}, None, "values.temperature"),
    ("null value", {"values": {"temperature": None}}, None, "values.temperature"),
    ("nested object", {"values": {"temperature": {"celsius": 71.5}}}, None, "values.temperature"),
    ("nested list", {"values": {"temperature": [71.5]}}, None, "values.temperature"),
    ("values not an object", {"values": [71.5]}, None, "values"),
    ("uppercase name", {"values": {"Temperature": 1}}, None, "values.Temperature"),
    ("leading digit", {"values": {"1st_axis": 1}}, None, "values.1st_axis"),
    ("64-char name", {"values": {"a" * 64: 1}}, None, "values." + "a" * 64),
    ("dash in name", {"values": {"spindle-speed": 1}}, None, "values.spindle-speed"),
    ("trailing newline in name", {"values": {"temperature\n": 1}}, None, "values.temperature\n"),
    ("invalid UTF-8", b'{"values": {"temp\xe9rature": 1}}', None, ""),
    ("ts without offset", {"ts": "2026-11-26T16:00:00", **GOOD}, None, "ts"),
    ("unparseable ts", {"ts": "yesterday at noon", **GOOD}, None, "ts"),
    ("epoch ts", {"ts": 1764172800, **GOOD}, None, "ts"),
    ("unknown state", {"state": "dancing"}, None, "state"),
    ("negative counter", {"values": {"count_total": -1}}, None, "values.count_total"),
    ("fractional counter", {"values": {"count_good": 10.5}}, None, "values.count_good"),
    ("unknown message field", {"values": {"temperature": 1}, "unit": "C"}, None, "unit"),
    ("neither values nor state", {"ts": iso(timedelta(0))}, None, "values"),
    ("empty values, no state", {"values": {}}, None, "values"),
    ("not an object", [GOOD], None, ""),
    ("deeply nested value", b'{"values": {"temperature": ' + b"[" * 100_000 + b"]" * 100_000 + b"}}", None, ""),
    ("empty batch", {"messages": []}, None, "messages"),
    ("messages not a list", {"messages": GOOD}, None, "messages"),
    ("unknown batch field", {"messages": [GOOD], "gateway": "gw-1"}, None, "gateway"),
    (
        "bad message 3 of 5",
        {"messages": [GOOD] * 3 + [{"values": {"temperature": "hot"}}, GOOD]},
        3,
        "values.temperature",
    ),
    (
        "NaN in message 1",
        b'{"messages": [{"values": {"a": 1}}, {"values": {"temperature": NaN}}]}',
        1,
        "values.temperature",
    ),
    ("non-object message", {"messages": [GOOD, 42]}, 1, ""),
]


@pytest.mark.parametrize(
    ("body", "index", "field"), [case[1:] for case in BAD_MESSAGES], ids=[c[0] for c in BAD_MESSAGES]
)
def test_rejects_with_400_naming_the_field_when_payload_is_invalid(client, plain, before, body, index, field):
    response = assert_status(post(client, plain, body), 400)

    assert any(error["index"] == index and error["field"] == field for error in errors_of(response)), response.json()
    assert stored() == before


@pytest.mark.parametrize(
    ("delta", "words"),
    [(timedelta(minutes=6), "in the future"), (timedelta(days=-31), "retention")],
    ids=["more than 5 minutes ahead", "older than raw retention"],
)
def test_rejects_ts_outside_the_window_when_device_clock_is_off(client, plain, before, delta, words):
    response = assert_status(post(client, plain, {"ts": iso(delta), **GOOD}), 400)

    [error] = errors_of(response)
    assert (error["index"], error["field"]) == (None, "ts") and words in error["message"]
    assert stored() == before


def test_uses_the_configured_retention_when_judging_old_timestamps(client, plain, before, settings):
    settings.TELEMETRY_RETENTION_RAW_DAYS = 2
    response = assert_status(post(client, plain, {"ts": iso(timedelta(days=-3)), **GOOD}), 400)

    assert errors_of(response)[0]["field"] == "ts"
    assert_status(post(client, plain, {"ts": iso(timedelta(days=-1)), **GOOD}), 202)


def test_accepts_ts_when_just_inside_the_future_tolerance(client, plain, before):
    assert_status(post(client, plain, {"ts": iso(timedelta(minutes=4)), **GOOD}), 202)


def test_lists_every_error_of_every_message_when_several_are_wrong(client, plain, before):
    body = {"messages": [{"values": {"Bad": 1, "ok": "x"}}, GOOD, {"state": "dancing", "values": {"count_total": -2}}]}
    response = assert_status(post(client, plain, body), 400)

    named = {(error["index"], error["field"]) for error in errors_of(response)}
    assert {(0, "values.Bad"), (0, "values.ok"), (2, "state")} <= named
    assert stored() == before


def test_stores_nothing_when_one_message_of_a_batch_is_invalid(client, plain, before):
    messages = [{"ts": iso(timedelta(seconds=-i)), "values": {"temperature": i}} for i in range(10)]
    messages[7]["values"]["count_total"] = 1.5

    response = assert_status(post(client, plain, {"messages": messages}), 400)

    assert errors_of(response) == [
        {"index": 7, "field": "values.count_total", "message": "A piece counter is a whole number >= 0."}
    ]
    assert stored() == before


def test_rejects_with_400_naming_messages_when_batch_exceeds_the_limit(client, plain, before, settings):
    assert settings.TELEMETRY_MAX_BATCH == 1000
    response = assert_status(post(client, plain, {"messages": [GOOD] * 1001}), 400)

    [error] = errors_of(response)
    assert error["field"] == "messages" and "1000" in error["message"]
    assert stored() == before


def test_accepts_exactly_the_batch_limit(client, plain, before):
    messages = [{"ts": iso(timedelta(milliseconds=-i)), "values": {"temperature": i}} for i in range(1000)]

    assert assert_status(post(client, plain, {"messages": messages}), 202).json() == {"accepted": 1000}


def test_rejects_with_413_when_body_is_10_mb(client, plain, before):
    padding = " " * (10 * 1024 * 1024)
    response = assert_status(post(client, plain, '{"values": {"temperature": 1}}' + padding), 413)

    assert "smaller batches" in response.json()["detail"]
    assert stored() == before


def test_rejects_with_413_when_body_is_just_over_the_configured_limit(client, plain, before, settings):
    settings.TELEMETRY_MAX_BODY_BYTES = 4096
    body = json.dumps(GOOD).encode()
    body += b" " * (4097 - len(body))

    assert_status(post(client, plain, body), 413)
    assert_status(post(client, plain, body[:4096]), 202)


def test_accepts_a_body_above_django_s_upload_limit_when_the_telemetry_limit_allows_it(client, plain, before, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    settings.TELEMETRY_MAX_BODY_BYTES = 64 * 1024
    messages = [{"ts": iso(timedelta(milliseconds=-i)), "values": {"temperature": i}} for i in range(100)]

    assert assert_status(post(client, plain, {"messages": messages}), 202).json() == {"accepted": 100}


def test_rejects_with_400_when_content_length_is_not_a_number(client, plain, before):
    response = assert_status(post(client, plain, GOOD, CONTENT_LENGTH="lots"), 400)

    assert "Content-Length" in response.json()["detail"]
    assert stored() == before


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml"])
def test_rejects_with_415_when_content_type_is_not_json(client, plain, before, content_type):
    response = assert_status(post(client, plain, json.dumps(GOOD), content_type=content_type), 415)

    assert "application/json" in response.json()["detail"]
    assert stored() == before


def test_accepts_json_with_a_charset_parameter(client, plain, before):
    assert_status(post(client, plain, GOOD, content_type="application/json; charset=utf-8"), 202)


@pytest.mark.parametrize("method", ["get", "put", "delete"])
def test_rejects_with_405_and_allow_header_when_method_is_not_post(client, plain, before, method):
    response = assert_status(getattr(client, method)(URL, HTTP_AUTHORIZATION=f"Device {plain}"), 405)

    assert response.headers["Allow"] == "POST" and "POST" in response.json()["detail"]
    assert stored() == before


@pytest.mark.parametrize(
    "authorization",
    ["", "Bearer abc.def", "Device", "Device ", "Token abc.def", "Device no-dot-in-it"],
    ids=["missing", "bearer", "scheme only", "empty token", "token scheme", "no prefix separator"],
)
def test_rejects_with_401_when_authorization_is_malformed(client, before, authorization):
    response = client.post(URL, json.dumps(GOOD), content_type="application/json", HTTP_AUTHORIZATION=authorization)

    assert "token" in assert_status(response, 401).json()["detail"].lower()
    assert stored() == before


def test_rejects_with_401_when_token_is_unknown(client, plain, before):
    prefix = plain.partition(".")[0]

    for token in ("0123456789ab.not-a-real-secret", f"{prefix}.wrong-secret"):
        response = assert_status(post(client, token, GOOD), 401)
        assert "Unknown device token" in response.json()["detail"]
    assert stored() == before


def test_rejects_with_403_when_token_is_revoked(client, device, plain, before):
    token, revoked = make_token(device, name="old PLC")
    token_revoke(token=token)

    response = assert_status(post(client, revoked, GOOD), 403)

    assert "revoked" in response.json()["detail"]
    assert stored() == before


def test_rejects_with_403_when_device_is_disabled(client, device, plain, before):
    Device.objects.filter(pk=device.pk).update(enabled=False)

    response = assert_status(post(client, plain, GOOD), 403)

    assert "disabled" in response.json()["detail"]
    assert stored() == before


def test_accepts_one_message_with_202_and_stores_its_readings(client, device, plain):
    at = timezone.now().replace(microsecond=123000) - timedelta(seconds=5)
    body = {"ts": at.isoformat(), "values": {"temperature": 71.3, "count_total": 1043}, "state": "running"}

    assert assert_status(post(client, plain, body), 202).json() == {"accepted": 1}

    readings = dict(TelemetryReading.objects.filter(device=device, ts=at).values_list("metric__name", "value"))
    assert readings == {"temperature": 71.3, "count_total": 1043.0}
    assert list(MachineState.objects.filter(device=device).values_list("ts", "state")) == [(at, "running")]


def test_accepts_a_batch_with_202_counting_every_message(client, device, plain):
    messages = [
        {"ts": iso(timedelta(seconds=-i)), "values": {"temperature": 70 + i, "vibration": 0.02}} for i in range(5)
    ]

    assert assert_status(post(client, plain, {"messages": messages}), 202).json() == {"accepted": 5}
    assert TelemetryReading.objects.filter(device=device).count() == 10


def test_accepts_z_and_offset_timestamps_as_the_same_instant(client, device, plain):
    at = timezone.now().replace(microsecond=0) - timedelta(minutes=2)
    plus_two = at.astimezone(timezone.get_fixed_timezone(120)).isoformat()
    zulu = at.strftime("%Y-%m-%dT%H:%M:%SZ")
    body = {"messages": [{"ts": zulu, "values": {"a": 1}}, {"ts": plus_two, "values": {"b": 2}}]}

    assert_status(post(client, plain, body), 202)

    assert set(TelemetryReading.objects.filter(device=device).values_list("ts", flat=True)) == {at}


def test_uses_server_time_when_ts_is_missing(client, device, plain):
    start = timezone.now()
    assert_status(post(client, plain, GOOD), 202)
    end = timezone.now()

    [reading] = TelemetryReading.objects.filter(device=device)
    assert start <= reading.ts <= end


def test_stores_a_state_change_and_no_reading_when_message_is_state_only(client, device, plain):
    at = timezone.now() - timedelta(seconds=30)

    assert assert_status(post(client, plain, {"ts": at.isoformat(), "state": "setup"}), 202).json() == {"accepted": 1}

    assert not TelemetryReading.objects.filter(device=device).exists()
    assert list(MachineState.objects.filter(device=device).values_list("state", flat=True)) == ["setup"]
    device.refresh_from_db()
    assert (device.state, device.state_since) == ("setup", at)


def test_accepts_a_metric_named_messages_in_the_single_message_form(client, device, plain):
    assert_status(post(client, plain, {"values": {"messages": 3, "temperature": 70}}), 202)

    names = set(TelemetryReading.objects.filter(device=device).values_list("metric__name", flat=True))
    assert names == {"messages", "temperature"}


def test_accepts_the_longest_metric_name_and_whole_float_counters(client, device, plain):
    name = "a" * 63

    assert_status(post(client, plain, {"values": {name: 1, "count_total": 12.0, "count_good": 0}}), 202)

    assert Metric.objects.filter(name=name).exists()
