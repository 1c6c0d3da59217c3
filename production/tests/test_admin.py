"""The production admin: products with cycle times inline, runs corrected by a plant admin (scoped to their plants)."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from analytics.models import OEEDayCache
from conftest import assert_status
from devices.tests.factories import make_device, make_line
from production.models import Product, Run
from production.services.runs import run_end, run_start
from production.tests.factories import make_product

pytestmark = pytest.mark.django_db


@pytest.fixture
def machine(plant_a):
    return make_device(make_line(plant_a, "Moulding"), "moulder-01", ideal_cycle_time=Decimal("10"))


def inline(prefix: str, rows: list[dict], initial: int = 0) -> dict:
    data = {f"{prefix}-TOTAL_FORMS": str(len(rows)), f"{prefix}-INITIAL_FORMS": str(initial)}
    for n, row in enumerate(rows):
        data.update({f"{prefix}-{n}-{key}": value for key, value in row.items()})
    return data


def test_a_plant_admin_adds_a_product_with_a_machine_cycle_time(plant_a, plant_admin_client, machine):
    data = {"plant": plant_a.pk, "code": "A-100", "name": "Housing", "units_per_cycle": "2", "active": "on"}
    data |= inline("cycle_times", [{"device": machine.pk, "seconds": "24"}])
    assert_status(plant_admin_client.post("/admin/production/product/add/", data), 302)
    product = Product.objects.get(code="A-100")
    assert [(c.device, c.seconds) for c in product.cycle_times.all()] == [(machine, Decimal("24"))]
    assert product.source == "admin"


def test_a_product_edited_in_the_admin_gives_its_open_run_the_new_cycle_time(plant_a, plant_admin_client, machine):
    product = make_product(plant_a, "A-100", machines=[(machine, 20)])
    run = run_start(device=machine, product=product)
    row = product.cycle_times.get()
    data = {"plant": plant_a.pk, "code": "A-100", "name": "", "units_per_cycle": "1", "active": "on"}
    data |= inline("cycle_times", [{"id": row.pk, "product": product.pk, "device": machine.pk, "seconds": "12"}], 1)
    assert_status(plant_admin_client.post(f"/admin/production/product/{product.pk}/change/", data), 302)
    run.refresh_from_db()
    assert run.ideal_cycle_time == Decimal("12")


def test_the_run_list_shows_only_the_plants_the_user_administers(plant_a, plant_b, plant_admin_client, machine):
    run_start(device=machine, product=make_product(plant_a, "MINE-1"))
    foreign = make_device(make_line(plant_b), "weld-01")
    run_start(device=foreign, product=make_product(plant_b, "THEIRS-1"))
    body = assert_status(plant_admin_client.get("/admin/production/run/"), 200).content.decode()
    assert "moulder-01" in body and "weld-01" not in body
    products = assert_status(plant_admin_client.get("/admin/production/product/"), 200).content.decode()
    assert "MINE-1" in products and "THEIRS-1" not in products


def _form(run, **changes) -> dict:
    data = {
        "device": run.device_id, "product": run.product_id or "", "order": run.order_id or "",
        "start_0": f"{run.start:%Y-%m-%d}", "start_1": f"{run.start:%H:%M:%S}",
        "end_0": f"{run.end:%Y-%m-%d}" if run.end else "", "end_1": f"{run.end:%H:%M:%S}" if run.end else "",
        "ideal_cycle_time": run.ideal_cycle_time or "", "changeover_target": run.changeover_target or "",
    }  # fmt: skip
    return {**data, **changes}


def test_correcting_a_past_run_in_the_admin_makes_its_stored_days_stale(plant_a, plant_admin_client, machine, settings):
    settings.TIME_ZONE = "UTC"
    product = make_product(plant_a, "A-100", machines=[(machine, 20)])
    start = (timezone.now() - timedelta(days=3)).replace(microsecond=0)
    run = run_end(run=run_start(device=machine, product=product, at=start), at=start + timedelta(hours=2))
    day = start.date()
    OEEDayCache.objects.create(device=machine, day=day, minor_stop_seconds=120, inputs={}, computed_at=timezone.now())
    response = plant_admin_client.post(f"/admin/production/run/{run.pk}/change/", _form(run, ideal_cycle_time="18"))
    assert_status(response, 302)
    run.refresh_from_db()
    assert run.ideal_cycle_time == Decimal("18")
    assert OEEDayCache.objects.get(device=machine, day=day).stale


def test_the_admin_refuses_a_run_that_would_overlap_another(plant_a, plant_admin_client, machine, settings):
    settings.TIME_ZONE = "UTC"
    product = make_product(plant_a, "A-100")
    start = (timezone.now() - timedelta(hours=5)).replace(microsecond=0)
    first = run_end(run=run_start(device=machine, product=product, at=start), at=start + timedelta(hours=1))
    second = run_start(device=machine, product=product, at=start + timedelta(hours=2))
    moved = start + timedelta(minutes=30)
    data = _form(second, start_0=f"{moved:%Y-%m-%d}", start_1=f"{moved:%H:%M:%S}")
    body = assert_status(plant_admin_client.post(f"/admin/production/run/{second.pk}/change/", data), 200)
    assert "Overlaps the machine&#x27;s run from" in body.content.decode()
    second.refresh_from_db()
    assert second.start == start + timedelta(hours=2) and Run.objects.filter(pk=first.pk).exists()
