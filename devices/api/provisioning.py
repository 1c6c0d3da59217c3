"""Provisioning keys and the approval list (``/api/v1/provisioning-keys/``, ``/api/v1/provisioning-requests/``).

Plant admins create keys (the plain key is in the create response only), revoke them, and approve
or reject devices waiting in the list. Viewers of the plant see both lists (never a plain key).
"""

from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from accounts.api.scoping import PlantScopedViewSetMixin, ScopedPrimaryKeyRelatedField
from devices.models import Line, Plant, ProvisioningKey, ProvisioningRequest
from devices.services.provisioning import (
    provisioning_key_create,
    provisioning_key_revoke,
    provisioning_request_decide,
)
from factory.serializers import StrictSerializerMixin, call_service


class ProvisioningKeySerializer(StrictSerializerMixin, serializers.ModelSerializer):
    plant = ScopedPrimaryKeyRelatedField(plant_field="", queryset=Plant.objects.all())
    line = ScopedPrimaryKeyRelatedField(queryset=Line.objects.all(), required=False, allow_null=True)
    active = serializers.SerializerMethodField()

    class Meta:
        model = ProvisioningKey
        fields = [
            "id", "plant", "line", "model", "name", "prefix", "needs_approval", "expires_at", "max_uses", "uses",
            "active", "created_at", "created_by", "last_used_at", "revoked_at",
        ]  # fmt: skip
        read_only_fields = ["prefix", "uses", "created_at", "created_by", "last_used_at", "revoked_at"]

    def get_active(self, key) -> bool:
        return key.refusal(timezone.now()) is None

    def plant_for_create(self, data):
        return data["plant"]

    def create(self, validated_data):
        key, plain = call_service(provisioning_key_create, by=self.context["request"].user, **validated_data)
        key.key = plain
        return key


class IssuedProvisioningKeySerializer(ProvisioningKeySerializer):
    key = serializers.CharField(read_only=True, help_text="The plain key. Shown only in this response: store it now.")

    class Meta(ProvisioningKeySerializer.Meta):
        fields = [*ProvisioningKeySerializer.Meta.fields, "key"]


class ProvisioningKeyViewSet(
    PlantScopedViewSetMixin,
    mixins.CreateModelMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """Provisioning keys of your plants (never the plain key, except in the create response)."""

    queryset = ProvisioningKey.objects.select_related("plant", "line")
    serializer_class = ProvisioningKeySerializer
    filterset_fields = ["plant", "line", "needs_approval"]
    ordering_fields = ["created_at", "last_used_at"]

    def get_serializer_class(self):
        return IssuedProvisioningKeySerializer if self.action == "create" else ProvisioningKeySerializer

    @extend_schema(request=None, responses=ProvisioningKeySerializer)
    @action(detail=True, methods=["post"])
    def revoke(self, request, pk=None):
        """Revoke the key: devices can no longer register with it (those registered keep their tokens)."""
        key = self.get_object()
        provisioning_key_revoke(key=key)
        return Response(ProvisioningKeySerializer(key, context=self.get_serializer_context()).data)


class ProvisioningRequestSerializer(serializers.ModelSerializer):
    plant = serializers.IntegerField(source="key.plant_id", read_only=True)
    key_name = serializers.CharField(source="key.name", read_only=True)

    class Meta:
        model = ProvisioningRequest
        fields = [
            "id", "key", "key_name", "plant", "uid", "name", "kind", "model", "status", "detail", "address", "device",
            "created_at", "decided_at", "decided_by",
        ]  # fmt: skip
        read_only_fields = fields


class ProvisioningRequestViewSet(
    PlantScopedViewSetMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """Every use of your plants' provisioning keys; ``?status=pending`` is the approval list."""

    queryset = ProvisioningRequest.objects.select_related("key")
    serializer_class = ProvisioningRequestSerializer
    plant_field = "key__plant"
    filterset_fields = ["status", "key"]
    ordering_fields = ["created_at"]

    def _decide(self, approve: bool):
        provisioning_request = self.get_object()
        decided = call_service(
            provisioning_request_decide, request=provisioning_request, approve=approve, by=self.request.user
        )
        return Response(self.get_serializer(decided).data)

    @extend_schema(request=None, responses=ProvisioningRequestSerializer)
    @action(detail=True, methods=["post"])
    def approve(self, request, pk=None):
        """Create the device; it receives its token on its next provisioning call."""
        return self._decide(True)

    @extend_schema(request=None, responses=ProvisioningRequestSerializer)
    @action(detail=True, methods=["post"])
    def reject(self, request, pk=None):
        return self._decide(False)
