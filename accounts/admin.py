from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin

from accounts.models import PlantRole, User


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    """Accounts are managed by superusers; plant admins grant roles on the plant's members page."""

    list_display = ["username", "email", "first_name", "last_name", "is_active", "is_superuser", "last_login"]


@admin.register(PlantRole)
class PlantRoleAdmin(admin.ModelAdmin):
    list_display = ["plant", "role", "group"]
    list_filter = ["role", "plant"]
    readonly_fields = ["plant", "role", "group"]

    def has_add_permission(self, request):
        return False  # created with the plant
