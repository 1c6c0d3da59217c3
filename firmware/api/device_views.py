"""Firmware endpoints devices call with ``Authorization: Device <token>`` (CONTRACT.md, Firmware)."""

import re

from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse

from devices.exceptions import DeviceAuthError
from devices.services.tokens import token_authenticate_header
from firmware.services.notify import update_offer
from firmware.services.updates import update_assigned, update_for_download

CHUNK = 64 * 1024
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def _method_not_allowed(request, allowed: str) -> JsonResponse:
    return JsonResponse(
        {"detail": f"Method {request.method} is not allowed here; use {allowed}."},
        status=405,
        headers={"Allow": allowed},
    )


def _device_or_error(request):
    try:
        return token_authenticate_header(request.headers.get("Authorization", "")), None
    except DeviceAuthError as exc:
        return None, JsonResponse({"detail": exc.message}, status=exc.status)


def firmware_offer(request: HttpRequest) -> HttpResponse:
    """``GET /api/v1/device/firmware/``: the assigned update (200) or nothing to do (204)."""
    if request.method != "GET":
        return _method_not_allowed(request, "GET")
    device, error = _device_or_error(request)
    if error:
        return error
    target = update_assigned(device.pk)
    if target is None:
        return HttpResponse(status=204)
    return JsonResponse(update_offer(target, base_url=request.build_absolute_uri("/")))


def _parse_range(header: str, size: int) -> tuple[int, int] | None | str:
    """(start, end inclusive) for one ``bytes=`` range; None for no/ignored header; "bad" if unsatisfiable."""
    match = _RANGE.match(header.strip())
    if not match or match.groups() == ("", ""):
        return None  # malformed or multi-range: RFC 9110 lets a server ignore it and send the whole file
    first, last = match.groups()
    if first == "":
        length = int(last)
        if length == 0:
            return "bad"
        return max(size - length, 0), size - 1
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if start >= size or (last and int(last) < start):
        return "bad"
    return start, end


def _stream(handle, start: int, length: int):
    try:
        handle.seek(start)
        remaining = length
        while remaining > 0:
            chunk = handle.read(min(CHUNK, remaining))
            if not chunk:
                break
            remaining -= len(chunk)
            yield chunk
    finally:
        handle.close()


def firmware_download(request: HttpRequest, update_id: int) -> HttpResponse:
    """``GET <url>``: the image of an update assigned to the calling device, streamed, with ``Range``
    (206 / 416), ``ETag`` (the SHA-256) and ``If-Range`` support. 404 for anyone else's update."""
    if request.method not in ("GET", "HEAD"):
        return _method_not_allowed(request, "GET, HEAD")
    device, error = _device_or_error(request)
    if error:
        return error
    target = update_for_download(device, update_id)
    if target is None:
        return JsonResponse({"detail": f"No live update {update_id} is assigned to this device."}, status=404)
    image = target.image
    size, etag = image.size, f'"{image.sha256}"'
    headers = {"ETag": etag, "Accept-Ranges": "bytes", "X-Firmware-SHA256": image.sha256}
    if image.signature:
        headers["X-Firmware-Signature"] = image.signature
    if request.headers.get("If-None-Match") == etag:
        return HttpResponse(status=304, headers=headers)
    wanted = None
    if "Range" in request.headers and request.headers.get("If-Range", etag) == etag:
        wanted = _parse_range(request.headers["Range"], size)
    if wanted == "bad":
        return JsonResponse(
            {"detail": f"Range {request.headers['Range']!r} is outside the {size}-byte image."},
            status=416,
            headers={"Content-Range": f"bytes */{size}"},
        )
    start, end = wanted or (0, size - 1)
    length = end - start + 1
    status = 206 if wanted else 200
    if wanted:
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    if request.method == "HEAD":
        response = HttpResponse(status=status, headers=headers, content_type="application/octet-stream")
    else:
        handle = image.file.storage.open(image.file.name, "rb")
        response = StreamingHttpResponse(
            _stream(handle, start, length), status=status, headers=headers, content_type="application/octet-stream"
        )
    response["Content-Length"] = str(length)
    response["Content-Disposition"] = f'attachment; filename="firmware-{image.version}.bin"'
    return response
