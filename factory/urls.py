from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path, re_path
from django.views.generic import RedirectView
from rest_framework_simplejwt.views import TokenBlacklistView, TokenObtainPairView, TokenRefreshView

from accounts.views import home
from devices.api.device_views import device_provision, device_self
from factory.api_docs import SchemaView, redoc_page, swagger_page
from factory.api_router import router
from factory.exceptions import not_found
from factory.health import healthz
from factory.metrics_export import metrics_view
from factory.views import favicon

api_v1 = [
    path("auth/token/", TokenObtainPairView.as_view(), name="token_obtain"),
    path("auth/token/refresh/", TokenRefreshView.as_view(), name="token_refresh"),
    path("auth/token/blacklist/", TokenBlacklistView.as_view(), name="token_blacklist"),
    path("device/", device_self, name="device_self"),
    path("device/provision/", device_provision, name="device_provision"),
    path("device/firmware/", include("firmware.device_urls")),
    path("device/commands/", include("commands.device_urls")),
    path("", include(router.urls)),
]

urlpatterns = [
    path("", home, name="home"),
    # Each app's pages, under the full paths its urls.py spells out (plant pages: /plants/<id>/...).
    path("", include("devices.urls")),
    path("", include("alerts.urls")),
    path("", include("firmware.urls")),
    path("", include("analytics.urls")),
    path("accounts/login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("api/v1/", include(api_v1)),
    path("api/schema/", SchemaView.as_view(), name="schema"),
    # The API docs are ReDoc, from our static files with nothing loaded from other hosts
    # (templates/api/redoc.html); it passes the axe-core checks. Swagger UI (to try calls in the
    # browser) stays at /api/swagger/: its own markup nests buttons and its colours miss WCAG AA
    # contrast (factory/tests/test_pages_a11y_browser.py says what axe finds there). Both behind a
    # login when API_DOCS_REQUIRE_LOGIN (factory/api_docs.py).
    path("api/docs/", redoc_page, name="api-docs"),
    path("api/redoc/", RedirectView.as_view(pattern_name="api-docs", permanent=True), name="api-redoc"),
    path("api/swagger/", swagger_page, name="api-swagger"),
    path("healthz", healthz, name="healthz"),
    path("metrics", metrics_view, name="metrics"),  # Prometheus (README "Metrics"): token or address only
    path("favicon.ico", favicon, name="favicon"),
    # Unknown API paths answer JSON even with DEBUG=true (Django's debug 404 page is HTML).
    re_path(r"^api/", not_found),
]

handler400 = "factory.exceptions.bad_request"
handler403 = "factory.exceptions.permission_denied"
handler404 = "factory.exceptions.not_found"
handler500 = "factory.exceptions.server_error"
