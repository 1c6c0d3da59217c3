"""django-auditlog's middleware, with the project's client address and the user DRF authenticated.

Stock ``AuditlogMiddleware`` reads ``X-Forwarded-For`` from anyone and takes the user before the
view runs, when an API request's user (JWT, API key) is not known yet. Here the address is
``factory.clientip.client_ip`` (forwarded headers only from ``TRUSTED_PROXIES``), the port is not
recorded (it would come from a header a client writes), and the actor is read when an entry is
written (``audit.signals.fill_from_request``): DRF sets the user it authenticated on the Django
request, so by then ``request.user`` is the API caller. No query is made for a request that
writes nothing.
"""

from contextvars import ContextVar

from auditlog.middleware import AuditlogMiddleware

from factory.clientip import client_ip

current_request: ContextVar = ContextVar("audit_current_request", default=None)


class AuditMiddleware(AuditlogMiddleware):
    @staticmethod
    def _get_remote_addr(request):
        return client_ip(request)

    @staticmethod
    def _get_remote_port(request):
        return None

    @staticmethod
    def _get_actor(request):
        return None  # read lazily at write time (module docstring)

    def __call__(self, request):
        token = current_request.set(request)
        try:
            return super().__call__(request)
        finally:
            current_request.reset(token)
