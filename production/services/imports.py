"""Production orders from CSV or XLSX (an ERP export), for the API and the admin, on django-import-export.

One file is one plant's orders (the plant is chosen with the upload). Rows are matched to the
plant's orders by ``number`` (an existing number is updated), products by code, lines by name and
machines by uid, all of that plant. All or nothing: ``orders_import`` applies only when every row
is good, and reports per row ``create``, ``update``, ``unchanged`` or its errors.
"""

from dataclasses import dataclass

import tablib
from django.core.exceptions import ValidationError
from django.db import transaction
from import_export import fields, resources, widgets
from import_export.results import RowResult

from devices.models import Device, Line
from production.models import Order, Product, Source

COLUMNS = ("number", "product", "quantity", "due_date", "line", "machines", "status", "note")
_BLANK_KEEPS = {"status"}
MAX_ROWS = 10_000


class OrderFileError(ValueError):
    """The file as a whole cannot be read (not CSV/XLSX, no number column, too many rows)."""


def _text(value) -> str:
    return str(value).strip() if value is not None else ""


class _ByKey(widgets.Widget):
    """A product (by code) or line (by name) of the import's plant; blank: none."""

    def __init__(self, rows: dict, what: str):
        super().__init__()
        self.rows, self.what = rows, what

    def clean(self, value, row=None, **kwargs):
        key = _text(value)
        if not key:
            return None
        if key not in self.rows:
            raise ValueError(f"No {self.what} '{key}' in this plant: create it first or fix the spelling.")
        return self.rows[key]

    def render(self, value, obj=None, **kwargs):
        return "" if value is None else getattr(value, "code", None) or value.name


class _Machines(widgets.ManyToManyWidget):
    """Machine uids separated by commas, of the import's plant; blank: any machine (of the line)."""

    def __init__(self, machines: dict):
        super().__init__(Device, separator=",", field="uid")
        self.machines = machines

    def clean(self, value, row=None, **kwargs):
        uids = [uid.strip() for uid in _text(value).split(",") if uid.strip()]
        missing = [uid for uid in uids if uid not in self.machines]
        if missing:
            raise ValueError(f"No machine {', '.join(missing)} in this plant: use the machines' uids.")
        return Device.objects.filter(pk__in=[self.machines[uid].pk for uid in uids])


class OrderResource(resources.ModelResource):
    """A plant's orders as rows; ``number`` is the key."""

    def __init__(self, plant=None, **kwargs):
        super().__init__()
        self.plant = plant
        products = {p.code: p for p in Product.objects.filter(plant=plant)} if plant else {}
        lines = {line.name: line for line in Line.objects.filter(plant=plant)} if plant else {}
        machines = {d.uid: d for d in Device.objects.filter(plant=plant)} if plant else {}
        self.fields["product"] = fields.Field("product", "product", widget=_ByKey(products, "product"))
        self.fields["line"] = fields.Field("line", "line", widget=_ByKey(lines, "line"))
        self.fields["machines"] = fields.Field("machines", "machines", widget=_Machines(machines), m2m_add=False)

    class Meta:
        model = Order
        fields = COLUMNS
        export_order = COLUMNS
        import_id_fields = ["number"]
        clean_model_instances = True
        skip_unchanged = True
        report_skipped = True

    def get_queryset(self):
        return Order.objects.filter(plant=self.plant)

    def import_field(self, field, instance, row, is_m2m=False, **kwargs):
        if field.column_name in _BLANK_KEEPS and not _text(row.get(field.column_name)):
            return
        super().import_field(field, instance, row, is_m2m=is_m2m, **kwargs)

    def import_instance(self, instance, row, **kwargs):
        instance.plant = self.plant
        if instance.pk is None:
            instance.source = Source.IMPORT
        errors = {}
        try:
            super().import_instance(instance, row, **kwargs)
        except ValidationError as exc:
            errors = exc.update_error_dict(errors)
        if instance.product_id is None and "product" not in errors:
            errors["product"] = ["Give the product's code."]
        if instance.quantity is None and "quantity" not in errors:
            errors["quantity"] = ["Give the quantity to make (pieces)."]
        if "machines" in row:
            try:
                self.fields["machines"].widget.clean(row["machines"], row=row)
            except ValueError as exc:
                errors["machines"] = [str(exc)]
        if errors:
            raise ValidationError(errors)


@dataclass
class ImportReport:
    dry_run: bool
    rows: list[dict]

    @property
    def valid(self) -> bool:
        return not any(row["action"] == "error" for row in self.rows)

    def as_dict(self) -> dict:
        totals = {"create": 0, "update": 0, "unchanged": 0, "error": 0}
        for row in self.rows:
            totals[row["action"]] += 1
        applied = self.valid and not self.dry_run
        return {"dry_run": self.dry_run, "valid": self.valid, "applied": applied, "totals": totals, "rows": self.rows}


def read_orders_file(content: bytes, name: str = "") -> tablib.Dataset:
    """A dataset from an uploaded CSV (UTF-8, BOM allowed) or XLSX file. Raises ``OrderFileError``."""
    try:
        if content[:2] == b"PK" or name.lower().endswith(".xlsx"):
            dataset = tablib.Dataset().load(content, format="xlsx")
        else:
            dataset = tablib.Dataset().load(content.decode("utf-8-sig"), format="csv")
    except UnicodeDecodeError as exc:
        raise OrderFileError("The file is not UTF-8 text: save it as CSV UTF-8 or as XLSX.") from exc
    except Exception as exc:  # tablib/openpyxl raise many kinds for a file they cannot read
        raise OrderFileError("Could not read the file: upload a CSV (UTF-8) or XLSX file with a header row.") from exc
    headers = [_text(h).lower() for h in dataset.headers or []]
    if "number" not in headers:
        raise OrderFileError(f"The first row must name the columns, 'number' among them: {', '.join(COLUMNS)}.")
    unknown = [h for h in headers if h and h not in COLUMNS]
    if unknown:
        raise OrderFileError(f"Unknown column(s) {', '.join(unknown)}: use {', '.join(COLUMNS)}.")
    if dataset.height == 0:
        raise OrderFileError("The file has a header row but no orders: add one row per order.")
    if dataset.height > MAX_ROWS:
        raise OrderFileError(f"{dataset.height} rows: import at most {MAX_ROWS} at a time (split the file).")
    rows = [tuple("" if cell is None else cell for cell in row) for row in dataset]
    return tablib.Dataset(*rows, headers=headers)


_ACTIONS = {
    RowResult.IMPORT_TYPE_NEW: "create",
    RowResult.IMPORT_TYPE_UPDATE: "update",
    RowResult.IMPORT_TYPE_SKIP: "unchanged",
}


def _rows(dataset, result) -> list[dict]:
    rows, first = [], {}
    for n, row_result in enumerate(result.rows, start=1):
        errors = {}
        if row_result.validation_error is not None:
            for name, messages in row_result.validation_error.message_dict.items():
                errors[name if name in COLUMNS else "row"] = messages
        for error in row_result.errors:
            errors.setdefault("row", []).append(str(error.error))
        number = _text(dataset[n - 1][dataset.headers.index("number")])
        if number and first.setdefault(number, n) != n:
            errors["number"] = [f"Order {number} is also in row {first[number]}: one row per order."]
        entry = {"row": n, "number": number, "action": "error" if errors else _ACTIONS.get(row_result.import_type)}
        if errors:
            entry["errors"] = errors
        rows.append(entry)
    return rows


def orders_import(*, plant, dataset: tablib.Dataset, dry_run: bool) -> ImportReport:
    """Preview (``dry_run``) or apply an import of ``plant``'s orders, all or nothing."""
    with transaction.atomic():
        result = OrderResource(plant=plant).import_data(
            dataset, dry_run=True, use_transactions=True, raise_errors=False
        )
        report = ImportReport(dry_run=dry_run, rows=_rows(dataset, result))
        if dry_run or not report.valid:
            return report
        result = OrderResource(plant=plant).import_data(
            dataset, dry_run=False, use_transactions=True, raise_errors=False
        )
        report = ImportReport(dry_run=False, rows=_rows(dataset, result))
        if not report.valid:
            transaction.set_rollback(True)
    return report
