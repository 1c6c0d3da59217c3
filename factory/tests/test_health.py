"""GET /healthz: every dependency probed for real; 503 naming what failed, never hanging."""

import socket
import time

import pytest
from channels.layers import channel_layers, get_channel_layer
from django.core.cache import caches
from django.test import Client

from conftest import assert_status, require_service
from factory.health import CHECKS, PROBE_TIMEOUT

pytestmark = pytest.mark.django_db

CLOSED = "redis://127.0.0.1:1/0"  # nothing listens on port 1: connections are refused at once
EMBEDDED_CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
EMBEDDED_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}


def redis_caches(url: str) -> dict:
    return {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": url}}


def redis_layers(url: str) -> dict:
    """The production channel layer (factory/settings.py: Redis pub/sub) on ``url``."""
    return {"default": {"BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer", "CONFIG": {"hosts": [url]}}}


@pytest.fixture(autouse=True)
def _fresh_channel_layers():
    # get_channel_layer() caches one layer per alias and ignores later CHANNEL_LAYERS changes.
    channel_layers.backends = {}
    yield
    channel_layers.backends = {}


@pytest.fixture
def embedded(settings):
    """The embedded developer stack, whatever the environment of this test run points at."""
    settings.CACHES = EMBEDDED_CACHES
    settings.CHANNEL_LAYERS = EMBEDDED_LAYERS
    settings.CELERY_TASK_ALWAYS_EAGER = True
    return settings


@pytest.fixture
def silent_server():
    """A TCP port that accepts connections and never answers (a wedged or half-open service)."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    yield server.getsockname()[1]
    server.close()


def get_healthz():
    response = Client().get("/healthz")
    return response, response.json()


def get_healthz_of_a_hanging_service():
    """/healthz while one service never answers: each probe gives up after PROBE_TIMEOUT, so the
    answer comes within the sum of all probes' time-outs (the time-out elapsing is the behaviour
    under test; a hang would fail here, not at the suite's time limit)."""
    bound = len(CHECKS) * PROBE_TIMEOUT
    started = time.monotonic()
    response, body = get_healthz()
    assert time.monotonic() - started < bound, f"/healthz hung past every probe's time-out ({bound} s)"
    return response, body


def test_answers_200_with_every_check_ok_when_running_the_embedded_default(embedded):
    response, body = get_healthz()
    assert_status(response, 200)
    assert body["status"] == "ok"
    assert body["failing"] == []
    assert set(body["checks"]) == {"database", "cache", "channel_layer", "broker"}
    assert all(check["ok"] for check in body["checks"].values())
    assert all(check["ms"] >= 0 for check in body["checks"].values())


def test_is_never_cached_when_polled(embedded):
    response, _ = get_healthz()
    assert "no-cache" in response["Cache-Control"]
    assert "max-age=0" in response["Cache-Control"]


def test_answers_without_https_redirect_when_ssl_redirect_is_on(embedded):
    # Load balancers probe the plain-HTTP port inside the network.
    embedded.SECURE_SSL_REDIRECT = True
    response, _ = get_healthz()
    assert_status(response, 200)
    assert_status(Client().get("/accounts/login/"), 301)


def test_answers_503_naming_cache_and_channel_layer_when_redis_port_is_closed(embedded):
    embedded.CACHES = redis_caches(CLOSED)
    embedded.CHANNEL_LAYERS = redis_layers(CLOSED)
    response, body = get_healthz()
    assert_status(response, 503)
    assert body["status"] == "fail"
    assert body["failing"] == ["cache", "channel_layer"]
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["cache"] == {"ok": False}
    assert body["checks"]["channel_layer"] == {"ok": False}


def test_reveals_no_address_or_error_text_when_a_check_fails(embedded):
    embedded.CACHES = redis_caches(CLOSED)
    response, _ = get_healthz()
    assert_status(response, 503)
    content = response.content.decode()
    assert "127.0.0.1" not in content
    assert "refused" not in content.lower()


def test_answers_503_naming_only_cache_when_just_the_cache_is_down(embedded):
    embedded.CACHES = redis_caches(CLOSED)
    response, body = get_healthz()
    assert_status(response, 503)
    assert body["failing"] == ["cache"]


def test_answers_503_naming_broker_when_broker_port_is_closed(embedded):
    embedded.CELERY_TASK_ALWAYS_EAGER = False
    embedded.CELERY_BROKER_URL = CLOSED
    response, body = get_healthz()
    assert_status(response, 503)
    assert body["failing"] == ["broker"]


def test_answers_503_within_seconds_when_redis_broker_never_answers(embedded, silent_server):
    embedded.CELERY_TASK_ALWAYS_EAGER = False
    embedded.CELERY_BROKER_URL = f"redis://127.0.0.1:{silent_server}/0"
    response, body = get_healthz_of_a_hanging_service()
    assert_status(response, 503)
    assert body["failing"] == ["broker"]


def test_answers_503_within_seconds_when_amqp_broker_never_answers(embedded, silent_server):
    embedded.CELERY_TASK_ALWAYS_EAGER = False
    embedded.CELERY_BROKER_URL = f"amqp://guest:guest@127.0.0.1:{silent_server}//"
    response, body = get_healthz_of_a_hanging_service()
    assert_status(response, 503)
    assert body["failing"] == ["broker"]


def test_answers_503_within_seconds_when_channel_layer_never_answers(embedded, silent_server):
    embedded.CHANNEL_LAYERS = redis_layers(f"redis://127.0.0.1:{silent_server}/0")
    response, body = get_healthz_of_a_hanging_service()
    assert_status(response, 503)
    assert body["failing"] == ["channel_layer"]


def test_skips_broker_probe_when_tasks_run_eagerly(embedded):
    # The embedded stack has no broker: eager Celery runs tasks in the request.
    embedded.CELERY_BROKER_URL = CLOSED
    response, body = get_healthz()
    assert_status(response, 200)
    assert body["checks"]["broker"]["ok"] is True


@pytest.mark.services
def test_answers_200_with_redis_cache_and_channel_layer_when_real_redis_is_configured(settings):
    url = require_service("REDIS_URL")
    settings.CACHES = redis_caches(url)
    settings.CHANNEL_LAYERS = redis_layers(url)
    settings.CELERY_TASK_ALWAYS_EAGER = True
    response, body = get_healthz()
    assert_status(response, 200)
    assert body["failing"] == []
    assert body["checks"]["cache"]["ok"] is True
    assert body["checks"]["channel_layer"]["ok"] is True
    assert type(caches["default"]).__name__ == "RedisCache"
    assert type(get_channel_layer()).__name__ == "RedisPubSubChannelLayer"


@pytest.mark.services
def test_answers_200_with_broker_ok_when_real_redis_broker_is_configured(embedded):
    url = require_service("REDIS_URL")
    embedded.CELERY_TASK_ALWAYS_EAGER = False
    embedded.CELERY_BROKER_URL = url
    response, body = get_healthz()
    assert_status(response, 200)
    assert body["checks"]["broker"]["ok"] is True


@pytest.mark.services
def test_answers_200_with_the_settings_of_this_run_when_real_services_are_configured():
    # No override at all: whatever DATABASE_URL / REDIS_URL / CELERY_BROKER_URL this run uses.
    require_service("REDIS_URL")
    response, body = get_healthz()
    assert_status(response, 200)
    assert body["failing"] == []
