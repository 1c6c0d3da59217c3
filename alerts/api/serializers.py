from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers
from rest_framework.fields import get_error_detail

from accounts.api.scoping import ScopedPrimaryKeyRelatedField
from accounts.models import User
from accounts.roles import PERM_MANAGE, Role
from accounts.selectors import plant_list_for
from alerts.models import (
    Alarm,
    AlarmEvent,
    AlertRule,
    Delivery,
    NotificationChannel,
    NotificationMute,
    NotificationRoute,
    Severity,
)
from alerts.notifiers import NOTIFIERS, kind_enabled, notifier_class
from alerts.notifiers.webhook import MASK
from devices.models import Device, DeviceGroup, Line, Plant
from factory.serializers import FixedOnUpdateMixin, IdField, StrictSerializerMixin, UniqueNameInPlantMixin


def _plant_field():
    return ScopedPrimaryKeyRelatedField(plant_field="", queryset=Plant.objects.all())


class ModelCleanMixin:
    """Run the model's ``clean()`` on the would-be row so its rules answer 400 with field errors."""

    def validate(self, data):
        data = super().validate(data)
        instance = self.Meta.model() if self.instance is None else self.Meta.model.objects.get(pk=self.instance.pk)
        for name, value in data.items():
            if not isinstance(self.fields.get(name), serializers.ManyRelatedField):
                setattr(instance, name, value)
        try:
            instance.clean()
        except DjangoValidationError as exc:
            raise serializers.ValidationError(get_error_detail(exc)) from None
        return data


class AlertRuleSerializer(
    FixedOnUpdateMixin, ModelCleanMixin, UniqueNameInPlantMixin, StrictSerializerMixin, serializers.ModelSerializer
):
    plant = _plant_field()
    line = ScopedPrimaryKeyRelatedField(queryset=Line.objects.all(), required=False, allow_null=True)
    group = ScopedPrimaryKeyRelatedField(queryset=DeviceGroup.objects.all(), required=False, allow_null=True)
    device = ScopedPrimaryKeyRelatedField(queryset=Device.objects.all(), required=False, allow_null=True)

    class Meta:
        model = AlertRule
        fields = [
            "id", "plant", "name", "description", "action", "scope", "line", "group", "device", "device_model",
            "metric", "condition", "threshold", "threshold_high", "clear_threshold", "clear_threshold_high", "state",
            "no_data_seconds", "severity", "on_delay", "off_delay", "realarm_seconds", "enabled", "created_at",
            "updated_at",
        ]  # fmt: skip
        validators = []  # the (plant, name) check is UniqueNameInPlantMixin's, with a field error


class AlarmSerializer(serializers.ModelSerializer):
    rule_name = serializers.CharField(source="rule.name", read_only=True)
    action = serializers.CharField(source="rule.action", read_only=True, help_text="What the operator should do.")
    device_uid = serializers.CharField(source="device.uid", read_only=True)
    line = serializers.IntegerField(source="device.line_id", read_only=True, allow_null=True)
    device_state = serializers.CharField(source="device.state", read_only=True, help_text="The machine's state now.")
    shelved = serializers.SerializerMethodField()
    acknowledged_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    shelved_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    # The rule's limit, so a page shows "0.063 mm/s, limit > 0.06 mm/s" with the metric's unit.
    metric = serializers.CharField(
        source="rule.metric", read_only=True, help_text="The rule's metric; '' for state rules."
    )
    condition = serializers.CharField(source="rule.condition", read_only=True)
    threshold = serializers.FloatField(source="rule.threshold", read_only=True, allow_null=True)
    threshold_high = serializers.FloatField(source="rule.threshold_high", read_only=True, allow_null=True)
    clear_threshold = serializers.FloatField(source="rule.clear_threshold", read_only=True, allow_null=True)
    clear_threshold_high = serializers.FloatField(source="rule.clear_threshold_high", read_only=True, allow_null=True)

    class Meta:
        model = Alarm
        fields = [
            "id", "plant", "rule", "rule_name", "device", "device_uid", "line", "device_state", "severity", "state",
            "shelved", "suppressed", "message", "action", "value", "metric", "condition", "threshold",
            "threshold_high", "clear_threshold", "clear_threshold_high", "raised_at", "acknowledged_at",
            "acknowledged_by", "cleared_at", "closed_at", "resolution", "shelved_until", "shelved_reason", "shelved_by",
            "notify_count",
        ]  # fmt: skip
        read_only_fields = fields

    def get_shelved(self, alarm) -> bool:
        return alarm.is_shelved(self.context["now"])


class AlarmResultSerializer(AlarmSerializer):
    detail = serializers.CharField(help_text="What happened, e.g. 'Already acknowledged by ann at ...'.")
    changed = serializers.BooleanField(help_text="False when the action was already done (a no-op).")

    class Meta(AlarmSerializer.Meta):
        fields = [*AlarmSerializer.Meta.fields, "detail", "changed"]


class AlarmEventSerializer(serializers.ModelSerializer):
    user = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)

    class Meta:
        model = AlarmEvent
        fields = ["id", "alarm", "kind", "at", "user", "comment", "value", "state"]
        read_only_fields = fields


class CommentSerializer(StrictSerializerMixin, serializers.Serializer):
    comment = serializers.CharField(required=False, allow_blank=True, max_length=2000, default="")


class ShelveSerializer(StrictSerializerMixin, serializers.Serializer):
    reason = serializers.CharField(max_length=255)
    minutes = serializers.IntegerField(min_value=1, help_text="How long; at most ALARM_SHELVE_MAX_MINUTES.")


class ResolveSerializer(StrictSerializerMixin, serializers.Serializer):
    note = serializers.CharField(max_length=2000, help_text="The resolution note (required).")


class CountsQuerySerializer(serializers.Serializer):
    plant = serializers.ListField(child=IdField(), required=False)
    per_device = serializers.BooleanField(default=False)


class KpiQuerySerializer(serializers.Serializer):
    plant = IdField()
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()

    def validate(self, data):
        if data["end"] <= data["start"]:
            raise serializers.ValidationError({"end": "Must be after start."})
        if (data["end"] - data["start"]).days > 366:
            raise serializers.ValidationError({"end": "At most 366 days per query."})
        return data


class AdminOnlyErrorMixin:
    """Delivery errors are for the plant's admins: other roles read ``error_field`` as empty.

    An error names the receiver's host and what it answered; a viewer has no business with it.
    The plants the user administers are looked up once per response (cached in the context).
    """

    error_field = "error"

    def to_representation(self, instance):
        data = super().to_representation(instance)
        managed = self.context.get("_managed_plants")
        if managed is None:
            request = self.context.get("request")
            user = getattr(request, "user", None)
            managed = set(plant_list_for(user, PERM_MANAGE).values_list("pk", flat=True)) if user else set()
            self.context["_managed_plants"] = managed
        if instance.plant_id not in managed:
            data[self.error_field] = ""
        return data


class ChannelSerializer(
    AdminOnlyErrorMixin, FixedOnUpdateMixin, UniqueNameInPlantMixin, StrictSerializerMixin, serializers.ModelSerializer
):
    plant = _plant_field()
    kind = serializers.ChoiceField(choices=sorted(NOTIFIERS))
    config = serializers.JSONField(required=False, help_text="Per kind; see README. Secrets are shown masked.")

    class Meta:
        model = NotificationChannel
        fields = ["id", "plant", "name", "kind", "config", "enabled", "status", "last_error", "failed_at", "created_at"]
        read_only_fields = ["status", "last_error", "failed_at", "created_at"]
        extra_kwargs = {"last_error": {"help_text": "Why it is failing: plant admins only (empty for other roles)."}}
        validators = []

    error_field = "last_error"

    def to_representation(self, instance):
        data = super().to_representation(instance)
        data["config"] = notifier_class(instance.kind).public_config(instance.config or {})
        return data

    def validate(self, data):
        data = super().validate(data)
        kind = data.get("kind", getattr(self.instance, "kind", None))
        if self.instance is not None and "kind" in data and data["kind"] != self.instance.kind:
            raise serializers.ValidationError({"kind": "The kind of a channel cannot change; create a new one."})
        if not kind_enabled(kind):
            raise serializers.ValidationError({"kind": f"Channel kind '{kind}' is switched off on this server."})
        config = data.get("config", getattr(self.instance, "config", {}) if self.instance else {})
        if not isinstance(config, dict):
            raise serializers.ValidationError({"config": "Must be a JSON object."})
        if self.instance is not None and config.get("secret") == MASK:
            config = {**config, "secret": self.instance.config.get("secret")}
        schema = notifier_class(kind).config_schema(data=config)
        if not schema.is_valid():
            raise serializers.ValidationError({"config": schema.errors})
        unknown = sorted(set(config) - set(schema.fields))
        if unknown:
            raise serializers.ValidationError({"config": {name: ["Unknown setting."] for name in unknown}})
        data["config"] = {k: v for k, v in config.items() if v is not None}
        return data

    def save(self, **kwargs):
        # Saving is how an admin fixes a failing channel: give it a fresh start.
        return super().save(status=NotificationChannel.Status.OK, last_error="", failed_at=None, **kwargs)


class RouteSerializer(FixedOnUpdateMixin, StrictSerializerMixin, serializers.ModelSerializer):
    plant = _plant_field()
    channel = ScopedPrimaryKeyRelatedField(queryset=NotificationChannel.objects.all())
    severities = serializers.ListField(child=serializers.ChoiceField(choices=Severity.choices), min_length=1)
    roles = serializers.ListField(child=serializers.ChoiceField(choices=Role.choices), required=False)
    users = serializers.PrimaryKeyRelatedField(queryset=User.objects.all(), many=True, required=False)

    class Meta:
        model = NotificationRoute
        fields = ["id", "plant", "channel", "severities", "roles", "users", "delay_minutes", "enabled", "created_at"]
        read_only_fields = ["created_at"]

    def validate(self, data):
        data = super().validate(data)
        plant = data.get("plant") or self.instance.plant
        channel = data.get("channel") or self.instance.channel
        if channel.plant_id != plant.pk:
            raise serializers.ValidationError({"channel": "This channel belongs to another plant than the route."})
        members = set(
            User.objects.filter(
                groups__plant_role__plant=plant, pk__in=[u.pk for u in data.get("users", [])]
            ).values_list("pk", flat=True)
        )
        strangers = [u.pk for u in data.get("users", []) if u.pk not in members]
        if strangers:
            raise serializers.ValidationError({"users": f"Not members of plant '{plant.name}': {strangers}."})
        return data


class MuteSerializer(StrictSerializerMixin, serializers.ModelSerializer):
    device = ScopedPrimaryKeyRelatedField(queryset=Device.objects.all())
    minutes = serializers.IntegerField(write_only=True, min_value=1, max_value=7 * 24 * 60)

    class Meta:
        model = NotificationMute
        fields = ["id", "device", "minutes", "until", "created_at"]
        read_only_fields = ["until", "created_at"]


class DeliverySerializer(AdminOnlyErrorMixin, serializers.ModelSerializer):
    alarms = serializers.SerializerMethodField()

    class Meta:
        model = Delivery
        fields = [
            "id",
            "channel",
            "plant",
            "status",
            "scheduled_at",
            "sent_at",
            "attempts",
            "error",
            "duration_ms",
            "alarms",
        ]
        read_only_fields = fields
        extra_kwargs = {"error": {"help_text": "Status and reason of the last failure: plant admins only."}}

    def get_alarms(self, delivery) -> list[int]:
        return sorted({event.alarm_id for event in delivery.events.all()})


class KpiActorSerializer(serializers.Serializer):
    rule_id = serializers.IntegerField()
    rule = serializers.CharField()
    device_id = serializers.IntegerField()
    device = serializers.CharField()
    count = serializers.IntegerField()


class KpiWindowSerializer(serializers.Serializer):
    start = serializers.DateTimeField()
    count = serializers.IntegerField()


class KpiPairSerializer(serializers.Serializer):
    rule_id = serializers.IntegerField()
    device_id = serializers.IntegerField()


class AlarmKpisSerializer(serializers.Serializer):
    """The alarm KPIs of one plant and period (documentation of ``GET alarms/kpis/``)."""

    plant = serializers.IntegerField()
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    total_alarms = serializers.IntegerField(help_text="Annunciations: alarms raised or returned to active.")
    alarms_per_10min_avg = serializers.FloatField()
    alarms_per_10min_peak = serializers.IntegerField()
    flood_windows = serializers.IntegerField(help_text="10-minute windows with more than 10 alarms.")
    flood_percent = serializers.FloatField()
    chattering_alarms = serializers.IntegerField(help_text="(rule, device) with >= 3 transitions within a minute.")
    chattering = KpiPairSerializer(many=True)
    stale_alarms = serializers.IntegerField(help_text="Active for more than 24 h at the end of the period.")
    top_bad_actors = KpiActorSerializer(many=True)
    priority_distribution = serializers.DictField(child=serializers.IntegerField())
    mean_time_to_acknowledge_seconds = serializers.FloatField(allow_null=True)
    acknowledged = serializers.IntegerField()
    series = KpiWindowSerializer(many=True)
