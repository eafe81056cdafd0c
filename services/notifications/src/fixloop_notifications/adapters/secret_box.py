"""Webhook signing secrets sealed for storage.

A receiver verifies our signatures with the endpoint's secret, so the service must be able to
read it back: it cannot be hashed. It is stored sealed instead (Fernet: AES-128-CBC with an
HMAC-SHA256 tag), under a key derived (HKDF-SHA256) from
``FIXLOOP_NOTIFICATIONS_WEBHOOK_SECRET_KEY`` — a Kubernetes Secret in production, never in the
database beside what it protects. A copy of the database alone does not let anyone sign webhooks
in a tenant's name.

Key rotation: the new key becomes ``webhook_secret_key`` and the old one goes to
``webhook_previous_secret_keys``; secrets sealed under either are read, and each endpoint is
sealed under the new key the next time its secrets are written (``fixloop webhooks
rotate-secret``, or ``reseal``).
"""

from __future__ import annotations

import base64
from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

DEV_SECRET_KEY = "fixloop-dev-webhook-secret-key-not-a-secret"  # noqa: S105 - embedded stack only
"""The embedded stack's key (the settings' default); production sets its own."""

KEY_MIN_LENGTH = 32
_CONTEXT = b"fixloop notifications: webhook signing secrets at rest"


class UnreadableSecret(ValueError):  # noqa: N818 - names what was found
    """A sealed secret none of the configured keys opens (the key changed without rotation)."""


def _fernet(key: str) -> Fernet:
    if len(key) < KEY_MIN_LENGTH:
        msg = f"a webhook secret key needs at least {KEY_MIN_LENGTH} characters"
        raise ValueError(msg)
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_CONTEXT).derive(
        key.encode("utf-8")
    )
    return Fernet(base64.urlsafe_b64encode(derived))


class SecretBox:
    """Seals with the first key, opens with any of them."""

    def __init__(self, keys: Sequence[str]) -> None:
        if not keys:
            msg = "at least one webhook secret key is needed"
            raise ValueError(msg)
        self._keys = MultiFernet([_fernet(key) for key in keys])

    def seal(self, secret: str) -> str:
        return self._keys.encrypt(secret.encode("utf-8")).decode("ascii")

    def open(self, sealed: str) -> str:
        try:
            return self._keys.decrypt(sealed.encode("ascii")).decode("utf-8")
        except (InvalidToken, UnicodeError) as exc:
            msg = "a webhook signing secret is sealed under a key that is not configured"
            raise UnreadableSecret(msg) from exc


def dev_box() -> SecretBox:
    """The box of the embedded stack's default key."""
    return SecretBox([DEV_SECRET_KEY])


__all__ = ["DEV_SECRET_KEY", "SecretBox", "UnreadableSecret", "dev_box"]
