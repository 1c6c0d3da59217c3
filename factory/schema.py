"""OpenAPI additions for the endpoints devices call, which are not DRF views (see CONTRACT.md).

``POST /api/v1/telemetry/`` is routed only in ``factory/asgi.py`` (the lean route), so it is
documented here by hand.
"""

_ERROR = {"type": "object", "properties": {"detail": {"type": "string"}}}
_MESSAGE = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "ts": {"type": "string", "format": "date-time", "description": "ISO 8601 with offset or Z; default: now"},
        "values": {
            "type": "object",
            "additionalProperties": {"type": "number"},
            "description": "metric name ([a-z][a-z0-9_]{0,62}) → finite number; count_total/count_good are "
            "cumulative piece counters (whole numbers >= 0; a lower value means a reset)",
        },
        "state": {"type": "string", "enum": ["running", "idle", "down", "setup", "planned_stop", "offline"]},
    },
}


def add_device_endpoints(result, generator, request, public):
    """drf-spectacular postprocessing hook: document POST /api/v1/telemetry/."""
    result.setdefault("components", {}).setdefault("securitySchemes", {})["DeviceToken"] = {
        "type": "apiKey",
        "in": "header",
        "name": "Authorization",
        "description": "`Device <token>`",
    }
    errors = {
        "type": "object",
        "properties": {
            "errors": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "index": {"type": "integer", "nullable": True},
                        "field": {"type": "string"},
                        "message": {"type": "string"},
                    },
                },
            }
        },
    }
    body = {"oneOf": [_MESSAGE, {"type": "object", "properties": {"messages": {"type": "array", "items": _MESSAGE}}}]}
    result["paths"]["/api/v1/telemetry/"] = {
        "post": {
            "operationId": "telemetry_ingest",
            "tags": ["device"],
            "summary": "Send telemetry (one message or a batch); the whole request is stored or nothing is.",
            "security": [{"DeviceToken": []}],
            "requestBody": {"required": True, "content": {"application/json": {"schema": body}}},
            "responses": {
                "202": {
                    "description": "Stored",
                    "content": {
                        "application/json": {
                            "schema": {"type": "object", "properties": {"accepted": {"type": "integer"}}}
                        }
                    },
                },  # fmt: skip
                "400": {
                    "description": "Invalid message(s); nothing stored",
                    "content": {"application/json": {"schema": errors}},
                },  # fmt: skip
                "401": {"description": "Unknown token", "content": {"application/json": {"schema": _ERROR}}},
                "403": {
                    "description": "Revoked token or disabled device",
                    "content": {"application/json": {"schema": _ERROR}},
                },  # fmt: skip
                "413": {"description": "Body too large"},
                "415": {"description": "Content-Type is not application/json"},
                "429": {"description": "Rate limited; see Retry-After"},
            },
        }
    }
    return result
