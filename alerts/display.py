"""How a rule's limit, the whole rule and an alarm's value read (the rules of ``devices/formats.py``):
in the stored alarm message, the e-mails and the admin. ``static/alerts/console.js`` (``limitText``)
is the browser twin of ``rule_limit``; ``rule_in_words`` adds the metric, the delays and the clearing
to the same limit, so a rule reads the same in the admin as in the e-mail about its alarm.

An alarm's value shows with the rule's precision: its metric's, but never fewer decimals than
its thresholds were entered with, so a 0.063 reading against a 0.06 limit never reads "0.1 > 0.06".
"""

from devices.formats import format_threshold, format_value, metric_meta, metric_new, rule_precision
from devices.models import Metric

SIGNS = {"gt": ">", "gte": "≥", "lt": "<", "lte": "≤"}


def duration(seconds: int) -> str:
    """``20 s``, ``2 min``, ``1 min 30 s``, ``1 h 30 min``: a rule's times in words."""
    hours, rest = divmod(int(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{n} {unit}" for n, unit in ((hours, "h"), (minutes, "min"), (secs, "s")) if n]
    return " ".join(parts) or "0 s"


def metrics_named(names) -> dict[str, Metric]:
    """``{name: Metric}`` for the names (a stored row, else one with the name's defaults). One query."""
    names = {name for name in names if name}
    stored = {metric.name: metric for metric in Metric.objects.filter(name__in=names)} if names else {}
    return {name: stored.get(name) or metric_new(name) for name in names}


def rule_meta(rule, metric: Metric | None) -> dict:
    """``{"label", "unit", "precision"}`` for the values of ``rule``'s alarms (precision: the rule's)."""
    meta = metric_meta(metric if metric is not None else metric_new(rule.metric or ""))
    thresholds = (rule.threshold, rule.threshold_high, rule.clear_threshold, rule.clear_threshold_high)
    precision = rule_precision(meta["precision"], *thresholds)
    if rule.condition == "rate" and meta["unit"]:
        return {**meta, "unit": f"{meta['unit']}/min", "precision": precision}
    return {**meta, "precision": precision}


def _band(low: float | None, high: float | None, meta: dict) -> str:
    return f"{format_threshold(low, meta)} – {format_threshold(high, meta)}"


def rule_limit(rule, metric: Metric | None) -> str:
    """The rule's condition in words with its values: ``> 0.06 mm/s``, ``outside 2.5 bar – 6.5 bar``,
    ``changing by more than 5 °C/min``, ``no data for 5 min``, ``machine down``."""
    meta = rule_meta(rule, metric)
    if rule.condition in SIGNS:
        return f"{SIGNS[rule.condition]} {format_threshold(rule.threshold, meta)}"
    if rule.condition == "outside":
        return f"outside {_band(rule.threshold, rule.threshold_high, meta)}"
    if rule.condition == "rate":
        return f"changing by more than {format_threshold(rule.threshold, meta)}"
    if rule.condition == "no_data":
        return f"no data for {duration(rule.no_data_seconds or 0)}"
    if rule.condition == "state":
        return f"machine {(rule.state or '').replace('_', ' ')}"
    return ""


def _clears(rule, meta: dict) -> str:
    """When the rule's alarm clears, if its clear thresholds say (hysteresis): ``clears below 0.045 mm/s``."""
    if rule.condition in SIGNS and rule.clear_threshold is not None:
        side = "below" if rule.condition in ("gt", "gte") else "above"
        return f"clears {side} {format_threshold(rule.clear_threshold, meta)}"
    if rule.condition == "outside" and (rule.clear_threshold is not None or rule.clear_threshold_high is not None):
        low = rule.threshold if rule.clear_threshold is None else rule.clear_threshold
        high = rule.threshold_high if rule.clear_threshold_high is None else rule.clear_threshold_high
        return f"clears inside {_band(low, high, meta)}"
    return ""


def rule_in_words(rule, metric: Metric | None) -> str:
    """The whole rule in words (the admin): the metric, ``rule_limit``, the on-delay and the clearing,
    "Vibration > 0.06 mm/s for 20 s (clears below 0.045 mm/s after 30 s)", "no data for 5 min",
    "machine down for 2 min". ``metric``: the watched metric's row, None for its name's defaults."""
    text = rule_limit(rule, metric)
    if rule.condition == "no_data":
        return text
    meta = rule_meta(rule, metric)
    if rule.condition != "state":  # "machine down" says what it watches
        text = f"{meta['label'] or 'Value'} {text}"
    if rule.on_delay:
        text += f" for {duration(rule.on_delay)}"
    clears = _clears(rule, meta)
    if rule.off_delay:
        clears = f"{clears or 'clears'} after {duration(rule.off_delay)}"
    return f"{text} ({clears})" if clears else text


def alarm_value(value: float | None, rule, metric: Metric | None) -> str:
    """An alarm's value with its unit and the rule's precision: ``0.063 mm/s``; "" without a value."""
    return "" if value is None else format_value(value, rule_meta(rule, metric))
