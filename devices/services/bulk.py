"""Bulk import and export of devices (CSV and XLSX), for the admin and the API.

Built on django-import-export's ``ModelResource``: it reads the file (``tablib``), matches rows to
devices by ``uid`` and reports per row what it would do. On top of it this module adds what the
platform needs:

* every row is scoped to the plants the importing user administers: a plant, line or group of
  another plant is an error in that row, and a uid of another plant's device cannot be updated;
* all or nothing: ``devices_import`` applies only when every row is good, otherwise nothing;
* updates go through ``device_update`` (cycle-time history, MQTT broker on enable/disable), and
  the optional tokens through ``token_issue`` (hashed, and the broker's password when it is managed),
  all in one transaction, so a broker that does not answer applies nothing either.
"""

from dataclasses import dataclass, field

import tablib
from django.core.exceptions import ValidationError
from django.db import transaction
from import_export import fields, resources, widgets
from import_export.instance_loaders import CachedInstanceLoader
from import_export.results import RowResult
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

from accounts.roles import PERM_MANAGE
from accounts.selectors import plant_list_for
from devices.models import Device, DeviceGroup, Line
from devices.services.registry import device_update
from devices.services.tokens import token_issue

COLUMNS = (
    "uid", "name", "kind", "plant", "line", "model", "serial_number", "firmware_version", "ideal_cycle_time",
    "expected_interval", "enabled", "location", "description", "groups",
)  # fmt: skip
# A blank cell in these columns keeps the current value (the model's default for a new device).
_BLANK_KEEPS = {"kind", "enabled", "plant"}
FORMATS = ("csv", "xlsx")
CONTENT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
MAX_ROWS = 10_000
# A cell starting with one of these is a formula to a spreadsheet (CSV injection): the export
# prefixes it with a quote, which the import takes off again (OWASP's advice).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class BulkFileError(ValueError):
    """The file as a whole cannot be read (not CSV/XLSX, no uid column, too many rows)."""


def _key(value) -> str:
    return str(value).strip() if value is not None else ""


def _by_id_or_name(value, candidates, what: str, hint: str):
    """The one candidate whose id (digits) or name is ``value``; ``ValueError`` saying what to do."""
    text = _key(value)
    if text.isdigit():
        found = [c for c in candidates if c.pk == int(text)]
    else:
        found = [c for c in candidates if c.name == text]
    if len(found) == 1:
        return found[0]
    if len(found) > 1:
        raise ValueError(f"{what} '{text}' exists in several of your plants: {hint}")
    raise ValueError(f"No {what.lower()} '{text}' in the plants you administer: {hint}")


class _PlantWidget(widgets.Widget):
    def __init__(self, scope: "_Scope"):
        super().__init__()
        self.scope = scope

    def clean(self, value, row=None, **kwargs):
        return _by_id_or_name(value, self.scope.plants, "Plant", "use the name or id of a plant you administer.")

    def render(self, value, obj=None, **kwargs):
        return value.name if value is not None else ""


class _LineWidget(widgets.Widget):
    def __init__(self, scope: "_Scope"):
        super().__init__()
        self.scope = scope

    def clean(self, value, row=None, **kwargs):
        if not _key(value):
            return None
        plant = self.scope.plant_of_row(row)
        lines = [line for line in self.scope.lines if plant is None or line.plant_id == plant.pk]
        where = f"plant '{plant.name}'" if plant else "the plant column"
        return _by_id_or_name(value, lines, "Line", f"use the name or id of a line of {where}.")

    def render(self, value, obj=None, **kwargs):
        return value.name if value is not None else ""


class _GroupsWidget(widgets.ManyToManyWidget):
    """Group names separated by commas, all of the device's plant; blank: in no group."""

    def __init__(self, scope: "_Scope"):
        super().__init__(DeviceGroup, separator=",", field="name")
        self.scope = scope

    def clean(self, value, row=None, **kwargs):
        names = [name.strip() for name in _key(value).split(",") if name.strip()]
        if not names:
            return DeviceGroup.objects.none()
        plant = self.scope.plant_of_row(row)
        if plant is None:
            raise ValueError("Name the device's plant (or line) to put it in groups.")
        groups = {g.name: g for g in self.scope.groups if g.plant_id == plant.pk}
        missing = [name for name in names if name not in groups]
        if missing:
            raise ValueError(f"No group {', '.join(missing)} in plant '{plant.name}': create it first or fix the name.")
        return DeviceGroup.objects.filter(pk__in=[groups[name].pk for name in names])

    def render(self, value, obj=None, **kwargs):
        return ", ".join(sorted(g.name for g in value.all())) if value is not None else ""


@dataclass
class _Scope:
    """The plants, lines and groups an import may name, read once (not once per row)."""

    plants: list = field(default_factory=list)
    lines: list = field(default_factory=list)
    groups: list = field(default_factory=list)

    @classmethod
    def of(cls, user) -> "_Scope":
        plants = list(plant_list_for(user, PERM_MANAGE))
        return cls(
            plants=plants,
            lines=list(Line.objects.filter(plant__in=plants)),
            groups=list(DeviceGroup.objects.filter(plant__in=plants)),
        )

    def plant_of_row(self, row):
        """The row's plant (by its plant column, else its line's), or None when neither says."""
        try:
            if _key(row.get("plant")):
                return _by_id_or_name(row["plant"], self.plants, "Plant", "")
            if _key(row.get("line")):
                line = _by_id_or_name(row["line"], self.lines, "Line", "")
                return next(p for p in self.plants if p.pk == line.plant_id)
        except ValueError:
            return None
        return None


class DeviceResource(resources.ModelResource):
    """Devices as rows: ``uid`` is the key; plant, line and groups by name (or id)."""

    def __init__(self, user=None, scope: _Scope | None = None):
        super().__init__()
        self.user = user
        self.scope = scope or (_Scope.of(user) if user is not None else _Scope())
        self.fields["plant"] = fields.Field("plant", "plant", widget=_PlantWidget(self.scope))
        self.fields["line"] = fields.Field("line", "line", widget=_LineWidget(self.scope))
        self.fields["groups"] = fields.Field("groups", "groups", widget=_GroupsWidget(self.scope), m2m_add=False)
        self.created: list[Device] = []

    class Meta:
        model = Device
        fields = COLUMNS
        export_order = COLUMNS
        import_id_fields = ["uid"]
        clean_model_instances = True
        instance_loader_class = CachedInstanceLoader
        skip_unchanged = True  # an exported file imported back reports its untouched rows "unchanged"
        report_skipped = True

    def get_queryset(self):
        """Only devices of the user's plants are found by uid (another plant's uid cannot be updated)."""
        return Device.objects.filter(plant__in=self.scope.plants)

    def import_field(self, field, instance, row, is_m2m=False, **kwargs):
        if field.column_name in _BLANK_KEEPS and not _key(row.get(field.column_name)):
            return
        super().import_field(field, instance, row, is_m2m=is_m2m, **kwargs)

    def import_instance(self, instance, row, **kwargs):
        old_plant = instance.plant_id if instance.pk else None
        errors = {}
        try:
            super().import_instance(instance, row, **kwargs)
        except ValidationError as exc:
            errors = exc.update_error_dict(errors)
        if instance.plant_id is None and instance.line_id is not None:
            instance.plant = next(p for p in self.scope.plants if p.pk == instance.line.plant_id)
        if instance.plant_id is None and "plant" not in errors:
            fix = "fix the line" if "line" in errors else "give the device's plant or line (name or id)"
            errors["plant"] = [f"No plant for this device: {fix}."]
        if "groups" in row:  # many-to-many values are set after the save: check them before, as a field
            try:
                self.fields["groups"].widget.clean(row["groups"], row=row)
            except ValueError as exc:
                errors["groups"] = [str(exc)]
        if old_plant is not None and instance.plant_id != old_plant:
            errors["plant"] = ["A device never changes plant: keep its plant, or delete it and import it in the other."]
        if errors:
            raise ValidationError(errors)

    def save_instance(self, instance, is_create, row, **kwargs):
        if is_create or self._is_dry_run(kwargs):
            super().save_instance(instance, is_create, row, **kwargs)
        else:
            device_update(device=instance)  # cycle-time history and the broker, as every edit
        if is_create:
            self.created.append(instance)


@dataclass
class ImportReport:
    dry_run: bool
    rows: list[dict]
    tokens: list[dict] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return not any(row["action"] == "error" for row in self.rows)

    @property
    def totals(self) -> dict:
        totals = {"create": 0, "update": 0, "unchanged": 0, "error": 0}
        for row in self.rows:
            totals[row["action"]] += 1
        return totals

    @property
    def applied(self) -> bool:
        return self.valid and not self.dry_run

    def as_dict(self) -> dict:
        data = {"dry_run": self.dry_run, "valid": self.valid, "applied": self.applied}
        data |= {"totals": self.totals, "rows": self.rows}
        if self.tokens:
            data["tokens"] = self.tokens
        return data


def read_dataset(content: bytes, name: str = "") -> tablib.Dataset:
    """A dataset from an uploaded file: XLSX (by its zip signature) or CSV (UTF-8, BOM allowed)."""
    try:
        if content[:2] == b"PK" or name.lower().endswith(".xlsx"):
            dataset = tablib.Dataset().load(content, format="xlsx")
        else:
            dataset = tablib.Dataset().load(content.decode("utf-8-sig"), format="csv")
    except UnicodeDecodeError as exc:
        raise BulkFileError("The file is not UTF-8 text: save it as CSV UTF-8 or as XLSX.") from exc
    except Exception as exc:  # tablib/openpyxl raise many kinds for a file they cannot read
        raise BulkFileError("Could not read the file: upload a CSV (UTF-8) or XLSX file with a header row.") from exc
    headers = [_key(h).lower() for h in dataset.headers or []]
    if "uid" not in headers:
        raise BulkFileError(f"The first row must name the columns, 'uid' among them: {', '.join(COLUMNS)}.")
    unknown = [h for h in headers if h and h not in COLUMNS]
    if unknown:
        raise BulkFileError(f"Unknown column(s) {', '.join(unknown)}: use {', '.join(COLUMNS)}.")
    twice = sorted({h for h in headers if h and headers.count(h) > 1})
    if twice:
        raise BulkFileError(f"Column(s) {', '.join(twice)} appear more than once: keep one of each.")
    if dataset.height == 0:
        raise BulkFileError("The file has a header row but no devices: add one row per device.")
    if dataset.height > MAX_ROWS:
        raise BulkFileError(f"{dataset.height} rows: import at most {MAX_ROWS} at a time (split the file).")
    # Empty XLSX cells read as None: make them blank cells, as in CSV.
    rows = [tuple(_unescape(cell) for cell in row) for row in dataset]
    return tablib.Dataset(*rows, headers=headers)


def _unescape(cell):
    if cell is None:
        return ""
    if isinstance(cell, str) and cell[:1] == "'" and cell[1:2] and cell[1:].startswith(_FORMULA_START):
        return cell[1:]
    return cell


def _escape(cell, file_format: str):
    if not isinstance(cell, str):
        return cell
    if file_format == "xlsx":
        cell = ILLEGAL_CHARACTERS_RE.sub("", cell)  # control characters an XLSX cannot hold
    return f"'{cell}" if cell.startswith(_FORMULA_START) else cell


def _messages(row_result) -> dict:
    errors = {}
    if row_result.validation_error is not None:
        for name, messages in row_result.validation_error.message_dict.items():
            errors[name if name in COLUMNS else "row"] = messages
    for error in row_result.errors:
        errors.setdefault("row", []).append(str(error.error))
    return errors


def devices_import(
    *,
    user,
    dataset: tablib.Dataset,
    dry_run: bool,
    issue_tokens: bool = False,
    token_name: str = "import",  # noqa: S107 (a token's label)
) -> ImportReport:
    """Preview (``dry_run``) or apply an import, all or nothing; per row: create, update or error.

    With ``issue_tokens`` each created device gets a token named ``token_name``; the plain tokens
    are in the returned report only. Raises ``broker.BrokerError`` (nothing applied) when the MQTT
    broker does not answer.
    """
    resource = DeviceResource(user=user)
    with transaction.atomic():
        result = resource.import_data(dataset, dry_run=True, use_transactions=True, raise_errors=False)
        report = ImportReport(dry_run=dry_run, rows=_rows(dataset, result))
        if dry_run or not report.valid:
            return report
        # Valid: apply for real (the preview was rolled back), in this transaction. Two passes, so
        # that the broker (told of enable/disable and tokens as rows save) hears only of an import
        # that applies: a database rollback cannot take back what the broker was told.
        resource = DeviceResource(user=user, scope=resource.scope)
        result = resource.import_data(dataset, dry_run=False, use_transactions=True, raise_errors=False)
        report = ImportReport(dry_run=False, rows=_rows(dataset, result))
        if not report.valid:  # changed under us between the two passes
            transaction.set_rollback(True)
            return report
        if issue_tokens:
            for device in resource.created:
                _, plain = token_issue(device=device, name=token_name, by=user)
                report.tokens.append({"uid": device.uid, "token": plain})
    return report


_ACTIONS = {
    RowResult.IMPORT_TYPE_NEW: "create",
    RowResult.IMPORT_TYPE_UPDATE: "update",
    RowResult.IMPORT_TYPE_SKIP: "unchanged",
}


def _rows(dataset, result) -> list[dict]:
    rows, first_row = [], {}
    for number, row_result in enumerate(result.rows, start=1):
        errors = _messages(row_result)
        uid = _key(dataset[number - 1][dataset.headers.index("uid")])
        if uid and first_row.setdefault(uid, number) != number:
            errors["uid"] = [f"uid '{uid}' is also in row {first_row[uid]}: one row per device."]
        entry = {"row": number, "uid": uid, "action": "error" if errors else _ACTIONS.get(row_result.import_type)}
        if errors:
            entry["errors"] = errors
        rows.append(entry)
    return rows


def devices_export(devices, file_format: str) -> bytes:
    """``devices`` (already scoped to what the user may see) as CSV or XLSX bytes, re-importable."""
    if file_format not in FORMATS:
        raise BulkFileError(f"Unknown format {file_format!r}: use csv or xlsx.")
    queryset = devices.select_related("plant", "line").prefetch_related("groups").order_by("uid")
    exported = DeviceResource().export(queryset=queryset)
    dataset = tablib.Dataset(*[[_escape(c, file_format) for c in row] for row in exported], headers=exported.headers)
    data = dataset.export(file_format)
    return data.encode() if isinstance(data, str) else data


def tokens_csv(tokens: list[dict]) -> bytes:
    """The issued tokens as ``uid,token`` CSV (the only copy there will be)."""
    dataset = tablib.Dataset(headers=["uid", "token"])
    for entry in tokens:
        dataset.append([entry["uid"], entry["token"]])
    return dataset.export("csv").encode()
