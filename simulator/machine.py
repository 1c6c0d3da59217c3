"""How simulated devices behave: machines, sensors and gateways. Pure Python, no clock, no I/O.

Every model takes a ``random.Random`` (seed it for a reproducible run) and is advanced with
``step(ts, dt)``: ``dt`` real seconds have passed and ``ts`` is the time of the message it returns
(a CONTRACT.md telemetry message: ``ts`` in ISO 8601 with ``Z``, ``values``, and ``state`` for
machines).

A machine is a semi-Markov process over running / idle / setup / planned_stop with dwell times
drawn per visit, plus breakdowns: a time to failure (in running seconds, ``failure_rate`` per
running hour) is drawn after each repair, and during the last ``PRECURSOR`` running seconds
before it the machine wears: vibration, temperature and power rise, it slows down and makes more
rejects. Then it goes ``down`` for a repair time. ``speed`` runs this behaviour (dwell times,
wear, drifts) faster than real time; piece counters always follow the ideal cycle time in real
time so that performance and OEE stay plausible at any speed.
"""

import math
import random
from datetime import UTC, datetime

MACHINE_STATES = ("running", "idle", "setup", "down", "planned_stop")
# Mean dwell per visit in model seconds, and where a machine goes when it is over.
DWELL_MEAN = {"running": 1200.0, "idle": 150.0, "setup": 420.0, "planned_stop": 900.0}
NEXT_STATE = {
    "running": (("idle", 0.6), ("setup", 0.3), ("planned_stop", 0.1)),
    "idle": (("running", 0.85), ("setup", 0.15)),
    "setup": (("running", 1.0),),
    "planned_stop": (("running", 0.6), ("setup", 0.4)),
    "down": (("running", 0.6), ("setup", 0.4)),  # once repaired
}
REPAIR_MEAN = 480.0
MIN_REPAIR = 60.0
PRECURSOR = 240.0  # running seconds before a breakdown in which the wear shows
RESTART_AFTER_REPAIR = 0.5  # the controller was power-cycled during the repair: counters restart at 0
RESTART_PER_HOUR = 0.02  # unprompted controller restarts per hour of model time


def iso_z(ts: datetime) -> str:
    """``2026-11-26T16:00:00.123Z``: UTC with milliseconds, as CONTRACT.md shows it."""
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _gamma(rng: random.Random, mean: float, shape: float = 2.0) -> float:
    """Dwell and repair times: gamma-distributed (rarely very short, a long tail), mean ``mean``."""
    return rng.gammavariate(shape, mean / shape)


class Drift:
    """A value that follows a moving target with time constant ``tau`` (an Ornstein-Uhlenbeck step)."""

    def __init__(self, value: float, tau: float, noise: float):
        self.value, self.tau, self.noise = value, tau, noise

    def step(self, rng: random.Random, target: float, dt: float) -> float:
        alpha = 1.0 - math.exp(-dt / self.tau) if dt > 0 else 0.0
        self.value += (target - self.value) * alpha + rng.gauss(0.0, self.noise) * math.sqrt(max(alpha, 0.05))
        return self.value


class MachineModel:
    """A production machine: state, cumulative piece counters, temperature, vibration, power."""

    kind = "machine"

    def __init__(self, *, ideal_cycle_time: float, rng: random.Random, speed: float = 1.0, failure_rate: float = 0.5):
        self.rng, self.ideal, self.speed, self.failure_rate = rng, float(ideal_cycle_time), speed, failure_rate
        self.rated_power = rng.uniform(8.0, 30.0)  # kW
        self.base_temperature = rng.uniform(55.0, 68.0)
        self.base_vibration = rng.uniform(0.015, 0.03)
        self.reject_rate = rng.uniform(0.01, 0.04)
        self.ambient = Drift(rng.uniform(20.0, 26.0), tau=3600.0, noise=0.3)
        self.state = rng.choices(("running", "idle", "setup"), (0.75, 0.15, 0.10))[0]
        self.dwell_left = _gamma(rng, DWELL_MEAN[self.state])
        self.time_to_failure = self._draw_time_to_failure()
        self.repair_left = 0.0
        self.min_repair = MIN_REPAIR
        self.slowness = rng.uniform(1.05, 1.25)
        self.progress = 0.0
        # The controller starts with the simulator: counters from 0, which the ingest reads as a reset.
        # (Starting anywhere else could look like thousands of pieces made since the last run.)
        self.count_total = self.count_good = 0
        running = self.state == "running"
        self.temperature = Drift(self.base_temperature if running else 40.0, tau=180.0, noise=0.15)
        self.vibration = Drift(self.base_vibration if running else 0.004, tau=3.0, noise=0.001)
        self.power = Drift(self.rated_power * (0.8 if running else 0.25), tau=2.0, noise=0.2)

    @property
    def wear(self) -> float:
        """0 when healthy, rising to 1 over the ``PRECURSOR`` running seconds before a breakdown."""
        return min(1.0, max(0.0, 1.0 - self.time_to_failure / PRECURSOR))

    def step(self, ts: datetime, dt: float) -> dict:
        """Advance by ``dt`` real seconds; return the message the machine sends at ``ts``."""
        model_dt = dt * self.speed
        # The pieces of the last ``dt`` belong to the state the machine reported at its start (a
        # state holds until the next message): a machine that starts running now has made nothing
        # yet, and one that just stopped did make the pieces of the time it still ran. Counting by
        # the new state instead credited a whole step of pieces to an idle machine, which pushed
        # performance over 100 % with the minute steps of the demo history.
        was_running = self.state == "running"
        restarted = self._advance_state(model_dt)
        restarted |= self.rng.random() < RESTART_PER_HOUR * model_dt / 3600.0
        if restarted:
            self.count_total = self.count_good = 0
            self.progress = 0.0
        elif was_running:
            self._produce(dt)
        self._advance_signals(model_dt)
        values = {
            "temperature": round(self.temperature.value, 2),
            "vibration": round(max(self.vibration.value, 0.0), 4),
            "power": round(max(self.power.value, 0.0), 3),
            "count_total": self.count_total,
            "count_good": self.count_good,
        }
        return {"ts": iso_z(ts), "values": values, "state": self.state}

    def wear_out(self, seconds: float, *, repair_at_least: float = 180.0) -> None:
        """Start worn: running, and breaking down after ``seconds`` real seconds of running.

        The simulator does this to one machine per run, so a fresh demo shows a breakdown (and its
        alarms: vibration rising, then the machine down for longer than ``repair_at_least``)
        within minutes instead of after the half hour a fleet of healthy machines takes.
        """
        self._enter("running")
        self.time_to_failure = max(1.0, seconds * self.speed)
        self.min_repair = repair_at_least

    def _draw_time_to_failure(self) -> float:
        if self.failure_rate <= 0:
            return math.inf
        # At least one full precursor: every breakdown is announced by its wear.
        return PRECURSOR + self.rng.expovariate(self.failure_rate / 3600.0)

    def _enter(self, state: str) -> None:
        self.state = state
        if state == "running":
            self.slowness = self.rng.uniform(1.05, 1.25)
        if state in DWELL_MEAN:
            self.dwell_left = max(5.0, _gamma(self.rng, DWELL_MEAN[state]))

    def _advance_state(self, dt: float) -> bool:
        """Spend ``dt`` model seconds; at most one transition per step, so every state is reported.

        Returns True when the controller restarted (counters go back to 0).
        """
        if self.state == "down":
            self.repair_left -= dt
            if self.repair_left > 0:
                return False
            self.time_to_failure = self._draw_time_to_failure()
            self._enter(self._next("down"))
            return self.rng.random() < RESTART_AFTER_REPAIR
        if self.state == "running":
            self.time_to_failure -= dt
            if self.time_to_failure <= 0:
                self.state, self.repair_left = "down", max(self.min_repair, _gamma(self.rng, REPAIR_MEAN))
                self.min_repair = MIN_REPAIR
                return False
        self.dwell_left -= dt
        # A wearing machine keeps running until it breaks rather than being stopped in time.
        if self.dwell_left <= 0 and not (self.state == "running" and self.wear > 0):
            self._enter(self._next(self.state))
        return False

    def _next(self, state: str) -> str:
        choices, weights = zip(*NEXT_STATE[state], strict=True)
        return self.rng.choices(choices, weights)[0]

    def _produce(self, dt: float) -> None:
        """Pieces at the ideal cycle time, a bit slower (more so when worn), a few percent rejects."""
        wear = self.wear
        self.progress += dt / (self.ideal * self.slowness * (1.0 + 0.3 * wear))
        pieces = int(self.progress)
        self.progress -= pieces
        reject = min(0.5, self.reject_rate * (1.0 + 4.0 * wear))
        if pieces <= 1000:
            good = sum(self.rng.random() >= reject for _ in range(pieces))
        else:  # an absurdly short cycle time: the expected value is enough
            good = round(pieces * (1 - reject))
        self.count_total += pieces
        self.count_good += good

    def _advance_signals(self, dt: float) -> None:
        rng, wear = self.rng, self.wear
        ambient = self.ambient.step(rng, 23.0, dt)
        warm = self.base_temperature - ambient
        level = {"running": 1.0, "setup": 0.4, "idle": 0.5}.get(self.state, 0.05)
        temperature = ambient + warm * level + (25.0 * wear if self.state == "running" else 0.0)
        vibration = {"running": 1.0, "setup": 0.3, "idle": 0.15}.get(self.state, 0.02) * self.base_vibration
        if self.state == "running":
            vibration *= 1.0 + 5.0 * wear * wear
        power = {"running": 0.8 + 0.15 * wear, "setup": 0.35, "idle": 0.25, "planned_stop": 0.05}.get(self.state, 0.03)
        self.temperature.step(rng, temperature, dt)
        self.vibration.noise = 0.08 * vibration
        self.vibration.step(rng, vibration, dt)
        self.power.step(rng, power * self.rated_power, dt)


class SensorModel:
    """A stand-alone sensor: ``climate`` (temperature, humidity), ``vibration`` or ``power``."""

    kind = "sensor"
    PROFILES = ("climate", "vibration", "power")

    def __init__(self, *, profile: str, rng: random.Random, speed: float = 1.0):
        if profile not in self.PROFILES:
            raise ValueError(f"Unknown sensor profile {profile!r}; use one of {', '.join(self.PROFILES)}.")
        self.profile, self.rng, self.speed = profile, rng, speed
        self.target = {"climate": rng.uniform(20.0, 25.0), "vibration": 0.01, "power": rng.uniform(60.0, 140.0)}[
            profile
        ]
        self.level = Drift(self.target, tau=600.0 if profile == "climate" else 5.0, noise=0.05 * self.target)
        self.humidity = Drift(rng.uniform(35.0, 55.0), tau=900.0, noise=0.5)
        self.burst_left = 0.0

    def step(self, ts: datetime, dt: float) -> dict:
        rng, model_dt = self.rng, dt * self.speed
        if self.profile == "climate":
            # The hall warms and cools slowly around a wandering set point.
            self.target = min(30.0, max(16.0, self.target + rng.gauss(0.0, 0.02) * math.sqrt(model_dt)))
            values = {
                "temperature": round(self.level.step(rng, self.target, model_dt), 2),
                "humidity": round(min(95.0, max(10.0, self.humidity.step(rng, 45.0, model_dt))), 1),
            }
        elif self.profile == "vibration":
            # Occasional bursts: a forklift passing, a neighbouring press.
            if self.burst_left <= 0 and rng.random() < 0.002 * model_dt:
                self.burst_left = rng.uniform(5.0, 30.0)
            self.burst_left -= model_dt
            target = self.target * (4.0 if self.burst_left > 0 else 1.0)
            values = {"vibration": round(max(0.0, self.level.step(rng, target, model_dt)), 4)}
        else:
            # Plant load steps when machines start and stop.
            if rng.random() < 0.01 * model_dt:
                self.target = min(200.0, max(20.0, self.target + rng.gauss(0.0, 15.0)))
            values = {"power": round(max(0.0, self.level.step(rng, self.target, model_dt)), 3)}
        return {"ts": iso_z(ts), "values": values}


class GatewayModel:
    """A gateway reporting its own health: CPU load and memory use (percent), link RSSI (dBm)."""

    kind = "gateway"

    def __init__(self, *, rng: random.Random, speed: float = 1.0):
        self.rng, self.speed = rng, speed
        self.cpu = Drift(rng.uniform(10.0, 30.0), tau=30.0, noise=3.0)
        self.memory = Drift(rng.uniform(30.0, 50.0), tau=600.0, noise=0.5)
        self.rssi = Drift(rng.uniform(-70.0, -50.0), tau=60.0, noise=1.0)

    def step(self, ts: datetime, dt: float) -> dict:
        rng, model_dt = self.rng, dt * self.speed
        values = {
            "cpu_load": round(min(100.0, max(0.0, self.cpu.step(rng, 20.0, model_dt))), 1),
            "memory_used": round(min(100.0, max(0.0, self.memory.step(rng, 40.0, model_dt))), 1),
            "rssi": round(min(-20.0, self.rssi.step(rng, -60.0, model_dt)), 1),
        }
        return {"ts": iso_z(ts), "values": values}


def sensor_profile(uid: str, name: str = "", model: str = "") -> str:
    """Guess what a sensor measures from its uid, name or hardware model (``vibration-01`` → vibration)."""
    text = f"{uid} {name} {model}".lower()
    if "vib" in text:
        return "vibration"
    if "power" in text or "energy" in text or "meter" in text:
        return "power"
    return "climate"


def behaviour_for(
    *, kind: str, uid: str, rng: random.Random, name: str = "", model: str = "", ideal_cycle_time=None, **options
):
    """The model for one registry device; machines without an ideal cycle time get 5 s per piece."""
    speed, failure_rate = options.get("speed", 1.0), options.get("failure_rate", 0.5)
    if kind == "machine":
        cycle = float(ideal_cycle_time) if ideal_cycle_time else 5.0
        return MachineModel(ideal_cycle_time=cycle, rng=rng, speed=speed, failure_rate=failure_rate)
    if kind == "sensor":
        return SensorModel(profile=sensor_profile(uid, name, model), rng=rng, speed=speed)
    return GatewayModel(rng=rng, speed=speed)
