"""``factory.beat.FactoryScheduler`` (CELERY_BEAT_SCHEDULER): what beat does with a schedule row.

A periodic task that no installed app registers is an error and is never sent (django-celery-beat's
scheduler sends it by name, and in the embedded default nothing reads that broker); a periodic task
that fails when run eagerly is an error with its traceback; a schedule that never ran is due at once.
Messages are published on a private in-memory connection and seen through Celery's
``before_task_publish`` signal.
"""

import logging

import pytest
from celery.signals import before_task_publish
from django_celery_beat.models import IntervalSchedule, PeriodicTask
from django_celery_beat.schedulers import DatabaseScheduler
from kombu import Connection

from factory.beat import FactoryScheduler
from factory.celery import app

# Transactional: the scheduler closes stale connections and commits as it does in beat (autocommit),
# which would end a test wrapped in one transaction (MariaDB).
pytestmark = pytest.mark.django_db(transaction=True)


def periodic(name: str, task: str, *, every: int = 10, args: str = "[]") -> PeriodicTask:
    interval, _ = IntervalSchedule.objects.get_or_create(every=every, period=IntervalSchedule.SECONDS)
    return PeriodicTask.objects.create(name=name, task=task, interval=interval, args=args)


@pytest.fixture
def published():
    """Names of the tasks published to a broker while the test runs."""
    names = []

    def record(sender=None, **kwargs):
        names.append(sender)

    before_task_publish.connect(record, weak=False)
    yield names
    before_task_publish.disconnect(record)


@pytest.fixture
def producer():
    """A producer on a private in-memory broker: nothing the test sends reaches a real one."""
    with Connection("memory://") as connection:
        yield connection.Producer()


def beat_messages(caplog) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.name == "factory.beat"]


@pytest.mark.filterwarnings("ignore::celery.exceptions.AlwaysEagerIgnored")  # the stock scheduler's send_task
def test_logs_an_error_and_sends_nothing_when_a_schedule_names_an_unknown_task(caplog, published, producer):
    periodic("Housekeeping", "nowhere.tasks.tidy_up")
    stock = DatabaseScheduler(app=app)
    stock.apply_entry(stock.schedule["Housekeeping"], producer=producer)
    assert published == ["nowhere.tasks.tidy_up"]  # django-celery-beat's scheduler sends it by name

    published.clear()
    ours = FactoryScheduler(app=app)
    with caplog.at_level(logging.ERROR, logger="factory.beat"):
        ours.apply_entry(ours.schedule["Housekeeping"], producer=producer)
    assert published == []
    [message] = beat_messages(caplog)
    assert "'Housekeeping'" in message and "'nowhere.tasks.tidy_up'" in message and "NOT sent" in message
    assert "sync_schedules" in message  # and says what to do


@pytest.mark.parametrize("propagates", [True, False])
def test_logs_a_failing_eager_periodic_task_with_its_traceback(caplog, settings, published, producer, propagates):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.CELERY_TASK_EAGER_PROPAGATES = propagates
    # An operator typed arguments the task cannot parse.
    periodic("Re-evaluate", "alerts.tasks.evaluate_rules", args='[[1], "yesterday", "today"]')
    scheduler = FactoryScheduler(app=app)
    with caplog.at_level(logging.ERROR, logger="factory.beat"):
        scheduler.apply_entry(scheduler.schedule["Re-evaluate"], producer=producer)
    assert published == []  # run here, not sent
    [record] = [record for record in caplog.records if record.name == "factory.beat"]
    assert record.levelno == logging.ERROR
    assert "'Re-evaluate'" in record.getMessage() and "alerts.tasks.evaluate_rules" in record.getMessage()
    logged = caplog.text
    assert "Traceback" in logged and "ValueError" in logged and "yesterday" in logged


def test_an_interval_schedule_that_never_ran_is_due_at_the_first_tick():
    periodic("Daily purge", "devices.tasks.purge_dead_letters", every=86400)
    assert not DatabaseScheduler(app=app).schedule["Daily purge"].is_due().is_due  # would wait a day
    assert FactoryScheduler(app=app).schedule["Daily purge"].is_due().is_due


def test_a_schedule_that_ran_keeps_its_interval():
    task = periodic("Daily purge", "devices.tasks.purge_dead_letters", every=86400)
    scheduler = FactoryScheduler(app=app)
    entry = scheduler.reserve(scheduler.schedule["Daily purge"])  # what beat does when it runs one
    scheduler.sync()
    task.refresh_from_db()
    assert task.last_run_at is not None and task.total_run_count == 1
    assert not entry.is_due().is_due
    assert not FactoryScheduler(app=app).schedule["Daily purge"].is_due().is_due  # after a restart too
