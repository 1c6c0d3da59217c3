"""Prometheus metrics of every process (web, MQTT bridge, Celery worker): the definitions.

prometheus-client in multiprocess mode: each process (each Uvicorn worker, each Celery pool
process, the bridge) writes its values into memory-mapped files under ``METRICS_DIR``, and a
scrape (``factory.metrics_export``) sums the files of every process that shares the directory. So
the web's ``/metrics`` covers all its Uvicorn workers, and on one host (``make run``, the tests)
the bridge and the worker too when they share ``VAR_DIR``; on separate hosts (docker-compose) the
bridge and the worker serve their own directory on ``METRICS_PORT``.

The directory is prepared once per process, before the first metric exists (``_prepare``): when
no other process of the directory is alive it is a new start and the old files go; otherwise
the files of dead processes stay (their counts keep the sums from going backwards) but their
live gauges are dropped. Counting is one memory write per call: hot paths count once per batch.
"""

import contextlib
import fcntl
import os
from pathlib import Path

from django.conf import settings

_MARKER = ".pid"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def file_pids(directory: Path) -> set[int]:
    """The processes with files in ``directory`` (``counter_123.db``) or a start marker (``123.pid``)."""
    pids = set()
    for path in directory.iterdir():
        stem = path.name.removesuffix(".db").removesuffix(_MARKER)
        number = stem.rsplit("_", 1)[-1]
        if path.name != stem and number.isdigit():
            pids.add(int(number))
    return pids


def mark_dead_processes(directory: Path, *, keep: int | None = None) -> None:
    """Drop the live gauges (browser connections, bridge state) of processes that are gone."""
    from prometheus_client import multiprocess

    for pid in file_pids(directory) - {keep}:
        if not _alive(pid):
            with contextlib.suppress(FileNotFoundError):  # another web worker's scrape was first
                multiprocess.mark_process_dead(pid, str(directory))
            (directory / f"{pid}{_MARKER}").unlink(missing_ok=True)


def _prepare(directory: Path) -> None:
    """Claim ``directory`` for this process (see the module docstring); under a lock, since the
    workers of one server start together and one must not wipe another's fresh files."""
    directory.mkdir(parents=True, exist_ok=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)
    me = os.getpid()
    with open(directory / ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        others = file_pids(directory) - {me}
        if not any(_alive(pid) for pid in others):
            for path in directory.iterdir():
                if path.name.endswith((".db", _MARKER)):
                    path.unlink(missing_ok=True)
        else:
            mark_dead_processes(directory, keep=me)
        (directory / f"{me}{_MARKER}").touch()


DIRECTORY = Path(settings.METRICS_DIR)
_prepare(DIRECTORY)

from prometheus_client import Counter, Gauge, Histogram, values  # noqa: E402 - after the directory is set

if not values.ValueClass._multiprocess:  # prometheus_client was imported before the directory was set
    values.ValueClass = values.MultiProcessValue()

TRANSPORTS = ("http", "mqtt", "websocket")
_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)

INGEST_READINGS = Counter(
    "factory_ingest_readings",
    "Readings (one value of one metric) committed, by transport; a re-sent reading counts again.",
    ["transport"],
)
INGEST_MESSAGES = Counter(
    "factory_ingest_messages", "Telemetry messages committed (a timestamp and its values), by transport.", ["transport"]
)
INGEST_REJECTED = Counter(
    "factory_ingest_rejected",
    "Telemetry requests (HTTP), frames (WebSocket) and messages (MQTT) refused, by transport and reason.",
    ["transport", "reason"],
)
GROUP_COMMIT_SIZE = Histogram(
    "factory_group_commit_batch_size",
    "Requests handled together in one group commit of a lean device endpoint.",
    ["endpoint"],
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 200),
)
GROUP_COMMIT_SECONDS = Histogram(
    "factory_group_commit_seconds",
    "Time to handle one group commit (authenticate, validate, store) of a lean device endpoint.",
    ["endpoint"],
    buckets=_SECONDS,
)
LIVE_FRAMES_SENT = Counter("factory_live_frames_sent", "Frames written to browsers' live streams (/ws/live/).")
LIVE_FRAMES_DROPPED = Counter(
    "factory_live_frames_dropped", "Live frames never written: the browser fell too far behind or went away."
)
LIVE_CONNECTIONS = Gauge(
    "factory_live_connections", "Open browser live streams (/ws/live/).", multiprocess_mode="livesum"
)
BRIDGE_LAG = Histogram(
    "factory_bridge_lag_seconds",
    "From the MQTT bridge receiving a message to its batch's commit (the oldest message of each batch).",
    buckets=_SECONDS,
)
BRIDGE_HELD = Gauge(
    "factory_bridge_held_messages",
    "Messages the MQTT bridge holds: received, not yet committed and acknowledged.",
    multiprocess_mode="livesum",
)
BRIDGE_CONNECTED = Gauge(
    "factory_bridge_connected", "MQTT bridges connected and subscribed.", multiprocess_mode="livesum"
)
BRIDGE_DEAD_LETTERS = Counter(
    "factory_bridge_dead_letters", "MQTT messages kept as dead letters instead of readings, by reason.", ["reason"]
)
TASK_SECONDS = Histogram(
    "factory_celery_task_seconds", "Celery task run time, by task and outcome.", ["task", "state"], buckets=_SECONDS
)
TASK_FAILURES = Counter(
    "factory_celery_task_failures", "Celery tasks that raised, by task and exception class.", ["task", "exception"]
)
TASK_RETRIES = Counter("factory_celery_task_retries", "Celery task retries scheduled, by task.", ["task"])

# Known label values exist from the start (at 0), so that a rate() has a first point.
for _transport in TRANSPORTS:
    INGEST_READINGS.labels(_transport)
    INGEST_MESSAGES.labels(_transport)
for _endpoint in ("telemetry", "firmware status"):  # LeanEndpoint names
    GROUP_COMMIT_SIZE.labels(_endpoint)
    GROUP_COMMIT_SECONDS.labels(_endpoint)


def count_stored(transport: str, messages: int, readings: int) -> None:
    """A committed ingest batch (call once per batch, after commit)."""
    INGEST_MESSAGES.labels(transport).inc(messages)
    INGEST_READINGS.labels(transport).inc(readings)


def count_rejected(transport: str, reason: str, amount: int = 1) -> None:
    INGEST_REJECTED.labels(transport, reason).inc(amount)
