"""Demo OEE setup for ``manage.py seed_demo``: shifts around the clock and reason codes, so the
simulator's machines show OEE on the dashboard right away."""

from datetime import time

from analytics.models import ReasonCode, Shift
from analytics.services import reason_code_create, shift_save

EVERY_DAY = [0, 1, 2, 3, 4, 5, 6]
SHIFTS = [
    ("Early", time(6), time(14), [(time(9), time(9, 15)), (time(11, 30), time(12))]),
    ("Late", time(14), time(22), [(time(17), time(17, 15)), (time(19, 30), time(20))]),
    ("Night", time(22), time(6), [(time(1), time(1, 15)), (time(3, 30), time(4))]),
]
REASONS = [
    ("breakdown", "Breakdown", "equipment_failure"),
    ("tool-change", "Tool change", "setup_adjustment"),
    ("material", "Waiting for material", "idling_minor_stops"),
    ("jam", "Jam cleared", "idling_minor_stops"),
    ("slow-run", "Running slow", "reduced_speed"),
    ("scrap", "Scrap batch", "process_defects"),
    ("warm-up", "Warm-up rejects", "reduced_yield"),
]


def demo_seed(*, plant) -> int:
    """Create the demo shifts and reason codes (idempotent); return how many rows were created."""
    created = 0
    for name, start, end, breaks in SHIFTS:
        if not Shift.objects.filter(plant=plant, name=name).exists():
            shift_save(
                plant=plant, name=name, start=start, end=end, weekdays=EVERY_DAY,
                breaks=[{"start": a, "end": b} for a, b in breaks],
            )  # fmt: skip
            created += 1
    for code, name, category in REASONS:
        if not ReasonCode.objects.filter(plant=plant, code=code).exists():
            reason_code_create(plant=plant, code=code, name=name, category=category)
            created += 1
    return created
