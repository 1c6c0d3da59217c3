"""Which addresses outbound notification requests may reach: public ones, plus an allowlist.

A webhook URL is a plant admin's input and the SMS API URL a deployment setting; the worker that
POSTs to them sits inside the plant's network, next to the database, Redis, the broker and the
cloud metadata service (169.254.169.254). So a target host is resolved, and **every** address it
resolves to must be public (``ipaddress.is_global``; IPv4 carried inside IPv6 is judged as IPv4),
unless the host name or the address is in ``NOTIFIER_INTERNAL_ALLOWLIST`` (on-premises
receivers). This runs when a channel is saved and again at each send, where the connection then
goes to the very address checked (``alerts.notifiers.http``): a DNS answer that changes in
between (rebinding) cannot steer it inside.
"""

import ipaddress
import socket
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
ALLOWLIST_SETTING = "NOTIFIER_INTERNAL_ALLOWLIST"
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))


class TargetRefused(ValueError):
    """The URL is malformed, its host does not resolve, or it resolves to an internal address."""


def _embedded_ipv4(address: Address) -> ipaddress.IPv4Address | None:
    if address.version == 4:
        return None
    if address.ipv4_mapped:
        return address.ipv4_mapped
    if address.sixtofour:
        return address.sixtofour
    if address.teredo:
        return address.teredo[1]
    if any(address in net for net in _NAT64):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def is_public(address: Address) -> bool:
    """Routable on the Internet: not loopback, private, link-local, CGNAT, multicast, reserved...

    An IPv6 address that carries an IPv4 one (mapped, 6to4, Teredo, NAT64) is public only if
    that IPv4 address is.
    """
    inner = _embedded_ipv4(address)
    return address.is_global and not address.is_multicast and (inner is None or is_public(inner))


def _allowed(host: str, address: Address) -> bool:
    """Whether the allowlist names this host (exactly) or a network holding this address."""
    for entry in getattr(settings, ALLOWLIST_SETTING, []):
        try:
            if address in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:  # a host name
            if host == entry.lower().rstrip("."):
                return True
    return False


def split_url(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of an http(s) URL; ``TargetRefused`` when it has none."""
    try:
        parts = urlsplit(url)
        scheme, host, port = parts.scheme.lower(), (parts.hostname or "").rstrip("."), parts.port
    except ValueError as exc:
        raise TargetRefused(f"Not a valid URL: {exc}.") from None
    if scheme not in ("http", "https") or not host:
        raise TargetRefused("Give an http:// or https:// URL with a host name.")
    return scheme, host, port or (443 if scheme == "https" else 80)


def resolve_target(url: str) -> tuple[str, str, int, list[Address]]:
    """Resolve the URL's host once: ``(scheme, host, port, addresses)``, each address checked.

    Raises ``TargetRefused`` with a message that says what to do when the host does not resolve
    or any of its addresses is internal and not allowlisted.
    """
    scheme, host, port = split_url(url)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise TargetRefused(f"The host '{host}' cannot be resolved ({exc}): check its name.") from None
    addresses = list(dict.fromkeys(ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos))
    internal = [str(a) for a in addresses if not is_public(a) and not _allowed(host, a)]
    if internal:
        where = f"'{host}' is" if internal == [host] else f"'{host}' resolves to {', '.join(internal)},"
        raise TargetRefused(
            f"{where} an internal address: notifications go only to public addresses. For an on-premises "
            f"receiver, a server administrator adds its host name or network to {ALLOWLIST_SETTING}."
        )
    return scheme, host, port, addresses


def validate_public_url(url: str) -> None:
    """A field validator (API serializers and admin forms): the URL must reach a public address now.

    A malformed URL is left to the URL format validator beside it (one message, not two).
    """
    try:
        split_url(url)
    except TargetRefused:
        return
    try:
        resolve_target(url)
    except TargetRefused as exc:
        raise ValidationError(str(exc)) from None
