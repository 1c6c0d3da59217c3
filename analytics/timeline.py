"""One machine's telemetry turned into OEE ``Inputs`` per period (pure: rows in, sums out).

Time: each planned interval is cut along the machine's state timeline (a state holds from its
``ts`` until the next state row, CONTRACT.md). ``running`` is run time; ``planned_stop`` is taken
out of planned time; down/idle/setup/offline are stop time; time before the first known state is
a data gap, counted as offline stop time.

Pieces: a counter reading at ``ts`` reports the pieces made since the previous reading, so its
increment (``devices.selectors.counter_increments``: a drop is a reset) belongs to the period and
shift occurrence with ``start < ts <= end``. Increments outside every shift occurrence are not
counted. Each piece is weighed with the ideal cycle time of the run (``production.Run``) in force
when it was reported (``run.start < ts <= run.end``), else with the machine's own valid at ``ts``.

Changeovers: from a run's start until the machine first reports ``running`` (none when it is
running at the start; at most until the run ends). Stop time inside one is setup loss
(``setup_adjustment``) unless an operator classified that stop otherwise.
"""

import bisect
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from analytics.calendar import Interval
from analytics.oee import STOP_STATES, Inputs
from devices.selectors import counter_increments

_US_DELTA = timedelta(microseconds=1)
STATE_LOSS = {
    "down": "equipment_failure",
    "setup": "setup_adjustment",
    "idle": "idling_minor_stops",
    "offline": "unclassified",
}


@dataclass(slots=True)
class PeriodSpec:
    """A period: ``[start, end)``, its planned intervals (shift time minus breaks) and piece windows."""

    start: datetime
    end: datetime
    planned: list[Interval]
    count_windows: list[Interval] = field(default_factory=list)  # (lo, hi]: shift occurrences in the period


@dataclass(slots=True)
class MachineData:
    """What the reader loaded for one machine over the query window (see ``analytics.selectors``).

    ``states``: collapsed ``(ts, state)`` changes, the first one possibly before the window;
    ``window_end``: where the last state is known to last until. ``total``/``good``: counter
    readings, the first one being the baseline at or before the window. ``cycle_times``:
    ``(valid_from, seconds)`` sorted, ``default_cycle_time`` before the first.
    """

    states: list[tuple[datetime, str]]
    window_end: datetime
    total: list[tuple[datetime, float]]
    good: list[tuple[datetime, float]]
    cycle_times: list[tuple[datetime, Decimal]]
    default_cycle_time: Decimal
    stop_categories: dict[datetime, str] = field(default_factory=dict)  # stop start → classified loss category
    # (start, end or None, ideal seconds per piece or None): the machine's runs, by start.
    runs: list[tuple[datetime, datetime | None, Decimal | None]] = field(default_factory=list)
    changeovers: list[tuple[datetime, datetime]] = field(default_factory=list)  # [start, end), by start


def _cycle_time_at(data: MachineData, ts: datetime) -> Decimal:
    """The cycle time of pieces reported at ``ts``: they were made before it, so a change at ``ts`` is later."""
    if data.runs:
        k = bisect.bisect_left(data.runs, ts, key=lambda row: row[0]) - 1
        if k >= 0 and data.runs[k][2] is not None and (data.runs[k][1] is None or ts <= data.runs[k][1]):
            return data.runs[k][2]
    index = bisect.bisect_left(data.cycle_times, ts, key=lambda row: row[0]) - 1
    return data.cycle_times[index][1] if index >= 0 else data.default_cycle_time


def _changeover_us(data: MachineData, a: datetime, b: datetime) -> int:
    """Microseconds of ``[a, b)`` inside the machine's changeovers."""
    total = 0
    for x, y in data.changeovers:
        if x >= b:
            break
        if y > a:
            total += (min(y, b) - max(x, a)) // _US_DELTA
    return total


def stop_category(data: MachineData, index: int, state: str, minor_us: int) -> str:
    start = data.states[index][0]
    if start in data.stop_categories:
        return data.stop_categories[start]
    if any(x <= start < y for x, y in data.changeovers):
        return "setup_adjustment"
    nxt = data.states[index + 1][0] if index + 1 < len(data.states) else data.window_end
    if state != "offline" and (nxt - start) // _US_DELTA < minor_us:
        return "idling_minor_stops"
    return STATE_LOSS[state]


def _add_time(i: Inputs, data: MachineData, a: datetime, b: datetime, minor_us: int) -> None:
    """Add ``[a, b)`` of planned time along the state timeline."""
    ts_list = data.states
    index = bisect.bisect_right(ts_list, a, key=lambda row: row[0]) - 1
    cursor = a
    if index < 0:
        first = ts_list[0][0] if ts_list else b
        gap_end = min(first, b)
        if gap_end > cursor:
            gap = (gap_end - cursor) // _US_DELTA
            i.stop_us += gap
            i.data_gap_us += gap
            i.stop_by_state_us["offline"] += gap
            i.stop_loss_us["unclassified"] += gap
            cursor = gap_end
        index = 0
    while cursor < b and index < len(ts_list):
        state = ts_list[index][1]
        nxt = ts_list[index + 1][0] if index + 1 < len(ts_list) else b
        piece_end = min(nxt, b)
        if piece_end > cursor:
            us = (piece_end - cursor) // _US_DELTA
            if state == "running":
                i.run_us += us
            elif state == "planned_stop":
                i.planned_us -= us
                i.planned_stop_us += us
            elif state in STOP_STATES:
                i.stop_us += us
                i.stop_by_state_us[state] += us
                setup = _changeover_us(data, cursor, piece_end) if data.changeovers else 0
                i.changeover_us += setup
                if setup and ts_list[index][0] not in data.stop_categories:
                    i.stop_loss_us["setup_adjustment"] += setup
                    us -= setup
                i.stop_loss_us[stop_category(data, index, state, minor_us)] += us
                if state == "down" and a <= ts_list[index][0] < b:
                    # A breakdown counts where it begins: inside planned time (MTBF/MTTR), whatever the grouping.
                    i.down_episodes += 1
            cursor = piece_end
        index += 1


def _add_counts(results: list[Inputs], specs: list[PeriodSpec], data: MachineData) -> None:
    windows = sorted((lo, hi, n) for n, spec in enumerate(specs) for lo, hi in spec.count_windows)
    starts = [w[0] for w in windows]
    for rows, is_total in ((data.total, True), (data.good, False)):
        previous = None
        for ts, value in rows:
            if previous is None:
                previous = value
                continue
            pieces = int(round(counter_increments(iter([(ts, value)]), previous)))
            previous = value
            k = bisect.bisect_left(starts, ts) - 1  # the window with lo < ts
            if k < 0 or not pieces or ts > windows[k][1]:
                continue
            i = results[windows[k][2]]
            ideal = _cycle_time_at(data, ts) * pieces
            if is_total:
                i.total_count += pieces
                i.ideal_seconds += ideal
                i.reject_ideal_seconds += ideal
            else:
                i.good_count += pieces
                i.reject_ideal_seconds -= ideal


def machine_inputs(specs: list[PeriodSpec], data: MachineData, *, minor_stop_seconds: int) -> list[Inputs]:
    """``Inputs`` of one machine for each of ``specs`` (chronological, non-overlapping)."""
    minor_us = minor_stop_seconds * 1_000_000
    results = []
    for spec in specs:
        i = Inputs(calendar_us=(spec.end - spec.start) // _US_DELTA)
        for a, b in spec.planned:
            i.planned_us += (b - a) // _US_DELTA
            _add_time(i, data, a, b, minor_us)
            i.changeovers += sum(1 for x, _ in data.changeovers if a <= x < b)
        results.append(i)
    _add_counts(results, specs, data)
    return results
