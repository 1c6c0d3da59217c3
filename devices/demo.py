"""The demo plant and its registry for ``manage.py seed_demo``: two lines, a dozen devices, two groups."""

from decimal import Decimal

from devices.models import Device, DeviceGroup, Line, Plant
from devices.services.plants import line_create, plant_create
from devices.services.registry import device_create

PLANT = {"name": "Demo Plant", "time_zone": "Europe/Berlin", "address": "Werkstraße 1, Stuttgart"}
LINES = ["Stamping", "Assembly"]
# uid, name, kind, line, hardware model, ideal cycle time (s)
DEVICES = [
    ("press-01", "Press 1", "machine", "Stamping", "HP-400", "2.5"),
    ("press-02", "Press 2", "machine", "Stamping", "HP-400", "2.5"),
    ("press-03", "Press 3", "machine", "Stamping", "HP-630", "3.0"),
    ("press-04", "Press 4", "machine", "Stamping", "HP-630", "3.0"),
    ("robot-01", "Welding robot 1", "machine", "Assembly", "ARM-6", "12"),
    ("robot-02", "Welding robot 2", "machine", "Assembly", "ARM-6", "12"),
    ("robot-03", "Handling robot", "machine", "Assembly", "ARM-6", "8"),
    ("packer-01", "Packer", "machine", "Assembly", "PK-20", "4"),
    ("temp-01", "Hall temperature", "sensor", "Stamping", "TH-1", None),
    ("vibration-01", "Press 1 vibration", "sensor", "Stamping", "VB-3", None),
    ("power-01", "Assembly power meter", "sensor", "Assembly", "PM-9", None),
    ("gateway-01", "Hall gateway", "gateway", None, "GW-2", None),
]
GROUPS = {"Presses": ["press-01", "press-02", "press-03", "press-04"], "Robots": ["robot-01", "robot-02", "robot-03"]}


def demo_plant() -> tuple[Plant, bool]:
    """The demo plant every app seeds into: ``(plant, created)``."""
    plant = Plant.objects.filter(name=PLANT["name"]).first()
    if plant is not None:
        return plant, False
    return plant_create(**PLANT), True


def demo_seed(*, plant: Plant) -> int:
    """Create the demo lines, devices and groups (idempotent); return how many rows were created."""
    created = 0
    lines = {}
    for position, name in enumerate(LINES):
        lines[name] = Line.objects.filter(plant=plant, name=name).first()
        if lines[name] is None:
            lines[name], created = line_create(plant=plant, name=name, position=position), created + 1
    for uid, name, kind, line, model, cycle in DEVICES:
        if not Device.objects.filter(uid=uid).exists():
            device_create(
                uid=uid, name=name, kind=kind, plant=plant, line=lines.get(line), model=model,
                ideal_cycle_time=Decimal(cycle) if cycle else None, firmware_version="1.0.0",
            )  # fmt: skip
            created += 1
    for name, uids in GROUPS.items():
        group, new = DeviceGroup.objects.get_or_create(plant=plant, name=name)
        # uid is unique across plants: a demo uid taken elsewhere must not pull that device in.
        group.devices.add(*Device.objects.filter(plant=plant, uid__in=uids))
        created += new
    return created
