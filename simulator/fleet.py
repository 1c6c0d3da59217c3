"""Which registry devices the simulator plays, and the extra ``sim-NNN`` machines when there are too few."""

import itertools
import logging
from decimal import Decimal

from django.db import transaction

from devices.models import Device, Line, Plant
from devices.services.plants import line_create
from devices.services.registry import device_create

logger = logging.getLogger("simulator")

SIM_LINE = "Simulator"
# Ideal cycle times (s) handed out round-robin to generated machines: presses, packers, robots.
SIM_CYCLE_TIMES = ("2.5", "3.0", "4.0", "6.0", "12.0")


def fleet_select(*, plant: Plant, count: int, allow_create: bool) -> list[Device]:
    """The first ``count`` enabled devices of ``plant`` in registry order (oldest first).

    When the plant has fewer, creates machines ``sim-001``, ``sim-002``, … on its "Simulator" line
    (created too), skipping uids that are taken anywhere. Idempotent: a second run with the same
    ``count`` creates nothing. Raises ``PermissionError`` when machines are missing and
    ``allow_create`` is False.
    """
    devices = list(Device.objects.filter(plant=plant, enabled=True).order_by("pk")[:count])
    missing = count - len(devices)
    if missing <= 0:
        return devices
    if not allow_create:
        raise PermissionError(
            f"Plant '{plant.name}' has {len(devices)} enabled device(s); creating {missing} simulator machine(s) "
            "is refused with DEBUG=false (pass --allow-production to do it anyway)."
        )
    return devices + _create_machines(plant, missing)


@transaction.atomic
def _create_machines(plant: Plant, count: int) -> list[Device]:
    line = Line.objects.filter(plant=plant, name=SIM_LINE).first() or line_create(
        plant=plant, name=SIM_LINE, position=Line.objects.filter(plant=plant).count()
    )
    taken = set(Device.objects.filter(uid__startswith="sim-").values_list("uid", flat=True))
    uids = (uid for n in itertools.count(1) if (uid := f"sim-{n:03d}") not in taken)
    created = []
    for index, uid in zip(range(count), uids, strict=False):
        created.append(
            device_create(
                uid=uid,
                name=f"Simulated machine {uid[4:]}",
                kind=Device.Kind.MACHINE,
                line=line,
                model="SIM-1",
                firmware_version="1.0.0",
                ideal_cycle_time=Decimal(SIM_CYCLE_TIMES[index % len(SIM_CYCLE_TIMES)]),
            )
        )
    logger.info("Created %d simulator machine(s) on line '%s' of '%s'.", count, SIM_LINE, plant.name)
    return created
