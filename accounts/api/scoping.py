"""The one enforcement point for plant-scoped API resources (NetBox's BaseViewSet idea, on guardian)."""

from operator import attrgetter

from rest_framework.exceptions import PermissionDenied
from rest_framework.permissions import SAFE_METHODS, IsAuthenticated
from rest_framework.relations import PrimaryKeyRelatedField

from accounts.api.permissions import PlantObjectPermissions
from accounts.roles import PERM_MANAGE, PERM_OPERATE, PERM_VIEW
from accounts.selectors import scope_to_plants, user_has_plant_perm

ROLE_FOR_PERM = {PERM_VIEW: "viewer", PERM_OPERATE: "operator", PERM_MANAGE: "admin"}


class PlantScopedViewSetMixin:
    """Scopes ``get_queryset`` to the user's plants and checks the action's permission per plant.

    ``plant_field``: path from the model to its plant ("" for ``Plant`` itself).
    ``write_perm``: what unsafe methods need (plant admin by default).
    ``action_perms``: per-action overrides, e.g. ``{"acknowledge": PERM_OPERATE}``.
    """

    plant_field = "plant"
    write_perm = PERM_MANAGE
    action_perms: dict[str, str] = {}
    permission_classes = [IsAuthenticated, PlantObjectPermissions]

    def get_queryset(self):
        return scope_to_plants(super().get_queryset(), self.request.user, PERM_VIEW, self.plant_field)

    def required_perm(self) -> str:
        if self.action in self.action_perms:
            return self.action_perms[self.action]
        return PERM_VIEW if self.request.method in SAFE_METHODS else self.write_perm

    def plant_of(self, obj):
        if not self.plant_field:
            return obj
        return attrgetter(self.plant_field.replace("__", "."))(obj)

    def check_plant_perm(self, plant, perm: str | None = None) -> None:
        perm = perm or self.required_perm()
        if not user_has_plant_perm(self.request.user, perm, plant):
            raise PermissionDenied(
                f"This needs the {ROLE_FOR_PERM.get(perm, perm)} role on plant '{plant}'. Ask one of its admins."
            )

    def perform_create(self, serializer):
        self.check_plant_perm(serializer.plant_for_create(serializer.validated_data))
        serializer.save()


class ScopedPrimaryKeyRelatedField(PrimaryKeyRelatedField):
    """A related-object field that only accepts objects in plants the requesting user can see.

    An invisible object reads as "does not exist", so existence never leaks across plants.
    """

    def __init__(self, plant_field: str = "plant", **kwargs):
        self.plant_field = plant_field
        super().__init__(**kwargs)

    def get_queryset(self):
        queryset = super().get_queryset()
        request = self.context.get("request")
        if request is None:
            return queryset
        return scope_to_plants(queryset, request.user, PERM_VIEW, self.plant_field)
