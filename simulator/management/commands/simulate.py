"""``python manage.py simulate``: a living plant sending telemetry over HTTP, MQTT or the device WebSocket.

Plays the first ``--devices`` enabled devices of ``--plant`` (creating ``sim-NNN`` machines when
the plant has fewer), each sending ``--rate`` messages per second, until Ctrl-C or ``--duration``.
See ``simulator/`` for the behaviour model, the transports and the token file.
"""

import asyncio
import random

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import close_old_connections

from devices.models import Plant
from simulator.fleet import fleet_select
from simulator.machine import behaviour_for
from simulator.runner import Runner, SimDevice
from simulator.tokens import SimulatorTokens, TokenRefused
from simulator.transports import transport_for


def _positive(kind):
    def parse(text):
        value = kind(text)
        if value <= 0:
            raise ValueError(text)
        return value

    parse.__name__ = f"positive {kind.__name__}"
    return parse


def _behaviour(device, rng: random.Random, options: dict):
    """Each device gets its own generator, derived from the run's: one seed replays the whole plant."""
    return behaviour_for(
        kind=device.kind, uid=device.uid, name=device.name, model=device.model,
        ideal_cycle_time=device.ideal_cycle_time, rng=random.Random(rng.random()),  # noqa: S311
        speed=options["speed"], failure_rate=options["failure_rate"],
    )  # fmt: skip


def _fresh_connection(func):
    """Run ``func`` with a usable connection: the runner's database thread may sit idle for hours."""

    def wrapper(*args):
        close_old_connections()
        try:
            return func(*args)
        finally:
            close_old_connections()

    return wrapper


class Command(BaseCommand):
    help = "Simulate a factory: machines, sensors and gateways sending telemetry over HTTP, MQTT or WebSocket."

    def add_arguments(self, parser):
        parser.add_argument("--devices", type=_positive(int), default=12, help="How many devices (default 12).")
        parser.add_argument(
            "--rate", type=_positive(float), default=1.0, help="Messages per second per device (default 1)."
        )
        parser.add_argument("--via", choices=("http", "mqtt", "ws"), default="http", help="Transport (default http).")
        parser.add_argument(
            "--url", default="http://127.0.0.1:8000", help="The server for http and ws (default http://127.0.0.1:8000)."
        )
        parser.add_argument("--mqtt-url", default=None, help="The broker for --via mqtt (default MQTT_DEVICE_URL).")
        parser.add_argument("--duration", type=_positive(float), default=None, help="Stop after this many seconds.")
        parser.add_argument(
            "--speed",
            type=_positive(float),
            default=1.0,
            help="Run state changes, breakdowns and drifts this many times faster than real time "
            "(piece counters always follow the ideal cycle time). Default 1.",
        )
        parser.add_argument("--plant", default="Demo Plant", help="Plant name (default 'Demo Plant').")
        parser.add_argument(
            "--failure-rate",
            type=float,
            default=0.5,
            help="Breakdowns per machine per running hour, in model time (default 0.5; 0 = none).",
        )
        parser.add_argument("--seed", type=int, default=None, help="Random seed, for a reproducible plant.")
        parser.add_argument(
            "--ota-poll",
            type=float,
            default=0,
            help="Devices poll for firmware updates every this many seconds and install them over --url "
            "(default 0 = off; e.g. 10 to watch a rollout).",
        )
        parser.add_argument(
            "--ota-failure-rate", type=float, default=0.0, help="Share of firmware installs that fail (0-1)."
        )
        parser.add_argument(
            "--allow-production",
            action="store_true",
            help="Issue device tokens and create machines even with DEBUG=false.",
        )

    def handle(self, *args, **options):
        if options["failure_rate"] < 0:
            raise CommandError("--failure-rate must be 0 or more.")
        allow_writes = settings.DEBUG or options["allow_production"]
        plant = Plant.objects.filter(name=options["plant"]).first()
        if plant is None:
            raise CommandError(
                f"No plant named '{options['plant']}'. Run `python manage.py seed_demo` or pass --plant NAME."
            )
        try:
            transport = transport_for(
                options["via"], url=options["url"], mqtt_url=options["mqtt_url"] or settings.MQTT_DEVICE_URL,
                mqtt_ca_file=settings.MQTT_CA_FILE,
                devices=options["devices"],
            )  # fmt: skip
            devices = fleet_select(plant=plant, count=options["devices"], allow_create=allow_writes)
            store = SimulatorTokens(allow_issue=allow_writes)
            tokens = store.ensure(devices)
        except (PermissionError, TokenRefused, ValueError) as exc:
            raise CommandError(str(exc)) from exc
        rng = random.Random(options["seed"])  # noqa: S311 (behaviour, not secrets)
        simulated = [SimDevice(uid=d.uid, token=tokens[d.uid], behaviour=_behaviour(d, rng, options)) for d in devices]
        runner = Runner(
            simulated,
            transport,
            rate=options["rate"],
            duration=options["duration"],
            reissue=sync_to_async(_fresh_connection(store.reissue), thread_sensitive=True),
            max_batch=settings.TELEMETRY_MAX_BATCH,
            rng=rng,
        )
        stop_ota = _start_ota(devices, tokens, rng, options)
        stats = asyncio.run(runner.run())
        if stop_ota is not None:
            stop_ota.set()
        self.stdout.write(f"sent {stats.sent}, accepted {stats.accepted}, errors {stats.errors}")


def _start_ota(devices, tokens, rng, options):
    """The firmware side of the simulated devices (simulator/firmware.py), in a thread."""
    if options["ota_poll"] <= 0:
        return None
    from simulator.firmware import OtaDevice, http_requester, ota_start

    request = http_requester(options["url"])
    ota = [
        OtaDevice(uid=d.uid, token=tokens[d.uid], request=request, version=d.firmware_version,
                  failure_rate=options["ota_failure_rate"], rng=random.Random(rng.random()), reboot_seconds=2.0)  # noqa: S311
        for d in devices
    ]  # fmt: skip
    return ota_start(ota, poll_interval=options["ota_poll"])
