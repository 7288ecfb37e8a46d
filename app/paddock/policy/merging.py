"""Merging the policy tiers: managed first and only narrowed below; what only the admin sets."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from paddock.core.paths import data_dir
from paddock.policy.effective import (
    HOME_DENIED,
    ROOT_UID,
    SYSTEM_DENIED,
    EffectivePolicy,
    Tier,
    _expand,
    _inside,
    read_tiers,
)
from paddock.policy.models import SDK_BASE_URL, Endpoint, norm_url
from paddock.policy.schema import ModelEndpoint


def load(
    *,
    managed: Path | None = None,
    recommended: Path | None = None,
    user: Path | None = None,
    folder: Path | None = None,
    folder_trusted: bool = False,
    home: Path | None = None,
    admin_uid: int = ROOT_UID,
) -> EffectivePolicy:
    """The effective policy from every tier. The folder tier is read only if ``folder_trusted``.
    ``admin_uid``: who besides root may own the managed tiers (tests only; see check_admin_owned)."""
    tiers = read_tiers(
        managed=managed,
        recommended=recommended,
        user=user,
        folder=folder,
        folder_trusted=folder_trusted,
        admin_uid=admin_uid,
    )
    return merge(tiers, home or Path.home())


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
    for key in (
        "allow_asking",
        "allow_folder_hooks",
        "otlp_endpoint",
        "otlp_headers",
        "max_log_mb",
        "keychain_fallback",
    ):
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


# ----------------------------------------------------------------------------- model endpoints


def merge_endpoints(eff: EffectivePolicy, t: Tier) -> None:
    entries = t.policy.models.endpoints
    if entries is None:
        return
    objects = [e for e in entries if isinstance(e, ModelEndpoint)]
    plain = [e for e in entries if isinstance(e, str)]
    defined_by = eff.sources.get("model_endpoints", "built-in")
    if objects and defined_by == "built-in":  # the first tier that names endpoints defines them
        eff.model_endpoints = [_from_policy(o) for o in objects]
        eff.endpoints_managed = t.name == "managed"
        eff.sources["model_endpoints"] = t.name
        objects = []
        if not plain:
            return
    names = {o.name: o for o in objects}
    urls = {norm_url(p) for p in plain if "://" in p}
    named = {p for p in plain if "://" not in p}
    kept: list[Endpoint] = []
    for e in eff.model_endpoints:
        if e.name in names:
            narrower = names[e.name].models
            if narrower is not None:
                models = e.models if e.models is not None else narrower  # () stays (): nothing widens it
                e = replace(e, models=tuple(m for m in models if m in narrower))
            kept.append(e)
        elif e.name in named or (e.base_url is not None and norm_url(e.base_url) in urls):
            if e.builtin and t.name == "managed" and e.allowed_urls is None:
                # The admin named a built-in endpoint: at its SDK's own URL, not wherever
                # ANTHROPIC_BASE_URL / OPENAI_BASE_URL would send it (and the key with it).
                e = replace(e, allowed_urls=(norm_url(SDK_BASE_URL[e.kind]),))
            kept.append(e)
        elif e.base_url is None and urls:  # built in: its URL is known only when a session starts
            allowed_now = e.allowed_urls if e.allowed_urls is not None else tuple(sorted(urls))
            kept.append(replace(e, allowed_urls=tuple(u for u in allowed_now if u in urls)))
    eff.model_endpoints = kept
    eff.sources["model_endpoints"] = f"{eff.sources.get('model_endpoints', 'built-in')}, narrowed by {t.name}"


def _from_policy(o: ModelEndpoint) -> Endpoint:
    models = tuple(o.models) if o.models is not None else None
    return Endpoint(o.name, o.kind, o.base_url.rstrip("/"), models, o.key)
