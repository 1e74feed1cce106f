"""Secrets at rest (inbox secrets, bot tokens) and signed tokens, keyed by the settings secret.

One key derivation for the whole install: a purpose string separates uses, so a visitor
token can never be replayed as anything else.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from omni.domain.errors import InvalidInput


def _derive(secret_key: str, purpose: str) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose.encode()).derive(
        secret_key.encode()
    )


def encrypt(secret_key: str, plaintext: str) -> str:
    """Fernet (AES-128-CBC + HMAC) with a key derived from the settings secret."""
    key = base64.urlsafe_b64encode(_derive(secret_key, "omni.secrets.v1"))
    return Fernet(key).encrypt(plaintext.encode()).decode()


def decrypt(secret_key: str, token: str) -> str:
    key = base64.urlsafe_b64encode(_derive(secret_key, "omni.secrets.v1"))
    try:
        return Fernet(key).decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise InvalidInput("a stored secret can't be decrypted: OMNI_SECRET_KEY changed?") from exc


def sign_value(secret_key: str, purpose: str, value: str) -> str:
    """``value.signature``: lets a browser hold an id (a visitor) it can't forge."""
    mac = hmac.new(_derive(secret_key, purpose), value.encode(), hashlib.sha256).hexdigest()[:40]
    return f"{value}.{mac}"


def unsign_value(secret_key: str, purpose: str, token: str) -> str | None:
    value, _, mac = token.rpartition(".")
    if not value or not mac:
        return None
    expected = sign_value(secret_key, purpose, value)
    return value if hmac.compare_digest(expected, token) else None
