"""Commands in the management API.

- ``GET|POST /api/v1/devices/<id>/commands/`` (an action of the device viewset): the device's
  command history, or send one (operators; the catalogue decides the name, params and role).
- ``GET /api/v1/devices/<id>/command-catalogue/``: what the caller may send to that device.
- ``GET /api/v1/commands/`` and ``/api/v1/commands/<id>/`` (with its history of states).
- ``/api/v1/command-definitions/``: the catalogue; everyone reads it, staff change it.
"""

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import APIException
from rest_framework.permissions import SAFE_METHODS, BasePermission, IsAuthenticated
from rest_framework.response import Response

from accounts.api.scoping import PlantScopedViewSetMixin
from accounts.roles import PERM_OPERATE, PERM_VIEW
from commands.api.filters import CommandDefinitionFilterSet, CommandFilterSet
from commands.api.serializers import (
    CommandCreateSerializer,
    CommandDefinitionSerializer,
    CommandDetailSerializer,
    CommandSerializer,
)
from commands.exceptions import CommandError
from commands.models import Command, CommandDefinition
from commands.services import command_send, definitions_allowed


class CommandRefused(APIException):
    """A ``CommandError`` as a DRF response: its status, message and field errors."""

    def __init__(self, error: CommandError):
        self.status_code = error.status
        super().__init__(detail=error.message)
        # As given, not stringified leaf by leaf: the schema in the body keeps its numbers.
        self.detail = {"detail": error.message, **({"errors": error.errors} if error.errors else {})}


class DeviceCommandsMixin:
    """The device viewset's command actions (mixed into ``devices.api.views.DeviceViewSet``)."""

    def required_perm(self) -> str:
        if self.action == "commands":
            return PERM_VIEW if self.request.method in SAFE_METHODS else PERM_OPERATE
        if self.action == "command_catalogue":
            return PERM_VIEW
        return super().required_perm()

    @extend_schema(
        request=CommandCreateSerializer, responses={200: CommandSerializer(many=True), 201: CommandSerializer}
    )
    @action(detail=True, methods=["get", "post"])
    def commands(self, request, pk=None):
        """The device's commands, newest first; or send one (``{"name", "params", "timeout"}``, operator
        role or what the catalogue asks): 201 ``pending``, then delivered over MQTT, the device
        WebSocket and the device's poll. 400 lists the allowed names or the schema error."""
        device = self.get_object()
        if request.method == "GET":
            commands = Command.objects.filter(device=device).select_related("created_by", "device")
            page = self.paginate_queryset(commands)
            return self.get_paginated_response(CommandSerializer(page, many=True).data)
        serializer = CommandCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            command = command_send(device=device, by=request.user, **serializer.validated_data)
        except CommandError as exc:
            raise CommandRefused(exc) from None
        return Response(CommandSerializer(command).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses=CommandDefinitionSerializer(many=True))
    @action(detail=True, methods=["get"], url_path="command-catalogue", pagination_class=None)
    def command_catalogue(self, request, pk=None):
        """The catalogue entries of the device's model that you may send (by your role)."""
        device = self.get_object()
        return Response(CommandDefinitionSerializer(definitions_allowed(device, request.user), many=True).data)


class CommandViewSet(PlantScopedViewSetMixin, viewsets.ReadOnlyModelViewSet):
    """Commands to your plants' devices, newest first; the detail has every state with when and how."""

    queryset = Command.objects.select_related("created_by", "device")
    serializer_class = CommandSerializer
    filterset_class = CommandFilterSet
    plant_field = "device__plant"
    ordering_fields = ["created_at", "finished_at"]

    def get_queryset(self):
        queryset = super().get_queryset()
        if self.action == "retrieve":
            queryset = queryset.prefetch_related("events__by")
        return queryset

    def get_serializer_class(self):
        return CommandDetailSerializer if self.action == "retrieve" else CommandSerializer


class StaffWritesOnly(BasePermission):
    message = "Only staff change the command catalogue (it applies to every plant). Ask an administrator."

    def has_permission(self, request, view):
        return request.method in SAFE_METHODS or bool(request.user.is_staff or request.user.is_superuser)


class CommandDefinitionViewSet(
    mixins.CreateModelMixin, mixins.UpdateModelMixin, mixins.DestroyModelMixin, viewsets.ReadOnlyModelViewSet
):
    """The command catalogue per hardware model (name, JSON schema of params, role needed)."""

    queryset = CommandDefinition.objects.all()
    serializer_class = CommandDefinitionSerializer
    filterset_class = CommandDefinitionFilterSet
    permission_classes = [IsAuthenticated, StaffWritesOnly]
    search_fields = ["name", "label", "model"]
    ordering_fields = ["model", "name"]
