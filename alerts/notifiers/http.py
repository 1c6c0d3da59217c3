"""A small HTTP POST helper shared by the webhook and SMS notifiers (standard library only)."""

import urllib.error
import urllib.request

from alerts.notifiers.base import DeliveryError, TransientDeliveryError


def post(url: str, body: bytes, headers: dict, timeout: float) -> int:
    """POST and return the status; map failures to our delivery errors.

    2xx is success. 408, 429 and 5xx, timeouts and connection errors are transient; other 4xx
    are permanent (the request itself is wrong: URL, credentials, recipient).
    """
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310 - http(s) only
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return response.status
    except urllib.error.HTTPError as exc:
        detail = exc.read(300).decode("utf-8", "replace")
        text = f"HTTP {exc.code} from {urllib.parse.urlsplit(url).netloc}: {detail}"
        if exc.code in (408, 429) or exc.code >= 500:
            raise TransientDeliveryError(text) from None
        raise DeliveryError(text, permanent=True) from None
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise TransientDeliveryError(f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}") from None
