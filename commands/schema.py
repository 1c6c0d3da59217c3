"""OpenAPI for the device-facing command endpoints (plain Django views; CONTRACT.md "Commands to a
device", README "Device commands")."""

_ERROR = {"type": "object", "properties": {"detail": {"type": "string"}}}
_COMMAND = {
    "type": "object",
    "required": ["type", "id", "name", "params", "expires_at"],
    "properties": {
        "type": {"type": "string", "enum": ["command"]},
        "id": {"type": "integer"},
        "name": {"type": "string"},
        "params": {"type": "object"},
        "expires_at": {"type": "string", "format": "date-time"},
    },
}


def _json(schema, description):
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def add_command_device_endpoints(result, generator, request, public):
    """drf-spectacular postprocessing hook: document the device's command poll and result calls."""
    security = [{"DeviceToken": []}]
    auth = {"401": _json(_ERROR, "Unknown token"), "403": _json(_ERROR, "Revoked token or disabled device")}
    paths = result.setdefault("paths", {})
    paths["/api/v1/device/commands/"] = {
        "get": {
            "operationId": "device_commands_poll",
            "tags": ["device"],
            "summary": "The device's open commands, oldest first; pending ones become delivered.",
            "security": security,
            "responses": {
                "200": _json(
                    {"type": "object", "properties": {"commands": {"type": "array", "items": _COMMAND}}},
                    "Open commands",
                ),
                **auth,
            },
        }
    }
    answer = {
        "type": "object",
        "required": ["status"],
        "properties": {"status": {"type": "string", "enum": ["succeeded", "failed"]}, "result": {"type": "object"}},
    }
    paths["/api/v1/device/commands/{command_id}/result/"] = {
        "post": {
            "operationId": "device_command_result",
            "tags": ["device"],
            "summary": "The device's result of one of its commands.",
            "security": security,
            "parameters": [{"name": "command_id", "in": "path", "required": True, "schema": {"type": "integer"}}],
            "requestBody": {"required": True, "content": {"application/json": {"schema": answer}}},
            "responses": {
                "200": _json(
                    {"type": "object", "properties": {"id": {"type": "integer"}, "state": {"type": "string"}}},
                    "Recorded",
                ),
                "400": _json(_ERROR, "Bad status or result"),
                "404": _json(_ERROR, "Not a command of this device"),
                "409": _json(_ERROR, "Expired, or already answered differently"),
                "415": _json(_ERROR, "Not JSON"),
                **auth,
            },
        }
    }
    return result
