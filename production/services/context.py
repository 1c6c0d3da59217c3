"""Production context from device telemetry (CONTRACT.md: ``"product"`` and ``"order"``).

Called by ``devices.services.ingest`` inside the ingest transaction, once per batch, with the
messages that carry either field. The device's last report (``ReportedContext``) is read in one
query; a message that repeats it changes nothing (edge-triggered, so a person may end or replace
a run while the device keeps repeating its code). A message that says something new:

* ``order`` (with or without ``product``): a run of that order from the message's ``ts``; its
  product is the message's, else the order's;
* ``product`` alone: a run of that product without an order;
* ``""`` for both (or for the one field a device sends): the open run ends, nothing runs.

A code the plant does not know is created (``source`` device, no cycle time: OEE weighs its
pieces with the machine's own cycle time until an admin sets one), so a device's readings are
never refused for it; the products and orders admin lists them for completion. A context older
than the device's last one (a late message) is ignored: readings are stored, runs unchanged.
"""

from django.db.models import Q

from devices.models import Device
from production.models import Order, Product, ReportedContext, Run, Source
from production.services.runs import cycle_times, days_stale


def context_record(*, entries, received_at) -> None:
    """``entries``: ``(device, message)`` pairs in each device's ts order. See the module docstring."""
    ids = {device.pk for device, _ in entries}
    last = {row.device_id: row for row in ReportedContext.objects.filter(device_id__in=ids)}
    changed = [(d, m) for d, m in entries if _differs(last.get(d.pk), m)]
    if not changed:
        return
    devices = {d.pk: d for d, _ in changed}
    list(Device.objects.select_for_update().filter(pk__in=sorted(devices)).order_by("pk").values_list("pk"))
    products, orders = _resolve(changed)
    switches = _switches(changed, last, products, orders)
    table = cycle_times(
        (devices[pk], products[(devices[pk].plant_id, code)])
        for pk, steps in switches.items()
        for _, code, _ in steps
        if code
    )
    for pk, steps in switches.items():
        latest = Run.objects.filter(device_id=pk).order_by("-start").first()  # a switch is rare: one query each
        _apply(devices[pk], steps, latest, products, orders, table)
        ts, product, order = steps[-1]
        ReportedContext.objects.update_or_create(device_id=pk, defaults={"product": product, "order": order, "ts": ts})
        days_stale(device_ids=[pk], since=steps[0][0])


def _differs(row, message) -> bool:
    if row is None:
        return True
    if message.ts < row.ts:
        return False
    return (message.product is not None and message.product != row.product) or (
        message.order is not None and message.order != row.order
    )


def _resolve(changed) -> tuple[dict[str, Product], dict[str, Order]]:
    """The named products and orders of the devices' plants, creating unknown ones (source device)."""
    plant_ids = {d.plant_id for d, _ in changed}
    codes = {(d.plant_id, m.product) for d, m in changed if m.product}
    numbers = {(d.plant_id, m.order): m.product for d, m in changed if m.order}
    products = {
        (p.plant_id, p.code): p for p in Product.objects.filter(plant_id__in=plant_ids, code__in={c for _, c in codes})
    }
    missing = [Product(plant_id=pl, code=c, name=c, source=Source.DEVICE) for pl, c in codes if (pl, c) not in products]
    if missing:
        Product.objects.bulk_create(missing, ignore_conflicts=True)
        for p in Product.objects.filter(Q(plant_id__in=plant_ids), code__in={p.code for p in missing}):
            products[(p.plant_id, p.code)] = p
    orders = {
        (o.plant_id, o.number): o
        for o in Order.objects.filter(plant_id__in=plant_ids, number__in={n for _, n in numbers}).select_related(
            "product"
        )
    }
    new_orders = [
        Order(plant_id=pl, number=n, product=products.get((pl, code)) if code else None, source=Source.DEVICE)
        for (pl, n), code in numbers.items()
        if (pl, n) not in orders
    ]
    if new_orders:
        Order.objects.bulk_create(new_orders, ignore_conflicts=True)
        found = Order.objects.filter(plant_id__in=plant_ids, number__in={o.number for o in new_orders})
        for o in found.select_related("product"):
            orders[(o.plant_id, o.number)] = o
    for o in orders.values():  # a message naming only the order runs the order's product
        if o.product is not None:
            products.setdefault((o.plant_id, o.product.code), o.product)
    return products, orders


def _switches(changed, last, products, orders) -> dict[int, list[tuple]]:
    """Per device, the ``(ts, product code, order number)`` contexts it switched to, in order ("" = none)."""
    result: dict[int, list] = {}
    for device, message in changed:
        row = last.get(device.pk)
        steps = result.setdefault(device.pk, [])
        lts, lp, lo = steps[-1] if steps else ((row.ts, row.product, row.order) if row else (None, None, None))
        if lts is not None and message.ts < lts:
            continue
        same_product = message.product is None or message.product == lp
        same_order = message.order is None or message.order == lo
        if same_product and same_order:
            continue
        order = message.order if message.order is not None else ""
        product = message.product
        if product is None:
            found = orders.get((device.plant_id, order)) if order else None
            product = found.product.code if found is not None and found.product is not None else ""
        if lts is not None and message.ts == lts and steps:
            steps[-1] = (message.ts, product, order)
        else:
            steps.append((message.ts, product, order))
    return {pk: steps for pk, steps in result.items() if steps}


def _apply(device, steps, latest, products, orders, table) -> None:
    """End the open run at the first switch; one run per switch that names something, each ended by the next.

    A switch before the end of the machine's latest run (a person started or ended one later) is skipped.
    """
    plant = device.plant_id
    runs = []
    for ts, code, number in steps:
        if latest is not None:
            if latest.start >= ts or (latest.end is not None and latest.end > ts):
                continue
            if latest.end is None:
                latest.end = ts
                latest.save(update_fields=["end", "updated_at"])
        if not code and not number:
            continue
        product = products.get((plant, code)) if code else None
        order = orders.get((plant, number)) if number else None
        per_piece, target = (
            table.get((device.pk, product.pk), (None, product.changeover_target)) if product else (None, None)
        )
        latest = Run.objects.create(
            device=device, product=product, order=order, start=ts, source=Source.DEVICE,
            ideal_cycle_time=per_piece, changeover_target=target,
        )  # fmt: skip
        runs.append(latest)
    started = {run.order_id for run in runs if run.order_id}
    if started:
        Order.objects.filter(pk__in=started, status=Order.Status.PLANNED).update(status=Order.Status.IN_PROGRESS)
