from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers
from rest_framework.fields import get_error_detail

from commands.models import Command, CommandDefinition, CommandEvent
from factory.serializers import StrictSerializerMixin


class CommandEventSerializer(serializers.ModelSerializer):
    by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = CommandEvent
        fields = ["state", "at", "via", "by", "detail"]


class CommandSerializer(serializers.ModelSerializer):
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    device_uid = serializers.CharField(source="device.uid", read_only=True)

    class Meta:
        model = Command
        fields = [
            "id", "device", "device_uid", "name", "params", "state", "result", "created_by",
            "created_at", "expires_at", "delivered_at", "finished_at",
        ]  # fmt: skip
        read_only_fields = fields


class CommandDetailSerializer(CommandSerializer):
    events = CommandEventSerializer(many=True, read_only=True)

    class Meta(CommandSerializer.Meta):
        fields = [*CommandSerializer.Meta.fields, "events"]
        read_only_fields = fields


class CommandCreateSerializer(StrictSerializerMixin, serializers.Serializer):
    name = serializers.CharField(max_length=63)
    params = serializers.JSONField(required=False, default=dict)
    timeout = serializers.IntegerField(
        required=False,
        allow_null=True,
        default=None,
        help_text="Seconds the device has to answer; default: the catalogue's.",
    )


class CommandDefinitionSerializer(StrictSerializerMixin, serializers.ModelSerializer):
    class Meta:
        model = CommandDefinition
        fields = [
            "id", "model", "name", "label", "description", "params_schema", "role", "default_timeout", "enabled",
            "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = ["created_at", "updated_at"]

    def validate(self, data):
        instance = CommandDefinition(**{**self._current(), **data})
        try:
            instance.clean()
        except DjangoValidationError as exc:
            raise serializers.ValidationError(get_error_detail(exc)) from None
        return data

    def _current(self) -> dict:
        if self.instance is None:
            return {}
        return {f: getattr(self.instance, f) for f in ("model", "name", "params_schema", "role", "default_timeout")}
