"""OEE API: shifts, reason codes, stops to classify, and ``GET /api/v1/analytics/oee/`` (CONTRACT.md).

Views parse HTTP only: reads in ``analytics.selectors``, writes in ``analytics.services``,
plant scoping in ``accounts`` (an invisible plant, line, machine or stop answers 404).
"""

from datetime import UTC, datetime, time, timedelta

from django.core.exceptions import ObjectDoesNotExist
from django.http import Http404, HttpResponse
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from accounts.api.scoping import PlantScopedViewSetMixin
from accounts.roles import PERM_MANAGE, PERM_OPERATE, PERM_VIEW
from accounts.selectors import plant_list_for, scope_to_plants, user_has_plant_perm
from analytics.api.serializers import (
    CurrentShiftSerializer,
    OEEQuerySerializer,
    OEEReportSerializer,
    OEEResultSerializer,
    ReasonCodeSerializer,
    ShiftSerializer,
    StopClassifySerializer,
    StopSerializer,
)
from analytics.models import OEEReport, ReasonCode, Shift
from analytics.reports import report_csv
from analytics.selectors import OEEQueryError, oee_compute, oee_target_get_for, shift_current, shift_next, stop_list
from analytics.services import calendar_entries_delete, stop_classify
from audit.services import audit_record
from devices.models import Device
from factory.serializers import call_service


class ShiftViewSet(PlantScopedViewSetMixin, viewsets.ModelViewSet):
    """The plants' shift calendars. Plant admins write; every member reads."""

    queryset = Shift.objects.select_related("plant").prefetch_related("breaks")
    serializer_class = ShiftSerializer
    filterset_fields = ["plant"]
    write_perm = PERM_MANAGE

    def perform_destroy(self, instance):
        calendar_entries_delete(entries=Shift.objects.filter(pk=instance.pk))

    @extend_schema(parameters=[OpenApiParameter("plant", int, required=True)], responses=CurrentShiftSerializer)
    @action(detail=False, methods=["get"], pagination_class=None)
    def current(self, request):
        """The plant's shift running now and the next one (each ``null`` when there is none): the overview header."""
        try:
            plant_id = int(request.query_params.get("plant", ""))
        except ValueError:
            raise ValidationError({"plant": ["Give the plant's id: ?plant=<id>."]}) from None
        plant = plant_list_for(request.user).filter(pk=plant_id).first() if 0 < plant_id < 2**63 else None
        if plant is None:
            raise Http404("No such plant among the plants you can see.")
        now = timezone.now()
        body = {"plant": plant.pk, "now": now, "current": shift_current(plant, now), "next": shift_next(plant, now)}
        return Response(CurrentShiftSerializer(body).data)


class ReasonCodeViewSet(PlantScopedViewSetMixin, viewsets.ModelViewSet):
    """Stop reason codes per plant, each mapped to one of the six big losses."""

    queryset = ReasonCode.objects.select_related("plant")
    serializer_class = ReasonCodeSerializer
    filterset_fields = ["plant", "category"]
    write_perm = PERM_MANAGE


def _today(target) -> datetime:
    tz = target.plant.tz
    return datetime.combine(timezone.now().astimezone(tz).date(), time(), tzinfo=tz).astimezone(UTC)


def _target(user, data):
    try:
        return oee_target_get_for(user, device=data.get("device"), line=data.get("line"), plant=data.get("plant"))
    except ObjectDoesNotExist:
        raise Http404("No such machine, line or plant among the plants you can see.") from None


class OEEViewSet(viewsets.ViewSet):
    """OEE of a machine, line or plant per hour, shift, day or week."""

    permission_classes = [IsAuthenticated]

    @extend_schema(parameters=[OEEQuerySerializer], responses=OEEResultSerializer)
    def list(self, request):
        """Inputs, A/P/Q/OEE/TEEP (percent, two decimals, half up), MTBF/MTTR, losses, data gaps per period."""
        query = OEEQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        data = query.validated_data
        target = _target(request.user, data)
        end = (data.get("end") or timezone.now()).astimezone(UTC)
        start = (data.get("start") or _today(target)).astimezone(UTC)
        try:
            body = oee_compute(target, start, end, data["group_by"], per_device=data["per_device"])
        except OEEQueryError as exc:
            raise ValidationError({exc.field: [str(exc)]}) from None
        body.update(target={"kind": target.kind, "id": target.id, "plant": target.plant.pk})
        return Response(body)


class StopViewSet(viewsets.ViewSet):
    """A machine's stops to classify (list), and classifying one (operators)."""

    permission_classes = [IsAuthenticated]

    def _device(self, pk) -> Device:
        try:
            return scope_to_plants(Device.objects.select_related("plant"), self.request.user, PERM_VIEW).get(pk=pk)
        except (Device.DoesNotExist, ValueError, TypeError):
            raise Http404("No such machine among the plants you can see.") from None

    @extend_schema(parameters=[OEEQuerySerializer], responses=StopSerializer(many=True))
    def list(self, request):
        """Stops of ``device`` between ``start`` (default: 24 hours ago) and ``end`` (default: now)."""
        query = OEEQuerySerializer(data={**request.query_params.dict(), "group_by": "day"})
        query.is_valid(raise_exception=True)
        if query.validated_data.get("device") is None:
            raise ValidationError({"device": ["Give a machine id."]})
        device = self._device(query.validated_data["device"])
        end = (query.validated_data.get("end") or timezone.now()).astimezone(UTC)
        start = (query.validated_data.get("start") or end - timedelta(hours=24)).astimezone(UTC)
        return Response(StopSerializer(stop_list(device, start, end), many=True).data)

    @extend_schema(request=StopClassifySerializer, responses=StopSerializer)
    def create(self, request):
        """Give a stop a reason code of its plant (operator role; re-classifying replaces the reason)."""
        body = StopClassifySerializer(data=request.data)
        body.is_valid(raise_exception=True)
        device = self._device(body.validated_data["device"])
        if not user_has_plant_perm(request.user, PERM_OPERATE, device.plant):
            raise PermissionDenied(f"Classifying stops needs the operator role on plant '{device.plant}'.")
        row = call_service(
            stop_classify,
            device=device,
            start=body.validated_data["start"],
            reason=body.validated_data["reason"],
            note=body.validated_data["note"],
            by=request.user,
        )
        stops = stop_list(device, row.start, row.start + timedelta(days=31))  # capped at now
        stop = next(s for s in stops if s["start"] == row.start)
        return Response(StopSerializer(stop).data, status=status.HTTP_201_CREATED)


class OEEReportViewSet(PlantScopedViewSetMixin, viewsets.ReadOnlyModelViewSet):
    """Stored shift, day and week reports of your plants (newest first), each downloadable as CSV."""

    queryset = OEEReport.objects.select_related("plant")
    serializer_class = OEEReportSerializer
    filterset_fields = ["plant", "kind", "status"]

    @extend_schema(responses={(200, "text/csv"): str})
    @action(detail=True, methods=["get"])
    def csv(self, request, pk=None):
        """The report as CSV: one row per machine and a TOTAL row."""
        report = self.get_object()
        audit_record(event="export", obj=report, plant=report.plant_id, data={"format": "csv"})
        response = HttpResponse(report_csv(report), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="oee-{report.kind}-{report.pk}.csv"'
        return response
