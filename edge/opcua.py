"""OPC UA connector (asyncua): subscriptions (the server pushes changes) or polling.

Subscriptions are the normal choice: the server samples its nodes and sends only changes, so
the gateway and the network stay quiet. Polling is for servers with broken or limited
subscription support. Either way the connector reconnects on its own after the link is lost,
and the values are reported afresh after a reconnect (the PLC may have restarted meanwhile).
"""

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime

from asyncua import Client, ua
from asyncua.crypto import security_policies

from edge.config import Connector, Tag
from edge.health import Health
from edge.reporting import Reading

logger = logging.getLogger("edge.opcua")
MODES = {"Sign": ua.MessageSecurityMode.Sign, "SignAndEncrypt": ua.MessageSecurityMode.SignAndEncrypt}


class OpcUaConnector:
    """Reads the tags of one OPC UA server and hands readings to ``sink``."""

    def __init__(self, config: Connector, tags: list[Tag], sink: Callable[[list[Reading]], None], health: Health):
        self.config, self.tags, self.sink, self.health = config, tags, sink, health
        self.on_reconnect: Callable[[list[Tag]], None] | None = None
        self.failing: set[str] = set()  # nodes with a bad status (logged once, not every poll)

    async def client(self) -> Client:
        """A client with the configured user and security (not yet connected)."""
        client = Client(self.config.url, timeout=max(self.config.interval * 4, 4.0))
        if self.config.username:
            client.set_user(self.config.username)
            client.set_password(self.config.password or "")
        security = self.config.security
        if security:
            await client.set_security(
                getattr(security_policies, f"SecurityPolicy{security.policy}"),
                certificate=str(security.certificate),
                private_key=str(security.private_key),
                server_certificate=str(security.server_certificate) if security.server_certificate else None,
                mode=MODES[security.mode],
            )
        return client

    async def run(self) -> None:
        pause = self.config.interval
        while True:
            try:
                client = await self.client()
                async with client:
                    self.health.connector(self.config.name, True)
                    if self.on_reconnect:
                        self.on_reconnect(self.tags)
                    pause = self.config.interval
                    if self.config.mode == "poll":
                        await self._poll(client)
                    else:
                        await self._subscribe(client)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 (any failure of the link: report it and reconnect)
                self.health.connector(self.config.name, False)
                self.health.error("plc", f"opcua {self.config.name} ({self.config.url}): {exc!r}")
            await asyncio.sleep(pause)
            pause = min(pause * 2, 30.0)

    def _timestamp(self, value: ua.DataValue | None) -> datetime:
        if self.config.timestamps == "source" and value is not None and value.SourceTimestamp is not None:
            ts = value.SourceTimestamp
            return ts if ts.tzinfo else ts.replace(tzinfo=UTC)
        return datetime.now(UTC)

    async def _poll(self, client: Client) -> None:
        nodes = [client.get_node(tag.node) for tag in self.tags]
        while True:
            values = await client.read_attributes(nodes, ua.AttributeIds.Value)
            readings = []
            for tag, data in zip(self.tags, values, strict=True):
                if data.StatusCode is not None and not data.StatusCode.is_good():
                    if tag.node not in self.failing:
                        self.health.error("plc", f"opcua {self.config.name}: {tag.node} is {data.StatusCode.name}")
                    self.failing.add(tag.node)
                    continue
                self.failing.discard(tag.node)
                readings.append(Reading(tag, data.Value.Value, self._timestamp(data)))
            self.sink(readings)
            await asyncio.sleep(self.config.interval)

    async def _subscribe(self, client: Client) -> None:
        by_node = {}
        for tag in self.tags:
            by_node.setdefault(client.get_node(tag.node).nodeid, []).append(tag)
        subscription = await client.create_subscription(self.config.interval * 1000, _Changes(self, by_node))
        results = await subscription.subscribe_data_change([client.get_node(tag.node) for tag in self.tags])
        for tag, result in zip(self.tags, results, strict=True):
            if not isinstance(result, int):  # a status code instead of a handle: the node is not there
                self.health.error("plc", f"opcua {self.config.name}: cannot subscribe to {tag.node}: {result}")
        while True:  # the subscription works in the background; notice a lost link within an interval
            await asyncio.sleep(self.config.interval)
            await client.check_connection()


class _Changes:
    """asyncua's subscription handler: each change notification becomes a reading."""

    def __init__(self, connector: OpcUaConnector, by_node: dict):
        self.connector, self.by_node = connector, by_node

    def datachange_notification(self, node, value, data) -> None:
        data_value = data.monitored_item.Value
        if data_value.StatusCode is not None and not data_value.StatusCode.is_good():
            return
        ts = self.connector._timestamp(data_value)
        self.connector.sink([Reading(tag, value, ts) for tag in self.by_node.get(node.nodeid, [])])

    def status_change_notification(self, status) -> None:
        logger.info("Subscription status of %s: %s", self.connector.config.name, status)
