"""JSON errors for the API, with a message that says what is wrong and what to do."""

from django.db import IntegrityError
from django.db.models import ProtectedError
from django.http import JsonResponse
from django.views import defaults
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler


def api_exception_handler(exc, context):
    """DRF's handler, plus a top-level ``detail`` on validation errors so clients always find one."""
    if isinstance(exc, ProtectedError):
        blocking = sorted({str(obj) for obj in list(exc.protected_objects)[:10]})
        return Response(
            {"detail": f"Cannot delete: still in use by {', '.join(blocking)}. Move or delete those first."},
            status=status.HTTP_409_CONFLICT,
        )
    from devices.services.broker import BrokerError

    if isinstance(exc, BrokerError):
        # Credentials must reach the MQTT broker or not exist: the service rolled back.
        return Response(
            {"detail": f"{exc} Nothing was changed; try again when the broker is up."},
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
        )
    if isinstance(exc, IntegrityError):
        # A unique constraint lost a race with a concurrent request (the serializer checked first).
        return Response(
            {"detail": "Conflicts with a row created at the same moment (e.g. the same name); reload and retry."},
            status=status.HTTP_409_CONFLICT,
        )
    response = exception_handler(exc, context)
    if response is not None and isinstance(response.data, dict) and "detail" not in response.data:
        fields = ", ".join(str(name) for name in response.data)
        response.data = {"detail": f"Invalid input in: {fields}.", "errors": response.data}
    elif response is not None and isinstance(response.data, list):
        response.data = {"detail": " ".join(str(item) for item in response.data), "errors": response.data}
    return response


def not_found(request, exception=None):
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": f"No such resource: {request.path}. See /api/docs/ for the API."}, status=404)
    return defaults.page_not_found(request, exception)


def server_error(request):
    if request.path.startswith("/api/"):
        detail = "Internal server error. The incident has been logged; try again later."
        return JsonResponse({"detail": detail}, status=500)
    return defaults.server_error(request)
