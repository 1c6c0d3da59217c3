from drf_spectacular.utils import extend_schema
from rest_framework import viewsets
from rest_framework.decorators import action
from rest_framework.permissions import IsAdminUser, IsAuthenticated
from rest_framework.response import Response

from accounts.api.serializers import MeSerializer, UserSerializer
from accounts.models import User
from accounts.selectors import plant_roles_of


class IsSuperuser(IsAdminUser):
    message = (
        "Only superusers manage user accounts. "
        "Plant admins add existing users to their plant via /plants/<id>/members/."
    )

    def has_permission(self, request, view):
        return bool(request.user and request.user.is_superuser)


class UserViewSet(viewsets.ModelViewSet):
    """User accounts (superusers only), and ``me`` for anyone logged in."""

    queryset = User.objects.order_by("username")
    serializer_class = UserSerializer
    permission_classes = [IsSuperuser]
    search_fields = ["username", "email", "first_name", "last_name"]
    filterset_fields = ["is_active"]
    http_method_names = ["get", "post", "patch", "head", "options"]

    @extend_schema(responses=MeSerializer)
    @action(detail=False, methods=["get"], permission_classes=[IsAuthenticated])
    def me(self, request):
        """Who you are and your role per plant."""
        context = {"roles": plant_roles_of(request.user)}
        return Response(MeSerializer(request.user, context=context).data)
