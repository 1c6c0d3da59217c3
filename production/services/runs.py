"""Runs: start and end what a machine makes (operator, API, admin), with the cycle time it runs at.

Every writer locks the machine's row first (``select_for_update``), so two writers (a person and
the device's telemetry, ``production.services.context``) cannot both open a run on one machine.
A run written for a time that stored OEE days already cover marks those days stale.
"""

from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from devices.models import Device
from production.models import Order, Product, ProductCycleTime, Run, Source

FUTURE_TOLERANCE = timedelta(minutes=5)
PER_PIECE = Decimal("0.000000001")  # Run.ideal_cycle_time's decimal places


def days_stale(*, device_ids, since: datetime) -> None:
    """OEE days stored for ``device_ids`` that a change from ``since`` on may alter are recomputed on read.

    Stored days end at least ``SETTLE`` before they were computed: a change later than that
    reaches none of them, and costs no query (a live run start or end).
    """
    from analytics.cache import SETTLE, day_cache_invalidate

    if since < timezone.now() - SETTLE:
        # From the day before its UTC date: a plant-local day may begin on the previous UTC date.
        day_cache_invalidate(device_ids=sorted(set(device_ids)), since=since.date() - timedelta(days=1))


def cycle_times(pairs) -> dict[tuple[int, int], tuple[Decimal | None, Decimal | None]]:
    """``{(device_id, product_id): (ideal seconds per piece, changeover target)}`` for ``(device, product)`` pairs.

    The machine's ``ProductCycleTime`` wins over its line's; none: ``(None, product's target)``,
    and OEE uses the machine's own cycle time. One query.
    """
    pairs = [(d, p) for d, p in pairs if p is not None]
    if not pairs:
        return {}
    devices = {d.pk: d for d, _ in pairs}
    rows = ProductCycleTime.objects.filter(
        Q(device_id__in=devices) | Q(line_id__in={d.line_id for d in devices.values() if d.line_id}),
        product_id__in={p.pk for _, p in pairs},
    ).values_list("product_id", "device_id", "line_id", "seconds", "changeover_target")
    by_machine, by_line = {}, {}
    for product_id, device_id, line_id, seconds, target in rows:
        if device_id is not None:
            by_machine[(device_id, product_id)] = (seconds, target)
        else:
            by_line[(line_id, product_id)] = (seconds, target)
    result = {}
    for device, product in pairs:
        seconds, target = (
            by_machine.get((device.pk, product.pk)) or by_line.get((device.line_id, product.pk)) or (None, None)
        )
        per_piece = (seconds / product.units_per_cycle).quantize(PER_PIECE) if seconds is not None else None
        result[(device.pk, product.pk)] = (per_piece, target if target is not None else product.changeover_target)
    return result


def _check_order_fits(device: Device, product: Product | None, order: Order | None) -> Product | None:
    """The run's product; raises ``ValidationError`` for an order or product that does not fit the machine."""
    errors = {}
    if product is None and order is None:
        raise ValidationError({"product": ["Give the product or the order to run."]})
    if product is not None and product.plant_id != device.plant_id:
        errors["product"] = ["Not a product of this machine's plant."]
    if order is not None:
        if order.plant_id != device.plant_id:
            errors["order"] = ["Not an order of this machine's plant."]
        elif order.status in (Order.Status.DONE, Order.Status.CANCELLED):
            errors["order"] = [f"Order {order.number} is {order.get_status_display().lower()}: reopen it first."]
        elif product is not None and order.product_id not in (None, product.pk):
            errors["product"] = [f"Order {order.number} is for product {order.product}, not {product}."]
        else:
            machines = set(order.machines.values_list("pk", flat=True))
            if machines and device.pk not in machines:
                errors["order"] = [f"Order {order.number} is planned on other machines."]
            elif not machines and order.line_id is not None and device.line_id != order.line_id:
                errors["order"] = [f"Order {order.number} is planned on line {order.line.name}."]
    if errors:
        raise ValidationError(errors)
    return product or (order.product if order is not None else None)


def run_open(
    *, device: Device, at: datetime, product: Product | None, order: Order | None, source: str, by=None
) -> Run:
    """End ``device``'s open run at ``at`` and start one of ``product``/``order`` there. The caller
    holds the machine's row lock and has checked the input. Raises ``ValidationError`` when ``at``
    is not after the machine's latest run (runs never overlap)."""
    latest = Run.objects.filter(device=device).order_by("-start").first()
    if latest is not None:
        if latest.start >= at:
            raise ValidationError({"start": [f"The machine has a run from {latest.start.isoformat()}: start later."]})
        if latest.end is None:
            latest.end, latest.ended_by = at, by
            latest.save(update_fields=["end", "ended_by", "updated_at"])
        elif latest.end > at:
            raise ValidationError({"start": [f"Overlaps the run that ended {latest.end.isoformat()}: start later."]})
    per_piece, target = cycle_times([(device, product)]).get((device.pk, getattr(product, "pk", None)), (None, None))
    run = Run(
        device=device, product=product, order=order, start=at, source=source, started_by=by,
        ideal_cycle_time=per_piece, changeover_target=target,
    )  # fmt: skip
    run.full_clean(validate_constraints=False)  # the overlap check above is the stronger one
    run.save()
    if order is not None and order.status == Order.Status.PLANNED:
        Order.objects.filter(pk=order.pk, status=Order.Status.PLANNED).update(status=Order.Status.IN_PROGRESS)
        order.status = Order.Status.IN_PROGRESS
    return run


def _when(at: datetime | None, field: str) -> datetime:
    now = timezone.now()
    if at is None:
        return now
    if at > now + FUTURE_TOLERANCE:
        raise ValidationError({field: ["More than 5 minutes in the future; give the time it happened."]})
    oldest = now - timedelta(days=settings.TELEMETRY_RETENTION_RAW_DAYS)
    if at < oldest:
        raise ValidationError({field: [f"Older than the raw telemetry kept ({oldest.isoformat()}): nothing to weigh."]})
    return at


def run_start(
    *, device: Device, product: Product | None = None, order: Order | None = None, at: datetime | None = None,
    by=None, source: str = Source.API,
) -> Run:  # fmt: skip
    """Start a run of ``order`` (its product) or ``product`` on ``device`` at ``at`` (default now).

    Ends the machine's open run at that instant (the new run's changeover starts there). Raises
    ``ValidationError`` for a product/order of another plant, an order planned elsewhere, done or
    cancelled, a start in the future or not after the machine's latest run. Marks the order in progress.
    """
    at = _when(at, "start")
    with transaction.atomic():
        device = Device.objects.select_for_update().get(pk=device.pk)
        product = _check_order_fits(device, product, order)
        run = run_open(device=device, at=at, product=product, order=order, source=source, by=by)
        days_stale(device_ids=[device.pk], since=at)
    return run


def run_end(*, run: Run, at: datetime | None = None, by=None, complete: bool = False) -> Run:
    """End an open run at ``at`` (default now); ``complete`` also marks its order done.

    Raises ``ValidationError`` when the run has ended already or ``at`` is before its start or in the future.
    """
    at = _when(at, "end")
    with transaction.atomic():
        Device.objects.select_for_update().filter(pk=run.device_id).first()
        run = Run.objects.select_related("order").get(pk=run.pk)
        if run.end is not None:
            raise ValidationError({"end": [f"The run ended at {run.end.isoformat()} already."]})
        if at < run.start:
            raise ValidationError({"end": [f"The run started at {run.start.isoformat()}: end it after that."]})
        run.end, run.ended_by = at, by
        run.save(update_fields=["end", "ended_by", "updated_at"])
        if complete and run.order is not None:
            Order.objects.filter(pk=run.order_id).update(status=Order.Status.DONE)
            run.order.status = Order.Status.DONE
        days_stale(device_ids=[run.device_id], since=at)
    return run


def run_times_check(run: Run) -> None:
    """Raise ``ValidationError`` when an edited run starts or ends in the future or before the raw telemetry kept."""
    _when(run.start, "start")
    if run.end is not None:
        _when(run.end, "end")


def run_overlap(run: Run) -> Run | None:
    """Another run of the machine that ``run`` (edited, maybe unsaved) would overlap, or None."""
    others = Run.objects.filter(device_id=run.device_id).exclude(pk=run.pk)
    overlapping = others.filter(Q(end__isnull=True) | Q(end__gt=run.start))
    if run.end is not None:
        overlapping = overlapping.filter(start__lt=run.end)
    return overlapping.order_by("start").first()


def run_save(*, run: Run, previous_start: datetime | None = None) -> Run:
    """Save an edited run (admin): start, end, product, order or ideal cycle time.

    Raises ``ValidationError`` when it would overlap another run of the machine. Stored OEE days
    from the earlier of its old and new start are recomputed.
    """
    run.full_clean(validate_constraints=False)
    run_times_check(run)
    with transaction.atomic():
        Device.objects.select_for_update().filter(pk=run.device_id).first()
        clash = run_overlap(run)
        if clash is not None:
            raise ValidationError({"start": [f"Overlaps the machine's run from {clash.start.isoformat()}."]})
        run.save()
        days_stale(device_ids=[run.device_id], since=min(filter(None, [run.start, previous_start])))
    return run


def run_delete(*, run: Run) -> None:
    """Delete a run (entered by mistake); its days' stored OEE is recomputed."""
    with transaction.atomic():
        run.delete()
        days_stale(device_ids=[run.device_id], since=run.start)
