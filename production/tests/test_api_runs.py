"""``/api/v1/runs/``: operators (or an ERP's API key) start and end runs of orders and products."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.roles import Role
from conftest import assert_status
from devices.tests.factories import make_device, make_line
from production.models import Order, Run, Source
from production.services.runs import run_start
from production.tests.factories import make_order, make_product
from production.tests.test_api_products_orders import erp_key

pytestmark = pytest.mark.django_db


@pytest.fixture
def machine(plant_a):
    return make_device(make_line(plant_a, "Moulding"), "moulder-01", ideal_cycle_time=Decimal("10"))


@pytest.fixture
def product(plant_a, machine):
    return make_product(plant_a, "A-100", machines=[(machine, 20)], changeover_target=Decimal("900"))


@pytest.fixture
def order(plant_a, product):
    return make_order(plant_a, product, "PO-1", quantity=500)


def errors(response) -> dict:
    return assert_status(response, 400).json()["errors"]


@pytest.mark.parametrize(
    ("who", "status"), [("viewer", 403), ("operator", 201), ("plant_admin", 201), ("superuser", 201)]
)
def test_starting_a_run_needs_the_operator_role(request, client_for, machine, order, who, status):
    response = client_for(request.getfixturevalue(who)).post("/api/v1/runs/", {"device": machine.pk, "order": order.pk})
    assert_status(response, status)


def test_an_outsider_cannot_name_the_machine(outsider, client_for, machine, order):
    response = client_for(outsider).post("/api/v1/runs/", {"device": machine.pk, "order": order.pk})
    assert "device" in errors(response)
    assert not Run.objects.exists()


def test_an_operator_starts_an_order_and_the_next_one_ends_it(operator, client_for, plant_a, machine, order, product):
    client = client_for(operator)
    first = assert_status(client.post("/api/v1/runs/", {"device": machine.pk, "order": order.pk}), 201).json()
    assert (first["product"], first["order_number"], first["ideal_cycle_time"], first["changeover_target"]) == (
        product.pk, "PO-1", "20.000000000", "900.000",
    )  # fmt: skip
    assert (first["source"], first["started_by"], first["end"]) == (Source.OPERATOR, operator.pk, None)
    order.refresh_from_db()
    assert order.status == Order.Status.IN_PROGRESS

    b = make_product(plant_a, "B-200")
    second = assert_status(client.post("/api/v1/runs/", {"device": machine.pk, "product": b.pk}), 201).json()
    assert Run.objects.get(pk=first["id"]).end.isoformat().replace("+00:00", "Z") == second["start"]
    ended = assert_status(client.post(f"/api/v1/runs/{second['id']}/end/", {}), 200).json()
    assert ended["end"] is not None and ended["ended_by"] == operator.pk


def test_ending_with_complete_marks_the_order_done(operator, client_for, machine, order):
    run = run_start(device=machine, order=order)
    assert_status(client_for(operator).post(f"/api/v1/runs/{run.pk}/end/", {"complete": True}, format="json"), 200)
    order.refresh_from_db()
    assert order.status == Order.Status.DONE


def test_an_erp_starts_a_run_at_a_past_time_with_an_api_key(plant_a, machine, order):
    start = (timezone.now() - timedelta(hours=1)).replace(microsecond=0)
    body = {"device": machine.pk, "order": order.pk, "start": start.isoformat()}
    created = assert_status(erp_key(plant_a, Role.OPERATOR).post("/api/v1/runs/", body, format="json"), 201).json()
    assert created["source"] == Source.API
    assert Run.objects.get(pk=created["id"]).start == start
    assert_status(erp_key(plant_a, Role.VIEWER).post("/api/v1/runs/", body, format="json"), 403)


@pytest.mark.parametrize(("who", "status"), [("outsider", 404), ("viewer", 403), ("operator", 200)])
def test_ending_a_run_needs_the_operator_role(request, client_for, machine, order, who, status):
    run = run_start(device=machine, order=order)
    assert_status(client_for(request.getfixturevalue(who)).post(f"/api/v1/runs/{run.pk}/end/", {}), status)


def test_lists_runs_of_the_users_plants_newest_first(
    plant_b, viewer, client_for, machine, order, product, django_assert_max_num_queries
):
    now = timezone.now()
    run_start(device=machine, order=order, at=now - timedelta(hours=2))
    run_start(device=machine, product=product, at=now - timedelta(hours=1))
    foreign = make_device(make_line(plant_b), "weld-01")
    run_start(device=foreign, product=make_product(plant_b, "F-1"))
    client = client_for(viewer)
    with django_assert_max_num_queries(6):
        body = assert_status(client.get("/api/v1/runs/", {"device": machine.pk}), 200).json()
    assert [(r["order_number"], r["end"] is None) for r in body["results"]] == [(None, True), ("PO-1", False)]
    everything = assert_status(client.get("/api/v1/runs/"), 200).json()
    assert {r["device"] for r in everything["results"]} == {machine.pk}
    open_only = assert_status(client.get("/api/v1/runs/", {"end__isnull": "true"}), 200).json()
    assert len(open_only["results"]) == 1


def test_refuses_bad_starts_with_a_400_naming_the_field(
    plant_a, plant_b, operator, client_for, machine, order, product
):
    client = client_for(operator)
    post = lambda body: client.post("/api/v1/runs/", body, format="json")  # noqa: E731
    assert "product" in errors(post({"device": machine.pk}))
    assert "order" in errors(
        post({"device": machine.pk, "order": make_order(plant_b, make_product(plant_b, "F"), "X").pk})
    )
    future = (timezone.now() + timedelta(hours=1)).isoformat()
    assert "start" in errors(post({"device": machine.pk, "product": product.pk, "start": future}))
    elsewhere = make_device(make_line(plant_a, "Other"), "press-02")
    planned = make_order(plant_a, product, "PO-2", machines=[elsewhere])
    assert "other machines" in errors(post({"device": machine.pk, "order": planned.pk}))["order"][0]
    assert "product" in errors(
        post({"device": machine.pk, "order": order.pk, "product": make_product(plant_a, "Z").pk})
    )
    assert_status(post({"device": machine.pk, "product": product.pk}), 201)
    earlier = (timezone.now() - timedelta(hours=1)).isoformat()
    assert "start" in errors(post({"device": machine.pk, "product": product.pk, "start": earlier}))
    assert "start" in errors(post({"device": machine.pk, "product": product.pk, "start": "yesterday"}))
    assert "start" in errors(post({"device": machine.pk, "product": product.pk, "start": "0001-01-01T00:00:00Z"}))
    assert "ideal_cycle_time" in errors(post({"device": machine.pk, "product": product.pk, "ideal_cycle_time": 1}))
    assert Run.objects.count() == 1


def test_refuses_to_end_a_run_twice_or_before_it_started(operator, client_for, machine, order):
    run = run_start(device=machine, order=order)
    client = client_for(operator)
    before = (run.start - timedelta(minutes=1)).isoformat()
    assert "end" in errors(client.post(f"/api/v1/runs/{run.pk}/end/", {"end": before}, format="json"))
    assert_status(client.post(f"/api/v1/runs/{run.pk}/end/", {}), 200)
    assert "already" in errors(client.post(f"/api/v1/runs/{run.pk}/end/", {}))["end"][0]


def test_refuses_a_cancelled_order(operator, client_for, machine, order):
    Order.objects.filter(pk=order.pk).update(status=Order.Status.CANCELLED)
    assert (
        "cancelled"
        in errors(client_for(operator).post("/api/v1/runs/", {"device": machine.pk, "order": order.pk}))["order"][0]
    )


def test_another_plants_run_is_404_for_a_plant_admin(plant_b, plant_admin, client_for):
    foreign = make_device(make_line(plant_b), "weld-01")
    run = run_start(device=foreign, product=make_product(plant_b, "F-1"))
    client = client_for(plant_admin)
    assert_status(client.get(f"/api/v1/runs/{run.pk}/"), 404)
    assert_status(client.post(f"/api/v1/runs/{run.pk}/end/", {}), 404)


def test_a_product_that_ran_cannot_be_deleted(plant_admin, client_for, machine, product):
    run_start(device=machine, product=product)
    response = client_for(plant_admin).delete(f"/api/v1/products/{product.pk}/")
    assert "still in use" in assert_status(response, 409).json()["detail"]
