"""Devices name what they make with their telemetry (CONTRACT.md: optional "product" and "order"),
here over HTTP (the lean route a device posts to) and the device WebSocket's shared service."""

import json
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from conftest import assert_status
from devices.models import Device, TelemetryReading
from devices.tests.factories import make_device, make_line, make_token
from production.models import Order, Product, Run, Source
from production.services.runs import run_end
from production.tests.factories import make_order, make_product

pytestmark = pytest.mark.django_db


@pytest.fixture
def machine(plant_a):
    return make_device(make_line(plant_a, "Moulding"), "moulder-01", ideal_cycle_time=Decimal("10"))


@pytest.fixture
def token(machine):
    return make_token(machine)[1]


@pytest.fixture
def product_a(plant_a, machine):
    return make_product(plant_a, "A-100", machines=[(machine, 20)])


def post(token: str, *messages: dict):
    body = json.dumps({"messages": list(messages)} if len(messages) > 1 else messages[0])
    return Client().post(
        "/api/v1/telemetry/", body, content_type="application/json", HTTP_AUTHORIZATION=f"Device {token}"
    )


def iso(ts) -> str:
    return ts.isoformat().replace("+00:00", "Z")


def runs(machine) -> list[tuple]:
    rows = Run.objects.filter(device=machine).order_by("start")
    return [(r.product.code if r.product else None, r.order.number if r.order else None, r.start, r.end) for r in rows]


def test_starts_a_run_at_the_message_ts_when_a_device_names_a_product(machine, token, product_a):
    t0 = timezone.now().replace(microsecond=0) - timedelta(minutes=10)
    assert_status(
        post(token, {"ts": iso(t0), "state": "running", "values": {"count_total": 0}, "product": "A-100"}), 202
    )
    run = Run.objects.get(device=machine)
    assert (run.product, run.order, run.start, run.end, run.source) == (product_a, None, t0, None, Source.DEVICE)
    assert run.ideal_cycle_time == Decimal("20")
    assert TelemetryReading.objects.filter(device=machine).count() == 1


def test_switches_runs_in_ts_order_within_one_batch_and_creates_an_order_it_does_not_know(plant_a, machine, token):
    a = make_product(plant_a, "A-100")
    b = make_product(plant_a, "B-200")
    po1 = make_order(plant_a, a, "PO-1")
    t = timezone.now().replace(microsecond=0) - timedelta(minutes=30)
    response = post(
        token,
        {"ts": iso(t + timedelta(minutes=20)), "values": {"count_total": 20}, "order": ""},  # nothing runs
        {"ts": iso(t), "values": {"count_total": 0}, "order": "PO-1"},  # product from the order
        {"ts": iso(t + timedelta(minutes=1)), "values": {"count_total": 1}, "order": "PO-1"},  # repeats: no change
        {"ts": iso(t + timedelta(minutes=10)), "values": {"count_total": 10}, "order": "PO-2", "product": "B-200"},
    )
    assert_status(response, 202)
    assert runs(machine) == [
        ("A-100", "PO-1", t, t + timedelta(minutes=10)),
        ("B-200", "PO-2", t + timedelta(minutes=10), t + timedelta(minutes=20)),
    ]
    po2 = Order.objects.get(plant=plant_a, number="PO-2")
    assert (po2.product, po2.quantity, po2.source) == (b, None, Source.DEVICE)
    po1.refresh_from_db()
    assert po1.status == Order.Status.IN_PROGRESS


def test_creates_an_unknown_product_and_keeps_the_readings(plant_a, machine, token):
    """A code the plant does not know is not a reason to refuse a device's readings (CONTRACT.md:
    devices are flashed once): the product is created for an admin to complete, and until it has a
    cycle time OEE weighs its pieces with the machine's own."""
    t0 = timezone.now().replace(microsecond=0) - timedelta(minutes=5)
    assert_status(post(token, {"ts": iso(t0), "values": {"temperature": 70.5}, "product": "X-9/NEW"}), 202)
    product = Product.objects.get(plant=plant_a, code="X-9/NEW")
    assert product.source == Source.DEVICE and not product.cycle_times.exists()
    run = Run.objects.get(device=machine)
    assert (run.product, run.ideal_cycle_time) == (product, None)
    assert TelemetryReading.objects.filter(device=machine).count() == 1


def test_a_repeated_product_costs_one_query_per_batch_and_starts_nothing(machine, token, product_a):
    now = timezone.now().replace(microsecond=0)
    assert_status(post(token, {"ts": iso(now - timedelta(minutes=9)), "values": {"v": 1.0}, "product": "A-100"}), 202)

    def queries(with_product: bool, minutes: int) -> int:
        Device.objects.filter(pk=machine.pk).update(last_seen_at=now - timedelta(hours=1))  # same writes each time
        messages = [
            {"ts": iso(now - timedelta(minutes=minutes, seconds=s)), "values": {"v": float(s)}} for s in range(50)
        ]
        if with_product:
            for message in messages:
                message["product"] = "A-100"
        with CaptureQueriesContext(connection) as captured:
            assert_status(post(token, *messages), 202)
        return len(captured)

    assert queries(True, 5) == queries(False, 4) + 1
    assert len(runs(machine)) == 1


def test_an_operator_may_end_a_run_while_the_device_keeps_repeating_its_product(machine, token, product_a):
    now = timezone.now().replace(microsecond=0)
    assert_status(post(token, {"ts": iso(now - timedelta(minutes=9)), "values": {"v": 1.0}, "product": "A-100"}), 202)
    run_end(run=Run.objects.get(device=machine), at=now - timedelta(minutes=8))
    assert_status(post(token, {"ts": iso(now - timedelta(minutes=7)), "values": {"v": 2.0}, "product": "A-100"}), 202)
    assert runs(machine) == [("A-100", None, now - timedelta(minutes=9), now - timedelta(minutes=8))]
    assert_status(post(token, {"ts": iso(now - timedelta(minutes=6)), "values": {"v": 3.0}, "product": "B"}), 202)
    assert [r[0] for r in runs(machine)] == ["A-100", "B"]


def test_a_late_message_does_not_rewrite_runs(machine, token, product_a):
    now = timezone.now().replace(microsecond=0)
    assert_status(post(token, {"ts": iso(now - timedelta(minutes=5)), "values": {"v": 1.0}, "product": "A-100"}), 202)
    assert_status(post(token, {"ts": iso(now - timedelta(minutes=9)), "values": {"v": 0.5}, "product": "OLD"}), 202)
    assert runs(machine) == [("A-100", None, now - timedelta(minutes=5), None)]
    assert TelemetryReading.objects.filter(device=machine).count() == 2


def test_accepts_a_message_that_only_names_the_product(machine, token, product_a):
    assert_status(post(token, {"product": "A-100"}), 202)
    assert runs(machine)[0][0] == "A-100"


@pytest.mark.parametrize(
    ("field", "value"),
    [("product", 42), ("product", "-leading-dash"), ("order", "x" * 65), ("order", "line\nbreak"), ("product", None)],
)
def test_rejects_the_whole_batch_when_a_product_or_order_is_malformed(machine, token, field, value):
    now = timezone.now()
    good = {"ts": iso(now - timedelta(seconds=2)), "values": {"v": 1.0}}
    bad = {"ts": iso(now - timedelta(seconds=1)), "values": {"v": 2.0}, field: value}
    response = post(token, good, bad)
    if value is None:  # null is the same as leaving the field out
        assert_status(response, 202)
        return
    errors = assert_status(response, 400).json()["errors"]
    assert errors == [{"index": 1, "field": field, "message": errors[0]["message"]}]
    assert "letters, digits" in errors[0]["message"]
    assert TelemetryReading.objects.filter(device=machine).count() == 0 and not Run.objects.exists()


def test_rejects_a_message_with_nothing_in_it(token):
    errors = assert_status(post(token, {"ts": iso(timezone.now())}), 400).json()["errors"]
    assert errors[0]["message"] == "The message has no values, state, product or order: nothing to store."
