"""OpenAPI for the device-facing firmware endpoints (plain Django views and the lean status route,
none of them DRF; CONTRACT.md "Firmware, device side")."""

_ERROR = {"type": "object", "properties": {"detail": {"type": "string"}}}
_OFFER = {
    "type": "object",
    "properties": {
        "update_id": {"type": "integer"},
        "version": {"type": "string"},
        "url": {"type": "string", "format": "uri"},
        "sha256": {"type": "string"},
        "size": {"type": "integer"},
        "signature": {"type": "string", "description": "Ed25519 over the raw SHA-256 digest, base64 (when signed)"},
    },
}


def _json(schema, description):
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def add_firmware_device_endpoints(result, generator, request, public):
    """drf-spectacular postprocessing hook: document the firmware offer, download and status calls."""
    security = [{"DeviceToken": []}]
    auth = {"401": _json(_ERROR, "Unknown token"), "403": _json(_ERROR, "Revoked token or disabled device")}
    paths = result.setdefault("paths", {})
    paths["/api/v1/device/firmware/"] = {
        "get": {
            "operationId": "device_firmware_offer",
            "tags": ["device"],
            "summary": "The update assigned to this device (200) or nothing to do (204).",
            "security": security,
            "responses": {"200": _json(_OFFER, "An update"), "204": {"description": "No update"}, **auth},
        }
    }
    paths["/api/v1/device/firmware/{update_id}/download/"] = {
        "get": {
            "operationId": "device_firmware_download",
            "tags": ["device"],
            "summary": "Download the image; single Range requests, If-Range, ETag (the SHA-256).",
            "security": security,
            "parameters": [
                {"name": "update_id", "in": "path", "required": True, "schema": {"type": "integer"}},
                {"name": "Range", "in": "header", "required": False, "schema": {"type": "string"}},
                {"name": "If-Range", "in": "header", "required": False, "schema": {"type": "string"}},
            ],
            "responses": {
                "200": {"description": "The whole image", "content": {"application/octet-stream": {}}},
                "206": {"description": "The requested range", "content": {"application/octet-stream": {}}},
                "404": _json(_ERROR, "Not an update of this device, or no longer live"),
                "416": _json(_ERROR, "Range outside the image"),
                **auth,
            },
        }
    }
    report = {
        "type": "object",
        "required": ["update_id", "status"],
        "properties": {
            "update_id": {"type": "integer"},
            "status": {"type": "string", "enum": ["downloading", "downloaded", "installing", "succeeded", "failed"]},
            "detail": {"type": "string"},
        },
    }
    paths["/api/v1/device/firmware/status/"] = {
        "post": {
            "operationId": "device_firmware_status",
            "tags": ["device"],
            "summary": "Report progress or the outcome of an update; statuses only move forward.",
            "security": security,
            "requestBody": {"required": True, "content": {"application/json": {"schema": report}}},
            "responses": {
                "200": _json(
                    {"type": "object", "properties": {"update_id": {"type": "integer"}, "status": {"type": "string"}}},
                    "Applied",
                ),  # fmt: skip
                "400": _json(_ERROR, "Malformed report"),
                "404": _json(_ERROR, "Not an update of this device"),
                "409": _json(_ERROR, "Out of order, or the update is finished"),
                **auth,
            },
        }
    }
    return result
