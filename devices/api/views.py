from django.contrib.auth import get_user_model
from django.db.models import Count
from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.parsers import BaseParser, FormParser, MultiPartParser
from rest_framework.permissions import SAFE_METHODS, BasePermission, IsAuthenticated
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response

from accounts.api.scoping import PlantScopedViewSetMixin
from accounts.roles import PERM_MANAGE
from accounts.selectors import member_list, plant_list_for, plant_roles_of
from accounts.services import member_remove, member_set_role
from audit.services import audit_export
from commands.api.views import DeviceCommandsMixin
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
from devices.services import bulk, registry
from devices.services.tokens import token_issue, token_revoke, token_rotate
from factory.pagination import paginated_response
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

    @extend_schema(methods=["GET"], responses=MemberSerializer(many=True))
    @extend_schema(methods=["POST"], request=MemberSerializer, responses={200: MemberSerializer, 201: MemberSerializer})
    @action(detail=True, methods=["get", "post"], filter_backends=[])
    def members(self, request, pk=None):
        """List the plant's members (any role; paginated) or, as a plant admin, give a user a role
        (replacing theirs)."""
        plant = self.get_object()
        if request.method == "GET":
            return paginated_response(self, member_list(plant), MemberSerializer)
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


class RawFileParser(BaseParser):
    """A CSV or XLSX file as the request body (``Content-Type: text/csv`` or the XLSX type)."""

    media_type = "*/*"

    def parse(self, stream, media_type=None, parser_context=None):
        return {"file": stream.read() if stream is not None else b""}


class _FileRenderer(BaseRenderer):
    charset = None

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if isinstance(data, bytes | str):
            return data
        return JSONRenderer().render(data)  # an error (401, 403…) says what went wrong as JSON


class CSVFileRenderer(_FileRenderer):
    media_type, format = "text/csv", "csv"


class XLSXFileRenderer(_FileRenderer):
    media_type, format = bulk.CONTENT_TYPES["xlsx"], "xlsx"


class DeviceViewSet(DeviceCommandsMixin, DeviceTelemetryMixin, PlantScopedViewSetMixin, viewsets.ModelViewSet):
    """Devices of your plants. Filter by plant, line, kind, enabled, model, firmware_version, group."""

    queryset = Device.objects.select_related("plant", "line").prefetch_related("groups")
    serializer_class = DeviceSerializer
    filterset_class = DeviceFilterSet
    search_fields = ["uid", "name", "serial_number", "model", "location"]
    ordering_fields = ["uid", "name", "last_seen_at", "created_at"]

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "now": timezone.now()}

    def finalize_response(self, request, response, *args, **kwargs):
        renderer = getattr(request, "accepted_renderer", None)
        if getattr(response, "exception", False) and isinstance(renderer, _FileRenderer):
            # An error of the export (401, 403…) is JSON, whatever format was asked for.
            request.accepted_renderer, request.accepted_media_type = JSONRenderer(), "application/json"
        return super().finalize_response(request, response, *args, **kwargs)

    def perform_destroy(self, instance):
        registry.device_delete(device=instance)

    @extend_schema(methods=["GET"], responses=DeviceTokenSerializer(many=True))
    @extend_schema(methods=["POST"], request=TokenCreateSerializer, responses={201: IssuedTokenSerializer})
    @action(detail=True, methods=["get", "post"], filter_backends=[])
    def tokens(self, request, pk=None):
        """List the device's tokens (paginated), or issue a new one: the plain token is in this response only."""
        device = self.get_object()
        context = {"now": timezone.now()}
        if request.method == "GET":
            tokens = device.tokens.select_related("device").order_by("created_at", "pk")
            return paginated_response(self, tokens, DeviceTokenSerializer, context=context)
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

    @extend_schema(
        request={
            "multipart/form-data": {"type": "object", "properties": {"file": {"type": "string", "format": "binary"}}},
            "text/csv": {"type": "string"},
        },
        responses={200: dict, 201: dict, 400: dict},
        parameters=[
            OpenApiParameter("dry_run", bool, description="1: preview each row (create, update, error); no change"),
            OpenApiParameter("issue_tokens", bool, description="1: a token per created device (this response only)"),
            OpenApiParameter("token_name", str, description="name of those tokens (default: import)"),
        ],
    )
    @action(
        detail=False, methods=["post"], url_path="import", parser_classes=[MultiPartParser, FormParser, RawFileParser]
    )
    def import_devices(self, request):
        """Import devices from CSV or XLSX (columns as the export's), in the plants you administer.

        ``?dry_run=1`` previews each row (create, update by uid, or its errors) and changes nothing.
        Without it the import applies only when every row is good (201), else nothing and 400 with
        the rows' errors.
        """
        if not plant_list_for(request.user, PERM_MANAGE).exists():
            raise PermissionDenied("Importing devices needs the admin role on a plant. Ask one of its admins.")
        upload = request.data.get("file")
        if upload is None or upload == b"":
            raise ValidationError({"file": ["Send the CSV or XLSX file as the multipart field 'file' or as the body."]})
        content, name = (upload, "") if isinstance(upload, bytes) else (upload.read(), upload.name)
        flag = lambda key: request.query_params.get(key, request.data.get(key, "")) in ("1", "true", "yes")  # noqa: E731
        try:
            dataset = bulk.read_dataset(content, name)
        except bulk.BulkFileError as exc:
            raise ValidationError({"file": [str(exc)]}) from exc
        token_name = request.query_params.get("token_name") or request.data.get("token_name") or "import"
        report = call_service(
            bulk.devices_import,
            user=request.user,
            dataset=dataset,
            dry_run=flag("dry_run"),
            issue_tokens=flag("issue_tokens"),
            token_name=token_name[:100],
        )
        if not report.valid:
            code = status.HTTP_200_OK if report.dry_run else status.HTTP_400_BAD_REQUEST
        else:
            code = status.HTTP_200_OK if report.dry_run else status.HTTP_201_CREATED
        return Response(report.as_dict(), status=code)

    @extend_schema(
        parameters=[OpenApiParameter("format", str, enum=list(bulk.FORMATS), description="csv (default) or xlsx")],
        responses={(200, "text/csv"): str, (200, bulk.CONTENT_TYPES["xlsx"]): bytes},
    )
    @action(detail=False, methods=["get"], renderer_classes=[CSVFileRenderer, XLSXFileRenderer, JSONRenderer])
    def export(self, request):
        """The devices you can see (with the list's filters) as CSV or XLSX, ready to edit and import."""
        file_format = getattr(request.accepted_renderer, "format", "csv")
        if file_format not in bulk.FORMATS:
            file_format = "csv"
        devices = self.filter_queryset(self.get_queryset())
        data = bulk.devices_export(devices, file_format)
        plants = devices.order_by().values_list("plant_id", flat=True).distinct()
        audit_export(model=Device, plant_ids=list(plants), file_format=file_format, rows=devices.count())
        response = Response(data, content_type=bulk.CONTENT_TYPES[file_format])
        response["Content-Disposition"] = f'attachment; filename="devices.{file_format}"'
        return response


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
