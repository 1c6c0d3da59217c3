"""From alarm events to delivered messages: dispatch (grouping), sending, failing channels.

1. ``notifications_dispatch`` consumes the outbox (``AlarmEvent.processed_at`` NULL). Each
   notifying event is routed (plant, severity, delay 0, or its escalation route) and added to
   its channel's delivery for the current group window (``Delivery.key`` = slot). A channel that
   already sent in this window gets the next window's delivery: at most one message per channel
   per window, and alarms raised together arrive as one digest.
2. Due deliveries are sent by ``deliver_notification`` (one task per delivery) through
   ``delivery_send``, which claims the row, renders the message and calls the channel's notifier.
"""

import logging
import time
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.template.loader import render_to_string
from django.urls import reverse

from accounts.models import User
from accounts.roles import Role
from alerts.display import alarm_value, metrics_named, rule_limit
from alerts.exceptions import DeliveryError, TransientDeliveryError
from alerts.models import SEVERITY_RANK, Alarm, AlarmEvent, Delivery, NotificationChannel, NotificationMute
from alerts.models import NotificationRoute as Route
from alerts.notifiers import kind_enabled, notifier_class
from alerts.notifiers.base import Message
from devices.formats import format_time
from live.bus import iso, publish

logger = logging.getLogger(__name__)
OUTBOX_BATCH = 500


def _slot_delivery(channel: NotificationChannel, now: datetime) -> Delivery:
    """The channel's open delivery for this window (or the next, if this one has gone), locked."""
    window = settings.NOTIFY_GROUP_WINDOW_SECONDS
    slot = int(now.timestamp()) // window
    for number in (slot, slot + 1, slot + 2):
        scheduled = now if number == slot else datetime.fromtimestamp(number * window, tz=UTC)
        try:
            with transaction.atomic():
                Delivery.objects.get_or_create(
                    channel=channel,
                    key=f"slot:{number}",
                    defaults={"plant_id": channel.plant_id, "scheduled_at": scheduled},
                )
        except IntegrityError:  # made concurrently
            pass
        delivery = Delivery.objects.select_for_update().get(channel=channel, key=f"slot:{number}")
        if delivery.status == Delivery.Status.PENDING:
            return delivery
    raise RuntimeError("no open delivery slot")  # unreachable: a later slot is never sent before an earlier


def _targets(event: AlarmEvent, routes: list[Route]) -> list[Route]:
    if event.kind == AlarmEvent.Kind.ESCALATED:
        return [event.route] if event.route and event.route.enabled else []
    return [
        r
        for r in routes
        if r.plant_id == event.plant_id and not r.delay_minutes and event.alarm.severity in r.severities
    ]


def _wanted(event: AlarmEvent, now: datetime) -> bool:
    alarm = event.alarm
    if event.kind not in AlarmEvent.NOTIFY or alarm.suppressed or alarm.is_shelved(now):
        return False
    # Escalations and repeats exist to chase an unacknowledged alarm; one acknowledged meanwhile is done.
    return event.kind in (AlarmEvent.Kind.RAISED, AlarmEvent.Kind.RETURNED) or alarm.state == Alarm.State.ACTIVE_UNACK


def notifications_dispatch(*, now: datetime) -> list[int]:
    """Route unprocessed alarm events into deliveries; return the ids of deliveries due now.

    Each event is claimed (``processed_at``) with a conditional UPDATE, so a second run or a
    concurrent worker never routes it twice. Enqueue the returned ids after commit.
    """
    events = list(
        AlarmEvent.objects.filter(processed_at__isnull=True)
        .select_related("alarm", "route__channel")
        .order_by("pk")[:OUTBOX_BATCH]
    )
    plants = {event.plant_id for event in events}
    routes = list(Route.objects.filter(enabled=True, plant_id__in=plants).select_related("channel"))
    with transaction.atomic():
        for event in events:
            if not AlarmEvent.objects.filter(pk=event.pk, processed_at__isnull=True).update(processed_at=now):
                continue
            if not _wanted(event, now):
                continue
            for route in _targets(event, routes):
                channel = route.channel
                if channel.enabled and channel.status == NotificationChannel.Status.OK and kind_enabled(channel.kind):
                    _slot_delivery(channel, now).events.add(event)
    due = Delivery.objects.filter(status=Delivery.Status.PENDING, scheduled_at__lte=now, events__isnull=False)
    return sorted(set(due.values_list("pk", flat=True)))


def _people(delivery: Delivery, events: list[AlarmEvent], now: datetime) -> list[str]:
    """E-mail addresses of the routes' roles and users, minus people who muted every device concerned."""
    routes = [e.route for e in events if e.kind == AlarmEvent.Kind.ESCALATED and e.route_id]
    severities = {e.alarm.severity for e in events if e.kind != AlarmEvent.Kind.ESCALATED}
    if severities:
        candidates = Route.objects.filter(channel=delivery.channel, enabled=True, delay_minutes=0)
        routes += [r for r in candidates if severities & set(r.severities)]
    users = User.objects.none()
    for route in routes:
        role_users = User.objects.filter(
            groups__plant_role__plant_id=route.plant_id, groups__plant_role__role__in=route.roles
        )
        users = users | role_users | route.users.all()
    devices = {e.alarm.device_id for e in events}
    people = {}
    for user in users.filter(is_active=True).exclude(email="").distinct():
        muted = set(
            NotificationMute.objects.filter(user=user, device_id__in=devices, until__gt=now).values_list(
                "device_id", flat=True
            )
        )
        if muted != devices:
            people[user.email] = True
    return sorted(people)


def _describe(event: AlarmEvent) -> dict:
    alarm = event.alarm
    return {
        "id": alarm.pk, "event": event.kind, "device": alarm.device.uid, "device_id": alarm.device_id,
        "rule": alarm.rule.name, "severity": alarm.severity, "state": alarm.state, "value": alarm.value,
        "message": alarm.message, "action": alarm.rule.action, "raised_at": iso(alarm.raised_at),
    }  # fmt: skip


def _readable(event: AlarmEvent, metrics: dict) -> dict:
    """What the e-mail shows people beside the machine-readable fields (which webhooks get): the
    value with its unit and the rule's precision, the rule's limit and the time in the plant's zone."""
    alarm, rule = event.alarm, event.alarm.rule
    metric = metrics.get(rule.metric)
    return {
        "value_text": alarm_value(alarm.value, rule, metric),
        "limit": rule_limit(rule, metric),
        "raised_local": format_time(alarm.raised_at, alarm.plant.time_zone),
    }


def alarm_console_url(plant_id: int, alarm_id: int | None = None) -> str:
    """The absolute URL (``SITE_URL``) of the plant's alarm console, or of one alarm in it.

    An alarm is addressed by the fragment ``#alarm-<id>`` (the console's row for it), so the
    console's own filters in the query string stay free.
    """
    url = settings.SITE_URL.rstrip("/") + reverse("alarm_console", args=[plant_id])
    return url if alarm_id is None else f"{url}#alarm-{alarm_id}"


def message_build(delivery: Delivery, now: datetime) -> Message:
    """Render the delivery's digest: subject, text and HTML, most severe first."""
    events = list(
        delivery.events.select_related("alarm__rule", "alarm__device", "alarm__plant", "route").order_by("pk")
    )
    events.sort(key=lambda e: (SEVERITY_RANK.get(e.alarm.severity, 9), e.pk))
    alarms = [_describe(e) for e in events]
    plant = events[0].alarm.plant if events else delivery.channel.plant
    severity = alarms[0]["severity"] if alarms else "info"
    prefix = {AlarmEvent.Kind.ESCALATED: "Escalation: ", AlarmEvent.Kind.REPEATED: "Still unacknowledged: "}
    if len(alarms) == 1:
        a = alarms[0]
        title = f"{prefix.get(events[0].kind, '')}[{severity.upper()}] {a['device']}: {a['rule']}"
    else:
        counts = {}
        for a in alarms:
            counts[a["severity"]] = counts.get(a["severity"], 0) + 1
        summary = ", ".join(f"{n} {s}" for s, n in counts.items())
        title = f"[{plant.name}] {len(alarms)} alarms ({summary})"
    console_url = alarm_console_url(plant.pk)
    metrics = metrics_named({e.alarm.rule.metric for e in events})
    linked = [
        {**a, "url": alarm_console_url(plant.pk, a["id"]), **_readable(e, metrics)}
        for a, e in zip(alarms, events, strict=True)
    ]
    context = {"plant": plant, "alarms": linked, "title": title, "console_url": console_url}
    return Message(
        plant_id=plant.pk, plant_name=plant.name, severity=severity, title=title[:200],
        text=render_to_string("alerts/notification.txt", context).strip(),
        html=render_to_string("alerts/notification.html", context), alarms=alarms,
        emails=_people(delivery, events, now) if notifier_class(delivery.channel.kind).addresses_people else [],
        idempotency_key=delivery.idempotency_key,
    )  # fmt: skip


def _claim(delivery_id: int, reclaim: bool, now: datetime) -> Delivery | None:
    """Take the row (pending/retrying → sending) for one attempt; None if it is not there to take.

    ``reclaim`` also takes a row left ``sending`` for longer than ``NOTIFY_STUCK_SECONDS``: no
    attempt lives that long (the task's hard time limit is shorter), so its worker died.
    """
    stale = Q(status=Delivery.Status.SENDING, claimed_at__lt=now - timedelta(seconds=settings.NOTIFY_STUCK_SECONDS))
    claimable = Q(status__in=[Delivery.Status.PENDING, Delivery.Status.RETRYING]) | (stale if reclaim else Q())
    with transaction.atomic():
        delivery = (
            Delivery.objects.select_for_update()
            .filter(claimable, pk=delivery_id)
            .select_related("channel__plant")
            .first()
        )
        if delivery is not None:
            delivery.status, delivery.attempts = Delivery.Status.SENDING, delivery.attempts + 1
            delivery.claimed_at = now
            delivery.save(update_fields=["status", "attempts", "claimed_at"])
    return delivery


def deliveries_sweep(*, now: datetime) -> list[int]:
    """Deliveries a dead worker left behind; return their ids to enqueue again (after commit).

    A row ``sending`` longer than ``NOTIFY_STUCK_SECONDS`` goes back to ``retrying`` (one
    conditional UPDATE: a live attempt, or a second sweeper, is never disturbed). A ``retrying``
    row whose retry should have run long ago (its task was held by a worker that died) is
    enqueued as it is. The message carries the same idempotency key as the first attempt, so a
    receiver that already got it can drop the copy. Idempotent: claiming decides who sends.
    """
    stuck = timedelta(seconds=settings.NOTIFY_STUCK_SECONDS)
    stale = Q(status=Delivery.Status.SENDING) & (Q(claimed_at__lt=now - stuck) | Q(claimed_at__isnull=True))
    returned = list(Delivery.objects.filter(stale).values_list("pk", flat=True))
    if returned:
        Delivery.objects.filter(stale, pk__in=returned).update(status=Delivery.Status.RETRYING)
        logger.warning("deliveries %s were left sending by a worker that died: sending them again", returned)
    overdue = now - stuck - timedelta(seconds=settings.NOTIFY_RETRY_BACKOFF_MAX)
    late = Delivery.objects.filter(status=Delivery.Status.RETRYING, claimed_at__lt=overdue)
    return sorted(set(returned) | set(late.values_list("pk", flat=True)))


def delivery_send(*, delivery_id: int, final_attempt: bool, now: datetime, reclaim: bool = False) -> Delivery | None:
    """Send one delivery (claimed pending/retrying → sending); record the outcome on its row.

    Success → sent. ``TransientDeliveryError`` → retrying and re-raised (the task retries), or
    failed on the ``final_attempt``. Permanent ``DeliveryError`` → failed, and the channel is
    marked failing. Returns None when there was nothing to claim (sent already: idempotent).
    ``reclaim`` also takes a row left ``sending`` by a worker that died mid-send (the broker
    redelivers the unacknowledged task), once it is older than ``NOTIFY_STUCK_SECONDS``. Alarms
    are never touched here.
    """
    delivery = _claim(delivery_id, reclaim, now)
    if delivery is None:
        return None
    started = time.monotonic()
    try:
        notifier = notifier_class(delivery.channel.kind)(delivery.channel)
        notifier.send(message_build(delivery, now))
    except DeliveryError as exc:
        failed = exc.permanent or final_attempt
        delivery.status = Delivery.Status.FAILED if failed else Delivery.Status.RETRYING
        delivery.error, delivery.duration_ms = exc.message[:2000], int((time.monotonic() - started) * 1000)
        delivery.save(update_fields=["status", "error", "duration_ms"])
        logger.warning("delivery %s to channel %s: %s", delivery.pk, delivery.channel_id, exc.message[:200])
        if exc.permanent:
            channel_mark_failing(channel=delivery.channel, error=exc.message, now=now)
        elif not final_attempt:
            raise TransientDeliveryError(exc.message) from None
        return delivery
    delivery.status, delivery.sent_at, delivery.error = Delivery.Status.SENT, now, ""
    delivery.duration_ms = int((time.monotonic() - started) * 1000)
    delivery.save(update_fields=["status", "sent_at", "error", "duration_ms"])
    return delivery


def channel_mark_failing(*, channel: NotificationChannel, error: str, now: datetime) -> bool:
    """Mark a channel failing (once) and tell the plant's admins by e-mail (with the error) and the
    plant's dashboard (without it: errors are for admins).

    Idempotent: a channel already failing is left alone and nobody is told twice. Saving the
    channel again through the API or admin puts it back to OK.
    """
    claimed = NotificationChannel.objects.filter(pk=channel.pk, status=NotificationChannel.Status.OK).update(
        status=NotificationChannel.Status.FAILING, last_error=error[:2000], failed_at=now
    )
    if not claimed:
        return False
    title = f"Notification channel '{channel.name}' is failing"
    body = f"Deliveries to '{channel.name}' ({channel.kind}) fail permanently: {error[:500]}\nFix its settings."
    # The dashboard toast reaches every member of the plant: it says where to look, not the error.
    toast = f"Deliveries to '{channel.name}' ({channel.kind}) fail permanently. A plant admin sees why on the channel."
    admins = User.objects.filter(
        groups__plant_role__plant_id=channel.plant_id, groups__plant_role__role=Role.ADMIN, is_active=True
    ).exclude(email="")
    emails = sorted(set(admins.values_list("email", flat=True)))

    def tell():
        if emails and channel.kind != "email":
            send_mail(title, body, None, emails, fail_silently=True)
        event = {"kind": "notification", "severity": "warning", "title": title, "body": toast, "alarm_id": None}
        publish(plant_id=channel.plant_id, event=event)

    transaction.on_commit(tell)
    return True
