"""Template context every page shares (``TEMPLATES`` in settings)."""

from django.contrib import admin
from django.utils.functional import SimpleLazyObject


def site(request):
    """``show_admin_link``: whether the header links to the admin, i.e. whether the admin would let
    this user in (staff, superusers and plant admins: ``factory/admin.py``). Lazy: the query runs
    only on pages that draw the header for a logged-in user."""
    return {"show_admin_link": SimpleLazyObject(lambda: bool(admin.site.has_permission(request)))}
