"""Celery's delivery contract holds for every task: acknowledged late, and never handed out twice
by Redis while it still waits (a retry's countdown) or runs (its hard time limit)."""

from django.conf import settings

from factory.beat import installed_schedules
from factory.celery import app


def _our_tasks():
    app.loader.import_default_modules()
    return {name: task for name, task in app.tasks.items() if not name.startswith("celery.")}


def test_every_task_ends_and_retries_within_the_visibility_timeout():
    visibility = settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"]
    tasks = _our_tasks()
    assert {schedule.task for schedule in installed_schedules()} <= set(tasks)
    too_long = {}
    for name, task in tasks.items():
        limit = task.time_limit or settings.CELERY_TASK_TIME_LIMIT
        countdown = 0  # the longest wait before a retry, held unacknowledged by a worker
        if getattr(task, "autoretry_for", ()):
            backoff = getattr(task, "retry_backoff", False)
            countdown = getattr(task, "retry_backoff_max", 600) if backoff else task.default_retry_delay
        if countdown + limit >= visibility:
            too_long[name] = countdown + limit
    assert too_long == {}, f"longer than CELERY_VISIBILITY_TIMEOUT={visibility}: {too_long}"


def test_every_task_is_acknowledged_late():
    assert settings.CELERY_TASK_ACKS_LATE
    assert [name for name, task in _our_tasks().items() if task.acks_late is False] == []


def test_a_delivery_is_swept_only_after_its_attempt_cannot_be_running():
    from alerts.tasks import deliver_notification

    assert deliver_notification.time_limit < settings.NOTIFY_STUCK_SECONDS
