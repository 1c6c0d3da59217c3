"""Time-driven alarm work, run by Celery beat: delays, silence, shelves, escalation, repeats.

Each function takes ``now`` (tests pass a controlled clock) and is idempotent: every change is
claimed with a conditional UPDATE or made under the (rule, device) row lock, so overlapping beat
runs or a retried task do each thing once.
"""

from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import F

from alerts.models import Alarm, AlarmEvent, AlertRule, NotificationRoute, RuleState
from alerts.services.alarms import alarm_unshelve, event_record
from alerts.services.evaluation import apply_transitions, group_ids_of, step
from devices.models import Device, LatestValue, Metric


def delays_run(*, now: datetime) -> int:
    """Finish on-delays and off-delays that ran out without a new sample (the last one still holds)."""
    done = 0
    waiting = RuleState.objects.filter(
        status__in=(RuleState.Status.PENDING, RuleState.Status.CLEARING), rule__enabled=True
    ).select_related("rule", "device")
    for candidate in waiting:
        rule = candidate.rule
        delay = rule.on_delay if candidate.status == RuleState.Status.PENDING else rule.off_delay
        if candidate.since is None or candidate.since + timedelta(seconds=delay) > now:
            continue
        with transaction.atomic():
            state = RuleState.objects.select_for_update().get(pk=candidate.pk)
            if state.status != candidate.status or state.since != candidate.since:
                continue  # a sample moved it meanwhile
            at = state.since + timedelta(seconds=delay)
            bad = state.status == RuleState.Status.PENDING
            last_ts, last_value = state.last_ts, state.last_value
            transitions = step(rule, state, at, bad, last_value)
            # The timer is not a sample: keep last_ts so later-arriving readings are still evaluated.
            state.last_ts, state.last_value = last_ts, last_value
            state.save(update_fields=["status", "since"])
            apply_transitions(rule, candidate.device, transitions)
            done += len(transitions)
    return done


def _last_data(rule: AlertRule, devices: list[Device]) -> dict[int, datetime | None]:
    if not rule.metric:
        return {device.pk: device.last_seen_at for device in devices}
    metric = Metric.objects.filter(name=rule.metric).first()
    if metric is None:
        return {}
    rows = LatestValue.objects.filter(metric=metric, device_id__in=[d.pk for d in devices])
    return dict(rows.values_list("device_id", "ts"))


def no_data_run(*, now: datetime) -> int:
    """Evaluate "no data for N seconds" rules: abnormal while a device's newest data is older than N."""
    done = 0
    rules = AlertRule.objects.filter(enabled=True, condition=AlertRule.Condition.NO_DATA)
    for rule in rules:
        devices = list(Device.objects.filter(plant_id=rule.plant_id, enabled=True))
        groups = group_ids_of([d.pk for d in devices])
        devices = [d for d in devices if rule.applies_to(d, groups[d.pk])]
        last = _last_data(rule, devices)
        limit = timedelta(seconds=rule.no_data_seconds)
        not_ok = set(
            RuleState.objects.filter(rule=rule).exclude(status=RuleState.Status.OK).values_list("device_id", flat=True)
        )
        for device in devices:
            seen = last.get(device.pk)
            silent = seen is None or now - seen > limit
            if not silent and device.pk not in not_ok:
                continue  # the common case: data is flowing and nothing is pending, so nothing to write
            with transaction.atomic():
                try:
                    with transaction.atomic():
                        RuleState.objects.get_or_create(rule=rule, device=device)
                except IntegrityError:
                    pass
                state = RuleState.objects.select_for_update().get(rule=rule, device=device)
                at = (seen + limit) if silent and seen is not None else now
                if state.last_ts is not None and at <= state.last_ts:
                    continue
                transitions = step(rule, state, at, silent, None)
                state.save(update_fields=["status", "since", "last_ts", "last_value"])
                apply_transitions(rule, device, transitions)
                done += len(transitions)
    return done


def shelves_expire(*, now: datetime) -> int:
    """Unshelve alarms whose shelve time has passed."""
    expired = Alarm.objects.filter(shelved_until__lte=now).select_related("rule")
    return sum(alarm_unshelve(alarm=alarm, now=now).changed for alarm in expired)


def _notifiable(now: datetime):
    """Active, unacknowledged alarms that are neither shelved nor suppressed."""
    alarms = Alarm.objects.filter(state=Alarm.State.ACTIVE_UNACK, suppressed=False).select_related("rule")
    return [alarm for alarm in alarms if not alarm.is_shelved(now)]


def escalations_run(*, now: datetime) -> int:
    """Notify the next level: one ``escalated`` event per (alarm, escalation route) that is due.

    The (alarm, kind, route) unique constraint makes a second run a no-op. Acknowledging an
    alarm takes it out of the candidates, which cancels escalations not yet due.
    """
    routes = list(NotificationRoute.objects.filter(enabled=True, delay_minutes__gt=0))
    if not routes:
        return 0
    done = 0
    for alarm in _notifiable(now):
        for route in routes:
            due = alarm.raised_at + timedelta(minutes=route.delay_minutes)
            if route.plant_id != alarm.plant_id or alarm.severity not in route.severities or due > now:
                continue
            if AlarmEvent.objects.filter(alarm=alarm, kind=AlarmEvent.Kind.ESCALATED, route=route).exists():
                continue
            try:
                with transaction.atomic():
                    event_record(alarm=alarm, kind=AlarmEvent.Kind.ESCALATED, at=now, value=alarm.value, route=route)
                done += 1
            except IntegrityError:  # another run escalated it first
                pass
    return done


def repeats_run(*, now: datetime) -> int:
    """Re-announce alarms still unacknowledged after their rule's re-alarm interval (one event per interval)."""
    done = 0
    for alarm in _notifiable(now):
        interval = alarm.rule.realarm_seconds
        last = alarm.last_notified_at or alarm.raised_at
        if not interval or last + timedelta(seconds=interval) > now:
            continue
        with transaction.atomic():
            claimed = Alarm.objects.filter(
                pk=alarm.pk, state=Alarm.State.ACTIVE_UNACK, last_notified_at=alarm.last_notified_at
            ).update(last_notified_at=now, notify_count=F("notify_count") + 1)
            if claimed:
                event_record(alarm=alarm, kind=AlarmEvent.Kind.REPEATED, at=now, value=alarm.value)
                done += 1
    return done


def alarm_timers_run(*, now: datetime) -> dict:
    """Everything time-driven, in order; returns counts per step (for the task's log)."""
    return {
        "delays": delays_run(now=now),
        "no_data": no_data_run(now=now),
        "unshelved": shelves_expire(now=now),
        "escalated": escalations_run(now=now),
        "repeated": repeats_run(now=now),
    }
