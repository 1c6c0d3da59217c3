"""Signals other apps listen to (STYLE.md §15: only at app boundaries)."""

from django.db import transaction
from django.dispatch import Signal

# Sent after commit when a rollout or one of its targets changed. kwargs: rollout_id (int).
# The live bus publishes the rollout's snapshot (live.receivers), throttled.
rollout_progressed = Signal()


def rollout_progressed_after_commit(rollout_id: int) -> None:
    """Send ``rollout_progressed`` once the current transaction commits (at once outside one)."""
    transaction.on_commit(lambda: rollout_progressed.send(sender=None, rollout_id=rollout_id))
