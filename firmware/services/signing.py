"""Ed25519 signatures of firmware images (``FIRMWARE_SIGNING_KEY``).

The signature covers the raw 32-byte SHA-256 digest of the image, so a device that has already
verified the checksum verifies the signature without a second pass over the file.
"""

import base64
import binascii

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


def signing_key() -> Ed25519PrivateKey | None:
    """The configured private key, or None when signing is off. PEM (PKCS#8) or base64 of 32 raw bytes."""
    raw = (settings.FIRMWARE_SIGNING_KEY or "").strip()
    if not raw:
        return None
    try:
        if raw.startswith("-----BEGIN"):
            key = serialization.load_pem_private_key(raw.encode(), password=None)
        else:
            key = Ed25519PrivateKey.from_private_bytes(base64.b64decode(raw, validate=True))
    except (ValueError, TypeError, binascii.Error) as exc:
        raise ImproperlyConfigured(f"FIRMWARE_SIGNING_KEY is not an Ed25519 private key: {exc}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise ImproperlyConfigured("FIRMWARE_SIGNING_KEY must be an Ed25519 key.")
    return key


def sign_digest(sha256_hex: str) -> str:
    """Base64 Ed25519 signature of the digest, or "" when no key is configured."""
    key = signing_key()
    if key is None:
        return ""
    return base64.b64encode(key.sign(bytes.fromhex(sha256_hex))).decode()


def public_key_b64() -> str:
    """The public key devices are provisioned with (base64 of 32 raw bytes), or ""."""
    key = signing_key()
    if key is None:
        return ""
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def verify(public_b64: str, sha256_hex: str, signature_b64: str) -> bool:
    """Device-side check (used by the simulator): does the signature match the digest?"""
    try:
        Ed25519PublicKey.from_public_bytes(base64.b64decode(public_b64)).verify(
            base64.b64decode(signature_b64), bytes.fromhex(sha256_hex)
        )
    except Exception:  # noqa: BLE001 - any failure means "do not install"
        return False
    return True
