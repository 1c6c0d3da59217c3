from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView
from rest_framework_simplejwt.views import TokenBlacklistView, TokenObtainPairView, TokenRefreshView

from accounts.views import home
from devices.api.device_views import device_provision, device_self
from factory.api_router import router
from factory.exceptions import not_found
from factory.health import healthz
from factory.views import favicon

api_v1 = [
    path("auth/token/", TokenObtainPairView.as_view(), name="token_obtain"),
    path("auth/token/refresh/", TokenRefreshView.as_view(), name="token_refresh"),
    path("auth/token/blacklist/", TokenBlacklistView.as_view(), name="token_blacklist"),
    path("device/", device_self, name="device_self"),
    path("device/provision/", device_provision, name="device_provision"),
    path("device/firmware/", include("firmware.device_urls")),
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
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    # ReDoc from our static files, with nothing loaded from other hosts (templates/api/redoc.html).
    path(
        "api/redoc/",
        SpectacularRedocView.as_view(url_name="schema", template_name="api/redoc.html"),
        name="api-redoc",
    ),
    path("healthz", healthz, name="healthz"),
    path("favicon.ico", favicon, name="favicon"),
    # Unknown API paths answer JSON even with DEBUG=true (Django's debug 404 page is HTML).
    re_path(r"^api/", not_found),
]

handler403 = "factory.exceptions.permission_denied"
handler404 = "factory.exceptions.not_found"
handler500 = "factory.exceptions.server_error"
