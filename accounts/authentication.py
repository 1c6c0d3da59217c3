"""``Authorization: Api-Key <key>``: service accounts on the management API (DRF only, never pages or the admin)."""

from django.core.exceptions import ValidationError
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed

from accounts.services import api_key_check

KEYWORD = "Api-Key"


class ApiKeyAuthentication(BaseAuthentication):
    """Authenticates as the key's service account, so the account's plant roles decide everything.

    Another scheme (``Bearer``, none) is left to the other classes; a request that names this
    scheme with a malformed, unknown, expired or revoked key is refused with 401 and the reason.
    ``request.auth`` is the ``ApiKey`` row.
    """

    def authenticate(self, request):
        header = get_authorization_header(request)
        scheme, _, plain = header.partition(b" ")
        if scheme.lower() != KEYWORD.lower().encode():
            return None
        try:
            plain = plain.decode("ascii").strip()
        except UnicodeDecodeError:
            plain = ""
        if not plain or " " in plain:
            raise AuthenticationFailed(f"Send the key as 'Authorization: {KEYWORD} <key>' (one value, no spaces).")
        try:
            key = api_key_check(plain=plain)
        except ValidationError as exc:
            raise AuthenticationFailed(exc.messages[0]) from None
        return key.account.user, key

    def authenticate_header(self, request):
        return f'{KEYWORD} realm="api"'


class ApiKeyScheme(OpenApiAuthenticationExtension):
    """The OpenAPI security scheme of ``ApiKeyAuthentication`` (registered when DRF imports the class)."""

    target_class = "accounts.authentication.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": f"`{KEYWORD} <key>`: a service account's key (see README, API keys for integrations).",
        }
