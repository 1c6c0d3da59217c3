"""The simulator's asyncio loop: every device steps its model at ``rate`` and sends once a second.

Each device is one task. Messages are generated on a fixed schedule (their ``ts`` comes from the
schedule, so a slow send never bunches or skips timestamps) into a bounded per-device buffer,
and the buffer is sent once a second as one batch (more batches at once only to drain a
backlog). What happens after a send depends on its ``SendResult``:

- ``unreachable``: the shared ``Outage`` logs one line per retry step (1, 2, 4 … 30 s) and holds
  every device back until then; messages stay buffered (the oldest are dropped beyond
  ``BUFFER_SECONDS``, which loses no pieces: counters are cumulative);
- ``retry``: this device waits ``Retry-After`` or its own backoff;
- ``auth``: ``reissue`` is asked for a token (a new one, the same one, or None to stop the device);
- ``rejected``: the batch is dropped and logged (resending an invalid payload cannot help).

SIGINT/SIGTERM stop the loop: buffers get one last send (``FINAL_FLUSH_SECONDS`` at most), then a
final summary. A second signal leaves at once.
"""

import asyncio
import contextlib
import itertools
import logging
import random
import signal
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from simulator.tokens import TokenRefused
from simulator.transports import AUTH, OK, REJECTED, UNREACHABLE, SendResult, Transport

logger = logging.getLogger("simulator")

FLUSH_INTERVAL = 1.0
# One machine per run starts worn and breaks down after this many seconds: the demo's first alarm
# (vibration high) comes within a minute or two, not after the half hour healthy machines take.
FIRST_BREAKDOWN_SECONDS = 100.0
BUFFER_SECONDS = 600
FINAL_FLUSH_SECONDS = 5.0
MAX_BACKOFF = 30.0


@dataclass(eq=False)
class SimDevice:
    uid: str
    behaviour: object
    token: str
    buffer: deque = field(default_factory=deque)
    active: bool = True
    retry_at: float = 0.0
    failures: int = 0


@dataclass
class Stats:
    sent: int = 0
    accepted: int = 0
    errors: int = 0
    dropped: int = 0
    reasons: Counter = field(default_factory=Counter)

    def snapshot(self) -> tuple:
        return self.sent, self.accepted, self.errors, Counter(self.reasons)


class Outage:
    """The server (or broker) as every device sees it: one backoff and one log line per retry step."""

    def __init__(self, target: str):
        self.target, self.since, self.delay, self.until = target, None, 0.0, 0.0

    def blocked(self, now: float) -> bool:
        return now < self.until

    def failed(self, now: float, detail: str) -> None:
        if now < self.until:
            return  # another device already reported this step
        if self.since is None:
            self.since, self.delay = now, 1.0
        else:
            self.delay = min(self.delay * 2, MAX_BACKOFF)
        self.until = now + self.delay
        logger.warning(
            "Server %s not reachable (%s); retrying in %.0f s, messages are kept.", self.target, detail, self.delay
        )

    def succeeded(self, now: float) -> None:
        if self.since is not None:
            logger.info("Server %s reachable again after %.0f s.", self.target, now - self.since)
            self.since, self.delay, self.until = None, 0.0, 0.0


class Runner:
    """Plays ``devices`` over ``transport``; ``run()`` returns the ``Stats`` when it stops.

    ``reissue(uid, refused_token)`` is an async callable returning the token to use, or None to
    stop that device (see ``SimulatorTokens.reissue``).
    """

    def __init__(self, devices, transport: Transport, *, rate: float, duration=None, reissue=None, **options):
        self.devices, self.transport, self.rate, self.duration = devices, transport, rate, duration
        self.reissue = reissue
        self.max_batch = options.get("max_batch", 1000)
        self.summary_every = options.get("summary_every", 10.0)
        self.rng = options.get("rng") or random.Random()  # noqa: S311 (behaviour, not secrets)
        self.first_breakdown = options.get("first_breakdown", FIRST_BREAKDOWN_SECONDS)
        self.clock = time.monotonic
        self.buffer_limit = min(100_000, max(100, int(rate * BUFFER_SECONDS)))
        self.outage = Outage(transport.target)
        self.stats = Stats()
        self.stop = asyncio.Event()
        self.tasks: list[asyncio.Task] = []

    async def run(self) -> Stats:
        self._signals(install=True)
        deadline = self.clock() + self.duration if self.duration else None
        summaries = asyncio.create_task(self._summaries())
        try:
            if await self._wait_for_server(deadline):
                await self.transport.open({device.uid: device.token for device in self.devices})
                self._wear_one_machine()
                self.tasks = [asyncio.create_task(self._device_loop(device)) for device in self.devices]
                await self._sleep(deadline - self.clock() if deadline else None)
                self.stop.set()
                _, late = await asyncio.wait(self.tasks, timeout=FINAL_FLUSH_SECONDS)
                for task in late:
                    task.cancel()
                await asyncio.gather(*self.tasks, return_exceptions=True)
        finally:
            self.stop.set()
            summaries.cancel()
            self._signals(install=False)
            await self.transport.close()
        self._summary(final=True)
        return self.stats

    async def _sleep(self, seconds: float | None) -> None:
        """Sleep ``seconds`` (None: until stopped), waking early when the simulator stops."""
        if seconds is not None and seconds <= 0:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stop.wait(), seconds)

    async def _wait_for_server(self, deadline: float | None) -> bool:
        """Start only once the server (or broker) accepts connections: the platform may still be starting."""
        delay = 1.0
        while not self.stop.is_set():
            reason = await self.transport.probe()
            if reason is None:
                logger.info(
                    "Simulating %d device(s) at %g message(s)/s each via %s to %s.",
                    len(self.devices), self.rate, self.transport.name, self.transport.target,
                )  # fmt: skip
                return True
            logger.warning("Waiting for %s (%s); retrying in %.0f s.", self.transport.target, reason, delay)
            await self._sleep(min(delay, deadline - self.clock()) if deadline else delay)
            if deadline and self.clock() >= deadline:
                return False
            delay = min(delay * 2, 10.0)
        return False

    def _wear_one_machine(self) -> None:
        """Pick one machine that can break down (``failure_rate`` > 0) and let it start worn."""
        machines = [d for d in self.devices if getattr(d.behaviour, "failure_rate", 0) > 0]
        if not self.first_breakdown or not machines:
            return
        device = self.rng.choice(machines)
        device.behaviour.wear_out(self.first_breakdown)
        logger.info("%s started worn: it breaks down in about %.0f s.", device.uid, self.first_breakdown)

    async def _device_loop(self, device: SimDevice) -> None:
        interval = 1.0 / self.rate
        start, start_wall = self.clock(), datetime.now(UTC)
        # Random phases spread the devices' messages and requests over the second.
        next_message = last_step = start + self.rng.random() * interval
        next_flush = start + self.rng.random() * FLUSH_INTERVAL
        while not self.stop.is_set() and device.active:
            now = self.clock()
            while next_message <= now:
                ts = start_wall + timedelta(seconds=next_message - start)
                device.buffer.append(device.behaviour.step(ts, next_message - last_step))
                last_step, next_message = next_message, next_message + interval
            overflow = len(device.buffer) - self.buffer_limit
            for _ in range(max(0, overflow)):
                device.buffer.popleft()
            self.stats.dropped += max(0, overflow)
            if now >= next_flush:
                next_flush = max(next_flush + FLUSH_INTERVAL, now)
                await self._flush(device)
            await self._sleep(min(next_message, next_flush) - self.clock())
        if device.active:
            await self._flush(device, final=True)  # the last words, if the server is there to hear them
        elif not any(other.active for other in self.devices):
            logger.error("No device left to simulate: stopping.")
            self.stop.set()

    async def _flush(self, device: SimDevice, final: bool = False) -> None:
        """Send the buffer in batches of at most ``max_batch``; stop at the first failure.

        A ``final`` flush (on stop) tries once more whatever the backoff says.
        """
        refused = 0
        while device.buffer and device.active:
            now = self.clock()
            if not final and (now < device.retry_at or self.outage.blocked(now)):
                return
            batch = list(itertools.islice(device.buffer, self.max_batch))
            self.stats.sent += len(batch)
            result = await self.transport.send(device.uid, device.token, batch)
            refused += result.outcome == AUTH
            if not await self._handle(device, batch, result) or refused > 1:
                return
            if result.outcome == OK and len(device.buffer) < self.max_batch:
                return  # the rest waits for the next second; only a backlog goes out at once

    async def _handle(self, device: SimDevice, batch: list, result: SendResult) -> bool:
        """Account for one send; True when the device may go on sending."""
        now = self.clock()
        if result.outcome == OK:
            for _ in batch:
                device.buffer.popleft()
            self.stats.accepted += result.accepted
            device.failures = 0
            self.outage.succeeded(now)
            return True
        self.stats.errors += 1
        self.stats.reasons[result.detail.split(":")[0] or result.outcome] += 1
        if result.outcome == UNREACHABLE:
            if not self.stop.is_set():  # when stopping, the final summary counts what stayed unsent
                self.outage.failed(now, result.detail)
            return False
        self.outage.succeeded(now)
        if result.outcome == REJECTED:
            for _ in batch:
                device.buffer.popleft()
            logger.error("%s: %d message(s) rejected and dropped: %s", device.uid, len(batch), result.detail)
            return True
        if result.outcome == AUTH:
            return await self._reauthenticate(device, result.detail)
        device.failures += 1
        wait = result.retry_after or min(2.0 ** (device.failures - 1), MAX_BACKOFF)
        device.retry_at = now + wait
        if device.failures == 1:
            logger.warning("%s: %s; retrying in %.0f s.", device.uid, result.detail, wait)
        return False

    async def _reauthenticate(self, device: SimDevice, detail: str) -> bool:
        """Ask for a usable token after a 401/403; True when there is a new one to send with right away."""
        logger.warning("%s: the server refused its token (%s).", device.uid, detail)
        try:
            token = await self.reissue(device.uid, device.token) if self.reissue else None
        except TokenRefused as exc:
            logger.error("%s stops sending: %s", device.uid, exc)
            device.active = False
            return False
        if token is None:
            logger.error("%s is disabled or gone from the registry: it stops sending.", device.uid)
            device.active = False
        elif token == device.token:
            device.retry_at = self.clock() + 60.0
            logger.error(
                "%s: the server refuses a token this database accepts. Does the simulator use the server's "
                "DATABASE_URL and DEVICE_TOKEN_HASH_KEY? Retrying in 60 s.",
                device.uid,
            )
        else:
            device.token = token
            self.transport.token_changed(device.uid, token)
            logger.info("%s: sending with a new token.", device.uid)
            return True
        return False

    async def _summaries(self) -> None:
        previous = self.stats.snapshot()
        while True:
            await asyncio.sleep(self.summary_every)
            current = self.stats.snapshot()
            self._summary(previous=previous, current=current)
            previous = current

    def _summary(self, *, final: bool = False, previous=None, current=None) -> None:
        stats = self.stats
        buffered = sum(len(device.buffer) for device in self.devices)
        totals = f"sent {stats.sent}, accepted {stats.accepted}, errors {stats.errors}"
        tail = f"buffered {buffered}, dropped {stats.dropped}"
        if final:
            logger.info("Simulator stopped: %s; unsent %d, dropped %d.", totals, buffered, stats.dropped)
            return
        sent, accepted, errors = (current[i] - previous[i] for i in range(3))
        reasons = ", ".join(f"{reason} ×{n}" for reason, n in (current[3] - previous[3]).most_common(3))
        states = Counter(getattr(device.behaviour, "state", None) for device in self.devices)
        states.pop(None, None)
        machines = ", ".join(f"{state} {n}" for state, n in sorted(states.items()))
        logger.info(
            "Simulator, last %.0f s: sent %d, accepted %d, errors %d%s | total: %s, %s | machines: %s",
            self.summary_every, sent, accepted, errors, f" ({reasons})" if reasons else "", totals, tail,
            machines or "none",
        )  # fmt: skip

    def _signals(self, *, install: bool) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # signal handlers can only be set in the main thread (e.g. not in a test's worker)
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            if install:
                loop.add_signal_handler(signum, self._on_signal, signum)
            else:
                loop.remove_signal_handler(signum)

    def _on_signal(self, signum: int) -> None:
        name = signal.Signals(signum).name
        if self.stop.is_set():
            logger.warning("%s again: leaving without sending what is buffered.", name)
            for task in self.tasks:
                task.cancel()
            return
        logger.info("%s: sending what is buffered, then stopping (%s again leaves at once).", name, name)
        self.stop.set()
