"""Seed data for server processes started by tests and benchmarks (run inside ``manage.py shell``).

``seed(devices=3)`` creates plant A (two lines, a group, ``devices`` machines and one sensor, an
operator, an alert rule "vibration > 5") and plant B (one machine, a viewer), each device with a
token, and prints the ids, plain tokens, plants and line names as one JSON line.
"""

import json

from accounts.roles import Role
from alerts.tests.factories import make_rule
from devices.tests.factories import PASSWORD, make_device, make_group, make_line, make_plant, make_token, make_user


def seed(devices: int = 3, sensor: bool = True) -> dict:
    plant_a, plant_b = make_plant("Plant A"), make_plant("Plant B")
    press, assembly = make_line(plant_a, "Press line"), make_line(plant_a, "Assembly line")
    made = [make_device(press if i % 2 == 0 else assembly, f"press-{i + 1:03d}") for i in range(devices)]
    if sensor:
        made.append(make_device(assembly, "hall-temp", kind="sensor", ideal_cycle_time=None, name="Hall temperature"))
    make_group(plant_a, "Presses", devices=made[:2])
    # Vibration above 5 raises an alarm (alerts app); the temperature tests never touch it.
    make_rule(plant_a, name="Vibration high", metric="vibration", threshold=5.0, action="Stop and check the bearing.")
    foreign = make_device(make_line(plant_b, "Paint line"), "paint-b01", name="Paint robot B")
    make_user("operator", plant=plant_a, role=Role.OPERATOR)
    make_user("viewer_b", plant=plant_b, role=Role.VIEWER)
    data = {
        "password": PASSWORD,
        "plants": {"A": plant_a.pk, "B": plant_b.pk},
        "devices": {
            d.uid: {"id": d.pk, "token": make_token(d)[1], "plant": d.plant_id, "line": d.line.name}
            for d in [*made, foreign]
        },
    }
    print(json.dumps(data))
    return data
