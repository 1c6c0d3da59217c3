"""Scheduled OEE reports: stored once per period, revised on late telemetry, e-mailed to a real SMTP server."""

import csv
import io
from decimal import Decimal
from email import message_from_bytes

import pytest

from accounts.roles import Role
from analytics.models import OEEReport, ReportSubscription
from analytics.tasks import run_oee_reports
from analytics.tests.factories import at, counts, make_shift, recent_day, store
from devices.tests.factories import make_device, make_line, make_user

pytestmark = pytest.mark.django_db
TZ = "Europe/Berlin"


@pytest.fixture
def shop(plant_a, settings):
    settings.OEE_LATE_DATA_DAYS = 3
    plant_a.time_zone = TZ
    plant_a.save()
    make_shift(plant_a, start="06:00", end="14:00", breaks=[("10:00", "10:30")])
    day = recent_day(TZ, 2)
    device = make_device(make_line(plant_a), "press-report", ideal_cycle_time=Decimal("1"))
    store(
        device,
        [
            (at(day, "06:00", TZ), "running", counts(0, 0)),
            (at(day, "12:00", TZ), "down", None),
            (at(day, "12:45", TZ), "running", counts(18000, 17500)),
            (at(day, "14:00", TZ), "idle", counts(20000, 19400)),
        ],
    )
    manager = make_user("manager", plant=plant_a, role=Role.VIEWER, email="manager@example.com")
    ReportSubscription.objects.create(user=manager, plant=plant_a, kinds=["shift"])
    outsider = make_user("gone", email="gone@example.com")
    ReportSubscription.objects.create(user=outsider, plant=plant_a, kinds=["shift"])  # no role: gets nothing
    return device, day


def _run(capture):
    with capture(execute=True):
        run_oee_reports.delay()


def _shift_report(plant, day):
    return OEEReport.objects.get(plant=plant, kind="shift", period_start=at(day, "06:00", TZ))


def _parts(envelope):
    message = message_from_bytes(envelope.content)
    by_type = {}
    for part in message.walk():
        by_type.setdefault(part.get_content_type(), []).append(part)
    return message, by_type


def test_report_is_stored_once_and_emailed_with_a_parseable_csv(
    plant_a, shop, smtp_server, django_capture_on_commit_callbacks
):
    device, day = shop
    _run(django_capture_on_commit_callbacks)
    reports = OEEReport.objects.count()
    report = _shift_report(plant_a, day)
    assert (report.status, report.revision, report.emailed_revision) == ("done", 1, 1)
    # planned 7.5 h, run 6.75 h: A 90 %; P 20,000 / 24,300 s; Q 19,400 / 20,000
    assert report.data["total"]["availability"] == 90.0
    assert report.data["total"]["performance"] == 82.30
    assert report.data["total"]["oee"] == 71.85

    _run(django_capture_on_commit_callbacks)  # the beat fires again: nothing new
    assert OEEReport.objects.count() == reports
    shift_mails = [e for e in smtp_server.messages if "shift report" in message_from_bytes(e.content)["Subject"]]
    assert len(shift_mails) == OEEReport.objects.filter(kind="shift").count()
    assert all(e.rcpt_tos == ["manager@example.com"] for e in smtp_server.messages)

    mine = next(e for e in shift_mails if report.label in message_from_bytes(e.content)["Subject"])
    message, parts = _parts(mine)
    assert "revised" not in message["Subject"]
    html = parts["text/html"][0].get_payload(decode=True).decode()
    assert "71.85 %" in html and 'src="cid:trend"' in html
    assert parts["image/png"][0].get_payload(decode=True).startswith(b"\x89PNG")
    rows = list(csv.DictReader(io.StringIO(parts["text/csv"][0].get_payload(decode=True).decode())))
    assert [r["device"] for r in rows] == ["press-report", "TOTAL"]
    assert rows[1]["oee"] == "71.85" and rows[0]["total_count"] == "20000"


def test_late_telemetry_revises_the_report_and_sends_it_again(
    plant_a, shop, smtp_server, django_capture_on_commit_callbacks
):
    device, day = shop
    _run(django_capture_on_commit_callbacks)
    sent = len(smtp_server.messages)
    # Messages buffered by a gateway arrive after the report ran: a 10-minute stop at 13:00.
    store(device, [(at(day, "13:00", TZ), "down", None), (at(day, "13:10", TZ), "running", None)])
    _run(django_capture_on_commit_callbacks)
    report = _shift_report(plant_a, day)
    assert report.revision == 2 and report.revised and report.emailed_revision == 2
    assert report.data["total"]["run_seconds"] == 6.75 * 3600 - 600
    assert len(smtp_server.messages) == sent + 1
    assert "(revised)" in message_from_bytes(smtp_server.messages[-1].content)["Subject"]
    _run(django_capture_on_commit_callbacks)
    assert _shift_report(plant_a, day).revision == 2 and len(smtp_server.messages) == sent + 1


def test_smtp_down_gives_the_claim_back_and_a_later_run_sends_once(
    plant_a, shop, smtp_server, settings, monkeypatch, django_capture_on_commit_callbacks
):
    from analytics.exceptions import TransientReportError
    from analytics.reports import report_send
    from analytics.tasks import send_oee_report

    device, day = shop
    real_port = settings.EMAIL_PORT
    monkeypatch.setattr(send_oee_report, "max_retries", 0)  # the first try is the last
    settings.EMAIL_PORT = 1  # nothing listens there: connection refused
    _run(django_capture_on_commit_callbacks)  # the send task fails on its last (only) try
    report = _shift_report(plant_a, day)
    assert report.revision == 1 and report.emailed_revision == 0
    assert report.error.startswith("e-mail failed")
    with pytest.raises(TransientReportError):
        report_send(report_id=report.pk, revision=1)
    settings.EMAIL_PORT = real_port
    assert report_send(report_id=report.pk, revision=1) is True
    assert report_send(report_id=report.pk, revision=1) is False  # already sent: nothing twice
    assert len(smtp_server.messages) == 1
    assert _shift_report(plant_a, day).error == ""


def test_a_send_abandoned_by_a_dead_worker_goes_out_on_the_next_run_with_the_same_message_id(
    plant_a, shop, smtp_server, settings, django_capture_on_commit_callbacks
):
    from datetime import timedelta

    from django.utils import timezone

    from analytics.reports import SEND_CLAIM_TIMEOUT

    device, day = shop
    _run(django_capture_on_commit_callbacks)
    report = _shift_report(plant_a, day)
    first = next(m for m in smtp_server.messages if report.label in message_from_bytes(m.content)["Subject"])
    sent = len(smtp_server.messages)
    # What a worker killed between its claim and the SMTP server's answer leaves behind.
    OEEReport.objects.filter(pk=report.pk).update(email_claimed_at=timezone.now() - SEND_CLAIM_TIMEOUT / 2)
    _run(django_capture_on_commit_callbacks)
    assert len(smtp_server.messages) == sent  # a send under way is left alone
    OEEReport.objects.filter(pk=report.pk).update(email_claimed_at=timezone.now() - SEND_CLAIM_TIMEOUT - timedelta(1))
    _run(django_capture_on_commit_callbacks)
    assert len(smtp_server.messages) == sent + 1
    again = message_from_bytes(smtp_server.messages[-1].content)
    message_id = message_from_bytes(first.content)["Message-ID"]
    assert again["Message-ID"] == message_id and message_id.startswith(f"<oee-report-{report.pk}-r1@")
    report.refresh_from_db()
    assert (report.emailed_revision, report.email_claimed_at) == (1, None)
    _run(django_capture_on_commit_callbacks)
    assert len(smtp_server.messages) == sent + 1
