"""The one place that decides a request's client address.

The web servers pass the TCP peer through untouched (Uvicorn runs with ``--no-proxy-headers``,
Daphne without ``--proxy-headers``). That peer is the client, unless it is one of
``TRUSTED_PROXIES`` (CIDRs): only then is ``X-Forwarded-For`` read, from the right, skipping
hops that are trusted proxies themselves; the first hop that is not is the client (what a client
writes at the left of the header is never believed). ``X-Real-IP`` counts when a trusted proxy
sends no ``X-Forwarded-For``.

``ClientAddressMiddleware`` (first in ``MIDDLEWARE``) writes the decision into
``REMOTE_ADDR`` and drops the forwarded-for headers, so django-axes (``AXES_CLIENT_IP_CALLABLE``
is ``client_ip``), DRF throttles (``NUM_PROXIES = 0``) and anything that logs an address all see
the same one.
"""

import ipaddress
from functools import lru_cache

from django.conf import settings
from django.utils.deprecation import MiddlewareMixin

_FORWARDED = ("HTTP_X_FORWARDED_FOR", "HTTP_X_REAL_IP")
_DECIDED = "factory.client_ip_decided"


@lru_cache(maxsize=8)
def _networks(entries: tuple[str, ...]) -> tuple:
    return tuple(ipaddress.ip_network(entry, strict=False) for entry in entries)


def _parse(text: str):
    """An address from a header hop: ``203.0.113.7``, ``[2001:db8::1]:443``, ``203.0.113.7:80``; None if not one."""
    text = text.strip()
    if text.startswith("["):
        text = text[1 : text.find("]")] if "]" in text else ""
    elif text.count(":") == 1:
        text = text.split(":")[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _trusted(address, proxies) -> bool:
    address = getattr(address, "ipv4_mapped", None) or address
    return any(address in network for network in proxies)


def peer_is_trusted_proxy(peer: str) -> bool:
    """Whether the TCP ``peer`` is one of ``TRUSTED_PROXIES`` (whose headers may be believed)."""
    proxies = _networks(tuple(settings.TRUSTED_PROXIES))
    address = _parse(peer)
    return bool(proxies) and address is not None and _trusted(address, proxies)


def client_address(peer: str, forwarded_for: str | None = None, real_ip: str | None = None) -> str:
    """The client's address given the TCP ``peer`` and the forwarded headers it sent."""
    proxies = _networks(tuple(settings.TRUSTED_PROXIES))
    current = _parse(peer)
    if current is None or not proxies or not _trusted(current, proxies):
        return peer
    hops = [hop for hop in (forwarded_for or "").split(",") if hop.strip()]
    if not hops and real_ip:
        hops = [real_ip]
    for hop in reversed(hops):
        address = _parse(hop)
        if address is None:  # garbage from a hop we cannot vouch for: stop at the last trusted one
            break
        current = address
        if not _trusted(address, proxies):
            break
    return str(current)


def client_ip(request) -> str:
    """The request's client address (``AXES_CLIENT_IP_CALLABLE``); decided once per request."""
    meta = request.META
    if not meta.get(_DECIDED):
        meta["REMOTE_ADDR"] = client_address(
            meta.get("REMOTE_ADDR", ""), meta.get("HTTP_X_FORWARDED_FOR"), meta.get("HTTP_X_REAL_IP")
        )
        for header in _FORWARDED:
            meta.pop(header, None)
        meta[_DECIDED] = True
    return meta["REMOTE_ADDR"]


class ClientAddressMiddleware(MiddlewareMixin):
    """Decides the client address before anything else reads ``REMOTE_ADDR``."""

    def process_request(self, request):
        client_ip(request)
