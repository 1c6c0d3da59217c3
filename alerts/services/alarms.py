"""The alarm lifecycle (ISA-18.2): raise, clear, acknowledge, shelve, suppress, resolve.

Every change is claimed with a conditional UPDATE on the alarm's state (``Alarm.flip``), so a
retried task or two concurrent requests make one transition, and each transition writes one
``AlarmEvent`` (the alarm's history and the notifier's outbox). After commit ``alarm_changed`` is
sent (the live bus publishes it to the dashboard) and, for notifying kinds, the notification dispatcher runs.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from alerts.display import alarm_value, metrics_named
from alerts.models import Alarm, AlarmEvent, AlertRule
from devices.formats import format_time


@dataclass(frozen=True)
class Outcome:
    """What an operator action did: ``changed`` False means it was already done (a no-op)."""

    alarm: Alarm
    changed: bool
    detail: str


def _after_commit(alarm: Alarm, kind: str, at: datetime) -> None:
    def run():
        from alerts.signals import alarm_changed  # here: alerts.signals imports the tasks, which import us

        alarm_changed.send(sender=Alarm, alarm=alarm, at=at)  # the live dashboard (live.receivers)
        if kind in AlarmEvent.NOTIFY:
            from alerts.tasks import dispatch_notifications as dispatch_notifications_task

            dispatch_notifications_task.delay()

    transaction.on_commit(run)


def event_record(*, alarm: Alarm, kind: str, at: datetime, user=None, comment: str = "", value=None, route=None):
    """Write one history/outbox row for a transition that was just claimed; publish after commit."""
    event = AlarmEvent.objects.create(
        alarm=alarm, plant_id=alarm.plant_id, kind=kind, at=at, user=user, comment=comment,
        value=value, state=alarm.state, route=route,
    )  # fmt: skip
    _after_commit(alarm, kind, at)
    return event


def _message(rule: AlertRule, device, value) -> str:
    """``press-01: Vibration high (value 0.063 mm/s)``: the value with its unit and the rule's precision."""
    metric = metrics_named([rule.metric]).get(rule.metric) if value is not None and rule.metric else None
    shown = "" if value is None else f" (value {alarm_value(value, rule, metric)})"
    return f"{device.uid}: {rule.name}{shown}"[:255]


def alarm_raise(*, rule: AlertRule, device, value: float | None, at: datetime) -> Alarm:
    """Raise the (rule, device) alarm, or re-activate it if it had cleared but was not acknowledged.

    Idempotent: an alarm already active stays as it is and no event is written.
    """
    key = Alarm.key_for(rule.pk, device.pk)
    with transaction.atomic():
        alarm = Alarm.objects.select_related("rule").filter(active_key=key).first()
        if alarm is None:
            try:
                with transaction.atomic():
                    alarm = Alarm.objects.create(
                        plant_id=rule.plant_id, rule=rule, device=device, severity=rule.severity,
                        message=_message(rule, device, value), value=value, raised_at=at,
                        last_notified_at=at, active_key=key,
                    )  # fmt: skip
            except IntegrityError:  # raised concurrently by another worker: theirs stands
                return Alarm.objects.get(active_key=key)
            event_record(alarm=alarm, kind=AlarmEvent.Kind.RAISED, at=at, value=value)
        elif alarm.flip(
            (Alarm.State.CLEARED_UNACK,),
            state=Alarm.State.ACTIVE_UNACK,
            cleared_at=None,
            value=value,
            last_notified_at=at,
        ):
            event_record(alarm=alarm, kind=AlarmEvent.Kind.RETURNED, at=at, value=value)
    return alarm


def alarm_clear(*, rule: AlertRule, device, value: float | None, at: datetime) -> Alarm | None:
    """Return to normal: active-unacknowledged → cleared-unacknowledged; active-acknowledged → closed.

    Idempotent: no open alarm, or one already cleared, changes nothing.
    """
    with transaction.atomic():
        alarm = Alarm.objects.select_related("rule").filter(active_key=Alarm.key_for(rule.pk, device.pk)).first()
        if alarm is None:
            return None
        # Unacknowledged → waits for its acknowledgement; already acknowledged → nothing left: closed.
        cleared = alarm.flip((Alarm.State.ACTIVE_UNACK,), state=Alarm.State.CLEARED_UNACK, cleared_at=at, value=value)
        closed = cleared or alarm.flip(
            (Alarm.State.ACTIVE_ACK,),
            state=Alarm.State.CLOSED,
            cleared_at=at,
            closed_at=at,
            value=value,
            active_key=None,
        )
        if cleared or closed:
            event_record(alarm=alarm, kind=AlarmEvent.Kind.CLEARED, at=at, value=value)
    return alarm


def _local(alarm: Alarm, ts: datetime) -> str:
    """``ts`` in the alarm's plant's zone, naming it: what an operator reads in the console."""
    zone = alarm.plant.time_zone
    return f"{format_time(ts, zone, seconds=True)} ({zone})"


def _when(alarm: Alarm, ts: datetime | None) -> str:
    return "" if ts is None else f" at {_local(alarm, ts)}"


def alarm_acknowledge(*, alarm: Alarm, by, comment: str = "", now: datetime) -> Outcome:
    """Acknowledge: active-unack → active-ack (escalation and repeats stop); cleared-unack → closed.

    Acknowledging again is a no-op that says who acknowledged and when.
    """
    with transaction.atomic():
        if alarm.flip(
            (Alarm.State.ACTIVE_UNACK,), state=Alarm.State.ACTIVE_ACK, acknowledged_at=now, acknowledged_by=by
        ):
            event_record(
                alarm=alarm, kind=AlarmEvent.Kind.ACKNOWLEDGED, at=now, user=by, comment=comment, value=alarm.value
            )
            return Outcome(alarm, True, "Acknowledged.")
        fields = {
            "state": Alarm.State.CLOSED,
            "acknowledged_at": now,
            "acknowledged_by": by,
            "closed_at": now,
            "active_key": None,
        }
        if alarm.flip((Alarm.State.CLEARED_UNACK,), **fields):
            event_record(
                alarm=alarm, kind=AlarmEvent.Kind.ACKNOWLEDGED, at=now, user=by, comment=comment, value=alarm.value
            )
            return Outcome(alarm, True, "Acknowledged; it had returned to normal, so it is now closed.")
    who = alarm.acknowledged_by.username if alarm.acknowledged_by else "someone"
    if alarm.acknowledged_at is not None:
        detail = f"Already acknowledged by {who}{_when(alarm, alarm.acknowledged_at)}; nothing changed."
    else:
        detail = f"This alarm is {alarm.get_state_display().lower()}; nothing to acknowledge."
    return Outcome(alarm, False, detail)


def alarm_shelve(*, alarm: Alarm, by, reason: str, minutes: int, now: datetime) -> Outcome:
    """Shelve an open alarm for ``minutes`` (at most ``ALARM_SHELVE_MAX_MINUTES``) with a reason.

    Shelved alarms are not notified; they unshelve by themselves (``alarm_timers_run``).
    Raises ``ValidationError`` for a closed alarm, an empty reason or too long a time.
    """
    errors = {}
    if not reason.strip():
        errors["reason"] = "Say why the alarm is shelved."
    if not 1 <= minutes <= settings.ALARM_SHELVE_MAX_MINUTES:
        errors["minutes"] = f"Shelve for 1 to {settings.ALARM_SHELVE_MAX_MINUTES} minutes."
    if not alarm.is_open:
        errors["alarm"] = "A closed alarm cannot be shelved."
    if errors:
        raise ValidationError(errors)
    until = now + timedelta(minutes=minutes)
    with transaction.atomic():
        if not alarm.flip(Alarm.OPEN_STATES, shelved_until=until, shelved_reason=reason[:255], shelved_by=by):
            raise ValidationError({"alarm": "The alarm closed meanwhile; nothing to shelve."})
        event_record(alarm=alarm, kind=AlarmEvent.Kind.SHELVED, at=now, user=by, comment=reason, value=alarm.value)
    return Outcome(alarm, True, f"Shelved until {_local(alarm, until)}.")


def alarm_unshelve(*, alarm: Alarm, by=None, now: datetime, comment: str = "") -> Outcome:
    """End a shelve early (``by`` an operator) or when it expires (``by`` None). No-op if not shelved."""
    with transaction.atomic():
        claimed = Alarm.objects.filter(pk=alarm.pk, shelved_until=alarm.shelved_until, shelved_until__isnull=False)
        if alarm.shelved_until is None or not claimed.update(shelved_until=None, shelved_reason="", shelved_by=None):
            alarm.refresh_from_db()
            return Outcome(alarm, False, "The alarm is not shelved; nothing changed.")
        alarm.shelved_until, alarm.shelved_reason, alarm.shelved_by = None, "", None
        comment = comment or ("Shelve expired." if by is None else "")
        event_record(alarm=alarm, kind=AlarmEvent.Kind.UNSHELVED, at=now, user=by, comment=comment, value=alarm.value)
    return Outcome(alarm, True, "Unshelved.")


def alarm_set_suppressed(*, alarm: Alarm, by, suppressed: bool, comment: str = "", now: datetime) -> Outcome:
    """Take an alarm out of service (plant admins) or back in. No-op when already so."""
    with transaction.atomic():
        if not Alarm.objects.filter(pk=alarm.pk, suppressed=not suppressed).update(suppressed=suppressed):
            alarm.refresh_from_db()
            return Outcome(alarm, False, f"Already {'suppressed' if suppressed else 'in service'}; nothing changed.")
        alarm.suppressed = suppressed
        kind = AlarmEvent.Kind.SUPPRESSED if suppressed else AlarmEvent.Kind.UNSUPPRESSED
        event_record(alarm=alarm, kind=kind, at=now, user=by, comment=comment, value=alarm.value)
    return Outcome(alarm, True, "Suppressed." if suppressed else "Back in service.")


def alarm_resolve(*, alarm: Alarm, by, note: str, now: datetime) -> Outcome:
    """Close an open alarm with a resolution note. A closed alarm is a no-op; an empty note is invalid.

    The rule's state is left alone: if the condition still holds, a new alarm is raised only
    after it has returned to normal and become abnormal again.
    """
    if not note.strip():
        raise ValidationError({"note": "A resolution note is required."})
    with transaction.atomic():
        fields = {
            "state": Alarm.State.CLOSED,
            "closed_at": now,
            "resolution": note,
            "active_key": None,
            "shelved_until": None,
        }
        if not alarm.flip(Alarm.OPEN_STATES, **fields):
            return Outcome(alarm, False, f"Already closed{_when(alarm, alarm.closed_at)}; nothing changed.")
        event_record(alarm=alarm, kind=AlarmEvent.Kind.CLOSED, at=now, user=by, comment=note, value=alarm.value)
    return Outcome(alarm, True, "Resolved and closed.")
