"""The MQTT bridge: ``factory/devices/+/telemetry`` (QoS 1) into the ingest service.

Delivery guarantee: messages are acknowledged to the broker only after the transaction holding
them (or their dead-letter rows) has committed. The bridge uses a persistent MQTT session
(fixed client id, ``clean_start=False``), so messages that arrive while it is down, or that it
received but had not yet committed when it died, are delivered again. While the database is
unavailable it keeps the batch, retries with backoff, and does not acknowledge: a MariaDB
restart loses nothing. Invalid messages are never dropped silently: each is stored as a
``DeadLetter`` with its reason (visible in the admin) and then acknowledged.
"""

import logging
import queue
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlparse

import paho.mqtt.client as mqtt
from django.conf import settings
from django.db import DatabaseError, close_old_connections, connection, transaction
from django.utils import timezone
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from devices.models import DeadLetter, Device
from devices.services.ingest import IngestItem, telemetry_parse, telemetry_store
from devices.services.telemetry_payload import PayloadError

logger = logging.getLogger(__name__)

TOPIC = "factory/devices/+/telemetry"
DEAD_LETTER_PAYLOAD_MAX = 64 * 1024


@dataclass(slots=True)
class Received:
    topic: str
    payload: bytes
    mid: int
    qos: int
    at: datetime


def _uid_from_topic(topic: str) -> str:
    parts = topic.split("/")
    return parts[2] if len(parts) == 4 else ""


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


def bridge_process(batch: list[Received]) -> tuple[int, int]:
    """Store one batch: valid messages through ``telemetry_store`` (one transaction), invalid ones
    as dead letters. Returns ``(accepted_messages, dead_letters)``. Raises ``DatabaseError`` when
    the database is unavailable (nothing is then committed and the caller must retry)."""
    uids = {_uid_from_topic(r.topic) for r in batch}
    devices = {d.uid: d for d in Device.objects.filter(uid__in=uids)}
    items: dict[str, IngestItem] = {}
    dead = []
    for received in batch:
        uid = _uid_from_topic(received.topic)
        device = devices.get(uid)
        if device is None:
            dead.append(_dead_letter(received, f"Unknown device uid {uid!r} in the topic.", None))
            continue
        if not device.enabled:
            dead.append(_dead_letter(received, f"Device '{uid}' is disabled.", device))
            continue
        try:
            messages = telemetry_parse(received.payload, now=received.at)
        except PayloadError as exc:
            reason = "; ".join(
                f"{'messages[%s].' % e['index'] if e['index'] is not None else ''}{e['field']}: {e['message']}"
                for e in exc.errors
            )
            dead.append(_dead_letter(received, reason, device))
            continue
        items.setdefault(uid, IngestItem(device=device, messages=[])).messages.extend(messages)
    with transaction.atomic():
        accepted = telemetry_store(list(items.values()), received_at=timezone.now()) if items else 0
        DeadLetter.objects.bulk_create(dead)
    return accepted, len(dead)


class MqttBridge:
    """Runs the paho network loop in its thread and stores batches from the calling thread."""

    def __init__(self, url: str, *, client_id: str, batch_size: int = 500, flush_interval: float = 0.05):
        parsed = urlparse(url)
        self.host, self.port = parsed.hostname or "127.0.0.1", parsed.port or 1883
        self.tls = parsed.scheme == "mqtts"
        self.username, self.password = parsed.username, parsed.password
        self.client_id = client_id
        self.batch_size, self.flush_interval = batch_size, flush_interval
        self.inbox: queue.Queue[Received] = queue.Queue()
        self.stopping = threading.Event()
        self.connected = threading.Event()
        self.stats = {"accepted": 0, "dead_letters": 0, "batches": 0}
        self.client = self._make_client()

    def _make_client(self) -> mqtt.Client:
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=self.client_id, protocol=mqtt.MQTTv5, manual_ack=True
        )
        if self.username:
            client.username_pw_set(self.username, self.password)
        if self.tls:
            client.tls_set()
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        return client

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            logger.warning("MQTT connect refused: %s", reason_code)
            return
        client.subscribe(TOPIC, qos=1)
        self.connected.set()
        logger.info("MQTT bridge connected to %s:%s, subscribed to %s", self.host, self.port, TOPIC)

    def _on_disconnect(self, client, userdata, flags, reason_code, properties):
        self.connected.clear()
        if not self.stopping.is_set():
            logger.warning("MQTT bridge disconnected (%s); reconnecting with backoff", reason_code)

    def _on_message(self, client, userdata, message):
        self.inbox.put(Received(message.topic, message.payload, message.mid, message.qos, timezone.now()))

    def start(self) -> None:
        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = 7 * 24 * 3600  # keep queued QoS 1 messages while we are away
        properties.ReceiveMaximum = 1000
        self.client.connect_async(self.host, self.port, keepalive=30, clean_start=False, properties=properties)
        self.client.loop_start()

    def _take_batch(self, timeout: float) -> list[Received]:
        batch = []
        deadline = time.monotonic() + timeout
        while len(batch) < self.batch_size:
            remaining = deadline - time.monotonic()
            try:
                batch.append(self.inbox.get(timeout=max(remaining, 0)) if remaining > 0 else self.inbox.get_nowait())
            except queue.Empty:
                break
        return batch

    def _store_with_retry(self, batch: list[Received]) -> None:
        delay = 0.5
        while True:
            try:
                close_old_connections()
                accepted, dead = bridge_process(batch)
                break
            except DatabaseError as exc:
                logger.warning("MQTT bridge: database unavailable (%s); holding %d messages, retry in %.1fs",
                               type(exc).__name__, len(batch), delay)  # fmt: skip
                connection.close()
                if self.stopping.wait(delay) and delay >= 8:
                    logger.error("MQTT bridge stopping with %d unstored messages; the broker will redeliver them",
                                 len(batch))  # fmt: skip
                    return
                delay = min(delay * 2, 30)
        for received in batch:
            if received.qos > 0:
                self.client.ack(received.mid, received.qos)
        self.stats["accepted"] += accepted
        self.stats["dead_letters"] += dead
        self.stats["batches"] += 1

    def run(self) -> None:
        """Store batches until ``stop()``; then flush what is held, acknowledge and disconnect."""
        self.start()
        try:
            while not self.stopping.is_set():
                batch = self._take_batch(self.flush_interval)
                if batch:
                    self._store_with_retry(batch)
        finally:
            while batch := self._take_batch(0):
                self._store_with_retry(batch)
            self.client.disconnect()
            self.client.loop_stop()
            logger.info("MQTT bridge stopped: %s", self.stats)

    def stop(self) -> None:
        self.stopping.set()
