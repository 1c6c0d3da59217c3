"""The Modbus TCP connector against a real pymodbus server: every table, type and byte/word order."""

import asyncio

import pytest
from pymodbus.client import AsyncModbusTcpClient

from edge.config import Connector, Register, Tag
from edge.health import Health
from edge.modbus import ModbusConnector, blocks, decode, encode
from edge.simulators import ModbusMachine
from edge.tests.conftest import cancel, free_port, wait_until

CASES = [
    (Register("holding", 10, "int16"), -1234),
    (Register("holding", 11, "uint16"), 65000),
    (Register("holding", 12, "int32"), -70000),
    (Register("holding", 14, "uint32", word_order="little"), 4_000_000_000),
    (Register("holding", 16, "float32"), 7.25),
    (Register("holding", 18, "float32", byte_order="little", word_order="little"), -0.5),
    (Register("holding", 20, "int32", byte_order="little"), 123456),
    (Register("input", 3, "uint32"), 99_999),
    (Register("coil", 2), True),
    (Register("discrete", 5), True),
]


@pytest.mark.parametrize(("register", "value"), CASES)
def test_decode_reverses_encode_for_every_type_and_order(register, value):
    assert decode(encode(value, register), register) == value


def test_decode_reads_the_standard_and_the_swapped_word_order():
    assert decode([0x0001, 0x0002], Register("holding", 0, "uint32")) == 0x00010002  # ABCD
    assert decode([0x0002, 0x0001], Register("holding", 0, "uint32", word_order="little")) == 0x00010002  # CDAB
    assert decode([0x3412], Register("holding", 0, "uint16", byte_order="little")) == 0x1234


def connector_for(port: int, tags: list[Tag], readings: list, health: Health) -> ModbusConnector:
    config = Connector(name="packer", type="modbus", host="127.0.0.1", port=port, interval=0.02, timeout=1)
    return ModbusConnector(config, tags, readings.extend, health)


@pytest.mark.asyncio
async def test_reads_every_table_and_type_from_a_real_server():
    machine = await ModbusMachine(free_port()).start()
    tags = [
        Tag("packer-01", "packer", metric=f"m{index}", register=register) for index, (register, _) in enumerate(CASES)
    ]
    for register, value in CASES:
        machine.set(register, value)
    readings, health = [], Health()
    task = asyncio.create_task(connector_for(machine.port, tags, readings, health).run())
    try:
        await wait_until(lambda: len(readings) >= len(tags), 10, "one round of readings")
        assert {reading.tag.metric: reading.raw for reading in readings[: len(tags)]} == {
            f"m{index}": value for index, (_, value) in enumerate(CASES)
        }
        assert health.connectors == {"packer": True}
    finally:
        await cancel(task)
        await machine.stop()


@pytest.mark.asyncio
async def test_reports_the_plc_down_and_reconnects_when_it_is_back():
    port = free_port()
    machine = await ModbusMachine(port).start()
    machine.set("count_total", 5)
    tag = Tag("packer-01", "packer", metric="count_total", register=ModbusMachine.REGISTERS["count_total"])
    readings, health = [], Health()
    task = asyncio.create_task(connector_for(port, [tag], readings, health).run())
    try:
        await wait_until(lambda: health.connectors.get("packer"), 10, "the connection")
        await machine.stop()
        await wait_until(lambda: health.connectors["packer"] is False, 10, "the connector to notice")
        assert health.last_error == "plc"
        machine = await ModbusMachine(port).start()
        machine.set("count_total", 6)
        await wait_until(lambda: readings and readings[-1].raw == 6, 15, "a reading after the reconnect")
        assert health.connectors["packer"] is True
    finally:
        await cancel(task)
        await machine.stop()


@pytest.mark.asyncio
async def test_skips_an_unreadable_register_and_keeps_reading_the_others():
    machine = await ModbusMachine(free_port()).start()
    machine.set("count_total", 3)
    good = Tag("packer-01", "packer", metric="count_total", register=ModbusMachine.REGISTERS["count_total"])
    missing = Tag("packer-01", "packer", metric="ghost", register=Register("holding", 5000))
    readings, health = [], Health()
    task = asyncio.create_task(connector_for(machine.port, [missing, good], readings, health).run())
    try:
        await wait_until(lambda: len(readings) >= 3, 10, "readings of the good register")
        assert {reading.tag.metric for reading in readings} == {"count_total"}
        assert health.connectors["packer"] is True and health.errors_total == 1  # logged once, not every round
        assert "packer-01/ghost not readable" in health.last_error_text
    finally:
        await cancel(task)
        await machine.stop()


def test_a_float32_is_read_with_its_own_precision_not_float64_noise():
    assert decode(encode(7.3922815, Register("holding", 0, "float32")), Register("holding", 0, "float32")) == 7.392282


def test_groups_adjacent_registers_of_one_unit_and_table_into_one_request():
    def tag(table, address, data_type="uint16", unit=1):
        return Tag(
            "d", "plc", metric=f"{table}_{address}_{unit}", register=Register(table, address, data_type, unit=unit)
        )

    tags = [
        tag("holding", 2, "uint32"),
        tag("holding", 0),
        tag("holding", 1),
        tag("holding", 4, "float32"),
        tag("holding", 10),
        tag("holding", 4, unit=2),
        tag("coil", 0),
        tag("coil", 1),
        tag("holding", 120, "uint32"),
    ]
    grouped = [[(t.register.table, t.register.address, t.register.unit) for t in block] for block in blocks(tags)]
    assert grouped == [
        [("coil", 0, 1), ("coil", 1, 1)],
        [("holding", 0, 1), ("holding", 1, 1), ("holding", 2, 1), ("holding", 4, 1)],  # 0-5: one request
        [("holding", 10, 1)],  # a gap: its own request
        [("holding", 120, 1)],
        [("holding", 4, 2)],  # another unit
    ]


@pytest.mark.asyncio
async def test_reads_a_block_in_one_request_and_tag_by_tag_when_the_plc_refuses_the_block():
    machine = await ModbusMachine(free_port()).start()
    registers = [Register("holding", 0, "int16"), Register("holding", 1, "uint16"), Register("holding", 2, "uint32")]
    for value, register in zip((-5, 6, 70000), registers, strict=True):
        machine.set(register, value)
    edge_of_map = Register("holding", 254, "uint16")  # the simulator has registers 0-255:
    beyond = Register("holding", 256, "uint16")  # 254-256 as one block is refused
    machine.set(edge_of_map, 9)
    tags = [Tag("d", "plc", metric=f"m{i}", register=r) for i, r in enumerate([*registers, edge_of_map, beyond])]
    readings, health = [], Health()
    connector = connector_for(machine.port, tags, readings, health)
    client = AsyncModbusTcpClient("127.0.0.1", port=machine.port)
    await client.connect()
    try:
        before = machine.requests
        values = {reading.tag.metric: reading.raw for reading in await connector.read_all(client)}
        assert values == {"m0": -5, "m1": 6, "m2": 70000, "m3": 9}
        # One request for 0-3, one refused for 254-256, then 254 and 256 alone (256 refused, logged once).
        assert machine.requests - before <= 4
        assert "d/m4 not readable" in health.last_error_text and health.errors_total == 1
    finally:
        client.close()
        await machine.stop()
