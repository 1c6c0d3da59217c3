"""Modbus TCP connector: polls coils, discrete inputs, holding and input registers with pymodbus.

Modbus has no types: a value is one or more 16-bit registers, and vendors differ in the order of
the bytes inside a register and of the registers inside a 32-bit value. ``decode`` applies the
tag's ``byte_order`` and ``word_order`` ("big"/"big" is the Modbus standard, "ABCD"; a
little word order is the common "CDAB" of many PLCs).
"""

import asyncio
import logging
import struct
from collections.abc import Callable
from datetime import UTC, datetime

from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException

from edge.config import Connector, Register, Tag
from edge.health import Health
from edge.reporting import Reading

logger = logging.getLogger("edge.modbus")
FORMATS = {"int16": ">h", "uint16": ">H", "int32": ">i", "uint32": ">I", "float32": ">f"}


def decode(registers: list[int], register: Register) -> int | float:
    """The number in ``registers`` (16-bit words as read) for the register's type and orders."""
    words = list(registers[: register.count])
    if register.word_order == "little":
        words.reverse()
    raw = b"".join(
        word.to_bytes(2, "big") if register.byte_order == "big" else word.to_bytes(2, "little") for word in words
    )
    value = struct.unpack(FORMATS[register.data_type], raw)[0]
    # A float32 holds about 7 significant digits; the rest of its float64 expansion is noise (7.3922815...).
    return float(f"{value:.7g}") if register.data_type == "float32" else value


def encode(value: int | float, register: Register) -> list[int]:
    """The registers that hold ``value`` (the inverse of ``decode``; used by the simulated machine)."""
    if register.data_type != "float32":
        value = int(value)
    raw = struct.pack(FORMATS[register.data_type], value)
    words = [int.from_bytes(raw[i : i + 2], "big" if register.byte_order == "big" else "little") for i in (0, 2)][
        : register.count
    ]
    if register.word_order == "little":
        words.reverse()
    return words


class RefusedRead(Exception):
    """The PLC answered a read with a Modbus exception (e.g. an address it does not have)."""


class ModbusConnector:
    """Polls the tags of one Modbus TCP device every ``interval`` seconds and hands readings to ``sink``.

    On any connection or protocol error the connector is reported down and reconnects with a
    growing pause (up to 30 s); after a reconnect the values are reported afresh.
    """

    def __init__(self, config: Connector, tags: list[Tag], sink: Callable[[list[Reading]], None], health: Health):
        self.config, self.tags, self.sink, self.health = config, tags, sink, health
        self.on_reconnect: Callable[[list[Tag]], None] | None = None
        self.failing: set[str] = set()  # tags whose last read was refused (logged once, not every round)

    async def run(self) -> None:
        pause = self.config.interval
        while True:
            client = AsyncModbusTcpClient(
                self.config.host, port=self.config.port, timeout=self.config.timeout, retries=0, reconnect_delay=0
            )
            try:
                if not await client.connect():
                    raise ConnectionError(f"cannot connect to {self.config.host}:{self.config.port}")
                self.health.connector(self.config.name, True)
                if self.on_reconnect:
                    self.on_reconnect(self.tags)
                pause = self.config.interval
                await self._poll(client)
            except (ConnectionError, ModbusException, TimeoutError, OSError) as exc:
                self.health.connector(self.config.name, False)
                self.health.error("plc", f"modbus {self.config.name} ({self.config.host}:{self.config.port}): {exc}")
            finally:
                client.close()
            await asyncio.sleep(pause)
            pause = min(pause * 2, 30.0)

    async def _poll(self, client: AsyncModbusTcpClient) -> None:
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while not asyncio.current_task().cancelling():  # see Gateway.stop: a cancellation may be swallowed
            readings = await self.read_all(client)
            self.sink(readings)
            next_at += self.config.interval
            delay = next_at - loop.time()
            if delay < 0:  # the reads took longer than the interval: start the next round now, don't catch up
                next_at, delay = loop.time(), 0
            await asyncio.sleep(delay)
        raise asyncio.CancelledError

    async def read_all(self, client: AsyncModbusTcpClient) -> list[Reading]:
        """One round: every tag read once, stamped with the gateway's time of the round.

        Tags on adjacent addresses of one unit and table are read in one request (``blocks``):
        a PLC answers 20 registers as fast as one. A block the PLC refuses is read tag by tag, so
        one bad address costs only its own tag.
        """
        ts = datetime.now(UTC)
        readings = []
        for block in blocks(self.tags):
            try:
                words = await self._read(client, block[0].register, span(block))
                values = [(tag, _value(tag.register, words, block[0].register.address)) for tag in block]
            except RefusedRead:
                values = [(tag, await self._read_one(client, tag)) for tag in block]
            readings += [Reading(tag, value, ts) for tag, value in values if value is not None]
        return readings

    async def _read_one(self, client: AsyncModbusTcpClient, tag: Tag) -> int | float | bool | None:
        try:
            value = _value(
                tag.register, await self._read(client, tag.register, tag.register.count), tag.register.address
            )
        except RefusedRead as exc:  # the PLC answered, so the link is fine: skip this tag only
            if tag.key not in self.failing:
                self.health.error("plc", f"modbus {self.config.name}: {tag.key} not readable: {exc}")
            self.failing.add(tag.key)
            return None
        self.failing.discard(tag.key)
        return value

    async def _read(self, client: AsyncModbusTcpClient, register: Register, count: int) -> list:
        """``count`` registers (or bits) from ``register``'s address, table and unit."""
        read = {
            "holding": client.read_holding_registers,
            "input": client.read_input_registers,
            "coil": client.read_coils,
            "discrete": client.read_discrete_inputs,
        }[register.table]
        response = await read(register.address, count=count, device_id=register.unit)
        if response.isError():
            raise RefusedRead(f"{register.table} {register.address}+{count} (unit {register.unit}): {response}")
        return response.bits if register.table in ("coil", "discrete") else response.registers


MAX_SPAN = {"holding": 125, "input": 125, "coil": 2000, "discrete": 2000}  # the protocol's limits per request


def blocks(tags: list[Tag]) -> list[list[Tag]]:
    """Tags grouped into runs of adjacent or overlapping addresses (same unit and table) that fit one request."""
    ordered = sorted(tags, key=lambda tag: (tag.register.unit, tag.register.table, tag.register.address))
    grouped: list[list[Tag]] = []
    for tag in ordered:
        current = grouped[-1] if grouped else None
        first = current[0].register if current else None
        if (
            current
            and (first.unit, first.table) == (tag.register.unit, tag.register.table)
            and tag.register.address <= first.address + span(current)
            and tag.register.address + tag.register.count - first.address <= MAX_SPAN[first.table]
        ):
            current.append(tag)
        else:
            grouped.append([tag])
    return grouped


def span(block: list[Tag]) -> int:
    start = block[0].register.address
    return max(tag.register.address + tag.register.count for tag in block) - start


def _value(register: Register, words: list, start: int) -> int | float | bool:
    offset = register.address - start
    if register.table in ("coil", "discrete"):
        return bool(words[offset])
    return decode(words[offset : offset + register.count], register)
