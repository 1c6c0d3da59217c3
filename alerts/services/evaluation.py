"""Rule evaluation: a state machine per (rule, device) that changes alarms on transitions only.

``ok`` → ``pending`` (abnormal, on-delay running) → ``firing`` (alarm raised) → ``clearing``
(normal, off-delay running) → ``ok`` (alarm cleared). While firing, the clear threshold (the
deadband) decides what "normal" is. Samples at or before ``RuleState.last_ts`` are skipped, so
evaluating the same readings twice changes nothing; the state row is locked while it is
evaluated, so two workers never interleave on one (rule, device).
"""

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction

from alerts.models import AlertRule, RuleState
from alerts.services.alarms import alarm_clear, alarm_raise
from devices.models import Device, DeviceGroup, MachineState, Metric, TelemetryReading

logger = logging.getLogger(__name__)
# Readings older than this before a batch are never fetched (a device's first batch after a
# long time evaluates its own readings, not a day of history).
LOOKBACK = timedelta(hours=1)


@dataclass(slots=True)
class Sample:
    ts: datetime
    value: float | None  # None for machine-state samples
    bad_if_firing: bool
    bad_if_not: bool
    raw: float | None = None  # the reading itself, when ``value`` is a rate


def _compare(rule: AlertRule, value: float, firing: bool) -> bool:
    """Whether ``value`` is abnormal; while firing, against the clear threshold (deadband)."""
    if rule.condition == AlertRule.Condition.OUTSIDE:
        low, high = rule.threshold, rule.threshold_high
        if firing:
            low = low if rule.clear_threshold is None else rule.clear_threshold
            high = high if rule.clear_threshold_high is None else rule.clear_threshold_high
        return value < low or value > high
    limit = rule.clear_threshold if firing and rule.clear_threshold is not None else rule.threshold
    if rule.condition in (AlertRule.Condition.GT, AlertRule.Condition.RATE):
        return value > limit
    if rule.condition == AlertRule.Condition.GTE:
        return value >= limit
    if rule.condition == AlertRule.Condition.LT:
        return value < limit
    return value <= limit


def step(rule: AlertRule, state: RuleState, ts: datetime, bad: bool, value) -> list[tuple[str, datetime, float]]:
    """Advance ``state`` by one sample; return the alarm transitions (``raise``/``clear``) it causes."""
    out = []
    if state.status in (RuleState.Status.OK, RuleState.Status.PENDING):
        if not bad:
            state.status, state.since = RuleState.Status.OK, None
        else:
            if state.status == RuleState.Status.OK:
                state.status, state.since = RuleState.Status.PENDING, ts
            if ts - state.since >= timedelta(seconds=rule.on_delay):
                state.status, state.since = RuleState.Status.FIRING, ts
                out.append(("raise", ts, value))
    elif bad:
        state.status, state.since = (
            RuleState.Status.FIRING,
            state.since if state.status == RuleState.Status.FIRING else ts,
        )
    else:
        if state.status == RuleState.Status.FIRING:
            state.status, state.since = RuleState.Status.CLEARING, ts
        if ts - state.since >= timedelta(seconds=rule.off_delay):
            state.status, state.since = RuleState.Status.OK, None
            out.append(("clear", ts, value))
    state.last_ts, state.last_value = ts, value
    return out


def _state_samples(rule: AlertRule, device: Device, after: datetime, until: datetime) -> list[Sample]:
    rows = MachineState.objects.filter(device_id=device.pk, ts__gt=after, ts__lte=until).order_by("ts")
    samples = [
        Sample(ts, None, state == rule.state, state == rule.state) for ts, state in rows.values_list("ts", "state")
    ]
    # States are stored only when they change, but a state holds until the next one: the device's
    # current state at the batch's newest time is a sample too, so "down for N minutes" fires on
    # the first message after the delay, not only on the next beat tick.
    current = device.state_since is not None and device.state and device.state_since <= until
    if current and until > after and (not samples or samples[-1].ts < until):
        held = device.state == rule.state
        samples.append(Sample(until, None, held, held))
    return samples


def _samples(rule: AlertRule, device: Device, after: datetime, until: datetime, previous, metric_ids) -> list[Sample]:
    if rule.condition == AlertRule.Condition.STATE:
        return _state_samples(rule, device, after, until)
    metric_id = metric_ids.get(rule.metric)
    if metric_id is None:
        return []
    rows = TelemetryReading.objects.filter(device_id=device.pk, metric_id=metric_id, ts__gt=after, ts__lte=until)
    samples = []
    for ts, value in rows.order_by("ts").values_list("ts", "value"):
        if rule.condition == AlertRule.Condition.RATE:
            last_ts, last_value = previous
            previous = (ts, value)
            if last_ts is None or ts <= last_ts:
                continue
            raw, value = value, abs(value - last_value) / (ts - last_ts).total_seconds() * 60
            samples.append(Sample(ts, value, _compare(rule, value, True), _compare(rule, value, False), raw))
            continue
        samples.append(Sample(ts, value, _compare(rule, value, True), _compare(rule, value, False)))
    return samples


def _state_for(rule: AlertRule, device: Device, known: RuleState | None) -> RuleState:
    """The (rule, device) state row, locked for this transaction (created on first use)."""
    if known is None:
        try:
            with transaction.atomic():
                RuleState.objects.get_or_create(rule=rule, device=device)
        except IntegrityError:  # created concurrently
            pass
        return RuleState.objects.select_for_update().get(rule=rule, device=device)
    return RuleState.objects.select_for_update().get(pk=known.pk)


def rule_evaluate_device(
    *, rule: AlertRule, device: Device, start: datetime, end: datetime, state: RuleState | None = None, metric_ids=None
) -> int:
    """Evaluate one rule for one device over samples in ``(last evaluated, end]``; return transitions made.

    ``state`` (the pair's row, if already loaded) and ``metric_ids`` (name → id) only save queries.
    Idempotent: samples already evaluated are skipped. Raises nothing for missing metrics.
    """
    if metric_ids is None:
        metric_ids = dict(Metric.objects.filter(name=rule.metric).values_list("name", "pk"))
    with transaction.atomic():
        state = _state_for(rule, device, state)
        after = max(state.last_ts or start - timedelta(microseconds=1), start - LOOKBACK)
        previous = (state.last_ts, state.last_value) if rule.condition == AlertRule.Condition.RATE else None
        samples = _samples(rule, device, after, end, previous, metric_ids)
        if not samples:
            return 0
        transitions = []
        for sample in samples:
            firing = state.status in (RuleState.Status.FIRING, RuleState.Status.CLEARING)
            bad = sample.bad_if_firing if firing else sample.bad_if_not
            transitions += step(rule, state, sample.ts, bad, sample.value)
        if rule.condition == AlertRule.Condition.RATE:
            state.last_value = samples[-1].raw  # the next rate starts from the last reading, not the last rate
        state.save(update_fields=["status", "since", "last_ts", "last_value"])
        apply_transitions(rule, device, transitions)
    return len(transitions)


def apply_transitions(rule: AlertRule, device: Device, transitions) -> None:
    """Raise or clear the (rule, device) alarm for each ``("raise" | "clear", at, value)``, in order."""
    for what, at, value in transitions:
        if what == "raise":
            alarm_raise(rule=rule, device=device, value=value, at=at)
        else:
            alarm_clear(rule=rule, device=device, value=value, at=at)


def group_ids_of(device_ids) -> dict[int, set[int]]:
    """Device id → ids of its groups, in one query (group-scoped rules)."""
    groups = defaultdict(set)
    for device_id, group_id in DeviceGroup.devices.through.objects.filter(device_id__in=device_ids).values_list(
        "device_id", "devicegroup_id"
    ):
        groups[device_id].add(group_id)
    return groups


def rules_evaluate(*, device_ids: list[int], start: datetime, end: datetime, metrics: list[str] | None = None) -> int:
    """Evaluate every enabled sample-driven rule in scope of these devices; return transitions made.

    ``metrics``: the metric names the batch carried (None: any); rules on other metrics are
    skipped without a query. Rules are read fresh on every call, so a changed rule applies to the
    next evaluation.
    """
    devices = list(Device.objects.filter(pk__in=device_ids, enabled=True))
    if not devices:
        return 0
    rules = AlertRule.objects.filter(enabled=True, plant_id__in={d.plant_id for d in devices}).exclude(
        condition=AlertRule.Condition.NO_DATA
    )
    rules = [r for r in rules if r.condition == AlertRule.Condition.STATE or metrics is None or r.metric in metrics]
    if not rules:
        return 0
    groups = group_ids_of([d.pk for d in devices])
    metric_ids = dict(Metric.objects.filter(name__in={r.metric for r in rules}).values_list("name", "pk"))
    states = {
        (s.rule_id, s.device_id): s
        for s in RuleState.objects.filter(rule__in=rules, device_id__in=[d.pk for d in devices])
    }
    total = 0
    for device in devices:
        for rule in rules:
            if rule.applies_to(device, groups[device.pk]):
                state = states.get((rule.pk, device.pk))
                total += rule_evaluate_device(
                    rule=rule, device=device, start=start, end=end, state=state, metric_ids=metric_ids
                )
    return total
