"""The request id of a web request (``X-Request-ID``): taken or made, logged, answered, passed on.

``RequestIdMiddleware`` runs first, before ``factory.clientip`` rewrites ``REMOTE_ADDR``: it
believes an incoming ``X-Request-ID`` only from a trusted proxy (``TRUSTED_PROXIES``, the same
peers whose forwarded-for headers count) and only when it is a short plain token; otherwise it
makes a new one. The id goes into ``factory.logs.request_id`` (every log line of the request, and
every Celery task it queues: ``factory/signals.py``) and back in the response's ``X-Request-ID``.
"""

from asgiref.sync import iscoroutinefunction, markcoroutinefunction

from factory.clientip import peer_is_trusted_proxy
from factory.logs import HEADER, incoming_request_id, request_id

_META_HEADER = "HTTP_" + HEADER.upper().replace("-", "_")


def request_id_for(peer: str, incoming: str | None) -> str:
    """The id of a request from the TCP ``peer`` that sent ``incoming`` (an ``X-Request-ID`` or None)."""
    return incoming_request_id(incoming, trusted=bool(incoming) and peer_is_trusted_proxy(peer))


class RequestIdMiddleware:
    """Sets ``request.request_id`` and the logging context, and answers the id in ``X-Request-ID``.

    Under ASGI the context variable is not reset when the response leaves: Django logs 4xx and 5xx
    answers after the middleware has returned, and those lines belong to the request too; each
    request runs in a context (an asyncio task) of its own, so nothing leaks into another request.
    """

    sync_capable = async_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def _start(self, request):
        request.request_id = request_id_for(request.META.get("REMOTE_ADDR", ""), request.META.get(_META_HEADER))
        return request_id.set(request.request_id)

    def __call__(self, request):
        if iscoroutinefunction(self):
            return self.__acall__(request)
        # Synchronous (Django's test client; production is ASGI): the thread serves other work next.
        token = self._start(request)
        try:
            response = self.get_response(request)
        finally:
            request_id.reset(token)
        response[HEADER] = request.request_id
        return response

    async def __acall__(self, request):
        self._start(request)
        response = await self.get_response(request)
        response[HEADER] = request.request_id
        return response
