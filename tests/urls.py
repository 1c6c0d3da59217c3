"""The test URLconf: the site's, plus the lean device endpoints for Django's test client (tests/lean_routes.py)."""

from django.urls import path

from factory.asgi import LEAN_ROUTES
from factory.urls import handler400, handler403, handler404, handler500
from factory.urls import urlpatterns as site_urlpatterns
from tests.lean_routes import as_django_view

urlpatterns = [path(route.removeprefix("/"), as_django_view(endpoint)) for route, endpoint in LEAN_ROUTES.items()]
urlpatterns += site_urlpatterns

__all__ = ["handler400", "handler403", "handler404", "handler500", "urlpatterns"]
