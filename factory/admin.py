"""The admin site: superusers see everything, plant admins see the plants they administer.

Plant admins need no ``is_staff`` flag: their role on a plant (granted through guardian) is what
lets them in, and every model admin scopes its rows with the same selector as the API.
"""

from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.core.exceptions import ValidationError


def _may_use_admin(user) -> bool:
    from accounts.roles import PERM_MANAGE
    from accounts.selectors import plant_list_for

    if not user.is_active:
        return False
    if user.is_staff or user.is_superuser:
        return True
    return plant_list_for(user, PERM_MANAGE).exists()


class FactoryAdminAuthenticationForm(AdminAuthenticationForm):
    def confirm_login_allowed(self, user):
        if not _may_use_admin(user):
            raise ValidationError(
                "This account is not an administrator of any plant. Ask a plant admin for the admin role, "
                "or use the dashboard.",
                code="invalid_login",
            )


class FactoryAdminSite(admin.AdminSite):
    site_header = "Smart Factory IoT administration"
    site_title = "Smart Factory IoT"
    index_title = "Plants, devices and people"
    login_form = FactoryAdminAuthenticationForm

    def has_permission(self, request):
        return _may_use_admin(request.user)
