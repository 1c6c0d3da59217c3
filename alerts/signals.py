"""Receivers of the devices app's after-commit signals (STYLE.md §15). They only enqueue a task."""

from django.db import transaction

from alerts.tasks import evaluate_rules as evaluate_rules_task
from alerts.watch import watched_by_plant


def on_telemetry_ingested(sender, *, items, received_at, **kwargs) -> None:
    """One evaluation task per ingest batch: the devices and the time span of their messages.

    The task reads the stored readings back, so the payload stays small whatever the batch size.
    Devices whose readings no enabled rule of their plant watches are left out, and a batch with
    none enqueues nothing (``alerts.watch``).
    """
    watched = watched_by_plant({item.device.plant_id for item in items if item.messages})
    items = [
        item
        for item in items
        if item.messages
        and watched[item.device.plant_id].covers({name for message in item.messages for name in message.values})
    ]
    if not items:
        return
    device_ids = sorted({item.device.pk for item in items})
    stamps = [message.ts for item in items for message in item.messages]
    start, end = min(stamps).isoformat(), max(stamps).isoformat()
    metrics = sorted({name for item in items for message in item.messages for name in message.values})
    transaction.on_commit(lambda: evaluate_rules_task.delay(device_ids, start, end, metrics))
