"""Seed of the overview's browser tests (run inside ``manage.py shell`` by ``tests.servers.seeded_stack``).

``seed(time_zone)`` creates the plant "Board" in ``time_zone`` with a day (06:00–18:00) and a night
shift (18:00–06:00), machines ``m-01`` … ``m-08`` (each written to by one test only; expected every hour, so
none falls offline while the tests run), a sensor ``s-01`` that is offline six seconds after its
last message (expected interval 2 s), a sensor
``s-02`` that never reported, two alert rules (vibration > 5 warning, pressure > 10 critical)
and an operator (metrics read with ``devices.formats.METRIC_DEFAULTS``); it prints the ids,
tokens and password as one JSON line.
"""

import json

from accounts.roles import Role
from alerts.tests.factories import make_rule
from analytics.tests.factories import make_shift
from devices.tests.factories import PASSWORD, make_device, make_line, make_plant, make_token, make_user

MACHINES = 8


def seed(time_zone: str) -> dict:
    plant = make_plant("Board", time_zone=time_zone)
    first, second = make_line(plant, "Line 1"), make_line(plant, "Line 2")
    made = [
        make_device(first if n % 2 else second, f"m-{n:02d}", expected_interval=3600) for n in range(1, MACHINES + 1)
    ]
    made.append(make_device(first, "s-01", kind="sensor", ideal_cycle_time=None, name="Hall air", expected_interval=2))
    made.append(make_device(second, "s-02", kind="sensor", ideal_cycle_time=None, name="Roof air"))
    make_shift(plant, "Day", "06:00", "18:00")
    make_shift(plant, "Night", "18:00", "06:00")
    make_rule(plant, name="Vibration high", metric="vibration", threshold=5.0, severity="warning")
    make_rule(plant, name="Pressure high", metric="pressure", threshold=10.0, severity="critical")
    make_user("operator", plant=plant, role=Role.OPERATOR)
    data = {
        "password": PASSWORD,
        "plant": plant.pk,
        "devices": {d.uid: {"id": d.pk, "token": make_token(d)[1], "plant": d.plant_id} for d in made},
    }
    print(json.dumps(data))
    return data
