"""Simulated machines that speak real OPC UA (asyncua server) and Modbus TCP (pymodbus server),
for the demo and the tests: the gateway reads them exactly as it reads a PLC.

Both expose ``set(...)`` for a test to change a value, and ``produce()`` for the demo: a
machine that runs, counts pieces (about one in twenty is scrap), warms up, and now and then
stops for a few cycles.
"""

import asyncio
import logging
import random

from asyncua import Server, ua
from asyncua.server.user_managers import User, UserManager, UserRole
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice
from pymodbus.simulator.simutils import SimUtils

from edge.config import Register
from edge.modbus import encode

STATE_CODES = {"running": 1, "idle": 2, "down": 3, "setup": 4, "planned_stop": 5}
STATE_BITS = {"running": 0, "down": 1, "setup": 2}  # the Modbus machine's status word; no bit set: idle
NAMESPACE = "urn:smart-factory:edge-demo"


class OpcUaMachine:
    """An OPC UA server with ``Machine.{Temperature, State, CountTotal, CountGood}`` in namespace 2."""

    VARIABLES = {
        "Temperature": ua.Variant(20.0, ua.VariantType.Double),
        "State": ua.Variant(STATE_CODES["idle"], ua.VariantType.Int32),
        "CountTotal": ua.Variant(0, ua.VariantType.UInt32),
        "CountGood": ua.Variant(0, ua.VariantType.UInt32),
    }

    def __init__(self, port: int, host: str = "127.0.0.1", users: dict[str, str] | None = None, certificate=None):
        """``users``: username -> password; given, anonymous clients are refused. ``certificate``:
        ``(certificate DER file, private key PEM file)``; given, only Basic256Sha256 with
        SignAndEncrypt is offered."""
        self.url = f"opc.tcp://{host}:{port}/machine/"
        self.users = users
        self.certificate = certificate
        self.server = Server(user_manager=_Users(users) if users else None)
        self.nodes = {}
        self.namespace = 2

    def node_id(self, name: str) -> str:
        return f"ns={self.namespace};s=Machine.{name}"

    async def start(self) -> "OpcUaMachine":
        logging.getLogger("asyncua").setLevel(logging.ERROR)
        await self.server.init()
        self.server.set_endpoint(self.url)
        self.server.set_server_name("Simulated press (edge demo)")
        if self.users:
            self.server.set_security_IDs(["Username"])
        if self.certificate:
            self.server.set_security_policy([ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt])
            await self.server.load_certificate(str(self.certificate[0]))
            await self.server.load_private_key(str(self.certificate[1]))
        self.namespace = await self.server.register_namespace(NAMESPACE)
        machine = await self.server.nodes.objects.add_object(self.namespace, "Machine")
        for name, initial in self.VARIABLES.items():
            self.nodes[name] = await machine.add_variable(ua.NodeId(f"Machine.{name}", self.namespace), name, initial)
        await self.server.start()
        return self

    async def stop(self) -> None:
        await self.server.stop()

    async def set(self, name: str, value) -> None:
        await self.nodes[name].write_value(ua.Variant(value, self.VARIABLES[name].VariantType))

    async def produce(self, cycle: float = 2.0) -> None:
        """Run like a press forever: ``cycle`` seconds per piece while running."""
        total = good = 0
        temperature = 20.0
        while True:
            running = random.random() > 0.1  # noqa: S311 (simulation)
            await self.set("State", STATE_CODES["running" if running else "down"])
            for _ in range(random.randint(3, 12) if running else 3):  # noqa: S311
                await asyncio.sleep(cycle)
                if running:
                    total += 1
                    good += random.random() > 0.05  # noqa: S311
                    await self.set("CountTotal", total)
                    await self.set("CountGood", good)
                temperature += (70.0 if running else 25.0 - temperature) * 0.02 + random.uniform(-0.3, 0.3)  # noqa: S311
                await self.set("Temperature", round(temperature, 2))


class _Users(UserManager):
    """Username and password logins for the simulated OPC UA server."""

    def __init__(self, users: dict[str, str]):
        self.users = users

    def get_user(self, iserver, username=None, password=None, certificate=None):
        if username in self.users and self.users[username] == password:
            return User(role=UserRole.User, name=username)
        return None


class ModbusMachine:
    """A Modbus TCP server (unit 1) whose registers are whatever ``set`` put there (0 elsewhere).

    The demo's register map (``REGISTERS``): temperature in 0.1 °C (int16), the status word (bits
    ``STATE_BITS``), the piece counters as uint32 in CDAB word order (as many PLCs store them), and
    the power draw as float32.
    """

    REGISTERS = {
        "temperature": Register("holding", 0, "int16"),
        "status": Register("holding", 1, "uint16"),
        "count_total": Register("holding", 2, "uint32", word_order="little"),
        "count_good": Register("holding", 4, "uint32", word_order="little"),
        "power": Register("holding", 6, "float32"),
        "door_open": Register("coil", 0),
    }

    def __init__(self, port: int, host: str = "127.0.0.1"):
        self.host, self.port = host, port
        self.values: dict[tuple[str, int], int | bool] = {}
        self.requests = 0  # requests served (a test sees how many reads a round took)
        blocks = (
            [SimData(0, count=64, values=False, datatype=DataType.BITS)],  # coils
            [SimData(0, count=64, values=False, datatype=DataType.BITS)],  # discrete inputs
            [SimData(0, count=256, values=0, datatype=DataType.REGISTERS)],  # holding registers
            [SimData(0, count=256, values=0, datatype=DataType.REGISTERS)],  # input registers
        )
        device = SimDevice(id=1, simdata=blocks, action=self._on_access)
        self.server = ModbusTcpServer(device, address=(host, port))
        self.task: asyncio.Task | None = None

    async def _on_access(self, function_code, start_address, address, count, registers, set_values):
        """pymodbus calls this on every request with the whole block of the table asked for (coils
        and discrete inputs packed 16 to a register): put ``values`` into it before it answers."""
        self.requests += 1
        table = {1: "coil", 5: "coil", 15: "coil", 2: "discrete", 4: "input"}.get(function_code, "holding")
        mine = {at: value for (kind, at), value in self.values.items() if kind == table}
        if table in ("coil", "discrete"):
            bits = SimUtils.registersToBits(registers)
            for at, value in mine.items():
                bits[at - start_address * 16] = value
            registers[:] = SimUtils.bitsToRegisters(bits)
        else:
            for at, value in mine.items():
                registers[at - start_address] = value
        return None

    def set(self, register: Register | str, value) -> None:
        register = self.REGISTERS[register] if isinstance(register, str) else register
        if register.table in ("coil", "discrete"):
            self.values[(register.table, register.address)] = bool(value)
            return
        for offset, word in enumerate(encode(value, register)):
            self.values[(register.table, register.address + offset)] = word

    async def start(self) -> "ModbusMachine":
        logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
        self.task = asyncio.create_task(self.server.serve_forever())
        for _ in range(500):  # serve_forever starts listening in the background: wait until it does
            if self.server.is_active():
                break
            await asyncio.sleep(0.01)
        return self

    async def stop(self) -> None:
        await self.server.shutdown()
        if self.task:
            self.task.cancel()

    async def produce(self, cycle: float = 4.0) -> None:
        """Run like a packer forever: ``cycle`` seconds per piece while running."""
        total = good = 0
        temperature = 300  # 0.1 °C
        while True:
            state = random.choice(["running"] * 6 + ["down", "setup"])  # noqa: S311
            self.set("status", 1 << STATE_BITS[state])
            for _ in range(random.randint(3, 10)):  # noqa: S311
                await asyncio.sleep(cycle)
                if state == "running":
                    total += 1
                    good += random.random() > 0.03  # noqa: S311
                self.set("count_total", total)
                self.set("count_good", good)
                temperature += random.randint(-3, 4) if state == "running" else -2  # noqa: S311
                temperature = max(200, min(temperature, 650))
                self.set("temperature", temperature)
                self.set("power", 7.5 + random.uniform(-0.5, 0.5) if state == "running" else 0.4)  # noqa: S311
