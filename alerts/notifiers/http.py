"""The HTTP POST shared by the webhook and SMS notifiers: pinned to checked addresses, no redirects.

``post`` resolves the URL's host once (``egress.resolve_target``: every address public or
allowlisted) and connects to those very addresses, while the ``Host`` header, TLS SNI and the
certificate check still name the host. Redirects are not followed. What it records about a
failure is the status and its standard phrase, never the receiver's answer: the body of an
internal service must not end up in a delivery's error.
"""

import http
import http.client
import socket
import ssl
from urllib.parse import urlsplit

from alerts.notifiers.base import DeliveryError, TransientDeliveryError
from alerts.notifiers.egress import TargetRefused, resolve_target


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Connects to ``address`` but speaks to ``host`` (its Host header)."""

    def __init__(self, host, port, address, timeout):
        super().__init__(host, port, timeout=timeout)
        self.address = str(address)

    def connect(self):
        self.sock = socket.create_connection((self.address, self.port), self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _PinnedHTTPSConnection(_PinnedHTTPConnection):
    """TLS to ``address``, with SNI and certificate verification for ``host``."""

    default_port = http.client.HTTPS_PORT

    def connect(self):
        super().connect()
        # A new default context per connection: system CAs (or SSL_CERT_FILE), hostname checked.
        self.sock = ssl.create_default_context().wrap_socket(self.sock, server_hostname=self.host)


def _connect(scheme: str, host: str, port: int, addresses: list, timeout: float) -> http.client.HTTPConnection:
    """An open connection to the first address that answers (each one already checked)."""
    cls = _PinnedHTTPSConnection if scheme == "https" else _PinnedHTTPConnection
    failure = None
    for address in addresses:
        connection = cls(host, port, address, timeout)
        try:
            connection.connect()
            return connection
        except ssl.SSLError as exc:  # the host answered, with a certificate we cannot trust: no point trying others
            connection.close()
            raise TransientDeliveryError(f"TLS to {host} failed: {exc.reason or type(exc).__name__}") from None
        except OSError as exc:
            connection.close()
            failure = exc
    raise TransientDeliveryError(f"Cannot connect to {host}:{port}: {_describe(failure)}")


def _describe(exc: BaseException | None) -> str:
    if isinstance(exc, TimeoutError | socket.timeout):
        return "timed out"
    return getattr(exc, "strerror", None) or type(exc).__name__


def post(url: str, body: bytes, headers: dict, timeout: float) -> int:
    """POST ``body`` to ``url`` and return the status; map failures to our delivery errors.

    2xx is success. An internal target (not allowlisted) and redirects (3xx, never followed) are
    permanent errors; 408, 429 and 5xx, timeouts and connection errors are transient; other 4xx
    are permanent (the request itself is wrong: URL, credentials, recipient).
    """
    try:
        scheme, host, port, addresses = resolve_target(url)
    except TargetRefused as exc:
        raise DeliveryError(f"Not sent: {exc}", permanent=True) from None
    parts = urlsplit(url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    connection = _connect(scheme, host, port, addresses, timeout)
    try:
        connection.request("POST", path, body=body, headers=headers)
        status = connection.getresponse().status  # the body is never read
    except (TimeoutError, OSError, http.client.HTTPException) as exc:
        raise TransientDeliveryError(f"No answer from {host}: {_describe(exc)}") from None
    finally:
        connection.close()
    if 200 <= status < 300:
        return status
    try:
        phrase = http.HTTPStatus(status).phrase
    except ValueError:
        phrase = "(non-standard status)"
    text = f"HTTP {status} {phrase} from {host}"
    if 300 <= status < 400:
        raise DeliveryError(f"{text}: redirects are not followed; give the final URL.", permanent=True)
    if status in (408, 429) or status >= 500:
        raise TransientDeliveryError(text)
    raise DeliveryError(text, permanent=True)
