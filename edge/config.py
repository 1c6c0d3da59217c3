"""The gateway's YAML configuration, validated into plain dataclasses before anything connects.

Shape (edge/README.md has a full example)::

    uplink: {url, auth: device_tokens, batch_size, timeout, retry_initial, retry_max, ca_file}
    gateway: {uid, token | token_env | token_file}         # the gateway's own device (health)
    queue: {path, max_rows, max_age}
    health: {interval}
    connectors: [{name, type: opcua | modbus, ...}]
    devices: [{uid, token | token_env | token_file, tags: [{connector, metric | state, node | table/address...}]}]

``uplink.auth`` is ``device_tokens`` today (each child device sends with its own token); a later
``gateway_token`` mode sends everything with the gateway's token and makes the per-device tokens
optional, so configs written now stay valid.
"""

import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from edge.fields import METRIC, SLUG, ConfigError, Section

STATES = ("running", "idle", "down", "setup", "planned_stop", "offline")
COUNTERS = ("count_total", "count_good")
REGISTER_TYPES = {"int16": 1, "uint16": 1, "int32": 2, "uint32": 2, "float32": 2}
TABLES = ("holding", "input", "coil", "discrete")
SECURITY_POLICIES = ("Basic256Sha256", "Aes128Sha256RsaOaep", "Aes256Sha256RsaPss")
SECURITY_MODES = ("Sign", "SignAndEncrypt")
SLUG_UID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
UID_HINT = "The device's uid as registered on the platform (letters, digits, - _ . :)."


@dataclass(frozen=True)
class Register:
    """Where a Modbus value lives and how its 16-bit words become a number."""

    table: str
    address: int
    data_type: str = "uint16"
    byte_order: str = "big"
    word_order: str = "big"
    unit: int = 1

    @property
    def count(self) -> int:
        return 1 if self.table in ("coil", "discrete") else REGISTER_TYPES[self.data_type]


@dataclass(frozen=True)
class Tag:
    """One PLC value mapped to a device: a metric (scaled, with a deadband) or the machine state."""

    device: str
    connector: str
    metric: str | None = None  # None for the state tag
    node: str | None = None  # OPC UA node id
    register: Register | None = None  # Modbus
    scale: float = 1.0
    offset: float = 0.0
    deadband: float = 0.0
    max_interval: float = 0.0  # heartbeat: report unchanged values this often (0: never)
    states: tuple[tuple[int, str], ...] = ()  # enumeration value -> state
    bits: tuple[tuple[str, int], ...] = ()  # state -> bit number, first set bit wins
    default_state: str | None = None

    @property
    def key(self) -> str:
        return f"{self.device}/{self.metric or 'state'}"


@dataclass(frozen=True)
class Security:
    policy: str
    mode: str
    certificate: Path
    private_key: Path
    server_certificate: Path | None = None


@dataclass(frozen=True)
class Connector:
    name: str
    type: str
    interval: float = 1.0  # poll period, or the subscription's publishing interval
    url: str = ""  # OPC UA
    mode: str = "subscription"  # OPC UA: subscription | poll
    timestamps: str = "gateway"  # OPC UA: gateway | source
    username: str | None = None
    password: str | None = None
    security: Security | None = None
    host: str = ""  # Modbus
    port: int = 502
    timeout: float = 3.0


@dataclass(frozen=True)
class Device:
    uid: str
    token: str | None


@dataclass(frozen=True)
class Config:
    url: str
    auth: str
    batch_size: int
    timeout: float
    retry_initial: float
    retry_max: float
    queue_path: Path
    queue_max_rows: int
    queue_max_age: float
    health_interval: float
    gateway: Device | None
    connectors: dict[str, Connector]
    devices: dict[str, Device]
    tags: list[Tag] = field(default_factory=list)
    ca_file: Path | None = None  # uplink: the CA that signed the platform's certificate (None: the system's)

    def tags_of(self, connector: str) -> list[Tag]:
        return [tag for tag in self.tags if tag.connector == connector]


def load(path: str | Path) -> Config:
    """Read and validate ``path``; raises ``ConfigError`` listing every problem found."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ConfigError([f"cannot read {path}: {exc.strerror}. Check the --config path."], str(path)) from exc
    except yaml.YAMLError as exc:
        raise ConfigError([f"is not valid YAML: {exc}. Fix the indentation or quoting there."], str(path)) from exc
    return parse(data, base=path.parent, source=str(path))


def parse(data, *, base: Path, source: str = "configuration") -> Config:
    """Validate ``data`` (the loaded YAML); relative paths start at ``base``. Raises ``ConfigError``."""
    errors: list[str] = []
    top = Section(data, "", errors)
    uplink = _uplink(top.section("uplink", required=True), base)
    gateway = None
    if top.has("gateway"):
        section = top.section("gateway")
        uid = section.text("uid", required=True, pattern=SLUG_UID, hint=UID_HINT)
        gateway = Device(uid, section.secret("token", base, required=True, what="the gateway device's token"))
        section.finish()
    queue = top.section("queue")
    queue_path = queue.path_value("path", base, must_exist=False) or (base / "edge-queue.sqlite3").resolve()
    max_rows = queue.number("max_rows", 1_000_000, minimum=1, integer=True)
    max_age = queue.number("max_age", 7 * 86400, minimum=1)
    queue.finish()
    health = top.section("health")
    health_interval = health.number("interval", 60.0, minimum=0.05)
    health.finish()
    connectors = {}
    for section in top.sections("connectors", required=True):
        connector = _connector(section, base)
        if connector.name in connectors:
            section.problem("name", f"'{connector.name}' is used twice", "Give each connector its own name.")
        connectors[connector.name] = connector
    devices, tags = _devices(top, base, connectors)
    top.finish()
    if errors:
        raise ConfigError(errors, source)
    return Config(
        **uplink, queue_path=queue_path, queue_max_rows=max_rows, queue_max_age=max_age,
        health_interval=health_interval, gateway=gateway, connectors=connectors, devices=devices, tags=tags,
    )  # fmt: skip


def _uplink(section: Section, base: Path) -> dict:
    url = section.text(
        "url", "", required=True, hint="The platform's base URL, e.g. 'url: https://factory.example.com'."
    )
    if url and not url.startswith(("http://", "https://")):
        section.problem("url", f"'{url}' is not an http(s) URL", "Write it like https://factory.example.com.")
    values = {
        "url": url.rstrip("/"),
        "auth": section.choice("auth", ("device_tokens",), "device_tokens"),
        "batch_size": section.number("batch_size", 500, minimum=1, maximum=1000, integer=True),
        "timeout": section.number("timeout", 10.0, minimum=0.1),
        "retry_initial": section.number("retry_initial", 1.0, minimum=0.01),
        "retry_max": section.number("retry_max", 60.0, minimum=0.01),
        # https:// to a platform whose certificate a private CA signed (`make certs`): that CA's file.
        "ca_file": section.path_value("ca_file", base),
    }
    section.finish()
    return values


def _devices(top: Section, base: Path, connectors: dict[str, Connector]) -> tuple[dict[str, Device], list[Tag]]:
    devices, tags = {}, []
    for section in top.sections("devices", required=True):
        uid = section.text("uid", required=True, pattern=SLUG_UID, hint=UID_HINT)
        if uid in devices:
            section.problem("uid", f"'{uid}' is listed twice", "Merge its tags under one entry.")
        devices[uid] = Device(uid, section.secret("token", base, required=True, what=f"device {uid}'s token"))
        for tag_section in section.sections("tags", required=True):
            tags.append(_tag(tag_section, uid or "?", connectors))
        section.finish()
    seen = set()
    for tag in tags:
        if tag.key in seen:
            top.errors.append(f"devices: {tag.key} is mapped twice. Keep one tag per metric and device.")
        seen.add(tag.key)
    return devices, tags


def _connector(section: Section, base: Path) -> Connector:
    name = section.text("name", "?", required=True, pattern=SLUG, hint="Lower-case letters, digits and _ (e.g. plc1).")
    kind = section.choice("type", ("opcua", "modbus"), required=True)
    interval = section.number("interval", 1.0, minimum=0.01)
    if kind == "opcua":
        url = section.text("url", "", required=True, hint="e.g. 'url: opc.tcp://10.0.0.5:4840'.")
        if url and not url.startswith("opc.tcp://"):
            section.problem("url", f"'{url}' is not an opc.tcp:// URL", "Write it like opc.tcp://10.0.0.5:4840.")
        security = None
        if section.has("security"):
            sub = section.section("security")
            security = Security(
                policy=sub.choice("policy", SECURITY_POLICIES, required=True),
                mode=sub.choice("mode", SECURITY_MODES, "SignAndEncrypt"),
                certificate=sub.path_value("certificate", base) or Path(),
                private_key=sub.path_value("private_key", base) or Path(),
                server_certificate=sub.path_value("server_certificate", base),
            )
            for key in ("certificate", "private_key"):
                if not sub.has(key):
                    sub.problem(key, "is missing", "Security needs the gateway's certificate and private key files.")
            sub.finish()
        connector = Connector(
            name=name, type=kind, interval=interval, url=url,
            mode=section.choice("mode", ("subscription", "poll"), "subscription"),
            timestamps=section.choice("timestamps", ("gateway", "source"), "gateway"),
            username=section.text("username"),
            password=section.secret("password", base, required=section.has("username"), what="the OPC UA password"),
            security=security,
        )  # fmt: skip
    else:
        connector = Connector(
            name=name, type=kind or "modbus", interval=interval,
            host=section.text("host", "", required=True, hint="The PLC's address, e.g. 'host: 10.0.0.6'."),
            port=section.number("port", 502, minimum=1, maximum=65535, integer=True),
            timeout=section.number("timeout", 3.0, minimum=0.1),
        )  # fmt: skip
    section.finish()
    return connector


def _tag(section: Section, device: str, connectors: dict[str, Connector]) -> Tag:
    connector_name = section.text("connector", required=True, hint=f"One of: {', '.join(connectors) or '(none)'}.")
    connector = connectors.get(connector_name)
    if connector_name and connector is None:
        section.problem("connector", f"'{connector_name}' is not a connector", f"Use one of: {', '.join(connectors)}.")
    is_state = section.has("state")
    metric = None
    if is_state == section.has("metric"):
        section.problem("metric", "give either 'metric: <name>' or 'state: {...}'", "A tag is a metric or the state.")
    elif not is_state:
        metric = section.text(
            "metric", pattern=METRIC, hint="Lower-case letters, digits and _, starting with a letter."
        )
    node, register = None, None
    if connector and connector.type == "opcua":
        node = section.text(
            "node", required=True, hint="The OPC UA node id, e.g. 'node: \"ns=2;s=Press.Temperature\"'."
        )
    elif connector:
        register = _register(section)
    states, bits, default_state = (), (), None
    if is_state:
        states, bits, default_state = _state_mapping(section.section("state"))
    deadband = section.number("deadband", 0.0, minimum=0)
    if metric in COUNTERS and deadband:
        section.problem("deadband", f"{metric} is a piece counter: every change counts", "Remove the deadband.")
    tag = Tag(
        device=device, connector=connector_name or "?", metric=metric, node=node, register=register,
        scale=section.number("scale", 1.0), offset=section.number("offset", 0.0), deadband=deadband,
        max_interval=section.number("max_interval", 0.0, minimum=0),
        states=states, bits=bits, default_state=default_state,
    )  # fmt: skip
    section.finish()
    return tag


def _register(section: Section) -> Register:
    table = section.choice("table", TABLES, "holding")
    is_bit = table in ("coil", "discrete")
    data_type = section.choice("type", tuple(REGISTER_TYPES), "uint16")
    if is_bit and section.has("type"):
        section.problem("type", f"a {table} is one bit", "Remove 'type' (it is for registers).")
    return Register(
        table=table,
        address=section.number("address", 0, minimum=0, maximum=65535, integer=True)
        if section.has("address")
        else (section.problem("address", "is missing", "The 0-based register address, e.g. 'address: 100'.") or 0),
        data_type="uint16" if is_bit else data_type,
        byte_order=section.choice("byte_order", ("big", "little"), "big"),
        word_order=section.choice("word_order", ("big", "little"), "big"),
        unit=section.number("unit", 1, minimum=0, maximum=255, integer=True),
    )


def _state_mapping(section: Section):
    """``state: {map: {1: running, ...}}`` (an enumeration) or ``state: {bits: {running: 0, ...}}``;
    ``default`` is the state when no mapping matches (left out: such a value is skipped and logged)."""
    default_state = section.choice("default", STATES)
    states, bits = [], []
    if section.has("map") == section.has("bits"):
        section.problem("map", "give either 'map' (value: state) or 'bits' (state: bit number)", "Choose one.")
    for key, value in (section.raw("map", {}) or {}).items():
        if not isinstance(key, int) or value not in STATES:
            section.problem(f"map.{key}", f"needs a whole number: one of {', '.join(STATES)}", "e.g. '1: running'.")
        else:
            states.append((key, value))
    for key, value in (section.raw("bits", {}) or {}).items():
        if key not in STATES or not isinstance(value, int) or not 0 <= value <= 31:
            section.problem(f"bits.{key}", f"needs one of {', '.join(STATES)}: a bit number 0-31", "e.g. 'down: 2'.")
        else:
            bits.append((key, value))
    section.finish()
    return tuple(states), tuple(bits), default_state
