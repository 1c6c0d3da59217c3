"""Serving the metrics: ``/metrics`` on the web, and the small exporter of the bridge and the worker.

Who may read them (``metrics_access``): a client address in ``METRICS_ALLOWED_IPS`` (CIDRs; the
web takes the one address ``factory.clientip`` decided, the exporter its TCP peer), or
``Authorization: Bearer <METRICS_TOKEN>``. Without either setting metrics are off: 404. A
request without credentials from elsewhere gets 401 when a token is configured (403 when only
addresses are), a wrong token 403.

The web's scrape adds what the database and the broker know at that moment (``StateCollector``):
open alarms by severity and state, rollouts by state, tasks waiting in the Celery queues. Only
the web adds them, so that a Prometheus scraping every process counts them once.
"""

import hmac
import ipaddress
import logging
import threading
from functools import lru_cache
from wsgiref.simple_server import WSGIRequestHandler, make_server

from django.conf import settings
from django.db import DatabaseError
from django.db.models import Count
from django.http import HttpResponse, JsonResponse
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import ThreadingWSGIServer
from prometheus_client.multiprocess import MultiProcessCollector

from factory import metrics
from factory.clientip import client_ip

logger = logging.getLogger(__name__)


@lru_cache(maxsize=4)
def _networks(entries: tuple[str, ...]) -> tuple:
    return tuple(ipaddress.ip_network(entry, strict=False) for entry in entries)


def metrics_access(authorization: str, address: str) -> tuple[int, str] | None:
    """None when the caller may read the metrics, else ``(status, detail)``."""
    token, allowed = settings.METRICS_TOKEN, settings.METRICS_ALLOWED_IPS
    if not token and not allowed:
        return 404, "Metrics are off: set METRICS_TOKEN or METRICS_ALLOWED_IPS (README 'Metrics')."
    scheme, _, given = authorization.partition(" ")
    if token and scheme.lower() == "bearer" and given:
        if hmac.compare_digest(given.strip().encode(), token.encode()):
            return None
        return 403, "Wrong metrics token."
    try:
        ip = ipaddress.ip_address(address.strip("[]"))
    except ValueError:
        ip = None
    if ip is not None:
        ip = getattr(ip, "ipv4_mapped", None) or ip
        if any(ip in network for network in _networks(tuple(allowed))):
            return None
    if token:
        return 401, "Send Authorization: Bearer <METRICS_TOKEN>."
    return 403, f"{address} is not in METRICS_ALLOWED_IPS."


def process_registry() -> CollectorRegistry:
    """Every process's values in the metrics directory (dead processes' live gauges dropped first)."""
    metrics.mark_dead_processes(metrics.DIRECTORY)
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(metrics.DIRECTORY))
    return registry


class StateCollector:
    """Gauges read at scrape time: one query for alarms, one for rollouts, one Redis pipeline for queues."""

    def collect(self):
        from alerts.models import Alarm
        from alerts.models.rule import Severity
        from firmware.models import Rollout

        try:
            alarms = GaugeMetricFamily(
                "factory_alarms_open", "Alarms not yet closed, by severity and state.", labels=["severity", "state"]
            )
            counts = dict.fromkeys(
                ((s, st) for s in Severity.values for st in Alarm.State.values if st != Alarm.State.CLOSED), 0
            )
            rows = Alarm.objects.exclude(state=Alarm.State.CLOSED).values_list("severity", "state")
            counts.update({(s, st): n for s, st, n in rows.annotate(n=Count("pk")).order_by()})
            for (severity, state), n in sorted(counts.items()):
                alarms.add_metric([severity, state], n)
            rollouts = GaugeMetricFamily("factory_rollouts", "Firmware rollouts, by state.", labels=["state"])
            by_state = dict.fromkeys(Rollout.State.values, 0)
            by_state.update(dict(Rollout.objects.values_list("state").annotate(n=Count("pk")).order_by()))
            for state, n in sorted(by_state.items()):
                rollouts.add_metric([state], n)
        except DatabaseError:
            logger.warning("metrics: the database did not answer; alarm and rollout gauges left out")
        else:
            yield alarms
            yield rollouts
        queues = _queue_lengths()
        if queues is not None:
            family = GaugeMetricFamily(
                "factory_celery_queue_length", "Celery tasks waiting in the broker, by queue.", labels=["queue"]
            )
            for name, length in sorted(queues.items()):
                family.add_metric([name], length)
            yield family


_brokers: dict[str, object] = {}


def _queue_lengths() -> dict[str, int] | None:
    """Messages waiting per Celery queue (kombu's Redis transport keeps each queue as a list); None
    when Celery is eager, the broker is not Redis, or it does not answer."""
    url = settings.CELERY_BROKER_URL
    if settings.CELERY_TASK_ALWAYS_EAGER or not url.startswith(("redis://", "rediss://")):
        return None
    import redis

    from factory.celery import app

    client = _brokers.get(url)
    if client is None:
        client = _brokers[url] = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
    names = sorted(app.amqp.queues) or [app.conf.task_default_queue]
    try:
        pipe = client.pipeline(transaction=False)
        for name in names:
            pipe.llen(name)
        return dict(zip(names, pipe.execute(), strict=True))
    except redis.RedisError:
        logger.warning("metrics: the Celery broker did not answer; queue lengths left out")
        return None


@require_GET
def metrics_view(request):
    """``GET /metrics``: the Prometheus text format, for the callers ``metrics_access`` lets in."""
    refused = metrics_access(request.headers.get("Authorization", ""), client_ip(request))
    if refused:
        status, detail = refused
        response = JsonResponse({"detail": detail}, status=status)
        if status == 401:
            response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    registry = process_registry()
    registry.register(StateCollector())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass


def _exporter_app(environ, start_response):
    refused = metrics_access(environ.get("HTTP_AUTHORIZATION", ""), environ.get("REMOTE_ADDR", ""))
    if environ.get("PATH_INFO", "/") not in ("/", "/metrics"):
        refused = 404, "Not found: GET /metrics."
    if refused:
        status, detail = refused
        headers = [("Content-Type", "text/plain; charset=utf-8")]
        if status == 401:
            headers.append(("WWW-Authenticate", 'Bearer realm="metrics"'))
        start_response(f"{status} {'Unauthorized' if status == 401 else 'Refused'}", headers)
        return [detail.encode() + b"\n"]
    body = generate_latest(process_registry())
    start_response("200 OK", [("Content-Type", CONTENT_TYPE_LATEST)])
    return [body]


def start_exporter(name: str):
    """Serve this host's metrics directory on ``METRICS_BIND``:``METRICS_PORT`` from a daemon thread
    (the MQTT bridge and the Celery worker, which have no web server); None when the port is 0."""
    port = settings.METRICS_PORT
    if not port:
        return None
    if not settings.METRICS_TOKEN and not settings.METRICS_ALLOWED_IPS:
        logger.warning("%s: METRICS_PORT is set but neither METRICS_TOKEN nor METRICS_ALLOWED_IPS: metrics off", name)
    server = make_server(settings.METRICS_BIND, port, _exporter_app, ThreadingWSGIServer, handler_class=_QuietHandler)
    threading.Thread(target=server.serve_forever, name=f"{name}-metrics", daemon=True).start()
    logger.info("%s: metrics on http://%s:%s/metrics", name, settings.METRICS_BIND, server.server_port)
    return server
