"""Secrets in the OS keychain through ``keyring`` (service ``paddock``).

Plaintext and null backends are refused unless the admin's policy names the
backend as the fallback, and the refusal says why. Secret values are never
logged, printed or passed on a command line.
"""

from __future__ import annotations

import keyring
import keyring.errors

from paddock.core.errors import PaddockError
from paddock.core.logs import redact
from paddock.credentials.backend import backend_status

SERVICE = "paddock"
MODEL_KEY = "anthropic-api-key"


class KeychainError(PaddockError):
    """The keychain is unavailable, refused, or failed."""


class Keychain:
    def __init__(self, *, allowed_fallback: str | None = None) -> None:
        self.allowed_fallback = allowed_fallback

    def _check_backend(self) -> None:
        status = backend_status()
        if status.acceptable:
            return
        if self.allowed_fallback and status.name.startswith(self.allowed_fallback):
            return
        raise KeychainError(
            f"Paddock will not keep secrets here: {status.detail}.",
            hint="Start your desktop's keyring, or ask your admin to name a fallback in the managed policy "
            "(keychain.fallback_backend). For headless use, set ANTHROPIC_API_KEY instead.",
        )

    def set(self, name: str, secret: str) -> None:
        secret = secret.strip()
        if not secret:
            raise KeychainError("The key is empty; nothing was stored.")
        self._check_backend()
        try:
            keyring.set_password(SERVICE, name, secret)
        except keyring.errors.KeyringError as exc:
            raise KeychainError(f"The keychain refused to store the key: {exc}") from exc

    def get(self, name: str) -> str | None:
        self._check_backend()
        try:
            value = keyring.get_password(SERVICE, name)
        except keyring.errors.KeyringError as exc:
            raise KeychainError(f"The keychain could not be read: {exc}") from exc
        redact(value)  # never in a log
        return value

    def remove(self, name: str) -> bool:
        self._check_backend()
        try:
            keyring.delete_password(SERVICE, name)
            return True
        except keyring.errors.PasswordDeleteError:
            return False
        except keyring.errors.KeyringError as exc:
            raise KeychainError(f"The keychain could not remove the key: {exc}") from exc
