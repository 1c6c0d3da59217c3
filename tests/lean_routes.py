"""The lean device endpoints for Django's test client, which cannot reach ``factory/asgi.py``'s router.

In every server the lean endpoints are routed only by ``factory.asgi.LEAN_ROUTES``. Django's test
client calls Django directly, so ``tests/urls.py`` mounts each endpoint as a view made here: the
request goes through the endpoint's own ASGI code (checks, body, tokens, handler, response bytes);
only the group-commit queue is left out, and the batch runs on the test's thread, inside the test's
database transaction, as Django runs a synchronous view.
"""

from asgiref.sync import async_to_sync, sync_to_async
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from factory.lean_http import LeanEndpoint


def as_django_view(endpoint: LeanEndpoint):
    @csrf_exempt
    def view(request: HttpRequest) -> HttpResponse:
        headers = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in request.headers.items()]
        scope = {"type": "http", "method": request.method, "path": request.path, "headers": headers}
        body = request.read()
        sent = []

        async def receive():
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message):
            sent.append(message)

        async def submit(authorization: str, content: bytes):
            [answer] = await sync_to_async(endpoint.batch)([(authorization, content)])
            return answer

        async_to_sync(endpoint.serve)(scope, receive, send, submit)
        start, *chunks = sent
        response = HttpResponse(b"".join(chunk.get("body", b"") for chunk in chunks), status=start["status"])
        for name, value in start["headers"]:
            response[name.decode("latin-1")] = value.decode("latin-1")
        return response

    return view
