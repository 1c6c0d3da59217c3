"""Mosquitto as production runs it, on this machine: ``make broker`` and the tests.

The configuration is ``deploy/mosquitto.conf`` (the one docker-compose mounts) with this machine's
paths and ports: the same plugin, listeners, persistence and limits. On first start the platform's
and the bridge's broker passwords are created under ``<VAR_DIR>/mosquitto/`` (mode 0600), where
the settings find them when ``MQTT_PLATFORM_PASSWORD``/``MQTT_BRIDGE_PASSWORD`` are not set, and
the dynamic-security file is initialised with the platform as its administrator.
"""

import getpass
import json
import os
import secrets
import shutil
import subprocess
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

PRODUCTION_CONFIG = Path(__file__).resolve().parent.parent / "deploy" / "mosquitto.conf"
PLUGIN_PATHS = (
    "/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so",
    "/usr/lib/aarch64-linux-gnu/mosquitto_dynamic_security.so",
    "/usr/lib/mosquitto_dynamic_security.so",
    "/usr/local/lib/mosquitto_dynamic_security.so",
)
PLATFORM_SECRET, BRIDGE_SECRET = "platform_password", "bridge_password"


def plugin_path() -> str | None:
    return next((path for path in PLUGIN_PATHS if Path(path).exists()), None)


def missing() -> str | None:
    """What this machine lacks to run the production broker, as an instruction; None when nothing."""
    if not (shutil.which("mosquitto") and shutil.which("mosquitto_ctrl")) or plugin_path() is None:
        return "Mosquitto 2 with its dynamic-security plugin is needed: apt-get install mosquitto"
    return None


def secret_path(directory: Path, name: str) -> Path:
    return directory / name


def read_secret(directory: Path, name: str) -> str | None:
    try:
        return secret_path(directory, name).read_text().strip() or None
    except OSError:
        return None


def _ensure_secret(directory: Path, name: str) -> str:
    existing = read_secret(directory, name)
    if existing:
        return existing
    value = secrets.token_urlsafe(32)
    fd = os.open(secret_path(directory, name), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(value + "\n")
    return value


def listeners(directory: Path) -> dict | None:
    """``{"device_url", "platform_url"}`` of the broker ``make broker`` prepared in ``directory``."""
    try:
        return json.loads((directory / "listeners.json").read_text())
    except (OSError, ValueError):
        return None


def render_config(
    *,
    directory: Path,
    device_port: int,
    platform_port: int,
    host: str = "127.0.0.1",
    tls_port: int | None = None,
    certs: dict[str, Path] | None = None,
) -> str:
    """``deploy/mosquitto.conf`` with this machine's plugin path, data directory and ports.

    The device listeners bind ``host``; the platform listener always binds 127.0.0.1. The TLS
    listener is there only with ``tls_port`` and ``certs`` (``factory.certs.make_certs``).
    """
    plugin = plugin_path()
    if plugin is None:
        raise ImproperlyConfigured(missing())
    lines = []
    skipping = False
    for line in PRODUCTION_CONFIG.read_text().splitlines():
        if skipping:
            skipping = bool(line.strip())
            continue
        if line == "listener 8883":
            if tls_port is None or certs is None:
                skipping = True
                continue
            line = f"listener {tls_port} {host}"
        elif line.startswith("certfile "):
            line = f"certfile {certs['cert']}"
        elif line.startswith("keyfile "):
            line = f"keyfile {certs['key']}"
        elif line.startswith("plugin "):
            line = f"plugin {plugin}"
        elif line.startswith("plugin_opt_config_file "):
            line = f"plugin_opt_config_file {directory / 'dynamic-security.json'}"
        elif line.startswith("persistence_location "):
            line = f"persistence_location {directory}/"
        elif line == "listener 1883":
            line = f"listener {device_port} {host}"
        elif line == "listener 1884":
            line = f"listener {platform_port} 127.0.0.1"
        lines.append(line)
    # Started as root, Mosquitto would switch to its own user, which cannot write here.
    lines.append(f"user {getpass.getuser()}")
    return "\n".join(lines) + "\n"


def prepare(
    *,
    directory: Path,
    device_port: int,
    platform_port: int,
    host: str = "127.0.0.1",
    platform_username: str,
    tls_port: int | None = None,
    certs: dict[str, Path] | None = None,
) -> Path:
    """Create the directory, the two service passwords, the dynamic-security file (first start
    only) and the configuration; return the configuration's path."""
    directory.mkdir(parents=True, exist_ok=True)
    platform_password = _ensure_secret(directory, PLATFORM_SECRET)
    _ensure_secret(directory, BRIDGE_SECRET)
    dynsec = directory / "dynamic-security.json"
    if not dynsec.exists():
        subprocess.run(  # noqa: S603 (fixed program, our own arguments)
            [shutil.which("mosquitto_ctrl"), "dynsec", "init", str(dynsec), platform_username, platform_password],
            check=True,
            capture_output=True,
        )
    config = directory / "mosquitto.conf"
    config.write_text(
        render_config(
            directory=directory,
            device_port=device_port,
            platform_port=platform_port,
            host=host,
            tls_port=tls_port,
            certs=certs,
        )
    )
    # The URL a local client dials (not a bind address).
    device_host = "127.0.0.1" if host in ("0.0.0.0", "::") else host  # noqa: S104
    urls = {"device_url": f"mqtt://{device_host}:{device_port}", "platform_url": f"mqtt://127.0.0.1:{platform_port}"}
    if tls_port is not None and certs is not None:
        urls["device_tls_url"] = f"mqtts://localhost:{tls_port}"
    (directory / "listeners.json").write_text(json.dumps(urls) + "\n")
    return config
