from django.db import transaction
from rest_framework import serializers

from accounts.models import User
from accounts.services import user_create, user_set_password
from factory.serializers import StrictSerializerMixin, call_service


def _call_service(service, **kwargs):
    """``call_service`` for account services: password errors carry no field name, so they get ``password``."""
    try:
        return call_service(service, **kwargs)
    except serializers.ValidationError as exc:
        if isinstance(exc.detail, dict):
            raise
        raise serializers.ValidationError({"password": exc.detail}) from None


class UserSerializer(StrictSerializerMixin, serializers.ModelSerializer):
    password = serializers.CharField(write_only=True, style={"input_type": "password"})

    class Meta:
        model = User
        fields = [
            "id",
            "username",
            "email",
            "first_name",
            "last_name",
            "is_active",
            "is_superuser",
            "password",
            "date_joined",
        ]
        read_only_fields = ["is_superuser", "date_joined"]

    def create(self, validated_data):
        return _call_service(user_create, **validated_data)

    @transaction.atomic
    def update(self, instance, validated_data):
        password = validated_data.pop("password", None)
        instance = super().update(instance, validated_data)
        if password is not None:
            # Same policy as on create; a refused password rolls back the other fields too.
            _call_service(user_set_password, user=instance, password=password)
        return instance


class MeSerializer(serializers.ModelSerializer):
    roles = serializers.SerializerMethodField(help_text="Plant id → your role there.")

    class Meta:
        model = User
        fields = ["id", "username", "email", "first_name", "last_name", "is_superuser", "roles"]

    def get_roles(self, user) -> dict[str, str]:
        return {str(k): v for k, v in self.context["roles"].items()}
