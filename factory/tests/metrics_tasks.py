"""Celery tasks for the metrics tests only: one that succeeds, one that is retried once and then fails."""

from celery import shared_task


@shared_task(name="factory.tests.succeed")
def succeed() -> str:
    return "done"


@shared_task(bind=True, name="factory.tests.flaky", max_retries=1, default_retry_delay=0)
def flaky(self) -> None:
    if self.request.retries < self.max_retries:
        raise self.retry(exc=RuntimeError("try again"), countdown=0)
    raise ValueError("still broken")


@shared_task(name="factory.tests.broken")
def broken() -> None:
    raise ValueError("broken")
