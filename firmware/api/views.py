from django.shortcuts import get_object_or_404
from django_filters.utils import translate_validation
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response

from accounts.api.scoping import PlantScopedViewSetMixin
from accounts.roles import PERM_MANAGE, PERM_OPERATE
from factory.pagination import paginated_response
from factory.serializers import call_service
from firmware.api.filters import FirmwareImageFilterSet, RolloutFilterSet, RolloutTargetFilterSet
from firmware.api.serializers import (
    FirmwareImageSerializer,
    RolloutActionSerializer,
    RolloutEventSerializer,
    RolloutSerializer,
    RolloutTargetEventSerializer,
    RolloutTargetSerializer,
)
from firmware.models import FirmwareImage, Rollout, RolloutTarget
from firmware.services import rollouts
from firmware.services.images import image_delete


class FirmwareImageViewSet(
    PlantScopedViewSetMixin,
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    mixins.ListModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Firmware images of your plants. Plant admins upload (multipart) and delete unused images."""

    queryset = FirmwareImage.objects.select_related("plant", "created_by")
    serializer_class = FirmwareImageSerializer
    filterset_class = FirmwareImageFilterSet
    parser_classes = [MultiPartParser, FormParser, JSONParser]
    write_perm = PERM_MANAGE
    search_fields = ["version", "release_notes"]
    ordering_fields = ["version", "created_at"]

    def perform_destroy(self, instance):
        call_service(image_delete, image=instance)


ROLLOUT_ACTIONS = {
    "start": rollouts.rollout_start,
    "pause": rollouts.rollout_pause,
    "resume": rollouts.rollout_resume,
    "approve": rollouts.rollout_approve,
    "cancel": rollouts.rollout_cancel,
    "retry": rollouts.rollout_retry,
}


class RolloutViewSet(
    PlantScopedViewSetMixin,
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    mixins.ListModelMixin,
    viewsets.GenericViewSet,
):
    """Staged rollouts. Operators create, start, pause, resume, approve, cancel, retry and roll back."""

    queryset = Rollout.objects.select_related("plant", "image", "created_by")
    serializer_class = RolloutSerializer
    filterset_class = RolloutFilterSet
    write_perm = PERM_OPERATE
    search_fields = ["name"]
    ordering_fields = ["created_at", "state"]

    def _act(self, request, name: str):
        rollout = self.get_object()
        serializer = RolloutActionSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        kwargs = {"rollout": rollout, "by": request.user}
        if name == "pause":
            kwargs["reason"] = serializer.validated_data.get("reason", "")
        result = call_service(ROLLOUT_ACTIONS[name] if name != "rollback" else rollouts.rollout_rollback, **kwargs)
        if name == "rollback":
            return Response(self.get_serializer(result).data, status=status.HTTP_201_CREATED)
        rollout.refresh_from_db()
        return Response(self.get_serializer(rollout).data)

    @extend_schema(request=RolloutActionSerializer, responses=RolloutSerializer)
    @action(detail=True, methods=["post"])
    def start(self, request, pk=None):
        """Start a draft (or schedule it when ``scheduled_at`` is in the future)."""
        return self._act(request, "start")

    @extend_schema(request=RolloutActionSerializer, responses=RolloutSerializer)
    @action(detail=True, methods=["post"])
    def pause(self, request, pk=None):
        """Pause: no new devices are notified; devices already updating finish."""
        return self._act(request, "pause")

    @extend_schema(request=RolloutActionSerializer, responses=RolloutSerializer)
    @action(detail=True, methods=["post"])
    def resume(self, request, pk=None):
        """Resume a paused rollout, accepting the current stage's failures."""
        return self._act(request, "resume")

    @extend_schema(request=RolloutActionSerializer, responses=RolloutSerializer)
    @action(detail=True, methods=["post"])
    def approve(self, request, pk=None):
        """Open the next stage of a rollout waiting for approval."""
        return self._act(request, "approve")

    @extend_schema(request=RolloutActionSerializer, responses=RolloutSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        """Cancel: pending updates are cancelled and their devices told."""
        return self._act(request, "cancel")

    @extend_schema(request=RolloutActionSerializer, responses=RolloutSerializer)
    @action(detail=True, methods=["post"])
    def retry(self, request, pk=None):
        """Queue the failed and timed-out devices again."""
        return self._act(request, "retry")

    @extend_schema(request=RolloutActionSerializer, responses={201: RolloutSerializer})
    @action(detail=True, methods=["post"])
    def rollback(self, request, pk=None):
        """Create and start the reverse rollout to each updated device's previous image."""
        return self._act(request, "rollback")

    @extend_schema(
        responses=RolloutTargetSerializer(many=True),
        parameters=[
            OpenApiParameter("status", str, enum=RolloutTarget.Status.values),
            OpenApiParameter("stage", int),
        ],
    )
    @action(detail=True, methods=["get"], filter_backends=[])
    def targets(self, request, pk=None):
        """The per-device updates, paginated; filter by ``status`` and ``stage``."""
        rollout = self.get_object()
        filters = RolloutTargetFilterSet(request.query_params, rollout.targets.select_related("device", "image"))
        if not filters.is_valid():
            raise translate_validation(filters.errors)
        queryset = filters.qs
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(RolloutTargetSerializer(page, many=True).data)

    @extend_schema(responses=RolloutTargetEventSerializer(many=True))
    @action(detail=True, methods=["get"], url_path=r"targets/(?P<target_id>\d+)/history", filter_backends=[])
    def target_history(self, request, pk=None, target_id=None):
        """Every status one device's update went through, with time and detail (oldest first, paginated)."""
        target = get_object_or_404(self.get_object().targets, pk=target_id)
        return paginated_response(self, target.events.order_by("at", "id"), RolloutTargetEventSerializer)

    @extend_schema(responses=RolloutEventSerializer(many=True))
    @action(detail=True, methods=["get"], filter_backends=[])
    def events(self, request, pk=None):
        """The audit trail (oldest first, paginated): who created, started, paused, approved, cancelled or
        rolled back; system steps."""
        rollout = self.get_object()
        events = rollout.events.select_related("by").order_by("at", "id")
        return paginated_response(self, events, RolloutEventSerializer)

    def required_perm(self):
        if self.action in ROLLOUT_ACTIONS or self.action == "rollback":
            return PERM_OPERATE
        return super().required_perm()
