"""Typed, fail-fast readers for settings that come from the environment.

Every deploy-specific value in ``factory/settings.py`` goes through one of these helpers so that
a typo (``DEBUG=ture``, ``PORT=80a``) stops the process at start-up with a message naming the
variable, instead of silently falling back to a default.
"""

import ipaddress
import os
import re
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def env_str(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value


def env_bool(name: str, default: bool) -> bool:
    value = env_str(name)
    if value is None:
        return default
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={value!r} is not a boolean: use true or false.")


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    value = env_str(name)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not an integer.") from None
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name}={number} is below the minimum of {minimum}.")
    return number


def env_list(name: str, default: list[str] | None = None) -> list[str]:
    value = env_str(name)
    if value is None:
        return list(default or [])
    return [item.strip() for item in value.split(",") if item.strip()]


_HOST = re.compile(r"^(?=.{1,253}$)([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)*$")


def env_networks(name: str, default: list[str] | None = None, *, hosts: bool = False) -> list[str]:
    """A comma list of IP networks (``10.0.0.0/8``, ``192.0.2.7``, ``fd00::/8``), and with ``hosts``
    also host names (``hooks.plant.local``); normalised (``10.1.2.3/8`` → ``10.0.0.0/8``, names in
    lower case without a trailing dot). A malformed entry stops start-up naming it."""
    items = []
    for item in env_list(name, default):
        try:
            items.append(str(ipaddress.ip_network(item, strict=False)))
            continue
        except ValueError:
            pass
        host = item.lower().rstrip(".")
        if not (hosts and _HOST.match(host)):
            wanted = "IP networks (CIDR) or host names" if hosts else "IP networks (CIDR, e.g. 10.0.0.0/8)"
            raise ImproperlyConfigured(f"{name}: {item!r} is not valid; give a comma list of {wanted}.")
        items.append(host)
    return items


def env_url(name: str, *, schemes: tuple[str, ...]) -> str | None:
    """Return the URL in ``name`` (or None when unset), refusing unsupported schemes."""
    value = env_str(name)
    if value is None:
        return None
    # Split by hand: urlparse takes "redis:/x" or "host:6379" for a scheme. Only the scheme is
    # echoed back, never the rest, which may hold a password.
    scheme, separator, _ = value.partition("://")
    if not separator or scheme.lower() not in schemes:
        allowed = ", ".join(f"{s}://" for s in schemes)
        got = f"{scheme}://" if separator else "no scheme"
        raise ImproperlyConfigured(f"{name} must start with one of {allowed} (got {got}).")
    return value


def env_secret(name: str, default: str | None = None) -> str | None:
    """Read a secret from ``name`` or from the file named by ``<name>_FILE`` (Docker secrets)."""
    path = env_str(f"{name}_FILE")
    if path:
        try:
            secret = Path(path).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ImproperlyConfigured(f"{name}_FILE={path!r} cannot be read: {exc.strerror}.") from None
        except UnicodeDecodeError:
            raise ImproperlyConfigured(f"{name}_FILE={path!r} is not UTF-8 text.") from None
        if not secret:
            # An empty file is a broken mount, not "no secret": falling back to a default hides it.
            raise ImproperlyConfigured(f"{name}_FILE={path!r} is empty.")
        return secret
    return env_str(name, default)
