"""OEE arithmetic on exact inputs (CONTRACT.md "OEE"; ISO 22400-2).

Times are integer microseconds, counts integers, ideal time a ``Decimal`` of seconds (ideal
cycle time × pieces, summed per piece with the cycle time valid when it was made). Ratios are
``Fraction``s; percentages are rounded half up to two decimals from them, never from rounded
factors. Aggregating (devices into a line or plant, hours into days) adds ``Inputs``, never
percentages.
"""

from dataclasses import MISSING, dataclass, field, fields
from decimal import Decimal
from fractions import Fraction

US = 1_000_000
STOP_STATES = ("down", "idle", "setup", "offline")
LOSS_KEYS = (
    "equipment_failure",
    "setup_adjustment",
    "idling_minor_stops",
    "reduced_speed",
    "process_defects",
    "reduced_yield",
    "unclassified",
)


def _zero_states() -> dict[str, int]:
    return dict.fromkeys(STOP_STATES, 0)


def _zero_losses() -> dict[str, int]:
    return dict.fromkeys(LOSS_KEYS, 0)


@dataclass(slots=True)
class Inputs:
    """What OEE is computed from, for one device or summed over several, for one period.

    ``calendar_us``: all time of the period (TEEP's base). ``planned_us``: shift time minus breaks
    and ``planned_stop``. ``run_us``: planned time in ``running``. ``stop_us``: planned time in
    down/idle/setup/offline, including ``data_gap_us`` (no state known, counted as offline).
    ``ideal_seconds``: Σ ideal cycle time × piece over all pieces; ``reject_ideal_seconds`` the
    same over rejected pieces. ``down_episodes``: ``down`` states that began inside the period's planned time.
    ``stop_loss_us``: stop time by loss category (reason codes, changeovers, minor-stop threshold).
    ``changeover_us``: stop time inside changeovers (a run's start until the machine first runs,
    ``analytics.timeline``); ``changeovers``: changeovers that began inside planned time.
    """

    calendar_us: int = 0
    planned_us: int = 0
    planned_stop_us: int = 0
    run_us: int = 0
    stop_us: int = 0
    data_gap_us: int = 0
    total_count: int = 0
    good_count: int = 0
    ideal_seconds: Decimal = Decimal(0)
    reject_ideal_seconds: Decimal = Decimal(0)
    down_episodes: int = 0
    changeover_us: int = 0
    changeovers: int = 0
    stop_by_state_us: dict[str, int] = field(default_factory=_zero_states)
    stop_loss_us: dict[str, int] = field(default_factory=_zero_losses)

    def __add__(self, other: "Inputs") -> "Inputs":
        return Inputs().add(self).add(other)

    def add(self, other: "Inputs") -> "Inputs":
        """Add ``other`` into this one (in place; a month of machine-days is summed per query)."""
        for name in _SCALARS:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for name in _DICTS:
            mine, theirs = getattr(self, name), getattr(other, name)
            for key, value in theirs.items():
                mine[key] += value
        return self


_SCALARS = [f.name for f in fields(Inputs) if f.default_factory is MISSING]
_DICTS = [f.name for f in fields(Inputs) if f.default_factory is not MISSING]


def percent(ratio: Fraction | None) -> Decimal | None:
    """``ratio`` as a percentage rounded half up to two decimals (exact: integer arithmetic)."""
    if ratio is None:
        return None
    hundredths = ratio * 10000
    sign = -1 if hundredths < 0 else 1
    rounded = sign * ((abs(hundredths) * 2 + 1) // 2)
    return Decimal(int(rounded)).scaleb(-2)


def factors(i: Inputs) -> dict[str, Fraction | None]:
    """A, P, Q, OEE and TEEP as exact fractions; None where undefined.

    Nothing planned: all None. Planned but never running, or running without a piece: OEE is 0
    (the undefined factor after a zero factor stays None). TEEP = OEE × planned / calendar.
    """
    ideal = Fraction(i.ideal_seconds) * US
    a = Fraction(i.run_us, i.planned_us) if i.planned_us else None
    p = ideal / i.run_us if i.run_us else None
    q = Fraction(i.good_count, i.total_count) if i.total_count else None
    if a is None:
        oee = None
    elif a == 0 or p == 0 or p is None or q is None:
        oee = Fraction(0)
    else:
        oee = a * p * q
    teep = oee * Fraction(i.planned_us, i.calendar_us) if oee is not None and i.calendar_us else None
    return {"availability": a, "performance": p, "quality": q, "oee": oee, "teep": teep}


def seconds(us: int | Decimal) -> float:
    """Microseconds as seconds for JSON (exact to the microsecond)."""
    return float(Decimal(us).scaleb(-6))


def losses(i: Inputs) -> dict[str, dict]:
    """The six big losses (plus ``unclassified`` offline time) in seconds and in OEE points.

    Availability losses are stop time by category; reduced speed is run time minus ideal time;
    process defects are the ideal time of rejected pieces. Points are the share of planned time.
    """
    times = {key: Decimal(us) for key, us in i.stop_loss_us.items()}
    times["reduced_speed"] += Decimal(i.run_us) - i.ideal_seconds * US
    times["process_defects"] += i.reject_ideal_seconds * US
    return {
        key: {
            "seconds": seconds(us),
            "points": float(percent(Fraction(us) / i.planned_us)) if i.planned_us else None,
        }
        for key, us in times.items()
    }


def figures(i: Inputs) -> dict:
    """The API/report body of one period: its inputs, A/P/Q/OEE/TEEP, MTBF/MTTR and losses."""
    f = factors(i)
    down_us = i.stop_by_state_us["down"]
    n = i.down_episodes
    return {
        "calendar_seconds": seconds(i.calendar_us),
        "planned_seconds": seconds(i.planned_us),
        "planned_stop_seconds": seconds(i.planned_stop_us),
        "run_seconds": seconds(i.run_us),
        "stop_seconds": seconds(i.stop_us),
        "data_gap_seconds": seconds(i.data_gap_us),
        "stop_seconds_by_state": {k: seconds(v) for k, v in i.stop_by_state_us.items()},
        "total_count": i.total_count,
        "good_count": i.good_count,
        "ideal_seconds": float(i.ideal_seconds),
        "ideal_cycle_time": float(i.ideal_seconds / i.total_count) if i.total_count else None,
        **{k: (float(v) if (v := percent(ratio)) is not None else None) for k, ratio in f.items()},
        "down_episodes": n,
        "changeover_seconds": seconds(i.changeover_us),
        "changeovers": i.changeovers,
        "mtbf_seconds": seconds(Decimal(i.run_us) / n) if n else None,
        "mttr_seconds": seconds(Decimal(down_us) / n) if n else None,
        "losses": losses(i),
    }
