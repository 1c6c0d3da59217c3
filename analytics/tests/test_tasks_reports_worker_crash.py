"""A real Celery worker SIGKILLed while it e-mails a scheduled OEE report (issue 15 item 3; skipped
on the embedded default): after a new worker starts and the beat runs, every report is sent, and
the one the dead worker was sending goes out again with the same Message-ID (the SMTP server had
received it but not yet answered "250 OK", so the worker could not know it went out).
"""

import collections
import signal
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.roles import Role
from analytics.models import OEEReport, ReportSubscription
from analytics.reports import SEND_CLAIM_TIMEOUT
from analytics.tasks import run_oee_reports
from analytics.tests.factories import at, counts, make_shift, recent_day, store
from conftest import require_service
from devices.tests.factories import make_device, make_line, make_user
from tests.mail import parsed
from tests.waiting import wait_until
from tests.worker import forget_queued_tasks, start_worker, stop_worker, worker_env

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True), pytest.mark.timeout(240)]
TZ = "Europe/Berlin"


def shop(plant) -> None:
    """One machine with one shift a day and a subscriber to the plant's shift reports."""
    plant.time_zone = TZ
    plant.save()
    make_shift(plant, start="06:00", end="14:00", breaks=[("10:00", "10:30")])
    day = recent_day(TZ, 2)
    device = make_device(make_line(plant), "press-report", ideal_cycle_time=Decimal("1"))
    store(device, [
        (at(day, "06:00", TZ), "running", counts(0, 0)),
        (at(day, "12:00", TZ), "down", None),
        (at(day, "14:00", TZ), "idle", counts(20000, 19400)),
    ])  # fmt: skip
    manager = make_user("manager", plant=plant, role=Role.VIEWER, email="manager@example.com")
    ReportSubscription.objects.create(user=manager, plant=plant, kinds=["shift"])


def test_every_report_is_sent_and_the_interrupted_one_again_with_its_message_id_when_the_worker_dies(
    plant_a, smtp_server, settings
):
    require_service("CELERY_BROKER_URL")
    require_service("DATABASE_URL")
    settings.CELERY_TASK_ALWAYS_EAGER = False
    forget_queued_tasks()
    shop(plant_a)
    smtp_server.hold = 1  # the first report reaches the SMTP server, and the worker dies before the answer
    env = worker_env(smtp_port=smtp_server.port, OEE_LATE_DATA_DAYS=str(settings.OEE_LATE_DATA_DAYS))
    # Up (answering ping) before the work is queued: see alerts/tests/test_tasks_worker_crash.py.
    first = start_worker(env, purge=False, name="report-crash-first@localhost")
    try:
        run_oee_reports.delay()  # the beat's tick: the worker computes the reports and e-mails them
        wait_until(lambda: smtp_server.messages, timeout=40, what="the first report at the SMTP server")
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    finally:
        stop_worker(first)
    smtp_server.release.set()
    interrupted_id = parsed(smtp_server.messages[0])["Message-ID"]
    interrupted = OEEReport.objects.get(pk=int(interrupted_id.split("-")[2]))
    assert interrupted.email_claimed_at is not None  # claimed, never confirmed: left by the dead worker
    # What the beat sees once SEND_CLAIM_TIMEOUT has passed (without waiting three minutes).
    OEEReport.objects.filter(pk=interrupted.pk).update(
        email_claimed_at=timezone.now() - SEND_CLAIM_TIMEOUT - timedelta(seconds=1)
    )

    shift_reports = OEEReport.objects.filter(plant=plant_a, kind="shift")
    second = start_worker(env, purge=False, name="report-crash-second@localhost")
    try:
        run_oee_reports()  # this process plays beat: it finds the abandoned send

        def all_sent():
            rows = list(shift_reports.values_list("revision", "emailed_revision", "email_claimed_at"))
            return rows and all(emailed == revision and claimed is None for revision, emailed, claimed in rows)

        wait_until(all_sent, timeout=40, what="every shift report e-mailed")
    finally:
        stop_worker(second)
        forget_queued_tasks()  # the dead worker's unacknowledged task would come back in a later test

    ids = collections.Counter(parsed(envelope)["Message-ID"] for envelope in smtp_server.messages)
    revisions = shift_reports.values_list("pk", "revision")
    expected = {f"<oee-report-{pk}-r{revision}@factory.test>" for pk, revision in revisions}
    assert set(ids) == expected  # none lost
    # Once each; the interrupted one twice, as one message (same Message-ID).
    assert {message_id: n for message_id, n in ids.items() if n > 1} == {interrupted_id: 2}, ids
    assert all(envelope.rcpt_tos == ["manager@example.com"] for envelope in smtp_server.messages)
