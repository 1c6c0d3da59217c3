from django.contrib.auth import get_user_model
from django.db.models import Count
from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.permissions import SAFE_METHODS, BasePermission, IsAuthenticated
from rest_framework.response import Response

from accounts.api.scoping import PlantScopedViewSetMixin
from accounts.roles import PERM_MANAGE
from accounts.selectors import member_list, plant_roles_of
from accounts.services import member_remove, member_set_role
from devices.api.filters import DeviceFilterSet, DeviceGroupFilterSet, DeviceTokenFilterSet, LineFilterSet
from devices.api.serializers import (
    DeviceBatchSerializer,
    DeviceGroupSerializer,
    DeviceSerializer,
    DeviceTokenSerializer,
    IssuedTokenSerializer,
    LineSerializer,
    MemberSerializer,
    MetricSerializer,
    PlantSerializer,
    TokenCreateSerializer,
    TokenRotateSerializer,
)
from devices.api.telemetry_views import DeviceTelemetryMixin, PlantLatestMixin
from devices.models import Device, DeviceGroup, DeviceToken, Line, Metric, Plant
from devices.selectors import metric_list_for
from devices.services import registry
from devices.services.tokens import token_issue, token_revoke, token_rotate
from factory.serializers import call_service


class PlantViewSet(PlantLatestMixin, PlantScopedViewSetMixin, viewsets.ModelViewSet):
    """Plants you hold a role on. Creating one needs the global "add plant" permission (or superuser)."""

    queryset = Plant.objects.all()
    serializer_class = PlantSerializer
    plant_field = ""
    search_fields = ["name", "description", "address"]
    ordering_fields = ["name", "created_at"]

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "plant_roles": plant_roles_of(self.request.user)}

    def perform_create(self, serializer):
        if not self.request.user.has_perm("devices.add_plant"):
            raise PermissionDenied("Only superusers (or users granted 'add plant') can create plants.")
        serializer.save()

    def perform_destroy(self, instance):
        if not self.request.user.is_superuser:
            raise PermissionDenied("Only superusers can delete a plant.")
        instance.delete()

    @extend_schema(request=MemberSerializer, responses=MemberSerializer(many=True))
    @action(detail=True, methods=["get", "post"])
    def members(self, request, pk=None):
        """List the plant's members (any role) or, as a plant admin, give a user a role (replacing theirs)."""
        plant = self.get_object()
        if request.method == "GET":
            return Response(MemberSerializer(member_list(plant), many=True).data)
        serializer = MemberSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = get_user_model().objects.filter(username=serializer.validated_data["username"]).first()
        if user is None:
            return Response(
                {"detail": "Invalid input in: username.", "errors": {"username": ["No user with this username."]}},
                status=status.HTTP_400_BAD_REQUEST,
            )
        created = call_service(member_set_role, plant=plant, user=user, role=serializer.validated_data["role"])
        user.role = serializer.validated_data["role"]
        return Response(MemberSerializer(user).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)

    @extend_schema(request=None, responses={204: None})
    @action(detail=True, methods=["delete"], url_path=r"members/(?P<user_id>\d+)")
    def remove_member(self, request, pk=None, user_id=None):
        """Remove every role a user holds on this plant (plant admins only; never the last admin)."""
        plant = self.get_object()
        user = get_object_or_404(member_list(plant), pk=user_id)
        call_service(member_remove, plant=plant, user=user)
        return Response(status=status.HTTP_204_NO_CONTENT)

    def required_perm(self):
        if self.action in ("members", "remove_member") and self.request.method != "GET":
            return PERM_MANAGE
        return super().required_perm()


class LineViewSet(PlantScopedViewSetMixin, viewsets.ModelViewSet):
    # The explicit order_by: Django drops Meta.ordering from GROUP BY queries, and pages of an
    # unordered list may repeat or skip lines.
    queryset = (
        Line.objects.select_related("plant").annotate(device_count=Count("devices")).order_by(*Line._meta.ordering)
    )
    serializer_class = LineSerializer
    filterset_class = LineFilterSet
    search_fields = ["name", "description"]
    ordering_fields = ["name", "position", "created_at"]


class DeviceViewSet(DeviceTelemetryMixin, PlantScopedViewSetMixin, viewsets.ModelViewSet):
    """Devices of your plants. Filter by plant, line, kind, enabled, model, firmware_version, group."""

    queryset = Device.objects.select_related("plant", "line").prefetch_related("groups")
    serializer_class = DeviceSerializer
    filterset_class = DeviceFilterSet
    search_fields = ["uid", "name", "serial_number", "model", "location"]
    ordering_fields = ["uid", "name", "last_seen_at", "created_at"]

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "now": timezone.now()}

    def perform_destroy(self, instance):
        registry.device_delete(device=instance)

    @extend_schema(
        request=TokenCreateSerializer, responses={200: DeviceTokenSerializer(many=True), 201: IssuedTokenSerializer}
    )
    @action(detail=True, methods=["get", "post"])
    def tokens(self, request, pk=None):
        """List the device's tokens, or issue a new one: the plain token is in this response only."""
        device = self.get_object()
        context = {"now": timezone.now()}
        if request.method == "GET":
            tokens = device.tokens.select_related("device")
            return Response(DeviceTokenSerializer(tokens, many=True, context=context).data)
        serializer = TokenCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        token, plain = token_issue(device=device, name=serializer.validated_data["name"], by=request.user)
        token.token = plain
        return Response(IssuedTokenSerializer(token, context=context).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=DeviceBatchSerializer, responses={200: dict})
    @action(detail=False, methods=["post"])
    def batch(self, request):
        """Apply one action to a selection of devices or a whole group, all or nothing.

        Actions: enable, disable, move (``line``), add_to_group / remove_from_group
        (``target_group``), issue_tokens (``token_name``; the plain tokens are in this response only).
        """
        serializer = DeviceBatchSerializer(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        devices = data["device_list"]
        for plant in Plant.objects.filter(pk__in={d.plant_id for d in devices}):
            self.check_plant_perm(plant, PERM_MANAGE)
        result = call_service(
            registry.devices_batch,
            action=data["action"],
            devices=devices,
            by=request.user,
            **{k: data[k] for k in ("line", "target_group", "token_name") if k in data},
        )
        return Response(result)


class DeviceGroupViewSet(PlantScopedViewSetMixin, viewsets.ModelViewSet):
    queryset = DeviceGroup.objects.select_related("plant").prefetch_related("devices")
    serializer_class = DeviceGroupSerializer
    filterset_class = DeviceGroupFilterSet
    search_fields = ["name", "description"]
    ordering_fields = ["name", "created_at"]


class DeviceTokenViewSet(
    PlantScopedViewSetMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """Tokens of your plants' devices (never the plain token). Revoke or rotate them here."""

    queryset = DeviceToken.objects.select_related("device")
    serializer_class = DeviceTokenSerializer
    filterset_class = DeviceTokenFilterSet
    plant_field = "device__plant"
    ordering_fields = ["created_at", "last_used_at"]

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "now": timezone.now()}

    @extend_schema(request=None, responses=DeviceTokenSerializer)
    @action(detail=True, methods=["post"])
    def revoke(self, request, pk=None):
        """Revoke the token: the device's next request with it is refused (403). Idempotent."""
        token = self.get_object()
        token_revoke(token=token)
        return Response(self.get_serializer(token).data)

    @extend_schema(request=TokenRotateSerializer, responses={201: IssuedTokenSerializer})
    @action(detail=True, methods=["post"])
    def rotate(self, request, pk=None):
        """Issue a replacement token; the old one works for ``grace_seconds`` more (default 0)."""
        token = self.get_object()
        serializer = TokenRotateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        new_token, plain = call_service(token_rotate, token=token, by=request.user, **serializer.validated_data)
        new_token.token = plain
        return Response(IssuedTokenSerializer(new_token, context=self.get_serializer_context()).data, status=201)


class StaffWritesOnly(BasePermission):
    message = "Only staff change how a metric reads (it applies to every plant). Ask an administrator."

    def has_permission(self, request, view):
        return request.method in SAFE_METHODS or bool(request.user.is_staff or request.user.is_superuser)


class MetricViewSet(mixins.UpdateModelMixin, viewsets.ReadOnlyModelViewSet):
    """Metrics and how they read: display name, unit, precision (decimal places; null: automatic).

    Anyone sees the metrics their plants' devices report (staff: all); staff change them. Devices
    create metrics by sending them; the names never change.
    """

    queryset = Metric.objects.all()
    serializer_class = MetricSerializer
    permission_classes = [IsAuthenticated, StaffWritesOnly]
    filterset_fields = ["name"]
    search_fields = ["name", "display_name"]
    ordering_fields = ["name"]

    def get_queryset(self):
        return metric_list_for(self.request.user).order_by("name")
