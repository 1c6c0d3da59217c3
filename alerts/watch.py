"""Which metrics the enabled rules of a plant watch: ingest enqueues an evaluation only when one may match.

Most readings of a plant feed no rule (a rule on ``vibration`` says nothing about ``temperature``),
and the evaluation task would read the rules and return, yet publishing it was a large share of an
HTTP ingest batch (docs/benchmarks.md). The answer is kept per
process for ``TTL_SECONDS``; a rule saved or deleted in this process clears it at once and again
on commit, so another process sees a new or changed rule within ``TTL_SECONDS``.
"""

import time
from dataclasses import dataclass

from django.db import transaction

TTL_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class Watched:
    """What the plant's enabled sample-driven rules look at (no-data rules run on timers)."""

    states: bool  # a state rule: every batch may change the machine state it watches
    metrics: frozenset[str]

    def covers(self, metric_names) -> bool:
        return self.states or not self.metrics.isdisjoint(metric_names)


_cache: dict[int, tuple[float, Watched]] = {}


def watched_by_plant(plant_ids) -> dict[int, Watched]:
    from alerts.models import AlertRule

    now = time.monotonic()
    found = {pk: entry[1] for pk in plant_ids if (entry := _cache.get(pk)) and entry[0] > now}
    missing = [pk for pk in plant_ids if pk not in found]
    if missing:
        states, metrics = set(), {pk: set() for pk in missing}
        rules = AlertRule.objects.filter(enabled=True, plant_id__in=missing).exclude(
            condition=AlertRule.Condition.NO_DATA
        )
        for plant_id, condition, metric in rules.values_list("plant_id", "condition", "metric"):
            if condition == AlertRule.Condition.STATE:
                states.add(plant_id)
            else:
                metrics[plant_id].add(metric)
        for pk in missing:
            found[pk] = Watched(states=pk in states, metrics=frozenset(metrics[pk]))
            _cache[pk] = (now + TTL_SECONDS, found[pk])
    return found


def watched_items(items) -> list:
    """The ingest items (``devices.services.ingest.IngestItem``) whose readings an enabled rule of
    their device's plant may match: every item of a plant with a state rule, else those carrying a
    watched metric."""
    items = [item for item in items if item.messages]
    watched = watched_by_plant({item.device.plant_id for item in items})
    return [
        item
        for item in items
        if watched[item.device.plant_id].covers({name for message in item.messages for name in message.values})
    ]


def forget() -> None:
    """A rule was saved or deleted: drop what is remembered now and again once the change commits."""
    _cache.clear()
    transaction.on_commit(_cache.clear)
