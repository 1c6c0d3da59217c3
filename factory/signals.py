"""Celery hooks of the project (connected in ``FactoryConfig.ready``): the request id travels with
each task, every task is timed, and the worker serves its metrics.

- ``before_task_publish`` (the process that queues): the current ``request_id`` goes into the
  message's headers.
- ``task_prerun`` / ``task_postrun`` (the worker): the task runs with that id as its own
  (``factory.logs``), so its log lines and the tasks it queues carry it; its run time is observed
  in ``factory_celery_task_seconds`` by outcome. ``task_failure`` and ``task_retry`` count.
- ``worker_ready`` (the worker's main process): ``METRICS_PORT`` exporter (``factory.metrics_export``).
"""

import time

from celery import signals

from factory.logs import request_id
from factory.metrics import TASK_FAILURES, TASK_RETRIES, TASK_SECONDS

HEADER = "request_id"
_running: dict[str, tuple[float, object]] = {}  # task id → (start, the context token to restore)


@signals.before_task_publish.connect
def add_request_id(headers=None, **kwargs):
    current = request_id.get()
    if current and headers is not None and HEADER not in headers:
        headers[HEADER] = current


@signals.task_prerun.connect
def start_task(task_id=None, task=None, **kwargs):
    # A task run eagerly (the embedded default) stays in its caller's context and keeps its id.
    incoming = getattr(task.request, HEADER, None) if task is not None else None
    token = request_id.set(incoming) if incoming else None
    _running[task_id] = (time.perf_counter(), token)


@signals.task_postrun.connect
def finish_task(task_id=None, task=None, state=None, **kwargs):
    started, token = _running.pop(task_id, (None, None))
    if started is not None and task is not None:
        TASK_SECONDS.labels(task.name, (state or "unknown").lower()).observe(time.perf_counter() - started)
    if token is not None:
        request_id.reset(token)


@signals.task_failure.connect
def count_failure(sender=None, exception=None, **kwargs):
    TASK_FAILURES.labels(getattr(sender, "name", "unknown"), type(exception).__name__).inc()


@signals.task_retry.connect
def count_retry(sender=None, **kwargs):
    TASK_RETRIES.labels(getattr(sender, "name", "unknown")).inc()


@signals.worker_ready.connect
def serve_worker_metrics(**kwargs):
    from factory.metrics_export import start_exporter

    start_exporter("celery-worker")
