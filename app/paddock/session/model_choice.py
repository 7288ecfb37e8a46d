"""Choosing the model: the endpoint and model policy allows, its key, and the provider.

    --model ENDPOINT:MODEL ─► policy.models.choose (the effective endpoints, the models allowed,
          │                   where the base URL variables may point) ─► a policy.decision record
          ▼                   (refused: nothing is sent, no sandbox starts)
    the key ─► ModelTarget + key ─► paddock.llm.provider_for

The llm layer never reads policy or the keychain; it is handed a ready ``ModelTarget``.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from urllib.parse import urlsplit

from paddock.credentials import Keychain, KeychainError
from paddock.llm import ModelProvider, ModelTarget, provider_for
from paddock.policy import EffectivePolicy, Endpoint, ModelRefused, PolicyError
from paddock.policy.models import BASE_URL_ENV, KEY_ENV, choose, default_endpoint

__all__ = [
    "BASE_URL_ENV",
    "KEY_ENV",
    "ModelDecision",
    "ModelTarget",
    "ProviderFactory",
    "decide_model",
    "default_endpoint",
]
ProviderFactory = Callable[[ModelTarget, str | None], ModelProvider]


@dataclass(frozen=True)
class ModelDecision:
    """What was asked, and whether policy allows it (with the target when it does)."""

    requested: str  # "" is the default
    target: ModelTarget | None
    reason: str
    tier: str

    @property
    def allowed(self) -> bool:
        return self.target is not None

    @property
    def subject(self) -> str:
        if self.target is not None:
            return f"model {self.target.label} at {self.target.base_url}"
        return f"model {self.requested or '(the default)'}"

    @property
    def label(self) -> str:
        return self.target.label if self.target is not None else self.requested


def decide_model(policy: EffectivePolicy, requested: str | None, env: Mapping[str, str] | None = None) -> ModelDecision:
    """Check a ``--model`` value (``ENDPOINT:MODEL``, ``ENDPOINT:``, ``MODEL`` or None) against policy."""
    env = os.environ if env is None else env
    try:
        c = choose(policy, requested, env)
    except ModelRefused as exc:
        return ModelDecision(requested or "", None, exc.reason, exc.tier)
    target = ModelTarget(c.endpoint.name, c.endpoint.kind, c.base_url, c.model, needs_key=c.endpoint.key is not None)
    return ModelDecision(requested or "", target, "allowed", policy.sources.get("model_endpoints", "built-in"))


def refused(decision: ModelDecision) -> PolicyError:
    return PolicyError(decision.reason, hint="`paddock policy check` lists the endpoints and models allowed.")


def keychain(policy: EffectivePolicy) -> Keychain:
    return Keychain(allowed_fallback=policy.keychain_fallback)


def endpoint(policy: EffectivePolicy, name: str | None) -> Endpoint:
    """An allowed endpoint by name (None: the default one)."""
    if not policy.model_endpoints:
        raise PolicyError("Policy allows no model endpoint.")
    if name is None:
        return default_endpoint(policy) or policy.model_endpoints[0]
    for e in policy.model_endpoints:
        if e.name == name:
            return e
    names = ", ".join(e.name for e in policy.model_endpoints)
    raise PolicyError(f"There is no model endpoint called {name!r} here (allowed: {names}).")


def key_env(e: Endpoint) -> str | None:
    """The environment variable that may hold ``e``'s key (headless use): a built-in endpoint's
    SDK variable only. An endpoint the admin named gets its own keychain entry, never a personal
    ANTHROPIC_API_KEY / OPENAI_API_KEY meant for the public service."""
    return KEY_ENV[e.kind] if e.builtin else None


def api_key(policy: EffectivePolicy, target: ModelTarget, env: Mapping[str, str] | None = None) -> str | None:
    """The key for ``target``: none for an endpoint that needs none; else its environment
    variable (built-in endpoints, headless use), else the endpoint's keychain entry."""
    env = os.environ if env is None else env
    if not target.needs_key:
        return None
    e = endpoint(policy, target.endpoint)
    var = key_env(e)
    if var and env.get(var):
        return env[var]
    return keychain(policy).get(e.key) if e.key else None


def key_state(policy: EffectivePolicy, e: Endpoint, env: Mapping[str, str] | None = None) -> str:
    """In words: where this endpoint's key comes from."""
    env = os.environ if env is None else env
    if e.key is None:
        return "needs no key"
    var = key_env(e)
    try:
        stored = keychain(policy).get(e.key) is not None
    except KeychainError:
        return f"{var} is used" if var and env.get(var) else "the keychain cannot be used (see Keys)"
    if var and env.get(var):
        return f"{var} is used (a key is {'also ' if stored else 'not '}stored)"
    return "key stored" if stored else "no key stored yet"


def make_provider(
    policy: EffectivePolicy, target: ModelTarget, factory: ProviderFactory | None = None
) -> ModelProvider:
    """The provider for ``target``. A local server (loopback) behind a built-in endpoint with no key
    set up is sent none: Ollama, LM Studio and vLLM on the desk usually want none."""
    local = endpoint(policy, target.endpoint).builtin and _loopback(target.base_url)
    try:
        key = api_key(policy, target)
    except KeychainError:
        if not local:
            raise
        key = None
    if key is None and target.needs_key and local:
        target = replace(target, needs_key=False)
    return (factory or provider_for)(target, key)


def _loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a name such as 127.example.com is not loopback
        return False
