"""Service accounts and their API keys (``/api/v1/service-accounts/``, ``/api/v1/api-keys/``).

Plant admins see the service accounts holding a role on a plant they administer, create them
(with a role on one of their plants; more plants through ``plants/<id>/members/``), issue keys
(the plain key is in the create response only) and revoke them. Issuing a key needs the admin
role on every plant the account reaches. Keys are managed by people: a request authenticated
with an API key is refused here, so a leaked key cannot mint more keys.
"""

from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.response import Response

from accounts.api.scoping import ScopedPrimaryKeyRelatedField
from accounts.models import ApiKey, ServiceAccount
from accounts.roles import PERM_MANAGE, Role
from accounts.selectors import (
    api_key_list_for,
    service_account_list_for,
    service_account_manageable_by,
    service_account_plants,
    user_has_plant_perm,
)
from accounts.services import api_key_issue, api_key_revoke, service_account_create
from devices.models import Plant
from factory.filters import FilterSet, IdFilter
from factory.serializers import StrictSerializerMixin, call_service


class IsPersonWithSession(BasePermission):
    message = "API keys cannot manage service accounts or keys; sign in as a person (JWT or session)."

    def has_permission(self, request, view):
        return not isinstance(request.auth, ApiKey)


class ServiceAccountSerializer(StrictSerializerMixin, serializers.ModelSerializer):
    name = serializers.RegexField(
        r"^[\w.@+-]{1,150}$", source="user.username",
        help_text="Letters, digits and @/./+/-/_ (it is the account's username, e.g. on members lists).",
    )  # fmt: skip
    plant = ScopedPrimaryKeyRelatedField(
        plant_field="", queryset=Plant.objects.all(), write_only=True, help_text="Its first plant."
    )
    role = serializers.ChoiceField(choices=Role.choices, write_only=True, help_text="Its role on that plant.")
    is_active = serializers.BooleanField(source="user.is_active", read_only=True)
    roles = serializers.SerializerMethodField(help_text="Plant id → the account's role there.")

    class Meta:
        model = ServiceAccount
        fields = ["id", "name", "description", "plant", "role", "is_active", "roles", "created_at", "created_by"]
        read_only_fields = ["created_at", "created_by"]

    def get_roles(self, account) -> dict[str, str]:
        return {str(k): v for k, v in service_account_plants(account).items()}

    def create(self, validated_data):
        request = self.context["request"]
        plant = validated_data["plant"]
        if not user_has_plant_perm(request.user, PERM_MANAGE, plant):
            raise PermissionDenied(f"This needs the admin role on plant '{plant}'. Ask one of its admins.")
        return call_service(
            service_account_create, name=validated_data["user"]["username"], plant=plant,
            role=validated_data["role"], description=validated_data.get("description", ""), by=request.user,
        )  # fmt: skip


class ServiceAccountViewSet(
    mixins.CreateModelMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """Service accounts (integrations) with a role on a plant you administer."""

    serializer_class = ServiceAccountSerializer
    permission_classes = [IsAuthenticated, IsPersonWithSession]
    search_fields = ["user__username", "description"]
    ordering_fields = ["created_at"]

    def get_queryset(self):
        return service_account_list_for(self.request.user).order_by("user__username")


class VisibleServiceAccountField(serializers.PrimaryKeyRelatedField):
    """Only service accounts the requesting user sees; another one reads as "does not exist"."""

    def get_queryset(self):
        return service_account_list_for(self.context["request"].user)


class ApiKeySerializer(StrictSerializerMixin, serializers.ModelSerializer):
    service_account = VisibleServiceAccountField(source="account")
    expires_at = serializers.DateTimeField(
        required=False, help_text="When the key stops working; default API_KEY_DEFAULT_DAYS (365) days from now."
    )
    active = serializers.SerializerMethodField()

    class Meta:
        model = ApiKey
        fields = [
            "id", "service_account", "name", "prefix", "expires_at", "active", "created_at", "created_by",
            "last_used_at", "revoked_at",
        ]  # fmt: skip
        read_only_fields = ["prefix", "created_at", "created_by", "last_used_at", "revoked_at"]

    def get_active(self, key) -> bool:
        return key.refusal(timezone.now()) is None

    def create(self, validated_data):
        request = self.context["request"]
        account = validated_data["account"]
        if not service_account_manageable_by(request.user, account):
            raise PermissionDenied(
                f"A key of '{account}' reaches every plant it has a role on; issuing one needs the admin role on"
                " all of them. Ask a superuser or those plants' admins."
            )
        key, plain = call_service(
            api_key_issue, account=account, name=validated_data["name"],
            expires_at=validated_data.get("expires_at"), by=request.user,
        )  # fmt: skip
        key.key = plain
        return key


class IssuedApiKeySerializer(ApiKeySerializer):
    key = serializers.CharField(read_only=True, help_text="The plain key. Shown only in this response: store it now.")

    class Meta(ApiKeySerializer.Meta):
        fields = [*ApiKeySerializer.Meta.fields, "key"]


class ApiKeyFilterSet(FilterSet):
    service_account = IdFilter(field_name="account", label="Service account id")

    class Meta:
        model = ApiKey
        fields = ["service_account"]


class ApiKeyViewSet(mixins.CreateModelMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Keys of the service accounts you see (never the plain key, except in the create response)."""

    permission_classes = [IsAuthenticated, IsPersonWithSession]
    filterset_class = ApiKeyFilterSet
    ordering_fields = ["created_at", "last_used_at", "expires_at"]

    def get_queryset(self):
        return api_key_list_for(self.request.user)

    def get_serializer_class(self):
        return IssuedApiKeySerializer if self.action == "create" else ApiKeySerializer

    @extend_schema(request=None, responses=ApiKeySerializer)
    @action(detail=True, methods=["post"])
    def revoke(self, request, pk=None):
        """Revoke the key now: its next request is refused (401). Any admin of one of the account's plants may."""
        key = self.get_object()
        api_key_revoke(key=key)
        return Response(ApiKeySerializer(key, context=self.get_serializer_context()).data)
