"""Admin base class: every plant-scoped admin page shows and edits only the plants the user administers."""

from operator import attrgetter

from django.contrib import admin
from django.contrib.admin.utils import get_fields_from_path

from accounts.roles import PERM_MANAGE
from accounts.selectors import plant_list_for, scope_to_plants, user_has_plant_perm
from devices.models import Device, DeviceGroup, Line, Plant

# Related-object choices in forms are limited to the same plants; path from each model to its plant.
_PLANT_PATHS = {Plant: "", Line: "plant", Device: "plant", DeviceGroup: "plant"}


def _scoped_choices(model, request):
    """Rows of ``model`` in the plants ``request.user`` administers (related-object choices)."""
    queryset = model._default_manager.all()
    if _PLANT_PATHS[model]:
        queryset = queryset.select_related(_PLANT_PATHS[model])  # Line.__str__ shows its plant's name
    return scope_to_plants(queryset, request.user, PERM_MANAGE, _PLANT_PATHS[model])


def administered_sample(request) -> list[int]:
    """Up to two ids of the plants the user administers, once per request (one query): every admin
    page asks each registered model admin whether the user may see it (the sidebar, the index)."""
    cache_attr = "_administered_plants_sample"
    if not hasattr(request, cache_attr):
        setattr(request, cache_attr, list(plant_list_for(request.user, PERM_MANAGE).values_list("pk", flat=True)[:2]))
    return getattr(request, cache_attr)


def administers_any(request) -> bool:
    """Whether the user may open a plant-scoped admin page at all: a superuser or a plant admin."""
    return request.user.is_superuser or bool(administered_sample(request))


class PlantScopedRelatedFilter(admin.RelatedFieldListFilter):
    """The changelist sidebar filter, listing only plants, lines and groups the user administers.

    The stock filter lists every row of the related model, which would name other plants' objects.
    """

    def field_choices(self, field, request, model_admin):
        queryset = _scoped_choices(field.related_model, request)
        ordering = self.field_admin_ordering(field, request, model_admin)
        if ordering:
            queryset = queryset.order_by(*ordering)
        return [(obj.pk, str(obj)) for obj in queryset]


class PlantScopedAdmin(admin.ModelAdmin):
    """Superusers see everything; plant admins see and change rows of the plants they administer."""

    plant_field = "plant"

    def plant_of(self, obj):
        return obj if not self.plant_field else attrgetter(self.plant_field.replace("__", "."))(obj)

    def get_queryset(self, request):
        return scope_to_plants(super().get_queryset(request), request.user, PERM_MANAGE, self.plant_field)

    def _administers_any(self, request) -> bool:
        return administers_any(request)

    def _administers_one_plant(self, request) -> bool:
        """Whether the user administers exactly one plant (a plant column would repeat its name)."""
        return not request.user.is_superuser and len(administered_sample(request)) == 1

    def _may(self, request, obj) -> bool:
        if obj is None:
            return self._administers_any(request)
        return user_has_plant_perm(request.user, PERM_MANAGE, self.plant_of(obj))

    def has_module_permission(self, request):
        return self._administers_any(request)

    def has_view_permission(self, request, obj=None):
        return self._may(request, obj)

    def has_change_permission(self, request, obj=None):
        return self._may(request, obj)

    def has_add_permission(self, request):
        return self._administers_any(request)

    def has_delete_permission(self, request, obj=None):
        return self._may(request, obj)

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        if obj is not None and self.plant_field == "plant" and "plant" not in fields:
            # Rows never change plant (as in the API): their devices, lines, groups and history stay behind.
            fields.append("plant")
        return fields

    def get_list_filter(self, request):
        scoped = []
        for entry in super().get_list_filter(request):
            if isinstance(entry, str):
                field = get_fields_from_path(self.model, entry)[-1]
                if field.is_relation and field.related_model in _PLANT_PATHS:
                    entry = (entry, PlantScopedRelatedFilter)
            scoped.append(entry)
        return scoped

    def _limit(self, db_field, request, kwargs):
        model = db_field.remote_field.model
        if model in _PLANT_PATHS:
            kwargs["queryset"] = _scoped_choices(model, request)
        return kwargs

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        return super().formfield_for_foreignkey(db_field, request, **self._limit(db_field, request, kwargs))

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        return super().formfield_for_manytomany(db_field, request, **self._limit(db_field, request, kwargs))
