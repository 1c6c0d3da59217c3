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


def store(device, values: dict, seconds: int = 0, state=None):
    with_hooks = [IngestItem(device=device, messages=[Message(ts=at(seconds), values=values, state=state)])]
    telemetry_store(with_hooks, received_at=at(seconds + 1))


def evaluations(published) -> list[list]:
    return [args for name, args in published if name == "alerts.tasks.evaluate_rules"]


def test_a_batch_that_no_rule_watches_enqueues_nothing(django_capture_on_commit_callbacks, published, plant_a, press):
    make_rule(plant_a, metric="vibration", threshold=5.0)
    with django_capture_on_commit_callbacks(execute=True):
        store(press, {"temperature": 99.0, "power": 3.0})
    assert evaluations(published) == []


def test_a_rule_saved_in_this_process_applies_to_the_next_batch(
    django_capture_on_commit_callbacks, published, plant_a, press
):
    with django_capture_on_commit_callbacks(execute=True):  # each block: one commit and its hooks
        store(press, {"temperature": 99.0})  # remembered: nothing in plant A watches temperature
    rule = make_rule(plant_a, metric="temperature", threshold=80.0)
    with django_capture_on_commit_callbacks(execute=True):
        store(press, {"temperature": 99.0}, seconds=1)
    rule.enabled = False
    rule.save()
    with django_capture_on_commit_callbacks(execute=True):
        store(press, {"temperature": 99.0}, seconds=2)
    assert evaluations(published) == [[[press.pk], at(1).isoformat(), at(1).isoformat(), ["temperature"]]]


def test_only_devices_with_watched_readings_are_evaluated_and_state_rules_watch_every_batch(
    django_capture_on_commit_callbacks, published, plant_a, plant_b, line_a, press
):
    from devices.tests.factories import make_line

    quiet = make_device(line_a, "press-02")
    foreign = make_device(make_line(plant_b, "Paint line"), "paint-01")
    make_rule(plant_a, metric="temperature", threshold=80.0)
    make_rule(plant_b, metric="", condition="state", state="down", threshold=None)
    items = [
        IngestItem(device=press, messages=[Message(ts=at(0), values={"temperature": 99.0}, state=None)]),
        IngestItem(device=quiet, messages=[Message(ts=at(0), values={"power": 1.0}, state=None)]),
        IngestItem(device=foreign, messages=[Message(ts=at(0), values={"power": 1.0}, state=None)]),
    ]
    with django_capture_on_commit_callbacks(execute=True):
        telemetry_store(items, received_at=at(1))
    [[device_ids, *_]] = evaluations(published)
    assert device_ids == sorted([press.pk, foreign.pk])
