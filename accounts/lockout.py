"""What a locked-out login attempt sees (django-axes calls this)."""

from django.conf import settings
from django.http import JsonResponse
from django.shortcuts import render


def lockout_response(request, credentials, *args, **kwargs):
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
