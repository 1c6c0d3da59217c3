"""The gateway: connectors read PLCs, the reporter keeps what changed, the store queues it on disk,
the uplink forwards it. One asyncio loop runs them all.

Readings go to disk before anything is sent, always, not only during outages: then one path
handles the normal case and the outage alike, and a reading is safe the moment it was taken.
"""

import asyncio
import logging
import time
from datetime import UTC, datetime

from edge.config import Config
from edge.health import Health
from edge.modbus import ModbusConnector
from edge.opcua import OpcUaConnector
from edge.reporting import MappingError, Reading, Reporter, convert, iso, messages
from edge.store import Store
from edge.uplink import Uplink

logger = logging.getLogger("edge")
CONNECTORS = {"opcua": OpcUaConnector, "modbus": ModbusConnector}


class Gateway:
    """Everything ``config`` describes; ``start()`` runs it in the current loop, ``stop()`` ends it."""

    def __init__(self, config: Config):
        self.config = config
        self.health = Health()
        self.store = Store(config.queue_path, max_rows=config.queue_max_rows, max_age=config.queue_max_age)
        self.reporter = Reporter()
        tokens = {uid: device.token for uid, device in config.devices.items() if device.token}
        if config.gateway and config.gateway.token:
            tokens[config.gateway.uid] = config.gateway.token
        self.uplink = Uplink(config, self.store, self.health, tokens)
        self.connectors = []
        for name, connector_config in config.connectors.items():
            connector = CONNECTORS[connector_config.type](
                connector_config, config.tags_of(name), self.accept, self.health
            )
            connector.on_reconnect = self.reporter.forget
            self.health.connector(name, False)
            self.connectors.append(connector)
        self.unmappable: set[str] = set()  # tags whose last value did not map (logged once, not every read)
        self.tasks: list[asyncio.Task] = []

    def accept(self, readings: list[Reading]) -> None:
        """Connectors call this with what they read: changed values are queued as messages."""
        now = time.monotonic()
        changed = []
        for reading in readings:
            try:
                value = convert(reading.tag, reading.raw)
            except MappingError as exc:
                if reading.tag.key not in self.unmappable:
                    self.health.error("mapping", str(exc))
                self.unmappable.add(reading.tag.key)
                continue
            self.unmappable.discard(reading.tag.key)
            if self.reporter.changed(reading.tag, value, now):
                changed.append((reading.tag, value, reading.ts))
        self.enqueue(messages(changed))

    def enqueue(self, queued: list[tuple[str, dict]]) -> None:
        if not queued:
            return
        dropped = self.store.enqueue(queued)
        if dropped:
            self.health.error(
                "queue_full", f"queue full ({self.config.queue_max_rows} messages): dropped {dropped} oldest"
            )
        self.uplink.wake()

    def health_message(self) -> None:
        """Queue one health message of the gateway device (if the config names one)."""
        if self.config.gateway is None:
            return
        values = self.health.values(self.store.depth, self.store.counters())
        self.enqueue([(self.config.gateway.uid, {"ts": iso(datetime.now(UTC)), "values": values})])

    async def _housekeeping(self) -> None:
        """Heartbeats of unchanged values, the queue's age bound and the periodic health message."""
        intervals = [tag.max_interval for tag in self.config.tags if tag.max_interval]
        tick = min([1.0, self.config.health_interval, *intervals])
        next_health = time.monotonic() + self.config.health_interval
        while True:
            await asyncio.sleep(tick)
            now = time.monotonic()
            due = self.reporter.heartbeats(now)
            if due:
                ts = datetime.now(UTC)
                self.enqueue(messages([(tag, value, ts) for tag, value in due]))
            self.store.expire()
            if now >= next_health:
                self.health_message()
                next_health = now + self.config.health_interval

    async def start(self) -> "Gateway":
        depth = self.store.depth
        if depth:
            logger.info("Queue %s holds %d message(s) from before: sending them first.", self.config.queue_path, depth)
        coroutines = [connector.run() for connector in self.connectors] + [self.uplink.run(), self._housekeeping()]
        self.tasks = [asyncio.create_task(coroutine) for coroutine in coroutines]
        for task in self.tasks:
            task.add_done_callback(_log_crash)
        return self

    async def stop(self) -> None:
        """Cancel every task and close the queue; what is queued stays on disk for the next start.

        A task is cancelled again while it runs on: on Python 3.11 ``asyncio.wait_for`` (used inside
        pymodbus and asyncua) loses a cancellation that arrives as its awaited result comes in.
        """
        pending = set(self.tasks)
        for _ in range(20):
            if not pending:
                break
            for task in pending:
                task.cancel()
            _, pending = await asyncio.wait(pending, timeout=0.5)
        if pending:
            logger.error("Gateway tasks did not stop: %s", [task.get_coro() for task in pending])
        self.tasks = []
        self.store.close()

    async def run_forever(self) -> None:
        await self.start()
        try:
            await asyncio.gather(*self.tasks)
        finally:
            await self.stop()


def _log_crash(task: asyncio.Task) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.error("Gateway task %s crashed", task.get_coro(), exc_info=task.exception())
