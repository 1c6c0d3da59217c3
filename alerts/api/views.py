"""/api/v1/alert-rules/, alarms/, notification-channels/, notification-routes/, notification-mutes/,
notification-deliveries/ (CONTRACT.md resource names)."""

from datetime import timedelta

from django.http import Http404
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from accounts.api.scoping import PlantScopedViewSetMixin
from accounts.roles import PERM_MANAGE, PERM_OPERATE
from accounts.selectors import plant_list_for, scope_to_plants
from alerts.api.filters import AlarmFilterSet, AlertRuleFilterSet, ChannelFilterSet, DeliveryFilterSet, RouteFilterSet
from alerts.api.serializers import (
    AlarmEventSerializer,
    AlarmKpisSerializer,
    AlarmResultSerializer,
    AlarmSerializer,
    AlertRuleSerializer,
    ChannelSerializer,
    CommentSerializer,
    CountsQuerySerializer,
    DeliverySerializer,
    KpiQuerySerializer,
    MuteSerializer,
    ResolveSerializer,
    RouteSerializer,
    ShelveSerializer,
)
from alerts.models import Alarm, AlertRule, Delivery, NotificationChannel, NotificationMute, NotificationRoute
from alerts.selectors import alarm_counts_for, alarm_kpis, alarm_list_for, plant_get_for
from alerts.services import alarms as alarm_services
from factory.pagination import paginated_response
from factory.serializers import call_service


class AlertRuleViewSet(PlantScopedViewSetMixin, viewsets.ModelViewSet):
    """Alert rules of your plants; plant admins create and change them. Changes apply to the next evaluation."""

    queryset = AlertRule.objects.select_related("plant")
    serializer_class = AlertRuleSerializer
    filterset_class = AlertRuleFilterSet
    search_fields = ["name", "description", "metric"]
    ordering_fields = ["name", "severity", "created_at"]


class AlarmViewSet(PlantScopedViewSetMixin, viewsets.ReadOnlyModelViewSet):
    """Alarms of your plants, newest first. Operators acknowledge, shelve and resolve; admins suppress."""

    queryset = Alarm.objects.none()  # replaced by get_queryset (the scoped selector)
    serializer_class = AlarmSerializer
    filterset_class = AlarmFilterSet
    search_fields = ["message", "device__uid", "rule__name"]
    ordering_fields = ["raised_at", "severity_rank", "state", "acknowledged_at"]
    ordering = ["severity_rank", "-raised_at"]
    action_perms = {
        "acknowledge": PERM_OPERATE, "shelve": PERM_OPERATE, "unshelve": PERM_OPERATE, "resolve": PERM_OPERATE,
        "suppress": PERM_MANAGE, "unsuppress": PERM_MANAGE,
    }  # fmt: skip

    def get_queryset(self):
        return alarm_list_for(self.request.user)

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "now": timezone.now()}

    def _run(self, input_class, service, **fixed):
        alarm = self.get_object()
        data = {}
        if input_class is not None:
            serializer = input_class(data=self.request.data)
            serializer.is_valid(raise_exception=True)
            data = serializer.validated_data
        outcome = call_service(service, alarm=alarm, now=timezone.now(), **fixed, **data)
        body = AlarmSerializer(outcome.alarm, context=self.get_serializer_context()).data
        return Response({**body, "detail": outcome.detail, "changed": outcome.changed})

    @extend_schema(request=CommentSerializer, responses=AlarmResultSerializer)
    @action(detail=True, methods=["post"])
    def acknowledge(self, request, pk=None):
        """Acknowledge (operator). Twice is a no-op: ``changed`` false and ``detail`` says who did it when."""
        return self._run(CommentSerializer, alarm_services.alarm_acknowledge, by=request.user)

    @extend_schema(request=ShelveSerializer, responses=AlarmResultSerializer)
    @action(detail=True, methods=["post"])
    def shelve(self, request, pk=None):
        """Shelve for ``minutes`` with a ``reason`` (operator): no notifications until it unshelves by itself."""
        return self._run(ShelveSerializer, alarm_services.alarm_shelve, by=request.user)

    @extend_schema(request=CommentSerializer, responses=AlarmResultSerializer)
    @action(detail=True, methods=["post"])
    def unshelve(self, request, pk=None):
        """End a shelve early (operator)."""
        return self._run(CommentSerializer, alarm_services.alarm_unshelve, by=request.user)

    @extend_schema(request=ResolveSerializer, responses=AlarmResultSerializer)
    @action(detail=True, methods=["post"])
    def resolve(self, request, pk=None):
        """Close the alarm with a resolution ``note`` (operator)."""
        return self._run(ResolveSerializer, alarm_services.alarm_resolve, by=request.user)

    @extend_schema(request=CommentSerializer, responses=AlarmResultSerializer)
    @action(detail=True, methods=["post"])
    def suppress(self, request, pk=None):
        """Take the alarm out of service (plant admin): it stays visible but notifies nobody."""
        return self._run(CommentSerializer, alarm_services.alarm_set_suppressed, by=request.user, suppressed=True)

    @extend_schema(request=CommentSerializer, responses=AlarmResultSerializer)
    @action(detail=True, methods=["post"])
    def unsuppress(self, request, pk=None):
        """Put the alarm back in service (plant admin)."""
        return self._run(CommentSerializer, alarm_services.alarm_set_suppressed, by=request.user, suppressed=False)

    @extend_schema(responses=AlarmEventSerializer(many=True))
    @action(detail=True, methods=["get"], filter_backends=[])
    def events(self, request, pk=None):
        """The alarm's history, oldest first and paginated: every transition with who, when, comment and value."""
        alarm = self.get_object()
        return paginated_response(self, alarm.events.select_related("user").order_by("at", "pk"), AlarmEventSerializer)

    @extend_schema(
        parameters=[
            OpenApiParameter("plant", int, many=True, description="Plant ids (default: all yours)"),
            OpenApiParameter("per_device", bool, description="Add ``devices``: the counts per device id"),
        ],
        responses={200: dict},
    )
    @action(detail=False, methods=["get"], filterset_class=None, pagination_class=None)
    def counts(self, request):
        """Open alarms per plant by severity, unacknowledged and shelved: ``{"<plant id>": {...}}``.

        ``per_device=true`` adds ``"devices": {"<device id>": {...}}`` per plant (overview tiles).
        """
        query = CountsQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        plant_ids, per_device = query.validated_data.get("plant") or None, query.validated_data["per_device"]
        if plant_ids and plant_list_for(request.user).filter(pk__in=plant_ids).count() != len(set(plant_ids)):
            raise Http404("No such plant among the plants you can see.")
        counts = alarm_counts_for(request.user, plant_ids, per_device=per_device)
        if per_device:
            for plant in counts.values():
                plant["devices"] = {str(k): v for k, v in plant["devices"].items()}
        return Response({str(k): v for k, v in counts.items()})

    @extend_schema(
        parameters=[
            OpenApiParameter("plant", int, required=True),
            OpenApiParameter("start", str, required=True, description="ISO 8601"),
            OpenApiParameter("end", str, required=True, description="ISO 8601"),
        ],
        responses=AlarmKpisSerializer,
    )
    @action(detail=False, methods=["get"], filterset_class=None, pagination_class=None)
    def kpis(self, request):
        """ISA-18.2 / EEMUA 191 alarm KPIs of one plant over [start, end) (see README)."""
        query = KpiQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        plant = plant_get_for(request.user, query.validated_data["plant"])
        if plant is None:
            raise Http404("No such plant.")
        return Response(
            alarm_kpis(plant=plant, now=timezone.now(), **{k: query.validated_data[k] for k in ("start", "end")})
        )


class NotificationChannelViewSet(PlantScopedViewSetMixin, viewsets.ModelViewSet):
    """Where notifications go (e-mail, SMS, webhook, in-app). Plant admins manage them; secrets are masked."""

    queryset = NotificationChannel.objects.select_related("plant")
    serializer_class = ChannelSerializer
    filterset_class = ChannelFilterSet
    search_fields = ["name"]
    ordering_fields = ["name", "created_at"]


class NotificationRouteViewSet(PlantScopedViewSetMixin, viewsets.ModelViewSet):
    """Which severities go to which channel and people, at once or as an escalation after N minutes."""

    queryset = NotificationRoute.objects.select_related("plant", "channel").prefetch_related("users")
    serializer_class = RouteSerializer
    filterset_class = RouteFilterSet
    ordering_fields = ["delay_minutes", "created_at"]


class DeliveryViewSet(PlantScopedViewSetMixin, viewsets.ReadOnlyModelViewSet):
    """Every notification attempt: status, error, duration and the alarms it carried."""

    queryset = Delivery.objects.select_related("channel").prefetch_related("events")
    serializer_class = DeliverySerializer
    filterset_class = DeliveryFilterSet
    ordering_fields = ["created_at", "scheduled_at"]


class NotificationMuteViewSet(
    mixins.ListModelMixin, mixins.CreateModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet
):
    """Your own mutes: no notifications about a device (of a plant you see) until a time. Any role."""

    serializer_class = MuteSerializer
    permission_classes = [IsAuthenticated]
    queryset = NotificationMute.objects.none()

    def get_queryset(self):
        mutes = NotificationMute.objects.filter(user=self.request.user).select_related("device")
        return scope_to_plants(mutes, self.request.user, plant_field="device__plant")

    def perform_create(self, serializer):
        minutes = serializer.validated_data.pop("minutes")
        device = serializer.validated_data["device"]
        until = timezone.now() + timedelta(minutes=minutes)
        mute, _ = NotificationMute.objects.update_or_create(
            user=self.request.user, device=device, defaults={"until": until}
        )
        serializer.instance = mute
