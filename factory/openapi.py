"""The project's OpenAPI AutoSchema: every operation documents the errors it can answer.

drf-spectacular documents only the success response. Clients (and schemathesis in CI,
``factory/tests/test_schema_conformance.py``) need the rest too, so each operation gets the error
codes its shape allows, all with the one body every API error has (``factory/exceptions.py``):
``{"detail": "...", "errors": {...}}``.
"""

from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework_simplejwt.views import TokenObtainPairView


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField(help_text="What went wrong and what to do about it.")
    errors = serializers.JSONField(
        required=False, help_text="Invalid input only: the messages per field (or per item)."
    )


_WRITES = ("POST", "PUT", "PATCH", "DELETE")
ERROR_DESCRIPTIONS = {
    "400": "Invalid input (body, query parameter or filter); `errors` names each field.",
    "401": "Not authenticated: no, an expired or an unknown credential.",
    "403": "Authenticated, but the role (or the global permission) does not allow this.",
    "404": "No such object among those you can see (or no such page, or a `plant` you cannot see).",
    "409": "Conflicts with the current state: still in use, or changed by a concurrent request.",
    "413": "Request body too large.",
    "415": "Unsupported Content-Type of the request body.",
    "429": "Too many failed logins for this account from your address; see Retry-After (django-axes).",
    "503": "A service the change needs (the MQTT broker) is unavailable; nothing was changed.",
}


class AutoSchema(SpectacularAutoSchema):
    """drf-spectacular's AutoSchema plus the error responses of each operation (see module doc)."""

    def get_operation(self, path, path_regex, path_prefix, method, registry):
        operation = super().get_operation(path, path_regex, path_prefix, method, registry)
        if operation is None:
            return None
        responses = operation["responses"]
        for code in self._error_codes(operation):
            if code not in responses:
                response = self._get_response_for_code(ErrorSerializer, code)
                response["description"] = ERROR_DESCRIPTIONS[code]
                responses[code] = response
        return operation

    def _error_codes(self, operation) -> list[str]:
        parameters = operation.get("parameters", [])
        has_body = "requestBody" in operation
        codes = ["401"]
        if not all(issubclass(permission, AllowAny) for permission in self.view.permission_classes):
            codes.append("403")
        if has_body or any(p["in"] == "query" for p in parameters):
            codes.append("400")
        if any(p["in"] in ("path", "query") for p in parameters):
            codes.append("404")
        if has_body:
            codes += ["413", "415"]
        if self.method in _WRITES:
            codes += ["400", "409", "503"]
        if isinstance(self.view, TokenObtainPairView):
            codes.append("429")  # accounts/lockout.py
        return codes
