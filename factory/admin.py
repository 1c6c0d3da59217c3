"""The admin site: superusers see everything, plant admins see the plants they administer.

Plant admins need no ``is_staff`` flag: their role on a plant (granted through guardian) is what
lets them in, and every model admin scopes its rows with the same selector as the API.

Times show in a plant's zone, never in the server's UTC: every admin page renders (and reads
entered times) in the zone of the user's first plant by name, or the one they chose among their
plants' zones in the header ("Times: Europe/Berlin"), which every page names.
"""

from functools import wraps

from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.core.exceptions import ValidationError
from django.http import HttpResponseBadRequest, HttpResponseRedirect
from django.urls import path
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

TIME_ZONE_SESSION_KEY = "admin_time_zone"


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


def admin_time_zones(user) -> list[str]:
    """The zones of the user's plants (their first plant's, by name, first), then UTC."""
    from accounts.selectors import plant_list_for

    zones = list(dict.fromkeys(plant_list_for(user).order_by("name").values_list("time_zone", flat=True)))
    return zones + ["UTC"] if "UTC" not in zones else zones


def admin_time_zone(request) -> tuple[str, list[str]]:
    """(the zone the admin shows times in for this request, the zones the user may choose)."""
    zones = admin_time_zones(request.user)
    chosen = request.session.get(TIME_ZONE_SESSION_KEY)
    return (chosen if chosen in zones else zones[0]), zones


class FactoryAdminSite(admin.AdminSite):
    site_header = "Smart Factory IoT administration"
    site_title = "Smart Factory IoT"
    index_title = "Plants, devices and people"
    login_form = FactoryAdminAuthenticationForm

    def has_permission(self, request):
        return _may_use_admin(request.user)

    def admin_view(self, view, cacheable=False):
        """Every admin page renders, and reads entered times, in the user's plant zone. The response
        is rendered inside the zone: a TemplateResponse would otherwise render after it ended."""
        inner = super().admin_view(view, cacheable)

        @wraps(inner)
        def in_plant_zone(request, *args, **kwargs):
            if not request.user.is_authenticated:
                return inner(request, *args, **kwargs)
            zone, zones = admin_time_zone(request)
            with timezone.override(zone):
                request.admin_time_zone, request.admin_time_zones = zone, zones
                response = inner(request, *args, **kwargs)
                if hasattr(response, "render") and not getattr(response, "is_rendered", True):
                    response.render()
            return response

        return in_plant_zone

    def each_context(self, request):
        context = super().each_context(request)
        if hasattr(request, "admin_time_zone"):
            context["admin_time_zone"], context["admin_time_zones"] = request.admin_time_zone, request.admin_time_zones
        return context

    def get_urls(self):
        own = [path("time-zone/", self.admin_view(self.time_zone_view), name="time_zone")]
        return own + super().get_urls()

    @staticmethod
    @require_POST
    def time_zone_view(request):
        """Show the admin's times in another of the user's plants' zones (remembered in the session)."""
        zone = request.POST.get("tz", "")
        if zone not in admin_time_zones(request.user):
            return HttpResponseBadRequest("Choose the time zone of one of your plants (or UTC).")
        request.session[TIME_ZONE_SESSION_KEY] = zone
        target = request.POST.get("next", "")
        safe = url_has_allowed_host_and_scheme(target, {request.get_host()}, require_https=request.is_secure())
        return HttpResponseRedirect(target if safe else "../")
