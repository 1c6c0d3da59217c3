"""What a machine is making: products, production orders and runs (issue 16, item 1).

A **run** is one product (and, usually, one order) made on one machine from ``start`` to ``end``
(open while ``end`` is null). Runs never overlap on a machine: starting one ends the open one at
that instant. OEE weighs each piece with the ideal cycle time of the run in force when it was
made (``Run.ideal_cycle_time``, resolved when the run starts, so editing a product later never
rewrites past results), and the time from a run's start until the machine first runs is its
**changeover** (setup loss, ``analytics.timeline``).

Writes go through ``production.services`` (API, admin, CSV import, device telemetry alike).
"""

from decimal import Decimal

from django.conf import settings
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q

# What a device may send as "product"/"order" (CONTRACT.md): ERP codes like "A-100/2", "PO 4711".
CODE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9 ._/#:+-]{0,63}\Z"
code_validator = RegexValidator(
    CODE_PATTERN,
    "Use 1-64 letters, digits, spaces or . _ / # : + -, starting with a letter or digit (e.g. A-100/2).",
)
SECONDS = {"max_digits": 10, "decimal_places": 3, "validators": [MinValueValidator(Decimal("0.001"))]}


class Source(models.TextChoices):
    """Who created a product, order or run."""

    ADMIN = "admin", "Admin"
    API = "api", "API"
    IMPORT = "import", "CSV import"
    OPERATOR = "operator", "Operator"
    DEVICE = "device", "Device telemetry"


class Product(models.Model):
    """A part a plant makes. Its ideal cycle time is per machine or per line (``ProductCycleTime``);
    a machine without one uses its own (``Device.ideal_cycle_time``)."""

    plant = models.ForeignKey("devices.Plant", on_delete=models.PROTECT, related_name="products")
    code = models.CharField(max_length=64, validators=[code_validator])
    name = models.CharField(max_length=200, blank=True)
    units_per_cycle = models.PositiveIntegerField(
        default=1, validators=[MinValueValidator(1)], help_text="Pieces one cycle makes (cavities of a mould)."
    )
    changeover_target = models.DecimalField(
        null=True, blank=True, help_text="Target changeover to this product, seconds (a machine may override).",
        **SECONDS,
    )  # fmt: skip
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.ADMIN, editable=False)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["plant_id", "code"]
        constraints = [models.UniqueConstraint(fields=["plant", "code"], name="product_unique_code_per_plant")]

    def __str__(self) -> str:
        return f"{self.code} {self.name}".strip() if self.name != self.code else self.code


class ProductCycleTime(models.Model):
    """A product's ideal cycle time (seconds per cycle) on one machine or on every machine of a line.

    The machine's row wins over its line's. ``changeover_target`` overrides the product's there.
    """

    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="cycle_times")
    device = models.ForeignKey("devices.Device", on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    line = models.ForeignKey("devices.Line", on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    seconds = models.DecimalField(help_text="Ideal seconds per cycle.", **SECONDS)
    changeover_target = models.DecimalField(
        null=True, blank=True, help_text="Seconds; empty: the product's.", **SECONDS
    )

    class Meta:
        ordering = ["product_id", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(device__isnull=True, line__isnull=False) | Q(device__isnull=False, line__isnull=True),
                name="product_cycle_time_machine_xor_line",
            ),
            models.UniqueConstraint(fields=["product", "device"], name="product_cycle_time_unique_machine"),
            models.UniqueConstraint(fields=["product", "line"], name="product_cycle_time_unique_line"),
        ]

    def __str__(self) -> str:
        return f"{self.product_id} on {self.device_id or self.line_id}: {self.seconds} s"


class Order(models.Model):
    """A production order: ``quantity`` pieces of ``product`` due on ``due_date``, on a line or some machines.

    ``product`` and ``quantity`` are empty only for an order a device named before anyone created it
    (``source`` device): an admin or the ERP completes it.
    """

    class Status(models.TextChoices):
        PLANNED = "planned", "Planned"
        IN_PROGRESS = "in_progress", "In progress"
        DONE = "done", "Done"
        CANCELLED = "cancelled", "Cancelled"

    plant = models.ForeignKey("devices.Plant", on_delete=models.PROTECT, related_name="orders")
    number = models.CharField(max_length=64, validators=[code_validator])
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="orders", null=True, blank=True)
    quantity = models.PositiveIntegerField(null=True, blank=True, help_text="Pieces to make.")
    due_date = models.DateField(null=True, blank=True)
    line = models.ForeignKey("devices.Line", on_delete=models.PROTECT, null=True, blank=True, related_name="orders")
    machines = models.ManyToManyField("devices.Device", blank=True, related_name="orders")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PLANNED)
    note = models.CharField(max_length=255, blank=True)
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.ADMIN, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["plant_id", "due_date", "number"]
        constraints = [models.UniqueConstraint(fields=["plant", "number"], name="order_unique_number_per_plant")]
        indexes = [models.Index(fields=["plant", "status"], name="order_plant_status")]

    def __str__(self) -> str:
        return self.number


class Run(models.Model):
    """``product`` (for ``order``) made on ``device`` from ``start`` to ``end`` (null while it runs).

    ``ideal_cycle_time`` is seconds per *piece* (the cycle time over units per cycle), resolved
    when the run starts; null: the machine's own. ``changeover_target``: seconds, from the product
    or its machine/line row.
    """

    device = models.ForeignKey("devices.Device", on_delete=models.CASCADE, related_name="runs")
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="runs", null=True, blank=True)
    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="runs", null=True, blank=True)
    start = models.DateTimeField()
    end = models.DateTimeField(null=True, blank=True)
    ideal_cycle_time = models.DecimalField(max_digits=16, decimal_places=9, null=True, blank=True)
    changeover_target = models.DecimalField(max_digits=10, decimal_places=3, null=True, blank=True)
    source = models.CharField(max_length=16, choices=Source.choices)
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    ended_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["device_id", "start"]
        constraints = [
            models.UniqueConstraint(fields=["device", "start"], name="run_unique_start_per_machine"),
            models.CheckConstraint(
                condition=Q(end__isnull=True) | Q(end__gte=models.F("start")), name="run_end_after_start"
            ),
        ]
        indexes = [models.Index(fields=["device", "end"], name="run_device_end")]

    def __str__(self) -> str:
        return f"{self.device_id} {self.product_id or '-'}/{self.order_id or '-'} from {self.start:%Y-%m-%d %H:%M}"


class ReportedContext(models.Model):
    """What a device last reported as ``product``/``order`` (CONTRACT.md), and from when.

    Device context is edge-triggered: a message that repeats it changes nothing, so an operator
    may end or replace a run while the device keeps sending the same code; the next *different*
    code starts a new run. Read once per ingest batch that carries the fields.
    """

    device = models.OneToOneField("devices.Device", on_delete=models.CASCADE, primary_key=True, related_name="+")
    product = models.CharField(max_length=64, blank=True)
    order = models.CharField(max_length=64, blank=True)
    ts = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.device_id}: {self.product}/{self.order} from {self.ts:%Y-%m-%d %H:%M:%S}"
