from rest_framework import serializers

from accounts.api.scoping import ScopedPrimaryKeyRelatedField
from accounts.roles import Role
from devices.models import Device, DeviceGroup, DeviceToken, Line, Metric, Plant
from devices.services.metrics import metric_update
from devices.services.plants import line_create, plant_create
from devices.services.registry import device_create, device_update, group_set_devices
from factory.serializers import FixedOnUpdateMixin, StrictSerializerMixin, UniqueNameInPlantMixin, call_service


class PlantSerializer(StrictSerializerMixin, serializers.ModelSerializer):
    my_role = serializers.SerializerMethodField(help_text="Your role on this plant; null for superusers without one.")

    class Meta:
        model = Plant
        fields = ["id", "name", "time_zone", "description", "address", "my_role", "created_at", "updated_at"]

    def get_my_role(self, plant) -> str | None:
        return self.context.get("plant_roles", {}).get(plant.pk)

    def create(self, validated_data):
        return call_service(plant_create, created_by=self.context["request"].user, **validated_data)


class MemberSerializer(StrictSerializerMixin, serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    username = serializers.CharField(max_length=150)
    email = serializers.CharField(read_only=True, help_text="'' when the user has none (service accounts).")
    role = serializers.ChoiceField(choices=Role.choices)


class LineSerializer(FixedOnUpdateMixin, UniqueNameInPlantMixin, StrictSerializerMixin, serializers.ModelSerializer):
    plant = ScopedPrimaryKeyRelatedField(plant_field="", queryset=Plant.objects.all())
    device_count = serializers.IntegerField(read_only=True)

    class Meta:
        model = Line
        fields = ["id", "plant", "name", "description", "position", "device_count", "created_at", "updated_at"]
        validators = []  # see UniqueNameInPlantMixin

    def create(self, validated_data):
        line = call_service(line_create, **validated_data)
        line.device_count = 0  # the list's annotation; a new line has no devices
        return line


class DeviceSerializer(FixedOnUpdateMixin, StrictSerializerMixin, serializers.ModelSerializer):
    # A device never changes plant (move it within its plant), nor uid: devices are flashed with
    # it (MQTT topic, simulator, logs).
    fixed_on_update = ("plant", "uid")
    plant = ScopedPrimaryKeyRelatedField(plant_field="", queryset=Plant.objects.all(), required=False)
    line = ScopedPrimaryKeyRelatedField(queryset=Line.objects.all(), required=False, allow_null=True)
    groups = serializers.PrimaryKeyRelatedField(many=True, read_only=True)
    online = serializers.SerializerMethodField()

    class Meta:
        model = Device
        fields = [
            "id", "uid", "name", "kind", "plant", "line", "model", "serial_number", "firmware_version",
            "ideal_cycle_time", "expected_interval", "enabled", "online", "last_seen_at", "state", "state_since",
            "location",
            "description", "groups", "created_at", "updated_at",
        ]  # fmt: skip

    def get_online(self, device) -> bool:
        return device.is_online(self.context["now"]) if "now" in self.context else False

    def validate(self, data):
        line = data.get("line")
        plant = data.get("plant") or (self.instance.plant if self.instance else None) or (line.plant if line else None)
        if plant is None:
            raise serializers.ValidationError(
                {"line": "Give the device's line (or its plant for devices outside a line)."}
            )
        if line is not None and line.plant_id != plant.pk:
            raise serializers.ValidationError(
                {
                    "line": f"Line '{line.name}' is in plant '{line.plant.name}', "
                    f"not in this device's plant '{plant.name}'."
                }
            )
        return super().validate(data)

    def plant_for_create(self, data):
        return data.get("plant") or data["line"].plant

    def create(self, validated_data):
        return call_service(device_create, **validated_data)

    def update(self, instance, validated_data):
        return call_service(device_update, device=instance, **validated_data)


class DeviceGroupSerializer(
    FixedOnUpdateMixin, UniqueNameInPlantMixin, StrictSerializerMixin, serializers.ModelSerializer
):
    plant = ScopedPrimaryKeyRelatedField(plant_field="", queryset=Plant.objects.all())
    devices = ScopedPrimaryKeyRelatedField(many=True, queryset=Device.objects.all(), required=False)

    class Meta:
        model = DeviceGroup
        fields = ["id", "plant", "name", "description", "devices", "created_at", "updated_at"]
        validators = []  # see UniqueNameInPlantMixin

    def validate(self, data):
        data = super().validate(data)
        plant = data.get("plant") or self.instance.plant
        foreign = [d.uid for d in data.get("devices", []) if d.plant_id != plant.pk]
        if foreign:
            raise serializers.ValidationError(
                {"devices": f"A group holds devices of one plant ('{plant.name}'); not: {', '.join(foreign)}."}
            )
        return data

    def plant_for_create(self, data):
        return data["plant"]

    def create(self, validated_data):
        devices = validated_data.pop("devices", [])
        group = DeviceGroup(**validated_data)
        group.full_clean()
        group.save()
        return group_set_devices(group=group, devices=devices)

    def update(self, instance, validated_data):
        devices = validated_data.pop("devices", None)
        instance = super().update(instance, validated_data)
        if devices is not None:
            group_set_devices(group=instance, devices=devices)
        return instance


class DeviceTokenSerializer(serializers.ModelSerializer):
    device_uid = serializers.CharField(source="device.uid", read_only=True)
    active = serializers.SerializerMethodField()

    class Meta:
        model = DeviceToken
        fields = [
            "id", "device", "device_uid", "name", "prefix", "active", "created_at", "created_by",
            "last_used_at", "expires_at", "revoked_at",
        ]  # fmt: skip
        read_only_fields = fields

    def get_active(self, token) -> bool:
        return token.is_active(self.context["now"])


class TokenCreateSerializer(StrictSerializerMixin, serializers.Serializer):
    name = serializers.CharField(max_length=100)


class IssuedTokenSerializer(DeviceTokenSerializer):
    token = serializers.CharField(
        read_only=True, help_text="The plain token. Shown only in this response: store it now."
    )

    class Meta(DeviceTokenSerializer.Meta):
        fields = [*DeviceTokenSerializer.Meta.fields, "token"]
        read_only_fields = fields


class TokenRotateSerializer(StrictSerializerMixin, serializers.Serializer):
    grace_seconds = serializers.IntegerField(
        min_value=0, max_value=30 * 86400, default=0, help_text="How long the old token keeps working."
    )


class DeviceBatchSerializer(StrictSerializerMixin, serializers.Serializer):
    ACTIONS = ["enable", "disable", "move", "add_to_group", "remove_from_group", "issue_tokens"]

    action = serializers.ChoiceField(choices=ACTIONS)
    devices = ScopedPrimaryKeyRelatedField(many=True, queryset=Device.objects.all(), required=False)
    group = ScopedPrimaryKeyRelatedField(
        queryset=DeviceGroup.objects.all(), required=False, help_text="Act on every device of this group."
    )
    line = ScopedPrimaryKeyRelatedField(queryset=Line.objects.all(), required=False, help_text="For move.")
    target_group = ScopedPrimaryKeyRelatedField(
        queryset=DeviceGroup.objects.all(), required=False, help_text="For add_to_group / remove_from_group."
    )
    token_name = serializers.CharField(max_length=100, required=False, help_text="For issue_tokens.")

    def validate(self, data):
        if bool(data.get("devices")) == bool(data.get("group")):
            raise serializers.ValidationError({"devices": "Give either a non-empty 'devices' list or a 'group'."})
        needs = {"move": "line", "add_to_group": "target_group", "remove_from_group": "target_group",
                 "issue_tokens": "token_name"}  # fmt: skip
        field = needs.get(data["action"])
        if field and not data.get(field):
            raise serializers.ValidationError({field: f"Action '{data['action']}' needs '{field}'."})
        # dict.fromkeys: a device listed twice is acted on once (and gets one token, not two).
        devices = data["devices"] if data.get("devices") else data["group"].devices.all()
        data["device_list"] = list(dict.fromkeys(devices))
        return data


class MetricSerializer(StrictSerializerMixin, serializers.ModelSerializer):
    label = serializers.CharField(read_only=True, help_text="The display name, else the name in words.")

    class Meta:
        model = Metric
        fields = ["id", "name", "display_name", "label", "unit", "precision"]
        read_only_fields = ["name"]  # the devices' key: they keep sending it

    def update(self, instance, validated_data):
        return call_service(metric_update, metric=instance, **validated_data)
