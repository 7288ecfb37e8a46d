"""The key that chains the audit log (HMAC-SHA-256), made on first use and kept in the keychain.

Where the admin's policy allows no keychain (a headless machine without a Secret Service), the
key lives in a file only this user can read, beside (not in) the audit folder; ``AuditKey.where``
says which, and ``paddock audit verify`` prints it.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass

from paddock.core.paths import data_dir
from paddock.credentials.keychain import Keychain, KeychainError

AUDIT_KEY = "audit-log-key"


@dataclass(frozen=True)
class AuditKey:
    key: bytes
    where: str


def audit_key(keychain: Keychain | None = None) -> AuditKey:
    """The audit key: from the keychain, made there on first use; else from the key file."""
    keychain = keychain or Keychain()
    try:
        value = keychain.get(AUDIT_KEY)
        if not value:
            keychain.set(AUDIT_KEY, secrets.token_hex(32))
            value = keychain.get(AUDIT_KEY)
        if value:
            return AuditKey(bytes.fromhex(value), "the keychain")
    except (KeychainError, ValueError):
        pass
    path = data_dir() / "audit-key"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))
    except FileExistsError:
        pass
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd) as fh:
        return AuditKey(bytes.fromhex(fh.read(200).strip()), f"the file {path}")
