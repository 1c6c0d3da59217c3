"""OEE API shapes: shifts (CONTRACT.md ``POST /api/v1/shifts/``), reason codes, stops and the OEE query."""

from datetime import UTC, datetime, time

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.api.scoping import ScopedPrimaryKeyRelatedField
from analytics.models import LossCategory, OEEReport, ReasonCode, Shift
from analytics.selectors import GROUP_BY
from analytics.services import reason_code_create, shift_save
from devices.models import Plant
from factory.serializers import FixedOnUpdateMixin, IdField, QueryDateTimeField, StrictSerializerMixin, call_service

HHMM = ["%H:%M", "%H:%M:%S"]


# CONTRACT.md fixes "HH:MM" (not OpenAPI's ``format: time``, which is RFC 3339's "HH:MM:SS").
@extend_schema_field({"type": "string", "pattern": r"^([01]\d|2[0-3]):[0-5]\d$"})
class HHMMField(serializers.TimeField):
    def __init__(self, **kwargs):
        super().__init__(format="%H:%M", input_formats=HHMM, **kwargs)

    def to_internal_value(self, value) -> time:
        value = super().to_internal_value(value)
        return value.replace(second=0, microsecond=0)


class BreakSerializer(StrictSerializerMixin, serializers.Serializer):
    start = HHMMField()
    end = HHMMField()


class ShiftSerializer(FixedOnUpdateMixin, StrictSerializerMixin, serializers.ModelSerializer):
    plant = ScopedPrimaryKeyRelatedField(plant_field="", queryset=Plant.objects.all())
    start = HHMMField(help_text="Local wall-clock time HH:MM.")
    end = HHMMField(help_text="HH:MM; earlier than start crosses midnight, equal to start is 24 hours.")
    weekdays = serializers.ListField(
        child=serializers.IntegerField(min_value=0, max_value=6), allow_empty=False, help_text="Monday is 0."
    )
    breaks = BreakSerializer(many=True, required=False, default=list)

    class Meta:
        model = Shift
        fields = ["id", "plant", "name", "start", "end", "weekdays", "breaks", "created_at", "updated_at"]
        validators = []  # names are checked in validate(), naming the field

    def validate(self, data):
        plant = data.get("plant") or getattr(self.instance, "plant", None)
        name = data.get("name", getattr(self.instance, "name", None))
        clashes = Shift.objects.filter(plant=plant, name=name).exclude(pk=getattr(self.instance, "pk", None))
        if clashes.exists():
            raise serializers.ValidationError({"name": [f"Plant '{plant}' already has a shift named '{name}'."]})
        return super().validate(data)

    def to_representation(self, instance):
        body = super().to_representation(instance)
        body["breaks"] = [{"start": f"{b.start:%H:%M}", "end": f"{b.end:%H:%M}"} for b in instance.breaks.all()]
        return body

    def _save(self, data, instance=None):
        current = {
            "name": getattr(instance, "name", None),
            "start": getattr(instance, "start", None),
            "end": getattr(instance, "end", None),
            "weekdays": getattr(instance, "weekdays", None),
            "breaks": [{"start": b.start, "end": b.end} for b in instance.breaks.all()] if instance else [],
        }
        merged = {**current, **data}
        plant = instance.plant if instance else data["plant"]
        merged.pop("plant", None)
        return call_service(shift_save, plant=plant, shift=instance, **merged)

    def create(self, validated_data):
        return self._save(validated_data)

    def update(self, instance, validated_data):
        return self._save(validated_data, instance)


class ReasonCodeSerializer(StrictSerializerMixin, serializers.ModelSerializer):
    plant = ScopedPrimaryKeyRelatedField(plant_field="", queryset=Plant.objects.all())
    category = serializers.ChoiceField(choices=LossCategory.choices)

    class Meta:
        model = ReasonCode
        fields = ["id", "plant", "code", "name", "category"]
        validators = []

    def plant_for_create(self, data):
        return data["plant"]

    def create(self, validated_data):
        return call_service(reason_code_create, **validated_data)


class StopSerializer(serializers.Serializer):
    device = serializers.IntegerField()
    start = serializers.DateTimeField(help_text="When the stop began (its state message's ts): the stop's key.")
    end = serializers.DateTimeField(allow_null=True)
    state = serializers.CharField()
    planned_seconds = serializers.FloatField(help_text="Part of the stop inside planned production time.")
    reason = serializers.IntegerField(allow_null=True)
    category = serializers.CharField(help_text="Loss category: the reason's, or automatic.")


class StopClassifySerializer(StrictSerializerMixin, serializers.Serializer):
    device = IdField(help_text="Machine id; another plant's machine answers 404.")
    start = serializers.DateTimeField()
    reason = serializers.PrimaryKeyRelatedField(queryset=ReasonCode.objects.all())
    note = serializers.CharField(max_length=255, required=False, default="", allow_blank=True)

    def validate_start(self, value: datetime) -> datetime:
        return value.astimezone(UTC)


class ShiftOccurrenceSerializer(serializers.Serializer):
    """One occurrence of a shift: ``[start, end)`` in UTC, on the plant-local ``day`` it starts."""

    shift = serializers.IntegerField(source="shift_id")
    name = serializers.CharField()
    day = serializers.DateField()
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()


class CurrentShiftSerializer(serializers.Serializer):
    """The shift running now (None between shifts) and the next one to start (None if none within 8 days)."""

    plant = serializers.IntegerField()
    now = serializers.DateTimeField()
    current = ShiftOccurrenceSerializer(allow_null=True)
    next = ShiftOccurrenceSerializer(allow_null=True)


class OEEQuerySerializer(serializers.Serializer):
    device = IdField(required=False, help_text="Machine id (or line, or plant).")
    line = IdField(required=False)
    plant = IdField(required=False)
    start = QueryDateTimeField(required=False, help_text="ISO 8601; default: today's local midnight.")
    end = QueryDateTimeField(required=False, help_text="ISO 8601, exclusive; default and cap: now.")
    group_by = serializers.ChoiceField(choices=GROUP_BY, default="day")
    per_device = serializers.BooleanField(default=False, help_text="Add each machine's total (for overview tiles).")

    def validate(self, data):
        chosen = [name for name in ("device", "line", "plant") if data.get(name) is not None]
        if len(chosen) != 1:
            raise serializers.ValidationError({"device": ["Give exactly one of device, line or plant."]})
        return data


class OEEFiguresSerializer(serializers.Serializer):
    """One period (or the total): inputs, factors (percent, 2 decimals), MTBF/MTTR and losses."""

    start = serializers.DateTimeField(required=False)
    end = serializers.DateTimeField(required=False)
    calendar_seconds = serializers.FloatField()
    planned_seconds = serializers.FloatField()
    planned_stop_seconds = serializers.FloatField()
    run_seconds = serializers.FloatField()
    stop_seconds = serializers.FloatField()
    data_gap_seconds = serializers.FloatField()
    stop_seconds_by_state = serializers.DictField(child=serializers.FloatField())
    total_count = serializers.IntegerField()
    good_count = serializers.IntegerField()
    ideal_seconds = serializers.FloatField()
    ideal_cycle_time = serializers.FloatField(allow_null=True)
    availability = serializers.FloatField(allow_null=True)
    performance = serializers.FloatField(allow_null=True)
    quality = serializers.FloatField(allow_null=True)
    oee = serializers.FloatField(allow_null=True)
    teep = serializers.FloatField(allow_null=True)
    down_episodes = serializers.IntegerField()
    mtbf_seconds = serializers.FloatField(allow_null=True)
    mttr_seconds = serializers.FloatField(allow_null=True)
    losses = serializers.DictField(child=serializers.DictField())


class OEEResultSerializer(serializers.Serializer):
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    group_by = serializers.CharField()
    periods = OEEFiguresSerializer(many=True)
    total = OEEFiguresSerializer()
    devices = serializers.ListField(child=serializers.DictField(), required=False)


class OEEReportSerializer(serializers.ModelSerializer):
    revised = serializers.BooleanField(read_only=True)
    csv_url = serializers.SerializerMethodField()

    class Meta:
        model = OEEReport
        fields = [
            "id", "plant", "kind", "label", "period_start", "period_end", "status", "revision", "revised",
            "computed_at", "data", "csv_url",
        ]  # fmt: skip

    def get_csv_url(self, report) -> str:
        return f"/api/v1/analytics/reports/{report.pk}/csv/"
