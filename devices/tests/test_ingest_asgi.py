"""``POST /api/v1/telemetry/`` through the real ASGI application (the lean route in factory/asgi.py).

The lean path runs the ORM in worker threads, so these tests commit their rows
(``transaction=True``) and read them back after the answer.
"""

import asyncio
import time
from datetime import UTC, datetime, timedelta

import orjson
import pytest
import time_machine
from asgiref.sync import sync_to_async
from django.utils import timezone

from conftest import assert_status, require_service
from devices.ingest_http import telemetry_http_batch
from devices.models import Device, LatestValue, TelemetryReading
from devices.services.tokens import token_revoke
from devices.tests.factories import make_device, make_token

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]

URL = "/api/v1/telemetry/"
GOOD = b'{"values": {"temperature": 71.5}}'
DEAD_REDIS = "redis://127.0.0.1:1/0"


async def provisioned(uid: str, **fields) -> tuple[Device, str]:
    def make():
        device = make_device(uid=uid, **fields)
        return device, make_token(device)[1]

    return await sync_to_async(make)()


def post(asgi_client, plain: str | None, content=GOOD, *, content_type="application/json", **headers):
    if plain is not None:
        headers["Authorization"] = f"Device {plain}"
    if content_type is not None:
        headers["Content-Type"] = content_type
    return asgi_client.post(URL, content=content, headers=headers)


async def reading_count(device=None) -> int:
    rows = TelemetryReading.objects.all() if device is None else TelemetryReading.objects.filter(device=device)
    return await rows.acount()


async def test_accepts_with_202_and_commits_the_rows_when_data_is_good(asgi_client):
    device, plain = await provisioned("press-07")
    at = (timezone.now() - timedelta(seconds=5)).replace(microsecond=0)
    single = {"ts": at.isoformat(), "values": {"temperature": 71.3, "count_total": 1043}, "state": "running"}
    later = (at + timedelta(seconds=1)).isoformat()
    batch = {"messages": [{"ts": later, "values": {"vibration": 0.02}}, {"values": {"vibration": 0.03}}]}

    first = assert_status(await post(asgi_client, plain, orjson.dumps(single)), 202)
    second = assert_status(await post(asgi_client, plain, orjson.dumps(batch)), 202)

    assert (first.json(), second.json()) == ({"accepted": 1}, {"accepted": 2})
    assert first.headers["content-type"] == "application/json"
    assert await reading_count(device) == 4
    assert await LatestValue.objects.filter(device_id=device.pk, metric__name="temperature").aget() is not None
    device = await Device.objects.aget(pk=device.pk)
    assert (device.online, device.state, device.state_since) == (True, "running", at)


async def test_answers_400_naming_the_field_and_stores_nothing_when_a_message_is_invalid(asgi_client):
    device, plain = await provisioned("press-07")
    body = b'{"messages": [{"values": {"a": 1}}, {"values": {"b": 2}}, {"values": {"temperature": NaN}}]}'

    response = assert_status(await post(asgi_client, plain, body), 400)

    [error] = response.json()["errors"]
    assert (error["index"], error["field"]) == (2, "values.temperature")
    assert await reading_count(device) == 0


async def test_answers_each_request_on_its_own_when_valid_and_invalid_ones_arrive_together(asgi_client):
    (good, good_plain), (bad, bad_plain) = await provisioned("press-07"), await provisioned("press-08")
    bodies = [
        (good_plain, GOOD),
        (bad_plain, b'{"values": {"t\xe9mperature": 1}}'),
        (bad_plain, b"{"),
        (good_plain, GOOD),
    ]

    responses = await asyncio.gather(*(post(asgi_client, plain, body) for plain, body in bodies))

    assert [response.status_code for response in responses] == [202, 400, 400, 202]
    assert "UTF-8" in responses[1].json()["errors"][0]["message"]
    assert await reading_count(bad) == 0
    assert await reading_count(good) == 2  # each request has its own receive time, so its own ts


async def test_answers_each_request_of_a_group_commit_on_its_own():
    (good, good_plain), (bad, bad_plain) = await provisioned("press-07"), await provisioned("press-08")
    group = [
        (f"Device {good_plain}", GOOD),
        (f"Device {bad_plain}", b'{"values": {"t\xe9mperature": 1}}'),
        ("Bearer nonsense", GOOD),
        (f"Device {good_plain}", GOOD),
    ]

    responses = await sync_to_async(telemetry_http_batch)(group)

    assert [status for status, _, _ in responses] == [202, 400, 401, 202]
    assert await reading_count(bad) == 0
    assert await reading_count(good) == 2  # two requests, two receive times: no duplicate ts


async def test_answers_413_when_content_length_is_over_the_limit(asgi_client, settings):
    _, plain = await provisioned("press-07")
    body = GOOD + b" " * settings.TELEMETRY_MAX_BODY_BYTES

    response = assert_status(await post(asgi_client, plain, body), 413)

    assert "smaller batches" in response.json()["detail"]
    assert await reading_count() == 0


async def test_answers_413_without_reading_everything_when_a_chunked_body_grows_past_the_limit(asgi_client, settings):
    settings.TELEMETRY_MAX_BODY_BYTES = 64 * 1024
    _, plain = await provisioned("press-07")
    chunks_sent = 0

    async def endless():
        nonlocal chunks_sent
        yield b'{"messages": ['
        for _ in range(1000):  # 16 MB if it were all read
            chunks_sent += 1
            yield b'{"values": {"a": 1}},' * 800

    response = assert_status(await post(asgi_client, plain, endless()), 413)

    assert "smaller batches" in response.json()["detail"]
    assert chunks_sent < 10
    assert await reading_count() == 0


async def test_accepts_a_chunked_body_under_the_limit(asgi_client):
    device, plain = await provisioned("press-07")

    async def pieces():
        yield b'{"messages": [{"values": {"a": 1}},'
        yield b' {"values": {"b": 2}}]}'

    assert (await post(asgi_client, plain, pieces())).json() == {"accepted": 2}
    assert await reading_count(device) == 2


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
async def test_answers_415_when_content_type_is_not_json(asgi_client, content_type):
    _, plain = await provisioned("press-07")

    response = assert_status(await post(asgi_client, plain, content_type=content_type), 415)

    assert "application/json" in response.json()["detail"]
    assert await reading_count() == 0


async def test_answers_405_with_allow_when_method_is_get(asgi_client):
    _, plain = await provisioned("press-07")

    response = assert_status(await asgi_client.get(URL, headers={"Authorization": f"Device {plain}"}), 405)

    assert response.headers["allow"] == "POST" and response.json() == {"detail": "Use POST."}


@pytest.mark.parametrize(
    "authorization", [None, "Bearer abc.def", "Device ", "Device 0123456789ab.not-a-real-secret", "Device no-dot"]
)
async def test_answers_401_when_the_token_is_missing_malformed_or_unknown(asgi_client, authorization):
    await provisioned("press-07")
    headers = {} if authorization is None else {"Authorization": authorization}

    response = assert_status(await post(asgi_client, None, **headers), 401)

    assert "token" in response.json()["detail"].lower()
    assert await reading_count() == 0


async def test_answers_403_when_the_token_is_revoked_or_the_device_disabled(asgi_client):
    device, plain = await provisioned("press-07")
    token, revoked = await sync_to_async(make_token)(device, "old PLC")
    await sync_to_async(token_revoke)(token=token)

    assert "revoked" in assert_status(await post(asgi_client, revoked), 403).json()["detail"]
    await Device.objects.filter(pk=device.pk).aupdate(enabled=False)
    assert "disabled" in assert_status(await post(asgi_client, plain), 403).json()["detail"]
    assert await reading_count() == 0


def _next_window_start() -> datetime:
    """The start of the next 10-second rate-limit window, so a test's requests fit in one window."""
    return datetime.fromtimestamp((int(time.time()) // 10 + 1) * 10 + 0.001, tz=UTC)


@pytest.mark.parametrize("counter", ["django cache", pytest.param("redis", marks=pytest.mark.services)])
async def test_answers_429_with_retry_after_when_a_device_exceeds_its_rate(asgi_client, settings, counter):
    if counter == "redis":
        require_service("REDIS_URL")
    else:
        settings.REDIS_URL = ""
    settings.TELEMETRY_RATE_LIMIT = 1  # per second, counted over 10-second windows: 10 requests
    device, plain = await provisioned("press-07")
    _, other_plain = await provisioned("press-08")

    with time_machine.travel(_next_window_start(), tick=True):
        accepted = [(await post(asgi_client, plain)).status_code for _ in range(10)]
        limited = await post(asgi_client, plain)
        other = await post(asgi_client, other_plain)

    assert accepted == [202] * 10
    assert_status(limited, 429)
    assert 1 <= int(limited.headers["retry-after"]) <= 10
    assert "press-07" in limited.json()["detail"]
    assert_status(other, 202)
    assert await reading_count(device) == 10


async def test_stores_readings_when_redis_is_down(asgi_client, settings):
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": DEAD_REDIS,
            "OPTIONS": {"socket_timeout": 0.2, "socket_connect_timeout": 0.2},
        }
    }
    settings.REDIS_URL = DEAD_REDIS  # the rate-limit counters live there too
    device, plain = await provisioned("press-07")
    body = orjson.dumps({"messages": [{"ts": timezone.now().isoformat(), "values": {"a": 1, "b": 2}}]})

    response = assert_status(await post(asgi_client, plain, body), 202)

    assert response.json() == {"accepted": 1}
    assert await reading_count(device) == 2
    assert await LatestValue.objects.filter(device_id=device.pk).acount() == 2
