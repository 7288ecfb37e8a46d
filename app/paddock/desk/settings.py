"""The window's model keys, endpoints and settings, without Qt (``Desk.settings``, a part of the desk): which endpoints
policy allows, whether each has its key, storing and removing one; the effective policy, the audit
log and revoking session tokens for the settings page. Nothing here is sent anywhere."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from paddock.audit import AuditLog
from paddock.core.errors import PaddockError
from paddock.credentials import KeychainError, backend_status
from paddock.desk import support, words
from paddock.egress import TokenAuthority
from paddock.policy import EffectivePolicy, PolicyError
from paddock.session import model_choice
from paddock.session.doctor import FirstRun, run_checks


class Settings:
    def __init__(self, load_policy: Callable[..., EffectivePolicy]) -> None:
        self._load_policy = load_policy

    def _policy(self) -> EffectivePolicy:
        try:
            return self._load_policy()
        except PolicyError:
            return EffectivePolicy()  # the keychain without a fallback; a session would refuse to start

    def model_key(self, endpoint: str | None = None) -> str | None:
        """The key a model endpoint would use (None: the default endpoint's), or None when missing."""
        policy = self._policy()
        try:
            e = model_choice.endpoint(policy, endpoint)
            if e.key is None:
                return None
            var = model_choice.key_env(e)
            return (os.environ.get(var) if var else None) or model_choice.keychain(policy).get(e.key)
        except (KeychainError, PolicyError):
            return None

    async def first_run(self) -> FirstRun:
        """Whether a key is needed, and the host checks (``paddock doctor``, without the KVM probe)."""
        checks = await run_checks(probe=False)
        policy = self._policy()
        default = model_choice.default_endpoint(policy)
        needs = default is not None and default.key is not None
        return FirstRun(needs and self.model_key() is None, checks)

    def _entry(self, endpoint: str | None) -> tuple[EffectivePolicy, str]:
        policy = self._policy()
        e = model_choice.endpoint(policy, endpoint)
        if e.key is None:
            raise PaddockError(f"The model service {e.name!r} needs no key.")
        return policy, e.key

    async def store_key(self, secret: str, endpoint: str | None = None) -> None:
        secret = secret.strip()
        if not secret:
            raise PaddockError("The key is empty. Paste the key your organisation gave you.")
        policy, entry = self._entry(endpoint)
        model_choice.keychain(policy).set(entry, secret)

    async def key_status(self) -> str:
        """The default endpoint's key, in words."""
        policy = self._policy()
        try:
            status = backend_status()
            e = model_choice.endpoint(policy, None)
            if e.key is None:
                return f"The model service {e.name!r} needs no key."
            stored = model_choice.keychain(policy).get(e.key) is not None
        except (KeychainError, PolicyError) as exc:
            return exc.message
        where = f"kept in {status.plain}"
        env = model_choice.key_env(e)
        if env and os.environ.get(env):
            return f"The key from {env} is used (a key is {'also ' if stored else 'not '}{where})."
        return f"A key is stored ({where})." if stored else "No key is stored yet."

    async def remove_key(self, endpoint: str | None = None) -> bool:
        policy, entry = self._entry(endpoint)
        return model_choice.keychain(policy).remove(entry)

    async def endpoint_rows(self) -> list[tuple[str, str, str, str, str]]:
        """(name, kind, where, models, key) for each endpoint policy allows; the first is the default."""
        policy = self._load_policy()
        return [
            (e.name, e.kind, e.base_url or "the service's own address",
             ", ".join(e.models) if e.models is not None else "any", model_choice.key_state(policy, e))
            for e in policy.model_endpoints
        ]  # fmt: skip

    async def revoke_sessions(self) -> None:
        TokenAuthority().revoke_all()

    async def policy_rows(self) -> list[tuple[str, str, str]]:
        """(setting, value, who set it): the effective policy, for the settings page."""
        return self._load_policy().describe()

    async def audit_records(self, limit: int = 200) -> list[dict[str, object]]:
        records = list(AuditLog().records(None))
        return records[-limit:]

    async def policy_sentences(self) -> list[tuple[str, str]]:
        """(sentence, who set it): what the policy in effect lets the assistant do, in words."""
        return words.policy_sentences(self._load_policy())

    async def audit_rows(self, limit: int = 2000) -> list[words.AuditRow]:
        """The audit log's latest records as rows a person reads, newest first."""
        return words.audit_rows(await self.audit_records(limit))

    async def export_audit(self, rows: list[words.AuditRow], path: Path) -> int:
        return words.export_rows(rows, path)

    async def support_bundle(self, folder: Path | None = None) -> Path:
        """The redacted diagnostic file for a support request (``paddock.desk.support``)."""
        return await support.write_bundle(folder)
