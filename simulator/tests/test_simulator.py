"""The factory simulator: its behaviour model, tokens, fleet, runner, and an end-to-end run against Daphne."""

import asyncio
import os
import random
import re
import stat
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from urllib.parse import quote

import orjson
import pytest
from django.conf import settings as django_settings
from django.core.management import CommandError, call_command
from django.db import connection

from conftest import require_service
from devices.models import Device, DeviceToken, MachineState, TelemetryReading
from devices.services.telemetry_payload import STATES, payload_parse
from devices.services.tokens import token_authenticate, token_revoke
from devices.tests.factories import make_device, make_line, make_plant
from simulator.fleet import fleet_select
from simulator.machine import (
    PRECURSOR,
    GatewayModel,
    MachineModel,
    SensorModel,
    behaviour_for,
    sensor_profile,
)
from simulator.runner import Runner, SimDevice
from simulator.tokens import SimulatorTokens, TokenRefused
from simulator.transports import AUTH, OK, UNREACHABLE, MqttTransport, SendResult, Transport
from tests.servers import Daphne
from tests.waiting import poll

START = datetime(2026, 11, 26, 6, 0, tzinfo=UTC)


def _play(model, steps: int, dt: float = 1.0) -> list[dict]:
    return [model.step(START + timedelta(seconds=i * dt), dt) for i in range(1, steps + 1)]


def _machine(seed: int, *, speed: float, failure_rate: float, cycle: float = 2.5) -> MachineModel:
    return MachineModel(ideal_cycle_time=cycle, rng=random.Random(seed), speed=speed, failure_rate=failure_rate)


# The behaviour model --------------------------------------------------------------------------


def test_counters_are_cumulative_and_only_ever_reset_to_zero():
    messages = _play(_machine(5, speed=20, failure_rate=2.0), 20_000)
    resets = 0
    for previous, current in pairwise(m["values"] for m in messages):
        assert isinstance(current["count_total"], int) and isinstance(current["count_good"], int)
        assert 0 <= current["count_good"] <= current["count_total"]
        if current["count_total"] < previous["count_total"]:
            resets += 1
            assert current["count_total"] == current["count_good"] == 0
        else:
            assert current["count_good"] >= previous["count_good"]
    assert resets >= 3, "a device restart now and then resets the counters"


def test_pieces_follow_the_ideal_cycle_time_a_bit_slower_with_a_few_percent_rejects():
    cycle = 2.5
    messages = _play(_machine(8, speed=5, failure_rate=0.5, cycle=cycle), 20_000)
    running_seconds = pieces = good = 0
    for previous, current in pairwise(messages):
        total_step = current["values"]["count_total"] - previous["values"]["count_total"]
        if current["state"] == "running" and total_step >= 0:
            running_seconds += 1
            pieces += total_step
            good += current["values"]["count_good"] - previous["values"]["count_good"]
    performance = pieces * cycle / running_seconds
    assert 0.7 < performance <= 1.0
    assert 0.9 < good / pieces < 0.995


def test_states_come_from_the_contract_and_all_of_them_occur():
    states = {m["state"] for m in _play(_machine(3, speed=30, failure_rate=2.0), 20_000)}
    assert states <= set(STATES)
    assert states == {"running", "idle", "setup", "down", "planned_stop"}


def test_a_breakdown_is_announced_by_rising_vibration_and_temperature():
    speed = 10
    messages = _play(_machine(11, speed=speed, failure_rate=3.0, cycle=3.0), 30_000)
    window = int(PRECURSOR / speed)  # messages sent while the machine wears
    breakdowns = [
        i for i in range(window + 1, len(messages)) if messages[i]["state"] == "down" != messages[i - 1]["state"]
    ]
    assert len(breakdowns) >= 10

    def mean(metric, chunk):
        return sum(m["values"][metric] for m in chunk) / len(chunk)

    for i in breakdowns:
        before = messages[i - window : i]
        assert {m["state"] for m in before} == {"running"}, "the machine breaks while running"
        early, late = before[:3], before[-3:]
        assert mean("vibration", late) > 2.5 * mean("vibration", early)
        assert mean("temperature", late) > mean("temperature", early) + 3.0


def test_the_same_seed_plays_the_same_plant():
    assert _play(_machine(42, speed=10, failure_rate=1.0), 500) == _play(_machine(42, speed=10, failure_rate=1.0), 500)


def test_every_kind_of_device_sends_messages_the_ingest_accepts():
    rng = random.Random(1)
    models = [
        _machine(1, speed=1, failure_rate=0.5),
        *(SensorModel(profile=profile, rng=rng) for profile in SensorModel.PROFILES),
        GatewayModel(rng=rng),
    ]
    messages = [message for model in models for message in _play(model, 50)]
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", m["ts"]) for m in messages)
    parsed = payload_parse(
        orjson.dumps({"messages": messages}), now=START + timedelta(minutes=1), oldest=START - timedelta(days=1),
        max_batch=1000,
    )  # fmt: skip
    assert len(parsed) == len(messages)
    assert all(("state" in m) == (i < 50) for i, m in enumerate(messages)), "only machines send a state"


@pytest.mark.parametrize(
    ("uid", "name", "model", "profile", "metrics"),
    [
        ("temp-01", "Hall temperature", "TH-1", "climate", {"temperature", "humidity"}),
        ("vibration-01", "Press 1 vibration", "VB-3", "vibration", {"vibration"}),
        ("power-01", "Assembly power meter", "PM-9", "power", {"power"}),
    ],
)
def test_sensors_measure_what_their_name_says(uid, name, model, profile, metrics):
    assert sensor_profile(uid, name, model) == profile
    sensor = behaviour_for(kind="sensor", uid=uid, name=name, model=model, rng=random.Random(2))
    assert set(sensor.step(START, 1.0)["values"]) == metrics


# Tokens and fleet -----------------------------------------------------------------------------


@pytest.fixture
def machines(db):
    line = make_line(make_plant("Sim Plant"))
    return [make_device(line, uid=f"m-{i}") for i in range(2)]


def test_tokens_are_issued_once_kept_private_and_reused(machines, settings):
    first = SimulatorTokens(allow_issue=True).ensure(machines)
    path = Path(settings.VAR_DIR) / "simulator-tokens.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert SimulatorTokens(allow_issue=False).ensure(machines) == first
    assert DeviceToken.objects.filter(name="simulator").count() == 2
    assert token_authenticate(first["m-0"]).uid == "m-0"


def test_a_refused_token_is_replaced_only_when_the_registry_refuses_it_too(machines):
    store = SimulatorTokens(allow_issue=True)
    tokens = store.ensure(machines)
    token_revoke(token=DeviceToken.objects.get(device=machines[0]))
    replaced = store.reissue("m-0", tokens["m-0"])
    assert replaced != tokens["m-0"] and token_authenticate(replaced).uid == "m-0"
    assert store.reissue("m-1", tokens["m-1"]) == tokens["m-1"], "still valid here: the server is elsewhere"
    Device.objects.filter(uid="m-1").update(enabled=False)
    assert store.reissue("m-1", tokens["m-1"]) is None
    assert SimulatorTokens(allow_issue=False).ensure([machines[0]]) == {"m-0": replaced}


def test_no_tokens_are_issued_with_debug_off_unless_allowed(machines, settings):
    settings.DEBUG = False
    with pytest.raises(TokenRefused, match="--allow-production"):
        SimulatorTokens(allow_issue=False).ensure(machines)
    with pytest.raises(CommandError, match="--allow-production"):
        call_command("simulate", "--plant", "Sim Plant", "--devices", "2", "--duration", "1")
    with pytest.raises(CommandError, match="seed_demo"):
        call_command("simulate", "--plant", "No Such Plant", "--duration", "1")
    assert not DeviceToken.objects.exists()


def test_missing_devices_become_sim_machines_on_a_simulator_line_once(machines):
    plant = machines[0].plant
    devices = fleet_select(plant=plant, count=4, allow_create=True)
    assert [d.uid for d in devices] == ["m-0", "m-1", "sim-001", "sim-002"]
    assert all(d.line.name == "Simulator" and d.kind == "machine" and d.ideal_cycle_time for d in devices[2:])
    assert fleet_select(plant=plant, count=4, allow_create=False) == devices
    with pytest.raises(PermissionError, match="--allow-production"):
        fleet_select(plant=plant, count=5, allow_create=False)


# The runner -----------------------------------------------------------------------------------


class FlakyServer(Transport):
    """Unreachable for ``down_for`` seconds, then refuses ``refuse``'s token once, then stores everything."""

    name, target = "fake", "fake://server"

    def __init__(self, down_for: float, refuse: str):
        self.down_for, self.refuse, self.started = down_for, refuse, None
        self.received = defaultdict(list)
        self.tokens = defaultdict(set)

    async def probe(self):
        return None

    async def send(self, uid, token, messages):
        self.started = self.started or time.monotonic()
        if time.monotonic() - self.started < self.down_for:
            return SendResult(UNREACHABLE, detail="ConnectionRefusedError: [Errno 111]")
        if uid == self.refuse and token == "old":
            return SendResult(AUTH, detail="HTTP 403: token revoked")
        self.tokens[uid].add(token)
        self.received[uid].extend(messages)
        return SendResult(OK, accepted=len(messages))


def test_runner_keeps_messages_through_an_outage_and_replaces_a_refused_token(caplog):
    caplog.set_level("INFO", logger="simulator")
    server = FlakyServer(down_for=0.5, refuse="a")
    devices = [
        SimDevice(uid=uid, token="old", behaviour=_machine(i, speed=1, failure_rate=0)) for i, uid in enumerate("ab")
    ]

    async def reissue(uid, refused):
        return "new"

    stats = asyncio.run(Runner(devices, server, rate=5, duration=2.5, reissue=reissue, summary_every=1).run())
    assert server.tokens == {"a": {"new"}, "b": {"old"}}
    assert stats.accepted == sum(len(messages) for messages in server.received.values()) >= 20
    assert stats.dropped == 0 and all(not device.buffer for device in devices)
    for messages in server.received.values():
        stamps = [datetime.fromisoformat(m["ts"]) for m in messages]
        gaps = {round((b - a).total_seconds(), 2) for a, b in pairwise(stamps)}
        assert gaps == {0.2}, "every message arrives once, in order, none lost in the outage"
    assert "not reachable" in caplog.text and "reachable again" in caplog.text
    assert "Simulator, last 1 s" in caplog.text


@pytest.mark.services
def test_mqtt_transport_publishes_contract_messages_at_qos1():
    from paho.mqtt.client import CallbackAPIVersion, Client

    url = require_service("MQTT_URL")
    uid = f"simtest-{os.getpid()}"
    transport = MqttTransport(url)
    received = []
    subscriber = Client(CallbackAPIVersion.VERSION2, client_id=f"{uid}-sub")
    subscriber.on_message = lambda client, userdata, message: received.append(message.payload)
    subscriber.connect(transport.host, transport.port)
    subscriber.subscribe(f"factory/devices/{uid}/telemetry", qos=1)
    subscriber.loop_start()
    try:
        device = SimDevice(uid=uid, token="anonymous", behaviour=_machine(1, speed=1, failure_rate=0))
        stats = asyncio.run(Runner([device], transport, rate=4, duration=1.5).run())
        # Wait (bounded) for the broker to deliver all that was published; the count is checked below.
        poll(lambda: sum(len(orjson.loads(p)["messages"]) for p in received) >= stats.accepted, timeout=5)
    finally:
        subscriber.loop_stop()
        subscriber.disconnect()
    messages = [m for payload in received for m in orjson.loads(payload)["messages"]]
    assert stats.accepted == len(messages) >= 4
    now = datetime.now(UTC)
    payload_parse(orjson.dumps({"messages": messages}), now=now, oldest=now - timedelta(days=1), max_batch=1000)


# End to end -----------------------------------------------------------------------------------


def _database_url() -> str:
    db = connection.settings_dict
    credentials = quote(db["USER"] or "") + (f":{quote(db['PASSWORD'])}" if db.get("PASSWORD") else "")
    return f"mysql://{credentials}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 3306}/{db['NAME']}"


@pytest.fixture
def daphne(tmp_path):
    """Daphne serving the project on a free port, on the test database (which must be MariaDB/MySQL)."""
    if connection.vendor != "mysql":
        pytest.skip(
            "The end-to-end run needs a database a second process can open: pytest-django's SQLite test "
            "database is in memory. Run with DATABASE_URL=mysql://... to include it."
        )
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "SECRET_KEY": django_settings.SECRET_KEY,
        "DEVICE_TOKEN_HASH_KEY": django_settings.DEVICE_TOKEN_HASH_KEY,
        "VAR_DIR": str(tmp_path / "server-var"),
    }
    server = Daphne(env, log=tmp_path / "daphne.log").start(timeout=15)
    try:
        yield server.url
    finally:
        server.stop()


@pytest.mark.django_db(transaction=True)
def test_simulated_plant_reaches_the_database_over_http_and_websocket(daphne):
    line = make_line(make_plant("E2E Plant"))
    machines = [make_device(line, uid=f"e2e-press-{i}") for i in range(2)]
    sensor = make_device(line, uid="e2e-temp", kind="sensor", ideal_cycle_time=None)
    common = ["--plant", "E2E Plant", "--devices", "3", "--rate", "2", "--url", daphne, "--allow-production"]

    call_command("simulate", *common, "--via", "http", "--duration", "2", "--seed", "1")
    by_http = {d.uid: TelemetryReading.objects.filter(device=d).count() for d in [*machines, sensor]}
    # Every device got through (how many messages fit in 2 s depends on the machine's load).
    assert all(count >= 1 for count in by_http.values()), by_http
    for machine in machines:
        machine.refresh_from_db()
        assert machine.online and machine.state in STATES
        assert MachineState.objects.filter(device=machine).exists()
    assert not MachineState.objects.filter(device=sensor).exists()

    call_command("simulate", *common, "--via", "ws", "--duration", "1.5", "--seed", "2")
    by_ws = {d.uid: TelemetryReading.objects.filter(device=d).count() for d in [*machines, sensor]}
    assert all(by_ws[uid] > by_http[uid] for uid in by_http), (by_http, by_ws)
    assert DeviceToken.objects.filter(name="simulator").count() == 3, "the second run reuses the tokens"


def test_pieces_of_a_step_belong_to_the_state_reported_at_its_start():
    """A state holds until the next message (CONTRACT.md): pieces counted at the end of a step were
    made while the machine was in the state it reported at the step's start. Crediting a step's
    pieces to a machine that has only just started running made performance exceed 100 % in the
    demo history (minute steps)."""
    from simulator.machine import MachineModel

    now = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
    starting = MachineModel(ideal_cycle_time=1.0, rng=random.Random(7), failure_rate=0)
    starting.state, starting.dwell_left = "idle", 0.0
    starting._next = lambda state: "running"
    message = starting.step(now, 60.0)
    assert message["state"] == "running" and message["values"]["count_total"] == 0

    stopping = MachineModel(ideal_cycle_time=1.0, rng=random.Random(7), failure_rate=0)
    stopping._enter("running")
    stopping.dwell_left = 0.0
    stopping._next = lambda state: "idle"
    message = stopping.step(now, 60.0)
    # 60 s of running at 1 s per piece, 5-25 % slower than ideal.
    assert message["state"] == "idle" and 45 <= message["values"]["count_total"] <= 58
