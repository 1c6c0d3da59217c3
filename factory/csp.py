"""The Content-Security-Policy header: django-csp's middleware with the live stream's origin.

The policy itself is in settings (``CONTENT_SECURITY_POLICY`` or, with ``CSP_REPORT_ONLY=true``,
``CONTENT_SECURITY_POLICY_REPORT_ONLY``). ``'self'`` covers WebSockets to the page's own host in
CSP Level 3 browsers only; the live pages' ``/ws/live/`` must work in every browser, so
``connect-src`` names the request's host with ``ws:`` and ``wss:`` explicitly (only ``wss:``
when the page came over HTTPS: a secure page cannot open a plain socket anyway).
"""

from csp.middleware import CSPMiddleware
from django.core.exceptions import DisallowedHost


class ContentSecurityPolicyMiddleware(CSPMiddleware):
    """django-csp's ``CSPMiddleware``, with ``connect-src`` extended by the request's WebSocket origin."""

    def get_policy_parts(self, request, response, report_only=False):
        parts = super().get_policy_parts(request, response, report_only)
        try:
            host = request.get_host()
        except DisallowedHost:  # answered 400 already; the policy then names no socket
            return parts
        sockets = [f"wss://{host}"] if request.is_secure() else [f"ws://{host}", f"wss://{host}"]
        parts.update = {**(parts.update or {}), "connect-src": sockets}
        return parts
