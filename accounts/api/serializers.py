from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers
from rest_framework.fields import get_error_detail

from accounts.models import User
from accounts.services import user_create
from factory.serializers import StrictSerializerMixin


class UserSerializer(StrictSerializerMixin, serializers.ModelSerializer):
    password = serializers.CharField(write_only=True, style={"input_type": "password"})

    class Meta:
        model = User
        fields = ["id", "username", "email", "first_name", "last_name", "is_active", "is_superuser", "password", "date_joined"]
        read_only_fields = ["is_superuser", "date_joined"]

    def create(self, validated_data):
        try:
            return user_create(**validated_data)
        except DjangoValidationError as exc:
            detail = get_error_detail(exc)
            raise serializers.ValidationError(detail if isinstance(detail, dict) else {"password": detail}) from None

    def update(self, instance, validated_data):
        password = validated_data.pop("password", None)
        instance = super().update(instance, validated_data)
        if password:
            instance.set_password(password)
            instance.save(update_fields=["password"])
        return instance


class MeSerializer(serializers.ModelSerializer):
    roles = serializers.SerializerMethodField(help_text="Plant id → your role there.")

    class Meta:
        model = User
        fields = ["id", "username", "email", "first_name", "last_name", "is_superuser", "roles"]

    def get_roles(self, user) -> dict[str, str]:
        return {str(k): v for k, v in self.context["roles"].items()}
