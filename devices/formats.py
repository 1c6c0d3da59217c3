"""How metric values and times read wherever people see them: pages, e-mails, the admin.

The browser twin is ``static/js/live.js`` (``formatValue``, ``metricLabel``, ``formatTime``); both
follow the same rules so a value reads the same on a page and in the e-mail about it:

- a value shows with its metric's precision (decimal places) and unit: ``61.4 °C``, ``1,250 pcs``;
  a metric without a precision keeps the automatic format (integers as such, else 2 decimals,
  1 from 100);
- a threshold shows as it was entered (``0.06 mm/s``, never ``0.00``), and the values an alarm
  compares with it show with at least as many decimals (``rule_precision``);
- times show in the plant's zone as ``2026-12-06 14:05`` (the page says which zone).

``METRIC_DEFAULTS`` gives the names the simulator, the seed and the edge gateway send a display
name, a unit and a precision; ingest applies it to metrics it creates (no extra query: the table
is in code), migration ``devices.0003`` applied it to the rows that existed.
"""

import math
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

from devices.models.telemetry import MAX_PRECISION, Metric

# name → (display name, unit, decimal places)
METRIC_DEFAULTS: dict[str, tuple[str, str, int]] = {
    "temperature": ("Temperature", "°C", 1),
    "humidity": ("Humidity", "%", 1),
    "vibration": ("Vibration", "mm/s", 3),
    "power": ("Power", "kW", 2),
    "pressure": ("Pressure", "bar", 2),
    "count_total": ("Pieces made", "pcs", 0),
    "count_good": ("Good pieces", "pcs", 0),
    "cpu_load": ("CPU load", "%", 1),
    "memory_used": ("Memory used", "%", 1),
    "rssi": ("Signal strength", "dBm", 0),
}


def metric_new(name: str) -> Metric:
    """An unsaved ``Metric`` for ``name`` with its defaults from ``METRIC_DEFAULTS`` (blank if unknown)."""
    display_name, unit, precision = METRIC_DEFAULTS.get(name, ("", "", None))
    return Metric(name=name, display_name=display_name, unit=unit, precision=precision)


def metric_meta(metric: Metric) -> dict:
    """What pages need to show a metric: ``{"label", "unit", "precision"}`` (precision None: automatic)."""
    return {"label": metric.label, "unit": metric.unit, "precision": metric.precision}


def metric_formats(names, metrics) -> dict[str, dict]:
    """``{name: meta}`` for ``names``: from the stored ``metrics`` (an iterable of ``Metric``), else the
    defaults of a known name (a metric a rule watches but no device has sent yet)."""
    stored = {metric.name: metric for metric in metrics}
    return {name: metric_meta(stored[name] if name in stored else metric_new(name)) for name in sorted(names)}


def decimals_of(number: float) -> int:
    """Decimal places ``number`` was written with (0.06 → 2, 85.0 → 0, 1e-05 → 5), at most MAX_PRECISION."""
    exponent = Decimal(repr(float(number))).normalize().as_tuple().exponent
    return min(MAX_PRECISION, max(0, -exponent)) if isinstance(exponent, int) else 0


def rule_precision(metric_precision: int | None, *thresholds: float | None) -> int | None:
    """Decimal places for values compared with ``thresholds``: the metric's, but never fewer than a
    threshold's own (a 0.06 limit next to a value shown as 0.1 would read as a wrong alarm)."""
    places = [decimals_of(t) for t in thresholds if t is not None]
    if metric_precision is not None:
        places.append(metric_precision)
    return max(places) if places else None


def format_number(value: float | int | None, precision: int | None = None) -> str:
    """``value`` with ``precision`` decimals and thousands separators; None precision: automatic."""
    if value is None:
        return "—"
    value = float(value)
    if precision is None:
        if value.is_integer():
            return f"{int(value):,}"
        precision = 1 if abs(value) >= 100 else 2
    if not math.isfinite(value):
        return str(value)
    # Round the shortest decimal form half away from zero, as the browser's Intl.NumberFormat does
    # (a float's binary value would make 71.25 read 71.2 here and 71.3 on the page).
    rounded = Decimal(repr(value)).quantize(Decimal(1).scaleb(-precision), rounding=ROUND_HALF_UP)
    text = f"{rounded:,.{precision}f}"
    # -0.0004 at 2 decimals is 0.00, not -0.00
    return text[1:] if text.startswith("-") and not text.strip("-0.,") else text


def format_value(value: float | int | None, metric: Metric | dict | None = None, precision: int | None = None) -> str:
    """``value`` with the metric's unit and precision (``precision`` overrides it): ``61.4 °C``."""
    if value is None:
        return "—"
    if metric is None:
        return format_number(value, precision)
    meta = metric if isinstance(metric, dict) else metric_meta(metric)
    text = format_number(value, meta.get("precision") if precision is None else precision)
    unit = meta.get("unit") or ""
    return f"{text} {unit}" if unit else text


def format_threshold(value: float | None, metric: Metric | dict | None = None) -> str:
    """A threshold as it was entered, with the metric's unit: 0.06 → ``0.06 mm/s``."""
    if value is None:
        return "—"
    return format_value(value, metric, precision=decimals_of(value))


def format_time(moment: datetime | None, zone: ZoneInfo | str, *, date: bool = True, seconds: bool = False) -> str:
    """``moment`` in ``zone`` as ``2026-12-06 14:05`` (``date=False``: ``14:05``; ``seconds``: ``:07``)."""
    if moment is None:
        return "—"
    local = moment.astimezone(ZoneInfo(zone) if isinstance(zone, str) else zone)
    pattern = ("%Y-%m-%d " if date else "") + ("%H:%M:%S" if seconds else "%H:%M")
    return local.strftime(pattern)
