"""Failed-login throttling with django-axes: what a locked-out attempt sees, and the JWT login hook.

Axes records failures from ``user_login_failed`` and flags the request it is handed; its
middleware then swaps the response for ``lockout_response``. simplejwt hands ``authenticate``
DRF's ``Request`` wrapper and never sends ``user_logged_in``, so out of the box the API login
is counted but never answered with 429, and a good password never resets the count.
``AxesTokenObtainPairSerializer`` (wired in ``SIMPLE_JWT["TOKEN_OBTAIN_SERIALIZER"]``) fixes both.
"""

from django.conf import settings
from django.contrib.auth.signals import user_logged_in
from django.http import JsonResponse
from django.shortcuts import render
from drf_spectacular.utils import extend_schema_serializer
from rest_framework_simplejwt.serializers import TokenObtainPairSerializer


def lockout_response(request, *args, **kwargs):
    """Axes' ``AXES_LOCKOUT_CALLABLE``: 429 with ``Retry-After``, JSON under /api/, HTML elsewhere."""
    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    message = (
        f"Too many failed login attempts for this account from your address. "
        f"Try again in {minutes} minutes, or ask an administrator to reset the lock."
    )
    headers = {"Retry-After": str(int(settings.AXES_COOLOFF_TIME.total_seconds()))}
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": message}, status=429, headers=headers)
    response = render(request, "registration/locked_out.html", {"message": message}, status=429)
    response["Retry-After"] = headers["Retry-After"]
    return response


@extend_schema_serializer(component_name="TokenObtainPair")  # the schema name clients already know
class AxesTokenObtainPairSerializer(TokenObtainPairSerializer):
    """simplejwt's login, made visible to axes: it authenticates against the ``HttpRequest`` (which
    the axes middleware inspects) and sends ``user_logged_in`` on success (which resets the
    failure count and updates ``last_login``)."""

    def validate(self, attrs):
        drf_request = self.context.get("request")
        http_request = getattr(drf_request, "_request", drf_request)
        if http_request is not None:
            self.context["request"] = http_request
        try:
            data = super().validate(attrs)
        finally:
            if drf_request is not None:
                self.context["request"] = drf_request
        user_logged_in.send(sender=type(self.user), request=http_request, user=self.user)
        return data
