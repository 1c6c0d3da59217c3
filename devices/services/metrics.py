"""Writes for metrics: how a metric reads (display name, unit, precision). Ingest creates them."""

from devices.models import Metric

EDITABLE = ("display_name", "unit", "precision")


def metric_update(*, metric: Metric, **fields) -> Metric:
    """Change a metric's ``display_name``, ``unit`` or ``precision`` (None: automatic decimals).

    The name is the devices' key and never changes. Raises ``ValidationError`` naming the field
    (e.g. a precision above 6); nothing is written then. Idempotent.
    """
    unknown = set(fields) - set(EDITABLE)
    if unknown:
        raise TypeError(f"metric_update() cannot change {', '.join(sorted(unknown))}")
    for name, value in fields.items():
        setattr(metric, name, value)
    metric.full_clean()
    metric.save(update_fields=list(fields) or None)
    return metric
