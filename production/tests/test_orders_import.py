"""Orders from an ERP's CSV: ``POST /api/v1/orders/import/`` and the order admin's "Import" (django-import-export)."""

import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from conftest import assert_status
from devices.tests.factories import make_device, make_line
from production.models import Order, Source
from production.tests.factories import make_order, make_product

pytestmark = pytest.mark.django_db
HEADER = "number,product,quantity,due_date,line,machines,status,note"


@pytest.fixture
def floor(plant_a):
    line = make_line(plant_a, "Moulding")
    machines = [make_device(line, "moulder-01"), make_device(line, "moulder-02")]
    a = make_product(plant_a, "A-100")
    make_product(plant_a, "B-200")
    make_order(plant_a, a, "PO-1", quantity=100)
    return line, machines


def csv_file(*rows: str, name: str = "orders.csv") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, "\n".join([HEADER, *rows]).encode(), content_type="text/csv")


GOOD = (
    'PO-1,A-100,250,2026-12-20,,,,"more, please"',  # updates the existing order
    'PO-2,B-200,1000,2026-12-24,Moulding,"moulder-01, moulder-02",,first run',
)


def orders(plant) -> list[tuple]:
    rows = Order.objects.filter(plant=plant).order_by("number")
    return [(o.number, o.product.code, o.quantity, str(o.due_date), o.source) for o in rows]


def post(client, plant, *rows, dry_run=False, name="orders.csv"):
    body = {"plant": plant.pk, "file": csv_file(*rows, name=name), "dry_run": dry_run}
    return client.post("/api/v1/orders/import/", body, format="multipart")


def test_a_dry_run_previews_each_row_and_changes_nothing_then_the_import_applies(plant_a, operator, client_for, floor):
    client = client_for(operator)
    before = orders(plant_a)
    preview = assert_status(post(client, plant_a, *GOOD, dry_run=True), 200).json()
    assert [(r["number"], r["action"]) for r in preview["rows"]] == [("PO-1", "update"), ("PO-2", "create")]
    assert (preview["valid"], preview["applied"]) == (True, False)
    assert orders(plant_a) == before

    applied = assert_status(post(client, plant_a, *GOOD), 201).json()
    assert applied["totals"] == {"create": 1, "update": 1, "unchanged": 0, "error": 0}
    assert orders(plant_a) == [
        ("PO-1", "A-100", 250, "2026-12-20", Source.ADMIN),
        ("PO-2", "B-200", 1000, "2026-12-24", Source.IMPORT),
    ]
    po2 = Order.objects.get(number="PO-2")
    assert (po2.line.name, sorted(po2.machines.values_list("uid", flat=True)), po2.note) == (
        "Moulding", ["moulder-01", "moulder-02"], "first run",
    )  # fmt: skip


def test_one_bad_row_applies_nothing_and_says_which_and_why(plant_a, plant_b, operator, client_for, floor):
    make_device(make_line(plant_b), "weld-01")
    before = orders(plant_a)
    rows = (
        *GOOD,
        "PO-3,NOPE,10,,,,,",  # unknown product
        "PO-4,A-100,,,,,,",  # no quantity
        "PO-5,A-100,5,,,weld-01,,",  # another plant's machine
        "PO-6,A-100,5,next week,,,,",  # not a date
        "PO-2,A-100,5,,,,,",  # the same number twice
        "PO-7,A-100,5,,,,finished,",  # no such status
    )
    report = assert_status(post(client_for(operator), plant_a, *rows), 400).json()
    by_number = {(r["number"], r["row"]): r for r in report["rows"]}
    assert report["applied"] is False and report["totals"]["error"] == 6
    assert "No product 'NOPE'" in by_number[("PO-3", 3)]["errors"]["product"][0]
    assert "quantity" in by_number[("PO-4", 4)]["errors"]
    assert "weld-01" in by_number[("PO-5", 5)]["errors"]["machines"][0]
    assert "due_date" in by_number[("PO-6", 6)]["errors"]
    assert "also in row 2" in by_number[("PO-2", 7)]["errors"]["number"][0]
    assert "status" in by_number[("PO-7", 8)]["errors"]
    assert orders(plant_a) == before


@pytest.mark.parametrize(
    ("who", "status"), [("outsider", 400), ("viewer", 403), ("operator", 201), ("plant_admin", 201)]
)
def test_importing_needs_the_operator_role_on_the_plant(request, plant_a, client_for, floor, who, status):
    assert_status(post(client_for(request.getfixturevalue(who)), plant_a, GOOD[1]), status)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"order,qty\nPO-9,5\n", "'number' among them"),
        (b"number,colour\nPO-9,red\n", "Unknown column(s) colour"),
        (b"number,product\xff\n", "not UTF-8"),
        (HEADER.encode(), "no orders"),
    ],
)
def test_refuses_a_file_it_cannot_read_with_what_to_do(plant_a, operator, client_for, content, message):
    upload = SimpleUploadedFile("orders.csv", content, content_type="text/csv")
    response = client_for(operator).post(
        "/api/v1/orders/import/", {"plant": plant_a.pk, "file": upload}, format="multipart"
    )
    assert message in assert_status(response, 400).json()["errors"]["file"][0]


def hidden(body: str, name: str) -> str:
    return re.search(rf'name="{name}" value="([^"]*)"', body).group(1)


def test_a_plant_admin_imports_orders_in_the_admin_with_a_preview(plant_a, plant_b, plant_admin_client, floor):
    page = assert_status(plant_admin_client.get("/admin/production/order/import/"), 200).content.decode()
    assert "Plant A" in page and "Plant B" not in page  # only the plants they administer
    previewed = plant_admin_client.post(
        "/admin/production/order/import/",
        {"plant": plant_a.pk, "import_file": csv_file(*GOOD), "format": "0", "resource": "0"},
    )
    body = assert_status(previewed, 200).content.decode()
    assert "PO-2" in body and not Order.objects.filter(number="PO-2").exists()
    confirm = {name: hidden(body, name) for name in ("import_file_name", "original_file_name", "format", "plant")}
    applied = plant_admin_client.post("/admin/production/order/process_import/", {**confirm, "resource": "0"})
    assert applied.status_code == 302
    assert orders(plant_a)[1] == ("PO-2", "B-200", 1000, "2026-12-24", Source.IMPORT)


def test_the_admin_import_refuses_another_plant(plant_b, plant_admin_client, floor):
    response = plant_admin_client.post(
        "/admin/production/order/import/",
        {"plant": plant_b.pk, "import_file": csv_file(*GOOD), "format": "0", "resource": "0"},
    )
    assert "Select a valid choice" in assert_status(response, 200).content.decode()
    assert not Order.objects.filter(number="PO-2").exists()
