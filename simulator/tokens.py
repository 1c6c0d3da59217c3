"""The simulator's device tokens: issued once (named "simulator"), kept in ``VAR_DIR/simulator-tokens.json``.

Only hashes are in the database, so the plain tokens live in that file (mode 0600), keyed by
database so that switching ``DATABASE_URL`` does not throw the other database's tokens away.
A stored token is checked against the registry before use and replaced when it was revoked, has
expired or is unknown; the runner asks again when the server answers 401/403 (``reissue``).
"""

import json
import logging
import os
import stat
from pathlib import Path

from django.conf import settings
from django.db import connection

from devices.exceptions import DeviceAuthError
from devices.models import Device
from devices.services.tokens import token_authenticate, token_issue

logger = logging.getLogger("simulator")

TOKEN_NAME = "simulator"
FILE_NAME = "simulator-tokens.json"


class TokenRefused(Exception):
    """A token is needed but may not be issued here (DEBUG=false without --allow-production)."""


def _database_key() -> str:
    db = connection.settings_dict
    return f"{connection.vendor}://{db.get('HOST') or ''}:{db.get('PORT') or ''}/{db['NAME']}"


class SimulatorTokens:
    """Plain tokens per device uid for the current database, persisted in ``path``."""

    def __init__(self, *, allow_issue: bool, path: Path | None = None):
        self.allow_issue = allow_issue
        self.path = path or Path(settings.VAR_DIR) / FILE_NAME
        self.database = _database_key()
        self.data = self._load()
        self.tokens: dict[str, str] = self.data.setdefault("databases", {}).setdefault(self.database, {})

    def _load(self) -> dict:
        try:
            mode = stat.S_IMODE(self.path.stat().st_mode)
            if mode & 0o077:
                logger.warning("%s was readable by others (mode %o); tightening it to 0600.", self.path, mode)
                self.path.chmod(0o600)
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {"version": 1}
        except (OSError, ValueError) as exc:
            logger.warning("Ignoring unreadable %s (%s): tokens will be issued again.", self.path, exc)
            return {"version": 1}
        return data if isinstance(data, dict) and data.get("version") == 1 else {"version": 1}

    def _save(self) -> None:
        """Write atomically; the file is created 0600 so a token is never readable by others, even briefly."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_name(f".{self.path.name}.{os.getpid()}")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(self.data, fh, indent=2, sort_keys=True)
        os.replace(partial, self.path)

    def _issue(self, device: Device) -> str:
        if not self.allow_issue:
            raise TokenRefused(
                f"Device '{device.uid}' needs a simulator token and DEBUG=false: refusing to issue device tokens "
                "on what looks like production. Pass --allow-production if this is intended."
            )
        _, plain = token_issue(device=device, name=TOKEN_NAME)
        self.tokens[device.uid] = plain
        self._save()
        logger.info("Issued device token '%s' for %s.", TOKEN_NAME, device.uid)
        return plain

    def ensure(self, devices: list[Device]) -> dict[str, str]:
        """A working token for every device: the stored one if the registry accepts it, else a new one.

        Raises ``TokenRefused`` when a token is missing and issuing is not allowed.
        """
        result = {}
        for device in devices:
            plain = self.tokens.get(device.uid)
            if plain is not None:
                try:
                    if token_authenticate(plain).pk == device.pk:
                        result[device.uid] = plain
                        continue
                except DeviceAuthError as exc:
                    logger.info("Stored token of %s is no longer valid (%s).", device.uid, exc.message)
            result[device.uid] = self._issue(device)
        return result

    def reissue(self, uid: str, refused: str) -> str | None:
        """The server refused ``refused`` (401/403): return the token to use now, or None to stop the device.

        None when the device is gone or disabled. Returns ``refused`` itself when the registry
        still accepts it (the server then uses another database or hash key: retrying with a new
        token would not help, and would pile up tokens). Raises ``TokenRefused`` like ``ensure``.
        """
        device = Device.objects.filter(uid=uid).first()
        if device is None or not device.enabled:
            return None
        try:
            token_authenticate(refused)
            return refused
        except DeviceAuthError:
            pass
        current = self.tokens.get(uid)
        if current and current != refused:
            return current  # replaced meanwhile (e.g. by ``ensure`` in another run)
        return self._issue(device)
