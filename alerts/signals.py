"""Receivers (STYLE.md §15): the devices app's after-commit signal only enqueues a task; a changed rule
invalidates what `alerts.watch` remembers. Also the alerts app's own signal for other apps."""

from django.db import transaction
from django.dispatch import Signal

from alerts import watch
from alerts.tasks import evaluate_rules as evaluate_rules_task

# Sent after commit on every alarm transition. kwargs: alarm (Alarm), at (datetime). The live bus
# publishes it to the dashboard (live.receivers).
alarm_changed = Signal()


def on_telemetry_ingested(sender, *, items, received_at, **kwargs) -> None:
    """One evaluation task per ingest batch: the devices and the time span of their messages.

    The task reads the stored readings back, so the payload stays small whatever the batch size.
    Devices whose readings no enabled rule of their plant watches are left out, and a batch with
    none enqueues nothing (``alerts.watch``).
    """
    items = watch.watched_items(items)
    if not items:
        return
    device_ids = sorted({item.device.pk for item in items})
    stamps = [message.ts for item in items for message in item.messages]
    start, end = min(stamps).isoformat(), max(stamps).isoformat()
    metrics = sorted({name for item in items for message in item.messages for name in message.values})
    transaction.on_commit(lambda: evaluate_rules_task.delay(device_ids, start, end, metrics))


def on_rule_changed(sender, **kwargs) -> None:
    """Receiver of AlertRule's post_save/post_delete: ingest's memory of watched metrics is stale."""
    watch.forget()
