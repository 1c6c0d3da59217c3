"""The OpenAPI schema and its two documentation pages, behind a login when ``API_DOCS_REQUIRE_LOGIN``.

``API_DOCS_REQUIRE_LOGIN`` (on by default with ``DEBUG=false``) is read at each request: the
schema then answers an anonymous client 401 with what to send, the pages send a person to the
login page and back. Both pages run under the site's Content-Security-Policy: ReDoc is started
by ``static/api/redoc.js`` (``templates/api/redoc.html``), Swagger UI by drf-spectacular's
initialiser served as a script of its own (``SpectacularSwaggerSplitView``: ``?script``), never
inline. ReDoc writes styles into ``<style>`` elements as it renders, which the site's
``style-src 'self'`` refuses; its page alone allows them (``REDOC_STYLES``).
"""

from functools import wraps

from csp.constants import NONCE
from csp.decorators import csp_update
from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerSplitView
from rest_framework.exceptions import NotAuthenticated
from rest_framework.permissions import IsAuthenticated

LOGIN_NEEDED = (
    "The API schema needs a login here (API_DOCS_REQUIRE_LOGIN): send a JWT (Authorization: Bearer, "
    "from POST /api/v1/auth/token/), an API key (Authorization: Api-Key) or a session cookie."
)


class SchemaView(SpectacularAPIView):
    """``/api/schema/``: drf-spectacular's schema view; only for authenticated clients when the setting says so."""

    def get_permissions(self):
        if settings.API_DOCS_REQUIRE_LOGIN:
            return [IsAuthenticated()]
        return super().get_permissions()

    def permission_denied(self, request, message=None, code=None):
        if not request.user.is_authenticated:
            raise NotAuthenticated(LOGIN_NEEDED)
        super().permission_denied(request, message, code)


def login_required_if_set(view):
    """``view`` (a docs page) for everyone, or, with ``API_DOCS_REQUIRE_LOGIN``, only after a login."""

    @wraps(view)
    def page(request, *args, **kwargs):
        if settings.API_DOCS_REQUIRE_LOGIN and not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        return view(request, *args, **kwargs)

    return page


# The <style> elements ReDoc's script writes (drf-spectacular-sidecar's redoc.standalone.js, ReDoc
# 2.x): styled-components' sheets get the request's nonce (redoc.js passes it on as ReDoc's `nonce`
# option); two are written before ReDoc reads that option: its scroll bars' fixed stylesheet
# (perfect-scrollbar) and one empty element, allowed by their hashes. A new sidecar release that
# changes them shows up as a CSP violation in factory/tests/test_csp_browser.py, which prints the
# hash Chrome computed.
REDOC_STYLES = {
    "style-src": [
        NONCE,
        "'sha256-QMIg+bpjm3JdElJ388KYke01izlUW0UoNOeKjpMxdgc='",  # perfect-scrollbar's CSS
        "'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='",  # an empty <style>
    ]
}


def redoc_styles_allowed(view):
    """``view`` with ReDoc's inline styles allowed, in the enforced and the report-only policy alike."""
    return csp_update(REDOC_STYLES)(csp_update(REDOC_STYLES, REPORT_ONLY=True)(view))


redoc_page = login_required_if_set(
    redoc_styles_allowed(SpectacularRedocView.as_view(url_name="schema", template_name="api/redoc.html"))
)
swagger_page = login_required_if_set(
    SpectacularSwaggerSplitView.as_view(url_name="schema", template_name="api/swagger.html")
)
