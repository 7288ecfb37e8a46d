"""Per-session tokens: what the guest holds instead of a real key.

A token is minted per VM boot, bound to that VM and to the grants it may use,
and expires. It is an HMAC-SHA256 (standard library ``hmac``) over its claims
with a per-install signing key that never leaves the host. Revocation is
recorded on disk and read on every check, so ``paddock keys revoke-sessions``
in another process takes effect on the very next request.

    pdk1.<vm_id>.<token_id>.<issued_ms>.<expires_ms>.<grants_hash>.<mac>
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from paddock.core.errors import PaddockError
from paddock.core.locks import file_lock
from paddock.core.logs import redact
from paddock.core.paths import data_dir

PREFIX = "pdk1"
DEFAULT_TTL_S = 12 * 3600


class TokenError(PaddockError):
    """A token was refused; ``reason`` is a short machine word for the audit trail."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class SessionToken:
    value: str
    vm_id: str
    token_id: str
    issued: int
    expires: int
    grants_hash: str


@dataclass
class Revocations:
    ids: set[str]
    not_before_ms: int  # tokens issued at or before this moment are revoked


def grants_hash(grant_ids: list[str]) -> str:
    return hashlib.sha256("\n".join(sorted(grant_ids)).encode()).hexdigest()[:16]


class TokenAuthority:
    def __init__(self, folder: Path | None = None) -> None:
        self.folder = folder or data_dir() / "tokens"
        self._key_path = self.folder / "signing.key"
        self._revoked_path = self.folder / "revoked.json"

    def _key(self) -> bytes:
        try:
            return self._key_path.read_bytes()
        except FileNotFoundError:
            self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            key = secrets.token_bytes(32)
            fd = os.open(self._key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(key)
            return key

    def _mac(self, claims: str) -> str:
        return hmac.new(self._key(), claims.encode(), hashlib.sha256).hexdigest()

    def mint(self, vm_id: str, grant_ids: list[str], ttl_s: int = DEFAULT_TTL_S) -> SessionToken:
        if not vm_id.isalnum():
            raise ValueError("vm_id must be alphanumeric")
        token_id = secrets.token_hex(8)
        issued = _now_ms()
        expires = issued + ttl_s * 1000
        gh = grants_hash(grant_ids)
        claims = f"{PREFIX}.{vm_id}.{token_id}.{issued}.{expires}.{gh}"
        token = SessionToken(f"{claims}.{self._mac(claims)}", vm_id, token_id, issued, expires, gh)
        redact(token.value)  # never in a log
        return token

    def check(self, value: str | None, *, vm_id: str, grant_ids: list[str] | None = None) -> SessionToken:
        """The token's claims if it is valid for this VM now; TokenError otherwise."""
        if not value:
            raise TokenError("No session token was presented.", "missing")
        parts = value.split(".")
        if len(parts) != 7 or parts[0] != PREFIX:
            raise TokenError("The session token is malformed.", "malformed")
        claims, mac = ".".join(parts[:6]), parts[6]
        if not hmac.compare_digest(self._mac(claims), mac):
            raise TokenError("The session token's signature is wrong.", "bad_signature")
        _, tok_vm, token_id, issued_s, expires_s, gh = parts[:6]
        issued, expires = int(issued_s), int(expires_s)
        if tok_vm != vm_id:
            raise TokenError("The session token belongs to another sandbox.", "other_vm")
        if _now_ms() >= expires:
            raise TokenError("The session token has expired.", "expired")
        if grant_ids is not None and gh != grants_hash(grant_ids):
            raise TokenError("The session token was minted for other grants.", "other_grants")
        revoked = self._revoked()
        if token_id in revoked.ids or issued <= revoked.not_before_ms:
            raise TokenError("The session token was revoked.", "revoked")
        return SessionToken(value, tok_vm, token_id, issued, expires, gh)

    def _revoked(self) -> Revocations:
        try:
            data = json.loads(self._revoked_path.read_text())
            return Revocations(set(data.get("ids", [])), int(data.get("not_before_ms", 0)))
        except FileNotFoundError:
            return Revocations(set(), 0)
        except (OSError, ValueError, TypeError):
            # A damaged revocation list must not let tokens through: treat every token as revoked.
            return Revocations(set(), DAMAGED)

    def _write_revoked(self, state: Revocations) -> None:
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = self._revoked_path.with_suffix(f".tmp-{os.getpid()}")
        tmp.write_text(json.dumps({"ids": sorted(state.ids), "not_before_ms": state.not_before_ms}))
        os.replace(tmp, self._revoked_path)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """One writer of the revocation file at a time, across processes (every session's end and
        ``paddock keys revoke-sessions`` read, change and rewrite it: without the lock one could
        write back what it read before the other's change, undoing a revocation)."""
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        with file_lock(self.folder / "revoked.lock"):
            yield

    def revoke(self, token_id: str) -> None:
        with self._locked():
            state = self._revoked()
            state.ids.add(token_id)
            self._write_revoked(state)

    def revoke_all(self) -> None:
        """Every token minted until now stops working (new sessions mint new ones)."""
        now = _now_ms()
        while _now_ms() == now:  # a token minted later in this millisecond must stay valid
            time.sleep(0.001)
        with self._locked():
            state = self._revoked()
            damaged = state.not_before_ms >= DAMAGED
            self._write_revoked(
                Revocations(set() if damaged else state.ids, now if damaged else max(now, state.not_before_ms))
            )


DAMAGED = 2**62  # a revocation list that cannot be read revokes every token


def _now_ms() -> int:
    return time.time_ns() // 1_000_000
