from rest_framework.permissions import BasePermission


class PlantObjectPermissions(BasePermission):
    """Object check for plant-scoped viewsets: the user needs the action's permission on the object's plant.

    Visibility is settled earlier by the scoped queryset (invisible objects are 404); this class
    turns "visible but not allowed" into 403 with a message naming the missing role.
    """

    def has_object_permission(self, request, view, obj):
        view.check_plant_perm(view.plant_of(obj))
        return True
