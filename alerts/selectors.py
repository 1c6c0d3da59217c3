"""Reads of alarms, scoped through the one plant selector (STYLE.md §9), and the alarm KPIs."""

from collections import Counter, defaultdict
from datetime import datetime, timedelta

from django.db.models import Case, Count, Q, QuerySet, Value, When
from django.utils import timezone

from accounts.roles import PERM_VIEW
from accounts.selectors import plant_list_for, scope_to_plants
from alerts.display import SIGNS
from alerts.models import SEVERITY_RANK, Alarm, AlarmEvent, AlertRule
from devices.models import Device, Plant

WINDOW = timedelta(minutes=10)
FLOOD_THRESHOLD = 10  # EEMUA 191: more than 10 alarms in 10 minutes is a flood
CHATTER_TRANSITIONS = 3  # ISA-18.2: 3 or more transitions within a minute is chattering
CHATTER_SPAN = timedelta(minutes=1)
STALE_AFTER = timedelta(hours=24)


def _severity_rank() -> Case:
    """0 critical, 1 warning, 2 info (``SEVERITY_RANK``) as SQL: order by severity, then age."""
    return Case(*(When(severity=s, then=Value(r)) for s, r in SEVERITY_RANK.items()), default=Value(9))


def alarm_list_for(user) -> QuerySet[Alarm]:
    """Alarms of the plants ``user`` sees, with what lists and serializers read.

    ``severity_rank`` (0 critical, 1 warning, 2 info) lets the console sort by severity, then age.
    """
    alarms = Alarm.objects.select_related("rule", "device", "acknowledged_by", "shelved_by").annotate(
        severity_rank=_severity_rank()
    )
    return scope_to_plants(alarms, user)


def _empty_counts() -> dict:
    return {**dict.fromkeys(SEVERITY_RANK, 0), "unacknowledged": 0, "shelved": 0, "total": 0}


def _count_into(counts: dict, row: dict) -> None:
    counts[row["severity"]] += row["n"]
    counts["total"] += row["n"]
    counts["shelved"] += row["shelved"]
    if row["state"] in (Alarm.State.ACTIVE_UNACK, Alarm.State.CLEARED_UNACK):
        counts["unacknowledged"] += row["n"]


def alarm_counts_for(user, plant_ids: list[int] | None = None, *, per_device: bool = False) -> dict[int, dict]:
    """Open alarms per visible plant: ``{plant_id: {"critical": n, ..., "unacknowledged": n, "shelved": n}}``.

    With ``per_device`` each plant also gets ``devices``: the same counts per device id that has
    open alarms (the overview tiles). Read-only, one query.
    """
    counts: dict[int, dict] = {}
    alarms = scope_to_plants(Alarm.objects.filter(active_key__isnull=False), user)
    if plant_ids is not None:
        alarms = alarms.filter(plant_id__in=plant_ids)
    now = timezone.now()
    fields = ["plant_id", "severity", "state"] + (["device_id"] if per_device else [])
    rows = alarms.values(*fields).annotate(n=Count("pk"), shelved=Count("pk", filter=Q(shelved_until__gt=now)))
    for row in rows.order_by():
        plant = counts.setdefault(row["plant_id"], {**_empty_counts(), **({"devices": {}} if per_device else {})})
        _count_into(plant, row)
        if per_device:
            _count_into(plant["devices"].setdefault(row["device_id"], _empty_counts()), row)
    return counts


def plant_get_for(user, plant_id: int, perm: str = PERM_VIEW) -> Plant | None:
    """The plant if ``user`` holds ``perm`` on it, else None (the caller answers 404)."""
    return plant_list_for(user, perm).filter(pk=plant_id).first()


def _chattering(transitions: list[datetime]) -> bool:
    transitions.sort()
    first = 0
    for last in range(len(transitions)):
        while transitions[last] - transitions[first] > CHATTER_SPAN:
            first += 1
        if last - first + 1 >= CHATTER_TRANSITIONS:
            return True
    return False


def alarm_kpis(*, plant: Plant, start: datetime, end: datetime, now: datetime) -> dict:
    """Alarm-system performance of one plant over [start, end) per ISA-18.2 / EEMUA 191.

    Counts annunciations (``raised`` and ``returned`` events): the average and peak per
    10-minute window, the share of windows in flood (> 10), chattering alarms (≥ 3 transitions
    within a minute), stale alarms (still active > 24 h at ``min(end, now)``), the top 10 bad
    actors (rule, device), the priority distribution and the mean time to acknowledge.
    """
    events = AlarmEvent.objects.filter(plant=plant, at__gte=start, at__lt=end)
    annunciations = list(
        events.filter(kind__in=AlarmEvent.ANNUNCIATIONS).values_list(
            "at", "alarm_id", "alarm__rule_id", "alarm__rule__name", "alarm__device_id", "alarm__device__uid",
            "alarm__severity",
        )
    )  # fmt: skip
    windows = max(1, -(-int((end - start).total_seconds()) // int(WINDOW.total_seconds())))
    per_window = Counter(int((at - start) / WINDOW) for at, *_ in annunciations)
    series = [
        {"start": start + WINDOW * index, "count": per_window.get(index, 0)} for index in range(min(windows, 5000))
    ]
    flood_windows = sum(1 for count in per_window.values() if count > FLOOD_THRESHOLD)

    chatter_pairs = defaultdict(list)
    moves = events.filter(kind__in=(*AlarmEvent.ANNUNCIATIONS, AlarmEvent.Kind.CLEARED))
    for at, rule_id, device_id in moves.values_list("at", "alarm__rule_id", "alarm__device_id"):
        chatter_pairs[(rule_id, device_id)].append(at)
    chattering = sorted(
        ({"rule_id": r, "device_id": d} for (r, d), stamps in chatter_pairs.items() if _chattering(stamps)),
        key=lambda row: (row["rule_id"], row["device_id"]),
    )

    actors = Counter((rule_id, rule, device_id, uid) for _at, _a, rule_id, rule, device_id, uid, _s in annunciations)
    top = [
        {"rule_id": rule_id, "rule": rule, "device_id": device_id, "device": uid, "count": count}
        for (rule_id, rule, device_id, uid), count in sorted(
            actors.items(), key=lambda kv: (-kv[1], kv[0][0], kv[0][2])
        )[:10]
    ]
    priorities = Counter(severity for *_, severity in annunciations)

    at_time = min(end, now)
    stale = Alarm.objects.filter(
        plant=plant, state__in=Alarm.ACTIVE_STATES, raised_at__lte=at_time - STALE_AFTER
    ).count()
    acked = Alarm.objects.filter(plant=plant, acknowledged_at__gte=start, acknowledged_at__lt=end)
    delays = [(ack - raised).total_seconds() for raised, ack in acked.values_list("raised_at", "acknowledged_at")]
    total = len(annunciations)
    return {
        "plant": plant.pk,
        "start": start,
        "end": end,
        "total_alarms": total,
        "alarms_per_10min_avg": round(total / windows, 2),
        "alarms_per_10min_peak": max(per_window.values(), default=0),
        "flood_windows": flood_windows,
        "flood_percent": round(100 * flood_windows / windows, 2),
        "chattering_alarms": len(chattering),
        "chattering": chattering,
        "stale_alarms": stale,
        "top_bad_actors": top,
        "priority_distribution": {s: priorities.get(s, 0) for s in sorted(SEVERITY_RANK, key=SEVERITY_RANK.get)},
        "mean_time_to_acknowledge_seconds": round(sum(delays) / len(delays), 1) if delays else None,
        "acknowledged": len(delays),
        "series": series,
    }


# Conditions whose thresholds are levels of the metric (drawn on its chart); a rate's threshold is
# a change per minute, a state or no-data rule has none. Signs as in alarm messages and e-mails.
_LEVEL_CONDITIONS = SIGNS


def device_open_alarms(device: Device) -> list[Alarm]:
    """The open alarms of ``device`` (already scoped by the caller), critical first, then oldest.

    Each carries ``severity_rank``; read-only, one query.
    """
    alarms = Alarm.objects.filter(device=device, active_key__isnull=False).select_related("rule")
    return list(alarms.annotate(severity_rank=_severity_rank()).order_by("severity_rank", "raised_at", "pk"))


def device_thresholds(device: Device) -> dict[str, list[dict]]:
    """Thresholds of the enabled level rules that apply to ``device`` (already scoped), by metric.

    Each: ``{"value", "op", "rule", "severity"}``; an ``outside`` band gives its two bounds (``<``
    low, ``>`` high). Scope as in evaluation (``AlertRule.applies_to``). Read-only, two queries.
    """
    group_ids = set(device.groups.values_list("pk", flat=True))
    rules = AlertRule.objects.filter(plant_id=device.plant_id, enabled=True).exclude(metric="")
    rules = rules.filter(condition__in=[*_LEVEL_CONDITIONS, AlertRule.Condition.OUTSIDE]).order_by("metric", "name")
    thresholds: dict[str, list[dict]] = {}
    for rule in rules:
        if not rule.applies_to(device, group_ids):
            continue
        if rule.condition == AlertRule.Condition.OUTSIDE:
            bounds = [("<", rule.threshold), (">", rule.threshold_high)]
        else:
            bounds = [(_LEVEL_CONDITIONS[rule.condition], rule.threshold)]
        for op, value in bounds:
            if value is not None:
                entry = {"value": value, "op": op, "rule": rule.name, "severity": rule.severity}
                thresholds.setdefault(rule.metric, []).append(entry)
    return thresholds
