"""Simulated machine vibration for the detector's tests: a week of one reading a minute.

The machine runs two shifts on weekdays (06:00-22:00) and idles at night and at weekends, so the
stream has the daily and weekly pattern a real machine's has; the noise comes from a seeded
generator, so every run sees the same readings. Faults are injected on top: a step (a loosened
mount), a single spike (a knock) or a slow drift (a bearing wearing out).
"""

import math
import random
from datetime import UTC, datetime

START = datetime(2026, 1, 5, tzinfo=UTC)  # a Monday
MINUTE = 60
WEEK_READINGS = 7 * 24 * 60


def vibration_week(*, seed=18, step_at=None, spike_at=None, drift_from=None):
    """``[(epoch_seconds, value), ...]`` for a week; faults start at the given reading index."""
    noise = random.Random(seed)
    readings = []
    for index in range(WEEK_READINGS):
        epoch = START.timestamp() + index * MINUTE
        day, minute_of_day = divmod(index, 24 * 60)
        running = day < 5 and 6 * 60 <= minute_of_day < 22 * 60
        value = 2.0 + 0.2 * math.sin(minute_of_day / 90.0) if running else 0.4
        value += noise.gauss(0.0, 0.08)
        if step_at is not None and index >= step_at:
            value += 0.8
        if spike_at is not None and index == spike_at:
            value += 3.0
        if drift_from is not None and index >= drift_from:
            value += 0.6 * (index - drift_from) / (24 * 60)
        readings.append((epoch, value))
    return readings
