"""Fixtures of the alerts tests: eager Celery by default and a real HTTP server (the SMTP server
is tests/mail.py's ``smtp_server``)."""

import json
import socket
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import time_machine

from devices.tests.factories import make_device, make_line


@pytest.fixture(autouse=True)
def _eager_celery(settings):
    """Tasks run inline unless a test says otherwise (the worker test does); the real chain, no mocks."""
    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.SITE_URL = "http://factory.test"


@pytest.fixture
def clock():
    """The wall clock stopped at the factories' T0; ``clock.move_to(at(seconds))`` moves it."""
    from alerts.tests.factories import T0

    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller


@pytest.fixture
def line_a(plant_a):
    return make_line(plant_a, "Stamping")


@pytest.fixture
def press(line_a):
    return make_device(line_a, "press-01")


@pytest.fixture
def foreign_press(plant_b):
    return make_device(make_line(plant_b, "Foreign"), "foreign-01")


class HttpRecorder:
    """A local HTTP server in a thread that records requests and answers with ``status``.

    ``statuses``: answers to give in order (201 when empty); ``headers``: extra response headers
    (e.g. ``Location``); ``body``: the response body. ``host`` "::1" listens on IPv6 loopback;
    ``tls`` (a server-side context) makes it HTTPS. ``hold``: that request's answer waits
    until ``release`` is set.
    """

    def __init__(self, host: str = "127.0.0.1", tls: "ssl.SSLContext | None" = None):
        self.requests = []
        self.statuses = []
        self.headers = {}
        self.body = json.dumps({"sid": "SM123", "status": "queued"}).encode()
        self.hold = None  # this request (1-based number) is answered only once ``release`` is set
        self.release = threading.Event()
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                recorder.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                if len(recorder.requests) == recorder.hold:
                    recorder.release.wait(60)  # a receiver that has the message but has not answered yet
                status = recorder.statuses.pop(0) if recorder.statuses else 201
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(recorder.body)))
                for name, value in recorder.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(recorder.body)

            def log_message(self, *args):
                pass

        server_class = (
            type("Server", (ThreadingHTTPServer,), {"address_family": socket.AF_INET6})
            if ":" in host
            else ThreadingHTTPServer
        )
        self.server = server_class((host, 0), Handler)
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.url = f"{'https' if tls else 'http'}://{f'[{host}]' if ':' in host else host}:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def http_server():
    """A receiver on 127.0.0.1: an internal address, so a test that delivers to it says so with
    ``local_receivers`` (the allowlist), as an on-premises deployment would."""
    with HttpRecorder() as server:
        yield server


@pytest.fixture
def local_receivers(settings):
    """Loopback allowlisted (``NOTIFIER_INTERNAL_ALLOWLIST``), as for an on-premises receiver."""
    settings.NOTIFIER_INTERNAL_ALLOWLIST = ["127.0.0.0/8", "::1/128"]


@pytest.fixture
def run(django_capture_on_commit_callbacks, clock):
    """Run ``fn`` at its ``now`` (the wall clock moves there too) and every on-commit callback it registers.

    Tasks run eagerly inline, so dispatch and delivery happen within the call.
    """

    def call(fn, *args, **kwargs):
        if "now" in kwargs:
            clock.move_to(kwargs["now"])
        with django_capture_on_commit_callbacks(execute=True):
            return fn(*args, **kwargs)

    return call


@pytest.fixture
def max_retries(settings):
    """``max_retries(n)``: the delivery task retries ``n`` times, inline (eager mode, not propagating)."""
    from alerts.tasks import deliver_notification

    original = deliver_notification.max_retries

    def set_retries(count: int) -> None:
        settings.NOTIFY_MAX_RETRIES = deliver_notification.max_retries = count
        settings.CELERY_TASK_EAGER_PROPAGATES = False  # else eager mode raises Retry instead of retrying

    yield set_retries
    deliver_notification.max_retries = original
