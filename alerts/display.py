"""How a rule's limit and an alarm's value read (the rules of ``devices/formats.py``): in the
stored alarm message, the e-mails and the admin. ``static/alerts/console.js`` (``limitText``) is
the browser twin.

An alarm's value shows with the rule's precision: its metric's, but never fewer decimals than
its thresholds were entered with, so a 0.063 reading against a 0.06 limit never reads "0.1 > 0.06".
"""

from devices.formats import format_threshold, format_value, metric_meta, metric_new, rule_precision
from devices.models import Metric

SIGNS = {"gt": ">", "gte": "≥", "lt": "<", "lte": "≤"}


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


def rule_limit(rule, metric: Metric | None) -> str:
    """The rule's condition in words with its values: ``> 0.06 mm/s``, ``outside 2.5 – 6.5 bar``,
    ``changing by more than 5 °C/min``, ``no data for 300 s``, ``machine down``."""
    meta = rule_meta(rule, metric)
    if rule.condition in SIGNS:
        return f"{SIGNS[rule.condition]} {format_threshold(rule.threshold, meta)}"
    if rule.condition == "outside":
        low, high = format_threshold(rule.threshold, meta), format_threshold(rule.threshold_high, meta)
        return f"outside {low} – {high}"
    if rule.condition == "rate":
        return f"changing by more than {format_threshold(rule.threshold, meta)}"
    if rule.condition == "no_data":
        return f"no data for {rule.no_data_seconds} s"
    if rule.condition == "state":
        return f"machine {(rule.state or '').replace('_', ' ')}"
    return ""


def alarm_value(value: float | None, rule, metric: Metric | None) -> str:
    """An alarm's value with its unit and the rule's precision: ``0.063 mm/s``; "" without a value."""
    return "" if value is None else format_value(value, rule_meta(rule, metric))
