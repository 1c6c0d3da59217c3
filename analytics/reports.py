"""Scheduled OEE reports: one row per (kind, plant, period), computed once, revised on late data, e-mailed.

Flow (beat → ``analytics.tasks.run_oee_reports`` every few minutes):
1. ``report_periods_due`` lists the closed shift occurrences, days and weeks of a plant whose end
   lies within ``OEE_LATE_DATA_DAYS`` (so late telemetry is still seen).
2. ``report_run`` upserts the row (unique constraint), **claims** it with a conditional UPDATE
   (pending/done/failed → computing, or a claim older than ``CLAIM_TIMEOUT``), recomputes from
   telemetry and stores the result. Equal data changes nothing; different data (late telemetry)
   bumps ``revision``: a revision above 1 is a revised report.
3. ``report_send`` e-mails each new revision once to the plant's subscribers (HTML with a PNG
   trend, CSV attached). It claims the revision by raising ``emailed_revision`` conditionally.
"""

import csv
import io
import json
import smtplib
from datetime import datetime, timedelta
from email.mime.image import MIMEImage
from urllib.parse import urlsplit

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import Q
from django.template.loader import render_to_string
from django.utils import timezone

from accounts.roles import PERM_VIEW
from accounts.selectors import user_has_plant_perm
from analytics.cache import closed_days, day_inputs
from analytics.calendar import calendar_periods
from analytics.charts import bar_chart_png
from analytics.exceptions import TransientReportError
from analytics.models import OEEReport, ReportSubscription
from analytics.selectors import Target, oee_compute, shift_occurrences
from devices.models import Device, Plant

CLAIM_TIMEOUT = timedelta(minutes=10)
SEND_CLAIM_TIMEOUT = timedelta(minutes=3)  # send_oee_report's hard time limit is 90 s
TREND_GROUP = {OEEReport.Kind.SHIFT: "hour", OEEReport.Kind.DAY: "hour", OEEReport.Kind.WEEK: "day"}
CSV_FIELDS = (
    "planned_seconds",
    "run_seconds",
    "stop_seconds",
    "data_gap_seconds",
    "total_count",
    "good_count",
    "ideal_seconds",
    "availability",
    "performance",
    "quality",
    "oee",
    "teep",
    "mtbf_seconds",
    "mttr_seconds",
)


def report_periods_due(plant: Plant, *, now: datetime) -> list[tuple[str, datetime, datetime, str]]:
    """Closed periods of ``plant`` ending within the late-data window: ``(kind, start, end, label)``."""
    tz = plant.tz
    since = now - timedelta(days=settings.OEE_LATE_DATA_DAYS)
    due = [
        (OEEReport.Kind.SHIFT, o.start, o.end, f"{o.name} {o.day:%Y-%m-%d}")
        for o in shift_occurrences(plant, since - timedelta(days=1), now)
        if since < o.end <= now
    ]
    for kind, group, days in ((OEEReport.Kind.DAY, "day", 1), (OEEReport.Kind.WEEK, "week", 7)):
        for start, end in calendar_periods(since - timedelta(days=days), now, group, tz):
            local = start.astimezone(tz)
            whole = end - start >= timedelta(days=days) - timedelta(hours=1)  # DST days are 23 h
            if whole and since < end <= now and local.hour == 0:
                label = f"Week of {local:%Y-%m-%d}" if kind == OEEReport.Kind.WEEK else f"{local:%Y-%m-%d}"
                due.append((kind, start, end, label))
    return due


def _jsonable(data: dict) -> dict:
    return json.loads(json.dumps(data, cls=DjangoJSONEncoder))


def report_compute(*, plant: Plant, kind: str, start: datetime, end: datetime) -> dict:
    """The stored body of a report: the plant's total, each machine's total and the trend periods."""
    machines = list(Device.objects.filter(plant=plant, kind=Device.Kind.MACHINE).order_by("uid"))
    body = oee_compute(Target(plant, machines, "plant", plant.pk), start, end, TREND_GROUP[kind], per_device=True)
    if kind == OEEReport.Kind.DAY:  # store the closed day per machine, for fast day/week queries later
        days, _, _ = closed_days(start, end, plant.tz)
        day_inputs(plant, machines, days, settings.OEE_MINOR_STOP_SECONDS)
    return _jsonable({"total": body["total"], "devices": body["devices"], "periods": body["periods"]})


def report_run(
    *, plant: Plant, kind: str, start: datetime, end: datetime, label: str, now: datetime
) -> OEEReport | None:
    """Compute and store the report of one closed period; idempotent. Returns it, or None if claimed elsewhere.

    ``revision`` rises only when the figures differ from the stored ones (first run, late data).
    A computation error marks the row ``failed`` (the next beat tick tries again) and re-raises.
    """
    report, _ = OEEReport.objects.get_or_create(
        kind=kind, plant=plant, period_start=start, defaults={"period_end": end, "label": label}
    )
    free = ~Q(status=OEEReport.Status.COMPUTING) | Q(claimed_at__lt=now - CLAIM_TIMEOUT)
    if not OEEReport.objects.filter(free, pk=report.pk).update(status=OEEReport.Status.COMPUTING, claimed_at=now):
        return None
    try:
        data = report_compute(plant=plant, kind=kind, start=start, end=end)
    except Exception as exc:
        OEEReport.objects.filter(pk=report.pk).update(status=OEEReport.Status.FAILED, error=repr(exc)[:2000])
        raise
    changes = {"status": OEEReport.Status.DONE, "error": ""}
    if data != report.data:
        changes.update(data=data, revision=report.revision + 1, computed_at=now)
    OEEReport.objects.filter(pk=report.pk, status=OEEReport.Status.COMPUTING).update(**changes)
    report.refresh_from_db()
    return report


def reports_run_due(*, now: datetime, plant_ids: list[int] | None = None) -> list[tuple[int, int]]:
    """Run every due report (all plants, or ``plant_ids``); return ``(report_id, revision)`` not yet e-mailed
    (for all plants also those whose send a dead worker abandoned)."""
    to_send = []
    plants = Plant.objects.all() if plant_ids is None else Plant.objects.filter(pk__in=plant_ids)
    for plant in plants:
        for kind, start, end, label in report_periods_due(plant, now=now):
            report = report_run(plant=plant, kind=kind, start=start, end=end, label=label, now=now)
            if report is not None and report.revision > report.emailed_revision:
                to_send.append((report.pk, report.revision))
    if plant_ids is None:
        to_send += [pair for pair in reports_send_abandoned(now=now) if pair not in to_send]
    return to_send


def report_csv(report: OEEReport) -> str:
    """One row per machine and a total row: the inputs and the percentages of the report."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["plant", "kind", "period_start", "period_end", "revision", "device", "name", *CSV_FIELDS])
    head = [report.plant.name, report.kind, report.period_start.isoformat(), report.period_end.isoformat()]
    rows = [(d["uid"], d["name"], d) for d in report.data.get("devices", [])]
    rows.append(("TOTAL", "", report.data.get("total", {})))
    for uid, name, figures in rows:
        values = ["" if figures.get(f) is None else figures.get(f) for f in CSV_FIELDS]
        writer.writerow([*head, report.revision, uid, name, *values])
    return out.getvalue()


def report_recipients(report: OEEReport) -> list[str]:
    """E-mail addresses of active subscribers of this kind who can still see the plant."""
    subs = ReportSubscription.objects.filter(plant=report.plant).select_related("user")
    return sorted(
        s.user.email
        for s in subs
        if report.kind in s.kinds
        and s.user.is_active
        and s.user.email
        and user_has_plant_perm(s.user, PERM_VIEW, report.plant)
    )


def report_email(report: OEEReport, recipients: list[str]) -> EmailMultiAlternatives:
    """The e-mail of a report: text and HTML (tables, inline PNG trend) with the CSV attached."""
    revised = " (revised)" if report.revised else ""
    subject = f"OEE {report.kind} report {report.plant.name}: {report.label}{revised}"
    context = {"report": report, "total": report.data.get("total", {}), "devices": report.data.get("devices", [])}
    context["site_url"] = settings.SITE_URL
    mail = EmailMultiAlternatives(
        subject, render_to_string("analytics/email/report.txt", context), settings.DEFAULT_FROM_EMAIL, recipients
    )
    mail.mixed_subtype = "related"
    mail.attach_alternative(render_to_string("analytics/email/report.html", context), "text/html")
    trend = MIMEImage(bar_chart_png([p.get("oee") for p in report.data.get("periods", [])]), "png")
    trend.add_header("Content-ID", "<trend>")
    trend.add_header("Content-Disposition", "inline", filename="trend.png")
    mail.attach(trend)
    name = f"oee-{report.kind}-{report.plant_id}-{report.period_start:%Y%m%dT%H%M}.csv"
    mail.attach(name, report_csv(report), "text/csv")
    # One Message-ID per revision: a copy sent again after a worker died mid-send is the same message.
    domain = urlsplit(settings.SITE_URL).hostname or "localhost"
    mail.extra_headers["Message-ID"] = f"<oee-report-{report.pk}-r{report.revision}@{domain}>"
    return mail


def report_send(*, report_id: int, revision: int) -> bool:
    """E-mail ``revision`` of a report once. Returns False when already sent (or superseded).

    Claims by raising ``emailed_revision`` conditionally (with ``email_claimed_at``, cleared once
    sent); an SMTP failure gives the claim back and raises ``TransientReportError`` (the task
    retries). A claim older than ``SEND_CLAIM_TIMEOUT`` belonged to a worker that died mid-send:
    it is taken again. The Message-ID names the report and revision, so a copy sent twice that
    way reads as one message. No recipients: nothing is sent, done.
    """
    now = timezone.now()
    mine = Q(emailed_revision__lt=revision) | Q(
        emailed_revision=revision, email_claimed_at__lt=now - SEND_CLAIM_TIMEOUT
    )
    with transaction.atomic():
        claimed = OEEReport.objects.filter(mine, pk=report_id, revision=revision)
        if not claimed.update(emailed_revision=revision, email_claimed_at=now):
            return False
    report = OEEReport.objects.select_related("plant").get(pk=report_id)
    recipients = report_recipients(report)
    if recipients:
        try:
            report_email(report, recipients).send()
        except (smtplib.SMTPException, OSError) as exc:
            OEEReport.objects.filter(pk=report_id, emailed_revision=revision).update(
                emailed_revision=revision - 1, email_claimed_at=None
            )
            raise TransientReportError(f"sending report {report_id}: {exc}") from exc
    OEEReport.objects.filter(pk=report_id, emailed_revision=revision).update(email_claimed_at=None)
    OEEReport.objects.filter(pk=report_id, error__startswith="e-mail failed").update(error="")
    return True


def reports_send_abandoned(*, now: datetime) -> list[tuple[int, int]]:
    """``(report_id, revision)`` whose send was claimed by a worker that died before it finished."""
    stale = OEEReport.objects.filter(email_claimed_at__lt=now - SEND_CLAIM_TIMEOUT)
    return list(stale.values_list("pk", "emailed_revision"))


def report_send_failed(*, report_id: int, error: str) -> None:
    """The last retry failed: keep the reason on the report (shown in the admin)."""
    OEEReport.objects.filter(pk=report_id).update(error=f"e-mail failed: {error}"[:2000])
