"""GET /healthz: database, cache, channel layer and broker, each checked for real.

200 when all answer, 503 naming what failed. Load balancers and docker-compose poll this, so it
is unauthenticated and reveals only up/down per part (no host names, no error text).
"""

import asyncio
import logging
import time
import uuid

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache

logger = logging.getLogger(__name__)

# Seconds each probe may take before it counts as failed.
PROBE_TIMEOUT = 2


def _database():
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _cache():
    key = f"healthz:{uuid.uuid4().hex}"
    cache.set(key, "ok", 10)
    if cache.get(key) != "ok":
        raise RuntimeError("cache did not return the value just written")
    cache.delete(key)


def _channel_layer():
    layer = get_channel_layer()

    async def roundtrip():
        channel = await layer.new_channel()
        await layer.send(channel, {"type": "healthz"})
        await layer.receive(channel)

    async def bounded():
        await asyncio.wait_for(roundtrip(), timeout=PROBE_TIMEOUT)

    async_to_sync(bounded)()


def _broker():
    if settings.CELERY_TASK_ALWAYS_EAGER:
        return
    from factory.celery import app

    # kombu's redis transport sets no socket timeouts: a broker that accepts the connection but
    # never answers (overloaded, half-open behind a proxy) would hang this request for good. The
    # socket_* options bound redis, read/write_timeout bound AMQP; each transport ignores the
    # other's. One attempt, no retry: the load balancer polling us is the retry loop.
    options = {
        "socket_connect_timeout": PROBE_TIMEOUT,
        "socket_timeout": PROBE_TIMEOUT,
        "read_timeout": PROBE_TIMEOUT,
        "write_timeout": PROBE_TIMEOUT,
    }
    url = settings.CELERY_BROKER_URL
    with app.connection_for_write(url, connect_timeout=PROBE_TIMEOUT, transport_options=options) as conn:
        conn.ensure_connection(max_retries=0, timeout=PROBE_TIMEOUT)


CHECKS = {"database": _database, "cache": _cache, "channel_layer": _channel_layer, "broker": _broker}


@never_cache
def healthz(request):
    results = {}
    for name, check in CHECKS.items():
        started = time.monotonic()
        try:
            check()
        except Exception as exc:  # a health check must report any failure, never raise it
            logger.warning("healthz: %s failed: %s", name, type(exc).__name__)
            results[name] = {"ok": False}
        else:
            results[name] = {"ok": True, "ms": round((time.monotonic() - started) * 1000, 1)}
    failing = [name for name, result in results.items() if not result["ok"]]
    body = {"status": "fail" if failing else "ok", "failing": failing, "checks": results}
    return JsonResponse(body, status=503 if failing else 200)
