"""Receivers of the devices app's after-commit signals (STYLE.md §15). They only enqueue a task."""

from django.db import transaction

from alerts.tasks import evaluate_rules as evaluate_rules_task


def on_telemetry_ingested(sender, *, items, received_at, **kwargs) -> None:
    """One evaluation task per ingest batch: the devices and the time span of their messages.

    The task reads the stored readings back, so the payload stays small whatever the batch size.
    """
    device_ids = sorted({item.device.pk for item in items if item.messages})
    stamps = [message.ts for item in items for message in item.messages]
    if not device_ids:
        return
    start, end = min(stamps).isoformat(), max(stamps).isoformat()
    metrics = sorted({name for item in items for message in item.messages for name in message.values})
    transaction.on_commit(lambda: evaluate_rules_task.delay(device_ids, start, end, metrics))
