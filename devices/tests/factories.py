"""Test factories for every model of the registry.

Plain functions, not factory_boy: our project package is called ``factory`` (the layout the
developers' guide fixes), which shadows factory_boy's own top-level ``factory`` module.
Plants go through ``plant_create`` so their role groups exist exactly as in production.
"""

import itertools
from decimal import Decimal

from accounts.models import User
from accounts.services import member_set_role
from devices.models import Device, DeviceGroup, Line, Plant
from devices.services.plants import plant_create
from devices.services.tokens import token_issue

_seq = itertools.count(1)
PASSWORD = "correct horse battery staple"


def make_user(username: str | None = None, *, plant: Plant | None = None, role: str | None = None, **fields) -> User:
    username = username or f"user{next(_seq)}"
    user = User(username=username, email=fields.pop("email", f"{username}@example.com"), **fields)
    user.set_password(PASSWORD)
    user.save()
    if plant is not None:
        member_set_role(plant=plant, user=user, role=role)
    return user


def make_plant(name: str | None = None, **fields) -> Plant:
    return plant_create(
        name=name or f"Plant {next(_seq)}", time_zone=fields.pop("time_zone", "Europe/Berlin"), **fields
    )


def make_line(plant: Plant | None = None, name: str | None = None, **fields) -> Line:
    return Line.objects.create(plant=plant or make_plant(), name=name or f"Line {next(_seq)}", **fields)


def make_device(line: Line | None = None, uid: str | None = None, **fields) -> Device:
    line = line if line is not None or "plant" in fields else make_line()
    uid = uid or f"machine-{next(_seq):03d}"
    defaults = {
        "name": uid.replace("-", " ").title(),
        "kind": Device.Kind.MACHINE,
        "plant": line.plant if line is not None else None,
        "model": "HP-400",
        "firmware_version": "1.0.0",
        "ideal_cycle_time": Decimal("2.5"),
    }
    return Device.objects.create(uid=uid, line=line, **{**defaults, **fields})


def make_group(plant: Plant | None = None, name: str | None = None, devices=(), **fields) -> DeviceGroup:
    group = DeviceGroup.objects.create(plant=plant or make_plant(), name=name or f"Group {next(_seq)}", **fields)
    group.devices.add(*devices)
    return group


def make_token(device: Device | None = None, name: str = "test"):
    """Return ``(token_row, plain_token)``."""
    return token_issue(device=device or make_device(), name=name)
