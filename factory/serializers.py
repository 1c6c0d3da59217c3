"""DRF helpers every app's API uses: strict input, service errors as 400s, plant-unique names, query times."""

import re

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers
from rest_framework.fields import get_error_detail

OUT_OF_RANGE = "Use a time between the years 1970 and 9000."
# An unencoded "+" in a query string arrives as a space: "...T10:00:00 01:00" meant "+01:00".
_SPACE_FOR_PLUS = re.compile(r"(T[\d:.]+) (\d\d:?\d\d)$")


def call_service(service, **kwargs):
    """Run a service and turn its Django ``ValidationError`` into a DRF 400 naming the field."""
    try:
        return service(**kwargs)
    except DjangoValidationError as exc:
        raise serializers.ValidationError(get_error_detail(exc)) from None


class UniqueNameInPlantMixin:
    """A name taken in the plant answers 400 on ``name``, on create and on rename.

    DRF's own unique-together check names no field and is skipped on updates (``plant`` is
    read-only there), which let a rename reach the database constraint and fail with a 500.
    """

    def validate(self, data):
        data = super().validate(data)
        plant = data.get("plant") or getattr(self.instance, "plant", None)
        name = data.get("name", getattr(self.instance, "name", None))
        clashes = self.Meta.model.objects.filter(plant=plant, name=name)
        if self.instance is not None:
            clashes = clashes.exclude(pk=self.instance.pk)
        if plant is not None and clashes.exists():
            what = self.Meta.model._meta.verbose_name
            raise serializers.ValidationError({"name": f"Plant '{plant.name}' already has a {what} named '{name}'."})
        return data


class FixedOnUpdateMixin:
    """Fields chosen on create that never change (``fixed_on_update``, ``plant`` by default).

    The request shape stays the one the schema documents for create and update alike: ``PUT``
    sends the whole object, these fields included (missing answers 400), and ``PATCH`` may. A
    value other than the current one answers 400 saying it cannot change; the same value is
    dropped, so the update never writes it.
    """

    fixed_on_update = ("plant",)

    def validate(self, data):
        data = super().validate(data)
        if self.instance is None:
            return data
        for name in self.fixed_on_update:
            if name not in data:
                continue
            value = data.pop(name)
            current = getattr(self.instance, name)
            if getattr(value, "pk", value) != getattr(current, "pk", current):
                what = self.Meta.model._meta.verbose_name
                raise serializers.ValidationError(
                    {name: [f"A {what}'s {name} cannot change (it is '{current}'). Create a new {what} instead."]}
                )
        return data

    def plant_for_create(self, data):
        return data["plant"]


class StrictStringsMixin:
    """Text fields take JSON strings only, as the schema says (``type: string``).

    DRF's ``CharField`` turns a number into its digits: ``{"reason": 0}`` would store "0".
    """

    def to_internal_value(self, data):
        if isinstance(data, dict):
            wrong = [
                name
                for name, field in self.fields.items()
                if isinstance(field, serializers.CharField) and not field.read_only
                and name in data and data[name] is not None and not isinstance(data[name], str)
            ]  # fmt: skip
            if wrong:
                raise serializers.ValidationError({name: ["Must be a string (text in quotes)."] for name in wrong})
        return super().to_internal_value(data)


class StrictSerializerMixin(StrictStringsMixin):
    """Reject fields the serializer does not know instead of silently ignoring them (and non-text
    values of text fields).

    A typo such as ``"ideal_cyle_time"`` would otherwise be accepted and lose the value.
    """

    def to_internal_value(self, data):
        if isinstance(data, dict):
            writable = {name for name, field in self.fields.items() if not field.read_only}
            unknown = sorted(set(data) - writable)
            if unknown:
                known = ", ".join(sorted(writable))
                raise serializers.ValidationError(
                    {name: [f"Unknown or read-only field. Writable fields: {known}."] for name in unknown}
                )
        return super().to_internal_value(data)


class IdField(serializers.IntegerField):
    """An object id in a query or action body: a whole number from 1 (a 20-digit one would overflow
    the database's integer: SQLite raises, a 500)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", 2**63 - 1)
        super().__init__(**kwargs)


class QueryDateTimeField(serializers.DateTimeField):
    """ISO 8601 with offset or ``Z``; a value without offset is read in the plant's time zone.

    Without an offset, a local time that occurs twice (DST ends) means its first occurrence, and
    one skipped when DST starts is read with the offset before the change.
    """

    def to_internal_value(self, value):
        if isinstance(value, str):
            value = _SPACE_FOR_PLUS.sub(r"\1+\2", value.strip())
        try:
            return super().to_internal_value(value)
        except OverflowError:  # DRF's own DST check converts to UTC, which fails near year 1
            raise serializers.ValidationError(OUT_OF_RANGE) from None
