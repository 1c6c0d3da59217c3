"""The MQTT bridge: ``factory/devices/+/telemetry`` (QoS 1) into the ingest service, and devices'
command results (``factory/devices/+/commands/result``) into ``commands.services``.

Delivery guarantee (at least once, for QoS 1): a message is acknowledged to the broker only after
the transaction holding it (or its dead-letter row) has committed, and acknowledgements go out in
the order the messages arrived (MQTT 5 §4.6). The bridge keeps a persistent session (fixed client
id, ``clean_start=False``, a session expiry), so messages that arrive while it is down, or that
it received but had not committed when it died, are delivered again.

While the database is unavailable it keeps the batch, retries with backoff and acknowledges
nothing: a MariaDB restart loses nothing. What it can hold meanwhile is bounded by the Receive
Maximum it announces (the broker sends at most that many unacknowledged messages) plus the
broker's own queue for the session (Mosquitto's ``max_queued_messages``, 1000 by default; beyond
that Mosquitto drops messages for the client, so size it for the longest outage to ride out).

A connection to the broker can drop while a batch is being stored. Packet ids belong to one
connection's view of the session, so a message is acknowledged only on the connection it
arrived on; the broker redelivers the others, and copies still queued from the old connection
are skipped. A copy stored twice costs nothing when the message has a ``ts`` (readings are keyed
by device, metric and ts); without one it gets each receipt's time, and an invalid message gives
a second dead letter. On stop, an UNSUBSCRIBE round trip confirms that the broker has read the
last acknowledgements before the socket closes.

Invalid messages (bad payload, unknown or disabled device) are never dropped silently: each is
stored as a ``DeadLetter`` with its reason (visible in the admin) and then acknowledged.

The ingest's after-commit hooks (live dashboard events, the alert evaluation enqueue, OEE
late-data marks) run in a second thread, ``AfterCommitHooks``, one commit after another in commit
order, while the storing thread already stores the next batch: acknowledging never waits for them. The queue
between the two is short, so hooks that fall behind slow the storing down instead of piling up;
on stop the bridge runs every hook of what it committed before it exits.
"""

import logging
import queue
import threading
import time
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import unquote, urlparse

import orjson
import paho.mqtt.client as mqtt
from django.conf import settings
from django.db import Error, InterfaceError, OperationalError, close_old_connections, connection, transaction
from django.utils import timezone
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from devices.models import DeadLetter, Device
from devices.services.ingest import Deferrer, IngestItem, telemetry_parse, telemetry_store
from devices.services.telemetry_payload import PayloadError
from factory.metrics import BRIDGE_CONNECTED, BRIDGE_DEAD_LETTERS, BRIDGE_HELD, BRIDGE_LAG, count_rejected

logger = logging.getLogger(__name__)

TOPIC = "factory/devices/+/telemetry"
RESULT_TOPIC = "factory/devices/+/commands/result"  # README "Device commands"
SYNC_TOPIC = "factory/bridge/sync"  # never subscribed: unsubscribing from it is a round trip to the broker
DEAD_LETTER_PAYLOAD_MAX = 64 * 1024
# The bridge's buffer while the database is away (MQTT's maximum): at ~1 KB per held message,
# 65,535 messages are ~64 MB, and at 1,000 msgs/s they cover a one-minute outage.
RECEIVE_MAXIMUM = 65535
SESSION_EXPIRY = 7 * 24 * 3600
# Lost connections, "server has gone away", deadlocks, SQLite's "database is locked": worth a retry.
# Anything else (a statement the database refuses, a bug) fails the same way again.
TRANSIENT_DB_ERRORS = (OperationalError, InterfaceError)
RETRY_MIN, RETRY_MAX = 0.2, 2.0  # a failed connect is cheap: come back soon after the server does
IDLE_WAIT = 0.5
CONNECTION_CHECK_INTERVAL = 1.0


@dataclass(slots=True)
class Received:
    topic: str
    payload: bytes
    mid: int
    qos: int
    at: datetime
    connection: int | None = None  # which broker connection delivered it (None: not from the broker)


def _uid_from_topic(topic: str) -> str:
    parts = topic.split("/")
    return parts[2] if len(parts) in (4, 5) else ""


def _is_result(topic: str) -> bool:
    return topic.endswith("/commands/result")


def _record_result(received: Received, device: Device) -> str | None:
    """Record one command result in a savepoint; why it was refused, or None when recorded."""
    from commands.exceptions import CommandError
    from commands.models import CommandEvent
    from commands.services import command_result_record

    try:
        answer = orjson.loads(received.payload)
    except orjson.JSONDecodeError as exc:
        return f"payload: not JSON ({exc})."
    if not isinstance(answer, dict):
        return 'payload: send {"id", "status", "result"}.'
    try:
        with transaction.atomic():
            command_result_record(
                device=device, command_id=answer.get("id"), status=answer.get("status"), result=answer.get("result"),
                via=CommandEvent.Via.MQTT, now=received.at,
            )  # fmt: skip
    except CommandError as exc:
        return f"command result ({exc.status}): {exc.message}"
    return None


def _dead_letter(received: Received, reason: str, device: Device | None) -> DeadLetter:
    return DeadLetter(
        received_at=received.at,
        transport="mqtt",
        topic=received.topic[:255],
        device_uid=_uid_from_topic(received.topic)[:64],
        device=device,
        payload=received.payload[:DEAD_LETTER_PAYLOAD_MAX].decode("utf-8", "replace"),
        reason=reason[:2000],
    )


def _payload_reason(errors: list[dict]) -> str:
    """``messages[1].values.temperature: Must be a finite number.; ...``: each error names its field."""
    parts = []
    for error in errors:
        prefix = f"messages[{error['index']}]" if error["index"] is not None else ""
        field = ".".join(part for part in (prefix, error["field"]) if part) or "payload"
        parts.append(f"{field}: {error['message']}")
    return "; ".join(parts)


def _check(received: Received, device: Device | None) -> tuple[str, str] | None:
    """Why the message cannot be ingested, before parsing it: ``(kind, reason)``; None: go on and parse."""
    uid = _uid_from_topic(received.topic)
    if device is None:
        return "unknown_device", f"topic: unknown device uid {uid!r}."
    if not device.enabled:
        return "disabled_device", f"device: {uid!r} is disabled; its messages are refused."
    limit = settings.TELEMETRY_MAX_BODY_BYTES
    if len(received.payload) > limit:
        return "too_large", f"payload: {len(received.payload)} bytes exceed the limit of {limit}."
    return None


def _count_dead_letters(kinds: list[str]) -> None:
    """Dead letters by kind (``factory_bridge_dead_letters_total``, ``factory_ingest_rejected_total``)."""
    for kind in set(kinds):
        amount = kinds.count(kind)
        BRIDGE_DEAD_LETTERS.labels(kind).inc(amount)
        count_rejected("mqtt", kind, amount)


def bridge_process(batch: list[Received], *, defer_hooks: Deferrer | None = None) -> tuple[int, int]:
    """Store one batch: valid messages of every device through ``telemetry_store`` and invalid ones
    as ``DeadLetter`` rows, all in one transaction.

    Returns ``(accepted_messages, dead_letters)``; a payload in the ``messages`` form counts each
    of its messages. Raises ``DatabaseError`` when the database fails (nothing is then committed and
    the caller retries). Storing the same batch again adds no reading (readings are keyed by
    device, metric and ts; a message without ``ts`` gets its receive time) but adds dead letters.
    ``defer_hooks`` is passed on to ``telemetry_store``.
    """
    uids = {_uid_from_topic(r.topic) for r in batch}
    devices = {d.uid: d for d in Device.objects.filter(uid__in=uids)}
    items: dict[str, IngestItem] = {}
    dead, kinds, results = [], [], []
    for received in batch:
        uid = _uid_from_topic(received.topic)
        device = devices.get(uid)
        refused = _check(received, device)
        if refused is None and _is_result(received.topic):
            results.append((received, device))
            continue
        if refused is None:
            try:
                messages = telemetry_parse(received.payload, now=received.at)
            except PayloadError as exc:
                refused = "invalid", _payload_reason(exc.errors)
        if refused is not None:
            kinds.append(refused[0])
            dead.append(_dead_letter(received, refused[1], device))
            continue
        items.setdefault(uid, IngestItem(device=device, messages=[])).messages.extend(messages)
    with transaction.atomic():
        if items:
            accepted = telemetry_store(
                list(items.values()), received_at=timezone.now(), defer_hooks=defer_hooks, transport="mqtt"
            )
        else:
            accepted = 0
        for received, device in results:
            reason = _record_result(received, device)
            if reason is None:
                accepted += 1
            else:
                kinds.append("invalid")
                dead.append(_dead_letter(received, reason, device))
        DeadLetter.objects.bulk_create(dead)
        if kinds:
            transaction.on_commit(lambda: _count_dead_letters(kinds))
    return accepted, len(dead)


def bridge_keep_unstorable(received: Received, error: Exception) -> tuple[int, int]:
    """Keep a message whose storage fails for a non-transient reason as a dead letter; ``(0, 1)``."""
    device = Device.objects.filter(uid=_uid_from_topic(received.topic)).first()
    reason = f"storage: the message could not be stored ({type(error).__name__}: {error})."
    _dead_letter(received, reason, device).save()
    _count_dead_letters(["storage"])
    return 0, 1


class AfterCommitHooks:
    """A thread that runs the after-commit work of the bridge's commits, one after another.

    Kept although the live bus only hands its events over: the other hooks wait on the database
    (OEE's late-data marks) and on the broker (the alert evaluation enqueue), and storing the next
    batch must not wait for them.

    ``submit`` (called on commit by the storing thread) blocks while ``depth`` commits are
    waiting. A hook that raises is logged and the next one runs (the signal receivers behind it
    already isolate each other). The thread has its own database connection (OEE's late-data
    marks write through it).
    """

    def __init__(self, depth: int = 4):
        self.queue: queue.Queue = queue.Queue(maxsize=depth)
        self.thread = threading.Thread(target=self._run, name="mqtt-bridge-hooks", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def submit(self, hook) -> None:
        self.queue.put(hook)

    def _run(self) -> None:
        while (hook := self.queue.get()) is not None:
            try:
                close_old_connections()  # a restarted MariaDB, CONN_MAX_AGE: as a request would
                hook()
            except Exception:
                logger.exception("MQTT bridge: after-commit hook failed")
        with suppress(Error):
            connection.close()

    def close(self, timeout: float) -> bool:
        """Run what was submitted, then stop the thread; False if it did not finish within ``timeout``."""
        if not self.thread.is_alive():
            return True
        self.queue.put(None)
        self.thread.join(timeout)
        return not self.thread.is_alive()


class MqttBridge:
    """Runs the paho network loop in its own thread and stores batches from the thread calling ``run()``.

    ``stop()`` may be called from any thread: the bridge then stops taking messages, stores and
    acknowledges what it holds (retrying a failing database for ``stop_grace`` seconds, after
    which the broker keeps the unacknowledged ones for the next session), and disconnects.
    """

    def __init__(
        self,
        url: str,
        *,
        client_id: str,
        batch_size: int = 500,
        flush_interval: float = 0.05,
        receive_maximum: int = RECEIVE_MAXIMUM,
        session_expiry: int = SESSION_EXPIRY,
        summary_interval: float = 60.0,
        stop_grace: float = 10.0,
        shared_group: str | None = None,
    ):
        parsed = urlparse(url)
        self.host, self.port = parsed.hostname or "127.0.0.1", parsed.port or 1883
        self.tls = parsed.scheme == "mqtts"
        # Credentials in the URL win; otherwise the bridge's own (MQTT_BRIDGE_USERNAME/_PASSWORD).
        if parsed.username:
            self.username, self.password = unquote(parsed.username), unquote(parsed.password or "")
        elif settings.MQTT_BRIDGE_PASSWORD:
            self.username, self.password = settings.MQTT_BRIDGE_USERNAME, settings.MQTT_BRIDGE_PASSWORD
        else:
            self.username = self.password = None
        self.client_id = client_id
        # MQTT 5 shared subscription: the broker spreads the topic's messages over every bridge of
        # the group (each with its own client id and session), so several processes share the load.
        share = f"$share/{shared_group}/" if shared_group else ""
        self.topic, self.result_topic = f"{share}{TOPIC}", f"{share}{RESULT_TOPIC}"
        self.batch_size, self.flush_interval = batch_size, flush_interval
        self.receive_maximum, self.session_expiry = receive_maximum, session_expiry
        self.summary_interval, self.stop_grace = summary_interval, stop_grace
        self.inbox: queue.Queue[Received | None] = queue.Queue()
        self.stopping = threading.Event()
        self.ready = threading.Event()  # connected and subscribed
        self.db_connection_id: int | None = None  # MariaDB CONNECTION_ID() of the storing thread
        self.stats = dict.fromkeys(
            ("received", "accepted", "dead_letters", "acked", "batches", "db_errors", "qos0_dropped", "redelivered"), 0
        )
        self._lock = threading.Lock()
        self._intake_open = True
        self._connections = 0  # CONNACKs so far
        self._live: int | None = None  # number of the current connection, None while disconnected
        self._session_from = 1  # first connection of the broker session that holds our unacked messages
        self._stop_requested_at: float | None = None
        self._pending: list[Received] = []  # the batch being filled or stored
        self._connection_checked_at = 0.0
        self._summary_at = time.monotonic()
        self._summary_base = dict(self.stats)
        self.hooks = AfterCommitHooks()
        self.client = self._make_client()

    def _make_client(self) -> mqtt.Client:
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=self.client_id, protocol=mqtt.MQTTv5, manual_ack=True
        )
        if self.username:
            client.username_pw_set(self.username, self.password)
        if self.tls:
            client.tls_set(ca_certs=settings.MQTT_CA_FILE)  # verifies the certificate and the host name
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        client.on_connect = self._on_connect
        client.on_subscribe = self._on_subscribe
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        return client

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            logger.warning("MQTT connect refused: %s", reason_code)
            return
        with self._lock:
            self._connections += 1
            self._live = self._connections
            if not flags.session_present:
                self._session_from = self._connections
        client.subscribe([(self.topic, 1), (self.result_topic, 1)])
        logger.info("MQTT bridge connected to %s:%s (session present: %s)", self.host, self.port, flags.session_present)

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties):
        if reason_codes[0].is_failure:
            logger.error("MQTT bridge: subscription to %s refused: %s", self.topic, reason_codes[0])
            return
        if len(reason_codes) > 1 and reason_codes[1].is_failure:
            # Telemetry flows on; devices' MQTT results wait until the bridge's role allows them.
            logger.error(
                "MQTT bridge: subscription to %s refused (%s): run `manage.py mqtt_reconcile` to update its role",
                self.result_topic,
                reason_codes[1],
            )
        self.ready.set()
        BRIDGE_CONNECTED.set(1)
        logger.info("MQTT bridge subscribed to %s", self.topic)

    def _on_disconnect(self, client, userdata, flags, reason_code, properties):
        # paho calls this before it reconnects (and discards unsent packets): acknowledgements
        # after this point would carry packet ids of a connection that no longer exists.
        with self._lock:
            self._live = None
        self.ready.clear()
        BRIDGE_CONNECTED.set(0)
        if not self.stopping.is_set():
            logger.warning("MQTT bridge disconnected (%s); reconnecting with backoff", reason_code)

    def _on_message(self, client, userdata, message):
        with self._lock:
            if message.qos == 0 and (not self._intake_open or self.inbox.qsize() >= self.receive_maximum):
                # QoS 0 has no flow control; when stopping or overloaded it is dropped (its contract).
                self.stats["qos0_dropped"] += 1
                return
            if not self._intake_open:
                return  # stopping: left unacknowledged, so the broker delivers it in the next session
            at = datetime.now(UTC)  # timezone.now() reads settings.USE_TZ: 5% of this thread's time
            self.inbox.put(Received(message.topic, message.payload, message.mid, message.qos, at, self._live))
            self.stats["received"] += 1

    def start(self) -> None:
        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = self.session_expiry  # keep our messages while we are away
        properties.ReceiveMaximum = self.receive_maximum
        self.hooks.start()
        self.client.connect_async(self.host, self.port, keepalive=30, clean_start=False, properties=properties)
        self.client.loop_start()

    def stop(self) -> None:
        if self._stop_requested_at is None:
            self._stop_requested_at = time.monotonic()
        self.stopping.set()
        self.inbox.put(None)  # wakes the batch loop

    def run(self) -> None:
        """Store batches until ``stop()``; then flush what is held, acknowledge and disconnect."""
        self.start()
        flush = True
        try:
            while not self.stopping.is_set():
                batch = self._take_batch(wait=True)
                if batch and not self._process(batch):
                    flush = False  # given up while stopping: nothing after it may be acknowledged
                self._log_summary()
        finally:
            self._shutdown(flush=flush)

    def _shutdown(self, *, flush: bool) -> None:
        with self._lock:
            self._intake_open = False
        if self._stop_requested_at is None:
            self._stop_requested_at = time.monotonic()
        while flush and (batch := self._take_batch(wait=False)):
            flush = self._process(batch)  # after an unstored batch nothing is acknowledged: order is kept
        left = len(self.held())
        self._log_summary(force=True)
        if not self.hooks.close(timeout=self.stop_grace):
            logger.warning("MQTT bridge: after-commit hooks still running after %.0fs; leaving them", self.stop_grace)
        self._confirm_acks()
        self.client.disconnect()
        self.client.loop_stop()
        BRIDGE_CONNECTED.set(0)
        BRIDGE_HELD.set(0)
        with suppress(Error):
            connection.close()
        logger.info("MQTT bridge stopped (%d messages left unacknowledged): %s", left, self.stats)

    def _confirm_acks(self, timeout: float = 5.0) -> None:
        """Wait until the broker has read our last acknowledgements before the socket closes.

        Closing a socket that still has unread data (messages the broker keeps sending) sends a TCP
        RST, and the broker then drops what it had not read yet, acknowledgements included. The
        broker answers an UNSUBSCRIBE (of a topic we never subscribed) only after the packets sent
        before it, so its UNSUBACK confirms them.
        """
        with self._lock:
            if self._live is None:
                return
        confirmed = threading.Event()
        self.client.on_unsubscribe = lambda *args: confirmed.set()
        result, _ = self.client.unsubscribe(SYNC_TOPIC)
        if result == mqtt.MQTT_ERR_SUCCESS and not confirmed.wait(timeout):
            logger.warning("MQTT bridge: the broker did not confirm the last acknowledgements; it may resend them")

    def _is_redelivered(self, received: Received) -> bool:
        """A QoS 1 message from an earlier connection of the current session: the broker has sent
        it again on the current connection (or will), so this copy is skipped."""
        with self._lock:
            live, session_from = self._live, self._session_from
        return (
            received.qos > 0
            and live is not None
            and received.connection is not None
            and session_from <= received.connection < live
        )

    def held(self) -> list[Received]:
        """Messages received and not yet committed (waiting in the queue or in the current batch)."""
        return [*self._pending, *(item for item in list(self.inbox.queue) if item is not None)]

    def _take_batch(self, *, wait: bool) -> list[Received]:
        """Up to ``batch_size`` messages, waiting at most ``flush_interval`` after the first one."""
        batch: list[Received] = []
        self._pending = batch
        deadline = None
        while len(batch) < self.batch_size:
            timeout = 0.0 if not wait else IDLE_WAIT if deadline is None else deadline - time.monotonic()
            try:
                item = self.inbox.get(timeout=timeout) if timeout > 0 else self.inbox.get_nowait()
            except queue.Empty:
                break
            if item is None:
                break
            if self._is_redelivered(item):
                self.stats["redelivered"] += 1
                continue
            batch.append(item)
            if deadline is None:
                deadline = time.monotonic() + self.flush_interval
        return batch

    def _process(self, batch: list[Received]) -> bool:
        """Store the batch, then acknowledge it; False (nothing acknowledged) when given up while stopping."""
        if not self._store(batch):
            return False
        self._ack(batch)
        self._pending = []
        return True

    def _store(self, batch: list[Received]) -> bool:
        """Commit the batch (retrying transient database errors); False when given up while stopping."""
        try:
            counts = self._with_retry(bridge_process, batch, defer_hooks=self.hooks.submit)
        except Exception as exc:  # refused by the database or a bug: retrying the same batch cannot help
            if len(batch) > 1:
                logger.warning("MQTT bridge: batch of %d failed (%r); storing one by one", len(batch), exc)
                return all(self._store([received]) for received in batch)
            logger.exception("MQTT bridge: message on %s cannot be stored", batch[0].topic)
            try:
                counts = self._with_retry(bridge_keep_unstorable, batch[0], exc)
            except Exception:
                # Logged with its payload, then acknowledged: blocking the stream on it would stop ingest.
                logger.exception("MQTT bridge: message dropped, payload %r", batch[0].payload[:2000])
                counts = (0, 0)
        if counts is None:
            return False
        BRIDGE_LAG.observe((datetime.now(UTC) - batch[0].at).total_seconds())  # the oldest: arrival order
        BRIDGE_HELD.set(self.inbox.qsize())
        self.stats["accepted"] += counts[0]
        self.stats["dead_letters"] += counts[1]
        self.stats["batches"] += 1
        return True

    def _with_retry(self, function, *args, **kwargs):
        """``function(*args, **kwargs)`` with retries on transient database errors; None when the stop grace is over."""
        delay = RETRY_MIN
        while True:
            try:
                if time.monotonic() - self._connection_checked_at >= CONNECTION_CHECK_INTERVAL:
                    # As a request would (CONN_MAX_AGE, health check), but not once per batch: the
                    # check is a ping. A connection lost in between fails the batch, which is retried.
                    close_old_connections()
                    self._connection_checked_at = time.monotonic()
                if connection.vendor == "mysql":
                    # Known before the batch is stored (a fault test kills this connection mid-batch).
                    connection.ensure_connection()
                    self.db_connection_id = connection.connection.thread_id()
                result = function(*args, **kwargs)
            except TRANSIENT_DB_ERRORS as exc:
                self.stats["db_errors"] += 1
                with suppress(Error):
                    connection.close()
                self._connection_checked_at = 0.0
                stopping_for = time.monotonic() - self._stop_requested_at if self._stop_requested_at else None
                if stopping_for is not None and stopping_for >= self.stop_grace:
                    logger.error("MQTT bridge: database still unavailable (%s); stopping without storing", exc)
                    return None
                logger.warning("MQTT bridge: database unavailable (%s); holding messages, retry in %.1fs", exc, delay)
                if stopping_for is None:
                    self.stopping.wait(delay)  # stop() cuts the wait short and starts the grace period
                else:
                    time.sleep(min(delay, self.stop_grace - stopping_for))
                delay = min(delay * 2, RETRY_MAX)
                continue
            return result

    def _ack(self, batch: list[Received]) -> None:
        """Acknowledge the committed batch's QoS 1 messages, in arrival order, on their own connection."""
        with self._lock:  # excludes _on_disconnect: no PUBACK is queued for a connection being replaced
            for received in batch:
                if received.qos > 0 and received.connection == self._live:
                    self.client.ack(received.mid, received.qos)
                    self.stats["acked"] += 1

    def _log_summary(self, *, force: bool = False) -> None:
        now = time.monotonic()
        elapsed = now - self._summary_at
        if not force and elapsed < self.summary_interval:
            return
        delta = {key: self.stats[key] - self._summary_base[key] for key in self.stats}
        logger.info(
            "MQTT bridge: %.0f msgs/s (%d in %.0fs), %d accepted, %d dead letters, %d held, %d DB errors, %s",
            delta["received"] / max(elapsed, 1e-9),
            delta["received"],
            elapsed,
            delta["accepted"],
            delta["dead_letters"],
            len(self.held()),
            delta["db_errors"],
            "connected" if self.ready.is_set() else "NOT connected",
        )
        self._summary_at, self._summary_base = now, dict(self.stats)
