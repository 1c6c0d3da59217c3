"""Errors that say what is wrong and what to do: JSON for the API, the site's own pages for people.

The handlers of ``factory/urls.py`` (``handler403/404/500``) and ``CSRF_FAILURE_VIEW`` answer API
paths with JSON and everything else with ``templates/403.html``, ``404.html``, ``500.html``.
"""

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import IntegrityError
from django.db.models import ProtectedError
from django.http import (
    HttpResponse,
    HttpResponseBadRequest,
    HttpResponseForbidden,
    HttpResponseNotFound,
    HttpResponseServerError,
    JsonResponse,
)
from django.template import loader
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler


def _too_large() -> str:
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE / 1_000_000
    return f"Request body too large: at most {limit:g} MB. Send less per request (files as multipart uploads)."


def api_exception_handler(exc, context):
    """DRF's handler, plus a top-level ``detail`` on validation errors so clients always find one."""
    if isinstance(exc, RequestDataTooBig):
        # Django's own answer is its HTML 400 page; a client needs 413 and JSON.
        return Response({"detail": _too_large()}, status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
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


def _is_api(request) -> bool:
    return request.path.startswith("/api/")


def _message(exception) -> str:
    """The message an ``Http404``/``PermissionDenied`` was raised with (ours are written for people),
    or "" when it has none (Django's resolver passes a dict, bare raises none) or only Django's
    generic "No Plant matches the given query." of ``get_object_or_404``."""
    message = exception.args[0] if exception is not None and exception.args else ""
    if not isinstance(message, str) or message.endswith("matches the given query."):
        return ""
    return message


def not_found(request, exception=None):
    if _is_api(request):
        return JsonResponse({"detail": f"No such resource: {request.path}. See /api/docs/ for the API."}, status=404)
    context = {"request_path": request.path, "reason": _message(exception)}
    return HttpResponseNotFound(loader.render_to_string("404.html", context, request))


def bad_request(request, exception=None):
    """A request Django refused before any view (a body over DATA_UPLOAD_MAX_MEMORY_SIZE, a bad Host…):
    413 when too large, else 400; JSON under /api/."""
    too_large = isinstance(exception, RequestDataTooBig)
    code = 413 if too_large else 400
    if _is_api(request):
        detail = _too_large() if too_large else "Bad request: the server could not read it. Check its headers and body."
        return JsonResponse({"detail": detail}, status=code)
    if too_large:
        return HttpResponse("<h1>Request too large</h1>", status=413)
    return HttpResponseBadRequest("<h1>Bad Request (400)</h1>")


def permission_denied(request, exception=None):
    reason = _message(exception)
    if _is_api(request):
        return JsonResponse({"detail": reason or "You do not have permission to perform this action."}, status=403)
    return HttpResponseForbidden(loader.render_to_string("403.html", {"reason": reason}, request))


def csrf_failure(request, reason=""):
    """A form posted without a valid CSRF token (a page left open past its session, a stale tab):
    the site's 403 page with what to do, instead of Django's technical one."""
    message = "The form had expired (or came from another site). Reload the page and submit it again."
    if _is_api(request):
        return JsonResponse({"detail": f"CSRF check failed: {message}"}, status=403)
    return HttpResponseForbidden(loader.render_to_string("403.html", {"reason": message, "csrf": True}, request))


def server_error(request):
    if _is_api(request):
        detail = "Internal server error. The incident has been logged; try again later."
        return JsonResponse({"detail": detail}, status=500)
    # No request context: whatever failed (the database, a context processor) must not fail this page too.
    return HttpResponseServerError(loader.render_to_string("500.html"))
