"""The key that chains the audit log (HMAC-SHA-256), made on first use and kept in the keychain.

Where the admin's policy allows no keychain (a headless machine without a Secret Service), the
key lives in a file only this user can read, beside (not in) the audit folder; ``AuditKey.where``
says which, and ``paddock audit verify`` prints it.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from paddock.core.paths import data_dir
from paddock.credentials.keychain import Keychain, KeychainError

AUDIT_KEY = "audit-log-key"
LOCATION = "audit-key-location"  # "keychain" or "file": where the one audit key is, chosen once
FILE, KEYCHAIN = "file", "keychain"


@dataclass(frozen=True)
class AuditKey:
    key: bytes
    where: str
    replaced: bool = False  # the recorded keychain key was gone and a new one was made


def audit_key(keychain: Keychain | None = None) -> AuditKey:
    """The one audit key. Where it lives (the keychain or the key file) is chosen on first use and
    recorded (``<data>/audit-key-location``); from then on only that place is used. A key is never
    silently replaced: a headless run (file key) followed by a desktop one (keychain) uses the
    file's key again; a keychain that cannot be reached now is an error that says so, not a second
    key that would make every earlier record fail its check. Only a recorded keychain key that is
    gone (a reset keychain) is replaced, and then the log it signed is set aside by name
    (``AuditKey.replaced``) instead of looking tampered."""
    keychain = keychain or Keychain()
    where_file = data_dir() / LOCATION
    recorded = _recorded(where_file)
    path = data_dir() / "audit-key"
    if recorded == FILE or (recorded is None and path.exists()):
        return _record(where_file, FILE, _from_file(path))
    try:
        value = keychain.get(AUDIT_KEY)
        replaced = recorded == KEYCHAIN and not value
        if not value:
            keychain.set(AUDIT_KEY, secrets.token_hex(32))
            value = keychain.get(AUDIT_KEY)
        if value:
            found = AuditKey(bytes.fromhex(value), "the keychain", replaced)
            return _record(where_file, KEYCHAIN, found)
    except (KeychainError, ValueError) as exc:
        if recorded == KEYCHAIN:
            raise KeychainError(
                f"The audit key is kept in the keychain, which cannot be used now ({exc}). Paddock does not "
                "make a second key: the audit log would no longer verify.",
                hint="Unlock or start your desktop's keyring and try again.",
            ) from exc
    return _record(where_file, FILE, _from_file(path))


def _recorded(where_file: Path) -> str | None:
    try:
        value = where_file.read_text().strip()
    except OSError:
        return None
    return value if value in (FILE, KEYCHAIN) else None


def _record(where_file: Path, place: str, key: AuditKey) -> AuditKey:
    if _recorded(where_file) != place:
        where_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = where_file.with_suffix(".tmp")
        tmp.write_text(place + "\n")
        os.replace(tmp, where_file)
    return key


def _from_file(path: Path) -> AuditKey:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))
    except FileExistsError:
        pass
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd) as fh:
        return AuditKey(bytes.fromhex(fh.read(200).strip()), f"the file {path}")
