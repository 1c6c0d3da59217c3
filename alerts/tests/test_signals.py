"""The ingest hook only enqueues: one evaluation task per committed batch, nothing evaluated inline."""

import pytest
from celery.signals import before_task_publish

from alerts.models import Alarm, RuleState
from alerts.tests.factories import at, make_rule
from devices.services.ingest import IngestItem, telemetry_store
from devices.services.telemetry_payload import Message
from devices.tests.factories import make_device

pytestmark = pytest.mark.django_db


@pytest.fixture
def published(settings):
    """Tasks published to the broker (Celery's own signal), with eager mode off: queueing is under test."""
    settings.CELERY_TASK_ALWAYS_EAGER = False
    seen = []

    def record(sender=None, body=None, **kwargs):
        seen.append((sender, list(body[0])))  # protocol 2: body = (args, kwargs, embed)

    before_task_publish.connect(record, weak=False)
    yield seen
    before_task_publish.disconnect(record)


def test_enqueues_one_task_per_batch_and_evaluates_nothing_inline(
    django_capture_on_commit_callbacks, published, plant_a, line_a, press
):
    make_rule(plant_a)
    devices = [press, make_device(line_a, "press-02")]
    items = [
        IngestItem(device=d, messages=[Message(ts=at(n), values={"temperature": 99.0}, state=None) for n in range(100)])
        for d in devices
    ]
    with django_capture_on_commit_callbacks(execute=True):
        telemetry_store(items, received_at=at(200))
    tasks = [(name, args) for name, args in published if name == "alerts.tasks.evaluate_rules"]
    assert tasks == [
        (
            "alerts.tasks.evaluate_rules",
            [sorted(d.pk for d in devices), at(0).isoformat(), at(99).isoformat(), ["temperature"]],
        )
    ]
    assert not Alarm.objects.exists()
    assert not RuleState.objects.exists()
