from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers

from accounts.api.scoping import ScopedPrimaryKeyRelatedField
from devices.models import Device, DeviceGroup, Line, Plant
from factory.serializers import StrictSerializerMixin, StrictStringsMixin, call_service
from firmware.models import FirmwareImage, Rollout, RolloutEvent, RolloutTarget, RolloutTargetEvent, validate_semver
from firmware.services.images import image_create
from firmware.services.rollouts import rollout_create, rollout_progress
from firmware.services.stages import parse_stages


class FirmwareImageSerializer(StrictSerializerMixin, serializers.ModelSerializer):
    """An image. Upload as ``multipart/form-data`` with ``file``; ``hardware_models`` repeated or comma-separated."""

    plant = ScopedPrimaryKeyRelatedField(plant_field="", queryset=Plant.objects.all())
    hardware_models = serializers.ListField(child=serializers.CharField(max_length=100), allow_empty=False)
    file = serializers.FileField(write_only=True)
    declared_sha256 = serializers.RegexField(
        r"^[0-9a-fA-F]{64}$", write_only=True, required=False, help_text="Refuse the upload unless the file has it."
    )
    created_by = serializers.StringRelatedField(allow_null=True)

    class Meta:
        model = FirmwareImage
        fields = ["id", "plant", "version", "hardware_models", "release_notes", "file", "declared_sha256", "size",
                  "sha256", "signature", "created_by", "created_at"]  # fmt: skip
        read_only_fields = ["size", "sha256", "signature", "created_at"]

    def to_internal_value(self, data):
        if hasattr(data, "getlist") and "hardware_models" in data:
            values = [part.strip() for item in data.getlist("hardware_models") for part in item.split(",")]
            data = data.copy()
            data.setlist("hardware_models", [v for v in values if v])
        return super().to_internal_value(data)

    def validate_version(self, value):
        try:
            validate_semver(value)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.messages) from None
        return value

    def plant_for_create(self, data):
        return data["plant"]

    def create(self, validated_data):
        return call_service(
            image_create,
            plant=validated_data["plant"],
            version=validated_data["version"],
            hardware_models=validated_data["hardware_models"],
            file=validated_data["file"],
            release_notes=validated_data.get("release_notes", ""),
            declared_sha256=validated_data.get("declared_sha256", ""),
            by=self.context["request"].user,
        )


class RolloutTargetSerializer(serializers.ModelSerializer):
    device_uid = serializers.CharField(source="device.uid", read_only=True)
    version = serializers.CharField(source="image.version", read_only=True)

    class Meta:
        model = RolloutTarget
        fields = ["id", "device", "device_uid", "stage", "status", "detail", "version", "previous_version",
                  "attempts", "progress_at"]  # fmt: skip


class RolloutTargetEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = RolloutTargetEvent
        fields = ["at", "status", "detail"]


class RolloutEventSerializer(serializers.ModelSerializer):
    by = serializers.StringRelatedField(allow_null=True, help_text="Who acted; null for the system's own steps.")

    class Meta:
        model = RolloutEvent
        fields = ["at", "action", "by", "detail"]


class StageProgressSerializer(serializers.Serializer):
    stage = serializers.IntegerField()
    total = serializers.IntegerField()
    counts = serializers.DictField(child=serializers.IntegerField())


class RolloutSerializer(StrictSerializerMixin, serializers.ModelSerializer):
    """A rollout. Create with ``image`` and one of ``line``, ``group`` or ``devices`` (or none: the
    whole plant); only compatible devices become targets."""

    plant = ScopedPrimaryKeyRelatedField(plant_field="", queryset=Plant.objects.all())
    image = ScopedPrimaryKeyRelatedField(queryset=FirmwareImage.objects.all(), allow_null=True)
    line = ScopedPrimaryKeyRelatedField(queryset=Line.objects.all(), write_only=True, required=False)
    group = ScopedPrimaryKeyRelatedField(queryset=DeviceGroup.objects.all(), write_only=True, required=False)
    devices = ScopedPrimaryKeyRelatedField(queryset=Device.objects.all(), many=True, write_only=True, required=False)
    stages = serializers.JSONField(
        help_text='Stage sizes: device counts or cumulative shares, e.g. [1, "25%", "100%"].'
    )
    success_threshold = serializers.IntegerField(min_value=0, max_value=100, default=100)
    error_threshold = serializers.IntegerField(min_value=0, max_value=100, default=20)
    version = serializers.CharField(source="image.version", read_only=True, default=None, allow_null=True)
    progress = serializers.SerializerMethodField()
    created_by = serializers.StringRelatedField(allow_null=True)

    class Meta:
        model = Rollout
        fields = ["id", "plant", "name", "image", "version", "line", "group", "devices", "state", "stages",
                  "current_stage", "success_threshold", "error_threshold", "auto_advance", "awaiting_approval",
                  "scheduled_at", "pause_reason", "rollback_of", "created_by", "created_at", "started_at",
                  "finished_at", "progress"]  # fmt: skip
        read_only_fields = ["state", "current_stage", "awaiting_approval", "pause_reason", "rollback_of",
                            "created_at", "started_at", "finished_at"]  # fmt: skip

    def validate_stages(self, value):
        try:
            parse_stages(value)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.message_dict["stages"]) from None
        return value

    def validate(self, data):
        if self.instance is None and data.get("image") is None:
            raise serializers.ValidationError({"image": "Choose the image to roll out."})
        plant = data.get("plant")
        for name in ("image", "line", "group"):
            if data.get(name) is not None and data[name].plant_id != plant.pk:
                raise serializers.ValidationError({name: "It belongs to another plant than the rollout."})
        if any(d.plant_id != plant.pk for d in data.get("devices", [])):
            raise serializers.ValidationError({"devices": "Every device must belong to the rollout's plant."})
        return data

    def get_progress(self, rollout) -> list[dict]:
        return StageProgressSerializer(rollout_progress(rollout), many=True).data

    def plant_for_create(self, data):
        return data["plant"]

    def create(self, validated_data):
        return call_service(rollout_create, **validated_data, by=self.context["request"].user)


class RolloutActionSerializer(StrictStringsMixin, serializers.Serializer):
    reason = serializers.CharField(max_length=255, required=False, allow_blank=True)
