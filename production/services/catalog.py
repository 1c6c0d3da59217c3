"""Products (with their cycle times per machine or line) and production orders: create and change.

Keyword-only services that validate (``full_clean`` plus the rules spanning rows) and raise
``django.core.exceptions.ValidationError`` keyed by field, which the API answers as 400.
"""

from django.core.exceptions import ValidationError
from django.db import transaction

from production.models import Order, Product, ProductCycleTime, Run, Source
from production.services.runs import cycle_times, days_stale


def _same_plant(plant_id, objects, field: str, what: str) -> None:
    wrong = [str(obj) for obj in objects if obj is not None and obj.plant_id != plant_id]
    if wrong:
        raise ValidationError({field: [f"{what} {', '.join(wrong)} belong(s) to another plant."]})


@transaction.atomic
def product_save(*, product: Product, cycle_times_rows: list[dict] | None = None) -> Product:
    """Create or change a product; ``cycle_times_rows`` (``[{"device"|"line", "seconds", "changeover_target"}]``)
    replaces its cycle times when given.

    The open runs of the product take the new cycle time at once (stored OEE days they cover are
    recomputed); closed runs keep theirs. Raises ``ValidationError`` for a duplicate code, a machine
    or line of another plant, or both or neither of machine and line in a row.
    """
    clash = Product.objects.filter(plant_id=product.plant_id, code=product.code).exclude(pk=product.pk)
    if clash.exists():
        raise ValidationError({"code": [f"The plant already has a product {product.code}."]})
    product.full_clean()
    product.save()
    if cycle_times_rows is None:
        _refresh_open_runs(product)
        return product
    rows = []
    seen = set()
    for n, row in enumerate(cycle_times_rows, start=1):
        device, line = row.get("device"), row.get("line")
        if (device is None) == (line is None):
            raise ValidationError({"cycle_times": [f"Row {n}: give either a machine or a line."]})
        _same_plant(product.plant_id, [device or line], "cycle_times", "Machine" if device else "Line")
        key = ("device", device.pk) if device else ("line", line.pk)
        if key in seen:
            raise ValidationError({"cycle_times": [f"Row {n}: {key[0]} {device or line.name} is named twice."]})
        seen.add(key)
        entry = ProductCycleTime(
            product=product, device=device, line=line, seconds=row["seconds"],
            changeover_target=row.get("changeover_target"),
        )  # fmt: skip
        entry.full_clean(exclude=["product"], validate_constraints=False)
        rows.append(entry)
    product.cycle_times.all().delete()
    ProductCycleTime.objects.bulk_create(rows)
    _refresh_open_runs(product)
    return product


def _refresh_open_runs(product: Product) -> None:
    """Open runs of ``product`` run at its current cycle time and changeover target from their start on."""
    runs = list(Run.objects.filter(product=product, end__isnull=True).select_related("device"))
    table = cycle_times((run.device, product) for run in runs)
    for run in runs:
        per_piece, target = table[(run.device_id, product.pk)]
        if (run.ideal_cycle_time, run.changeover_target) != (per_piece, target):
            Run.objects.filter(pk=run.pk).update(ideal_cycle_time=per_piece, changeover_target=target)
            days_stale(device_ids=[run.device_id], since=run.start)


@transaction.atomic
def order_save(*, order: Order, machines=None) -> Order:
    """Create or change a production order; ``machines`` (devices) replaces the machines it is planned on.

    Raises ``ValidationError`` for a duplicate number in the plant, a product, line or machine of
    another plant, or a missing product or quantity (only orders a device named may lack them).
    """
    errors = {}
    if order.source != Source.DEVICE:  # a device names orders by number only; a person completes them
        if order.product_id is None:
            errors["product"] = ["Give the product to make."]
        if order.quantity is None:
            errors["quantity"] = ["Give the quantity to make (pieces)."]
    if errors:
        raise ValidationError(errors)
    _same_plant(order.plant_id, [order.product], "product", "Product")
    _same_plant(order.plant_id, [order.line], "line", "Line")
    if machines is not None:
        _same_plant(order.plant_id, machines, "machines", "Machine(s)")
    order.full_clean(exclude=["machines"])
    order.save()
    if machines is not None:
        order.machines.set(machines)
    return order


def order_delete(*, order: Order) -> None:
    """Delete an order that never ran; one with runs is cancelled instead (its runs stay in the history)."""
    if Run.objects.filter(order=order).exists():
        raise ValidationError({"order": ["The order has runs: set its status to cancelled instead of deleting it."]})
    order.delete()
