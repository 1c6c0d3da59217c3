"""``/api/v1/products/`` and ``/api/v1/orders/``: plant-scoped, the permission trio, an ERP's API key."""

from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from accounts.roles import Role
from accounts.services import api_key_issue, service_account_create
from conftest import assert_status
from devices.tests.factories import make_device, make_line
from production.models import Order, Product, Run, Source
from production.services.runs import run_start
from production.tests.factories import make_order, make_product

pytestmark = pytest.mark.django_db


@pytest.fixture
def line(plant_a):
    return make_line(plant_a, "Moulding")


@pytest.fixture
def machine(line):
    return make_device(line, "moulder-01", ideal_cycle_time=Decimal("10"))


@pytest.fixture
def product(plant_a, machine):
    return make_product(plant_a, "A-100", name="Housing", machines=[(machine, 20)])


@pytest.fixture
def foreign_product(plant_b):
    return make_product(plant_b, "B-900")


def erp_key(plant, role: str) -> APIClient:
    account = service_account_create(name=f"erp-{role}", plant=plant, role=role)
    _, plain = api_key_issue(account=account, name="prod")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {plain}")
    return client


def test_lists_only_the_products_of_the_users_plants_with_their_cycle_times(
    viewer, client_for, product, foreign_product, machine, django_assert_max_num_queries
):
    client = client_for(viewer)
    with django_assert_max_num_queries(8):
        body = assert_status(client.get("/api/v1/products/"), 200).json()
    assert [p["code"] for p in body["results"]] == ["A-100"]
    assert body["results"][0]["cycle_times"] == [
        {"device": machine.pk, "line": None, "seconds": "20.000", "changeover_target": None}
    ]


@pytest.mark.parametrize(
    ("who", "status"), [("outsider", 404), ("viewer", 403), ("operator", 403), ("plant_admin", 200)]
)
def test_changing_a_product_needs_the_plant_admin_role(request, client_for, product, who, status):
    response = client_for(request.getfixturevalue(who)).patch(f"/api/v1/products/{product.pk}/", {"name": "New"})
    assert_status(response, status)


def test_a_foreign_plants_product_is_404_even_for_its_code(plant_admin, client_for, foreign_product):
    assert_status(client_for(plant_admin).get(f"/api/v1/products/{foreign_product.pk}/"), 404)


def test_creates_a_product_with_cycle_times_per_machine_and_line(plant_a, plant_admin, client_for, machine, line):
    body = {
        "plant": plant_a.pk, "code": "C-1", "name": "Cap", "units_per_cycle": 4, "changeover_target": "900",
        "cycle_times": [
            {"device": machine.pk, "seconds": "8"}, {"line": line.pk, "seconds": "10", "changeover_target": "600"},
        ],
    }  # fmt: skip
    created = assert_status(client_for(plant_admin).post("/api/v1/products/", body, format="json"), 201).json()
    product = Product.objects.get(pk=created["id"])
    assert (product.units_per_cycle, product.source, product.cycle_times.count()) == (4, Source.API, 2)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"code": "A-100"}, "code"),  # taken
        ({"code": "bad code!"}, "code"),
        ({"code": "C-2", "units_per_cycle": 0}, "units_per_cycle"),
        ({"code": "C-2", "cycle_times": [{"seconds": "5"}]}, "cycle_times"),
        ({"code": "C-2", "cycle_times": [{"seconds": "-1", "line": None}]}, "cycle_times"),
        ({"code": "C-2", "ideal_cyle_time": "5"}, "ideal_cyle_time"),
    ],
)
def test_refuses_a_bad_product_with_a_400_naming_the_field(plant_a, plant_admin, client_for, product, body, field):
    response = client_for(plant_admin).post("/api/v1/products/", {"plant": plant_a.pk, **body}, format="json")
    assert field in assert_status(response, 400).json()["errors"]
    assert Product.objects.count() == 1


def test_refuses_a_cycle_time_on_another_plants_machine(plant_a, plant_b, plant_admin, client_for):
    foreign = make_device(make_line(plant_b), "weld-01")
    body = {"plant": plant_a.pk, "code": "C-3", "cycle_times": [{"device": foreign.pk, "seconds": "5"}]}
    assert (
        "cycle_times"
        in assert_status(client_for(plant_admin).post("/api/v1/products/", body, format="json"), 400).json()["errors"]
    )


def test_changing_a_cycle_time_applies_to_the_open_run_only(plant_a, plant_admin, client_for, product, machine):
    run = run_start(device=machine, product=product)
    body = {"cycle_times": [{"device": machine.pk, "seconds": "16"}]}
    assert_status(client_for(plant_admin).patch(f"/api/v1/products/{product.pk}/", body, format="json"), 200)
    run.refresh_from_db()
    assert run.ideal_cycle_time == Decimal("16")


@pytest.mark.parametrize(
    ("who", "status"), [("outsider", 404), ("viewer", 403), ("operator", 201), ("plant_admin", 201)]
)
def test_creating_an_order_needs_the_operator_role(request, plant_a, client_for, product, who, status):
    body = {"plant": plant_a.pk, "number": "PO-1", "product": product.pk, "quantity": 500, "due_date": "2026-12-24"}
    response = client_for(request.getfixturevalue(who)).post("/api/v1/orders/", body, format="json")
    assert_status(response, 400 if who == "outsider" else status) if who == "outsider" else assert_status(
        response, status
    )


def test_an_erp_creates_orders_by_product_code_with_an_api_key(plant_a, product, machine):
    body = {"plant": plant_a.pk, "number": "4711", "product_code": "A-100", "quantity": 500, "machines": [machine.pk]}
    created = assert_status(erp_key(plant_a, Role.OPERATOR).post("/api/v1/orders/", body, format="json"), 201).json()
    assert (created["product"], created["machines"], created["source"], created["status"]) == (
        product.pk, [machine.pk], "api", "planned",
    )  # fmt: skip
    assert_status(erp_key(plant_a, Role.VIEWER).post("/api/v1/orders/", {**body, "number": "4712"}, format="json"), 403)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"number": "PO-9"}, "product"),
        ({"number": "PO-9", "product_code": "A-100"}, "quantity"),
        ({"number": "PO-9", "product_code": "NOPE", "quantity": 1}, "product_code"),
        ({"number": "PO-1", "product_code": "A-100", "quantity": 1}, "number"),  # taken
        ({"number": "PO-9", "product_code": "A-100", "quantity": -1}, "quantity"),
        ({"number": "PO-9", "product_code": "A-100", "quantity": 1, "due_date": "24.12.2026"}, "due_date"),
    ],
)
def test_refuses_a_bad_order_with_a_400_naming_the_field(plant_a, operator, client_for, product, body, field):
    make_order(plant_a, product, "PO-1")
    response = client_for(operator).post("/api/v1/orders/", {"plant": plant_a.pk, **body}, format="json")
    assert field in assert_status(response, 400).json()["errors"]
    assert Order.objects.count() == 1


def test_refuses_an_order_for_another_plants_product(plant_a, operator, client_for, foreign_product):
    body = {"plant": plant_a.pk, "number": "PO-2", "product": foreign_product.pk, "quantity": 1}
    assert (
        "product"
        in assert_status(client_for(operator).post("/api/v1/orders/", body, format="json"), 400).json()["errors"]
    )


def test_lists_orders_of_the_users_plants_filtered_by_status(
    plant_a, plant_b, viewer, client_for, product, foreign_product, django_assert_max_num_queries
):
    make_order(plant_a, product, "PO-1")
    make_order(plant_a, product, "PO-2", status=Order.Status.DONE)
    make_order(plant_b, foreign_product, "PO-3")
    client = client_for(viewer)
    with django_assert_max_num_queries(8):
        body = assert_status(client.get("/api/v1/orders/", {"status": "planned"}), 200).json()
    assert [o["number"] for o in body["results"]] == ["PO-1"]


@pytest.mark.parametrize(("who", "status"), [("viewer", 403), ("operator", 403), ("plant_admin", 204)])
def test_deleting_an_order_needs_the_admin_role(request, plant_a, client_for, product, who, status):
    order = make_order(plant_a, product, "PO-1")
    assert_status(client_for(request.getfixturevalue(who)).delete(f"/api/v1/orders/{order.pk}/"), status)


def test_an_order_that_ran_is_cancelled_not_deleted(plant_a, plant_admin, client_for, product, machine):
    order = make_order(plant_a, product, "PO-1")
    run_start(device=machine, order=order)
    response = client_for(plant_admin).delete(f"/api/v1/orders/{order.pk}/")
    assert "cancelled" in str(assert_status(response, 400).json())
    assert Run.objects.filter(order=order).exists()
