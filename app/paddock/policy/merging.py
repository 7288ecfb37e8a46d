"""Merging the policy tiers: managed first and only narrowed below; what only the admin sets."""

from __future__ import annotations

from pathlib import Path

from paddock.core.paths import data_dir
from paddock.policy.effective import HOME_DENIED, SYSTEM_DENIED, EffectivePolicy, Tier, _expand, _inside
from paddock.policy.models import merge_endpoints


def merge(tiers: list[Tier], home: Path) -> EffectivePolicy:
    eff = EffectivePolicy(tiers=tiers)
    eff.denied_paths = [_expand(p, home) for p in HOME_DENIED] + [Path(p) for p in SYSTEM_DENIED]
    eff.denied_paths.append(data_dir().resolve())  # Paddock's own data (conversations, trust, profile)
    eff.sources["denied_paths"] = "built-in"
    managed = next((t for t in tiers if t.name == "managed"), None)
    # Lower tiers in order of precedence: the user overrides what the admin only recommends.
    lower = (
        [t for t in tiers if t.name == "user"]
        + [t for t in tiers if t.name == "recommended"]
        + [t for t in tiers if t.name == "folder"]
    )
    for t in ([managed] if managed else []) + lower:
        _merge_mounts(eff, t, home)
        _merge_models(eff, t)
    _admin_only(eff, managed, lower)
    _undo_budget(eff, managed, lower)
    _narrow(eff, lower)
    _sensitive(eff, ([managed] if managed else []) + lower)
    allowed = eff.models_allowed
    if (
        eff.default_model
        and allowed is not None
        and not {eff.default_model, eff.default_model.partition(":")[2]} & set(allowed)
    ):
        eff.default_model = allowed[0] if allowed else None
    return eff


def _credit(eff: EffectivePolicy, key: str, tier: str) -> None:
    eff.sources[key] = ", ".join(filter(None, [eff.sources.get(key), tier]))


def _merge_mounts(eff: EffectivePolicy, t: Tier, home: Path) -> None:
    m = t.policy.mounts
    if m.denied_paths:
        eff.denied_paths += [_expand(p, home) for p in m.denied_paths]  # union: anyone may deny more
        _credit(eff, "denied_paths", t.name)
    if m.read_only:
        eff.read_only += [_expand(p, home) for p in m.read_only]
        _credit(eff, "read_only", t.name)
    if m.allowed_roots is not None:
        roots = [_expand(p, home) for p in m.allowed_roots]
        if eff.allowed_roots is None:
            eff.allowed_roots = roots
        else:  # narrowing only: keep what lies inside an existing root
            eff.allowed_roots = [r for r in roots if any(r == a or _inside(r, a) for a in eff.allowed_roots)]
        _credit(eff, "allowed_roots", t.name)


def _merge_models(eff: EffectivePolicy, t: Tier) -> None:
    md = t.policy.models
    if md.allowed is not None:
        eff.models_allowed = (
            list(md.allowed) if eff.models_allowed is None else [x for x in md.allowed if x in eff.models_allowed]
        )
        _credit(eff, "models_allowed", t.name)
    merge_endpoints(eff, t)
    if md.default and "default_model" not in eff.sources:
        eff.default_model, eff.sources["default_model"] = md.default, t.name


def _admin_only(eff: EffectivePolicy, managed: Tier | None, lower: list[Tier]) -> None:
    """Grants, audit export and the keychain fallback come from the managed tier only;
    lower tiers may switch grants off, never add them."""
    src = eff.sources
    if managed is None:
        # No admin: the user decides hooks and asking for themselves.
        for t in lower:
            if t.name == "user":
                eff.allow_folder_hooks = t.policy.hooks.allow_folder_hooks
                eff.allow_asking = t.policy.egress.allow_asking
                src["allow_folder_hooks"] = src["allow_asking"] = "user"
        return
    eff.grants = list(managed.policy.egress.grants)
    if eff.grants:
        src["grants"] = "managed"
    eff.allow_asking = managed.policy.egress.allow_asking
    eff.allow_folder_hooks = managed.policy.hooks.allow_folder_hooks
    a = managed.policy.audit
    eff.otlp_endpoint, eff.otlp_headers, eff.max_log_mb = a.otlp_endpoint, dict(a.otlp_headers), a.max_log_mb
    eff.keychain_fallback = managed.policy.keychain.fallback_backend
    eff.sandbox_hosts = list(managed.policy.sandbox_hosts)
    if eff.sandbox_hosts:
        src["sandbox_hosts"] = "managed"
    for key in ("allow_asking", "allow_folder_hooks", "otlp_endpoint", "otlp_headers", "max_log_mb",
                "keychain_fallback"):  # fmt: skip
        src[key] = "managed"


def _undo_budget(eff: EffectivePolicy, managed: Tier | None, lower: list[Tier]) -> None:
    """The managed tier's budget for restore points is final; otherwise the user's own. A folder's
    own tier cannot set it (a folder must not switch off the undo of what is done to it)."""
    for t in ([managed] if managed else []) + [t for t in lower if t.name == "user"]:
        if t.policy.undo.budget_mb is not None:
            eff.undo_budget_mb, eff.sources["undo_budget_mb"] = t.policy.undo.budget_mb, t.name
            return


def _sensitive(eff: EffectivePolicy, tiers: list[Tier]) -> None:
    """Every tier may add sensitive paths and make holding stricter (ask → refuse); none can
    take away what another added (more sensitive files only ever means fewer requests out)."""
    for t in tiers:
        rules = t.policy.sensitive
        new = [p for p in rules.paths if p not in eff.sensitive_paths]
        if new:
            eff.sensitive_paths += new
            eff.sources["sensitive_paths"] = ", ".join(filter(None, [eff.sources.get("sensitive_paths"), t.name]))
        if rules.on_send == "refuse" and eff.on_sensitive_send != "refuse":
            eff.on_sensitive_send, eff.sources["on_sensitive_send"] = "refuse", t.name


def _narrow(eff: EffectivePolicy, lower: list[Tier]) -> None:
    src = eff.sources
    for t in lower:
        off = set(t.policy.egress.disabled_grants)
        if off:
            eff.grants = [g for g in eff.grants if g.id not in off]
            src["grants"] = f"{src.get('grants', 'managed')}, narrowed by {t.name}"
        if t.name in ("recommended", "folder") and not t.policy.hooks.allow_folder_hooks and eff.allow_folder_hooks:
            eff.allow_folder_hooks = False
            src["allow_folder_hooks"] += f", narrowed by {t.name}"
