"""Template filters for values and times as people read them (``devices/formats.py``), for pages,
e-mails and the admin: ``{% load formats %}`` then

- ``{{ reading.value|metric_value:metric }}`` → ``61.4 °C`` (``metric``: a ``Metric``, its name or a
  ``{"unit", "precision"}`` dict);
- ``{{ rule.threshold|threshold_value:metric }}`` → ``0.06 mm/s`` (as entered);
- ``{{ alarm.raised_at|plant_time:plant }}`` → ``2026-12-06 14:05`` in the plant's zone (``plant``: a
  ``Plant``, a ``ZoneInfo`` or an IANA name).
"""

from django import template

from devices.formats import format_threshold, format_time, format_value, metric_new
from devices.models import Metric, Plant

register = template.Library()


def _metric(metric):
    if isinstance(metric, str):
        # A name: one query; a name no device has sent yet reads with its defaults.
        return Metric.objects.filter(name=metric).first() or metric_new(metric)
    return metric or None


@register.filter
def metric_value(value, metric=None) -> str:
    return format_value(value, _metric(metric))


@register.filter
def threshold_value(value, metric=None) -> str:
    return format_threshold(value, _metric(metric))


@register.filter
def plant_time(moment, plant) -> str:
    return format_time(moment, plant.tz if isinstance(plant, Plant) else plant)
