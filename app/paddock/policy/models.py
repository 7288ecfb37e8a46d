"""Which model services (endpoints) and models the assistant may use.

With no policy naming endpoints, two are built in: ``anthropic`` (the Messages API) and
``openai`` (Chat Completions), each at its SDK's base URL or the one its environment
variable names. A tier that lists endpoint objects defines the set (the first tier in
precedence order that does, so the managed tier wins); every later tier only narrows it:
an object or a plain name keeps the endpoint of that name (an object also narrows its
models), a plain base URL keeps the endpoints at that URL. Old policies that list only
base URLs therefore keep meaning what they said: the built-in endpoints, only at those URLs.

Pure: the environment is passed in, nothing here reads it or sends anything.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, Protocol
from urllib.parse import urlsplit, urlunsplit

from paddock.policy.schema import NAME_RE

Kind = Literal["anthropic", "openai"]
SDK_BASE_URL: dict[str, str] = {"anthropic": "https://api.anthropic.com", "openai": "https://api.openai.com/v1"}
BASE_URL_ENV: dict[str, str] = {"anthropic": "ANTHROPIC_BASE_URL", "openai": "OPENAI_BASE_URL"}
KEY_ENV: dict[str, str] = {"anthropic": "ANTHROPIC_API_KEY", "openai": "OPENAI_API_KEY"}
DEFAULT_ANTHROPIC_MODEL = "claude-sonnet-5-5"


@dataclass(frozen=True)
class Endpoint:
    name: str
    kind: Kind
    base_url: str | None  # None: built in; the SDK's default or its environment variable
    models: tuple[str, ...] | None = None  # None: any model
    key: str | None = None  # keychain entry; None: the endpoint needs no key
    allowed_urls: tuple[str, ...] | None = None  # built in only: the base URLs a lower tier narrowed it to

    @property
    def builtin(self) -> bool:
        return self.base_url is None


BUILT_IN = [
    Endpoint("anthropic", "anthropic", None, key="anthropic-api-key"),
    Endpoint("openai", "openai", None, key="openai-api-key"),
]


class ModelRefused(Exception):
    """A model request policy does not allow (before anything is sent)."""

    def __init__(self, reason: str, tier: str) -> None:
        super().__init__(reason)
        self.reason, self.tier = reason, tier


@dataclass(frozen=True)
class ModelChoice:
    endpoint: Endpoint
    model: str
    base_url: str  # where the request will go

    @property
    def label(self) -> str:
        return f"{self.endpoint.name}:{self.model}"


def norm_url(url: str) -> str:
    """A base URL as compared against policy: scheme and host are case-insensitive, the path is not
    (``/V1`` and ``/v1`` may be different services behind one host)."""
    parts = urlsplit(url.strip())
    if not parts.scheme or not parts.netloc:
        return url.strip().rstrip("/")
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), parts.path.rstrip("/"), parts.query, ""))


# ----------------------------------------------------------------------------- choosing


class ModelPolicy(Protocol):
    """What choosing a model reads of the effective policy (``paddock.policy.EffectivePolicy``).
    A protocol, so that this module stays below the policy it is merged into."""

    model_endpoints: list[Endpoint]
    endpoints_managed: bool
    models_allowed: list[str] | None
    default_model: str | None
    sources: dict[str, str]


def parse_choice(text: str, names: list[str]) -> tuple[str | None, str | None]:
    """``ENDPOINT:MODEL``, ``ENDPOINT:`` (its default model) or a bare ``MODEL`` (the default endpoint).

    A model name may itself contain a colon (``llama3.1:8b``); the part before the first colon is
    an endpoint only when it could be one."""
    text = text.strip()
    head, sep, tail = text.partition(":")
    if sep and (head in names or re.fullmatch(NAME_RE, head)):
        if head not in names:
            hint = (
                ""
                if head in ("anthropic", "openai") or not names
                else (f" (A model whose own name has a colon is written with its endpoint first: {names[0]}:{text}.)")
            )
            raise ModelRefused(
                f"There is no model endpoint called {head!r} here (allowed: {', '.join(names) or 'none'}).{hint}", ""
            )
        return head, tail.strip() or None
    if not text:
        return None, None
    if sep and not head:
        raise ModelRefused(f"{text!r} names no endpoint before the colon; write ENDPOINT:MODEL.", "")
    return None, text


def default_endpoint(eff: ModelPolicy) -> Endpoint | None:
    """The endpoint used when none is named: the one ``models.default`` names, else the first."""
    if not eff.model_endpoints:
        return None
    try:
        name, _ = parse_choice(eff.default_model or "", [e.name for e in eff.model_endpoints])
    except ModelRefused:
        name = None
    return next((e for e in eff.model_endpoints if e.name == name), eff.model_endpoints[0])


def choose(eff: ModelPolicy, requested: str | None, env: Mapping[str, str]) -> ModelChoice:
    """The endpoint, model and base URL for a request, or ``ModelRefused`` saying why not."""
    tier = eff.sources.get("model_endpoints", "built-in")
    endpoints = {e.name: e for e in eff.model_endpoints}
    if not endpoints:
        raise ModelRefused("Policy allows no model endpoint, so the assistant cannot run.", tier)
    try:
        name, model = parse_choice(requested or "", list(endpoints))
        default_name, default_model = parse_choice(eff.default_model or "", list(endpoints))
    except ModelRefused as exc:
        raise ModelRefused(exc.reason, tier) from None
    default = default_name or eff.model_endpoints[0].name
    endpoint = endpoints[name or default]
    if model is None:
        fallback = env.get("PADDOCK_MODEL") or DEFAULT_ANTHROPIC_MODEL
        model = _default_model(endpoint, default_model if endpoint.name == default else None, fallback)
    if endpoint.models is not None and model not in endpoint.models:
        raise ModelRefused(
            f"The model {model!r} is not allowed on the endpoint {endpoint.name!r} "
            f"(allowed there: {', '.join(endpoint.models) or 'none'}).",
            tier,
        )
    allowed = eff.models_allowed
    if allowed is not None and model not in allowed and f"{endpoint.name}:{model}" not in allowed:
        raise ModelRefused(
            f"The model {model!r} is not allowed by policy (allowed: {', '.join(allowed) or 'none'}).",
            eff.sources.get("models_allowed", "managed"),
        )
    return ModelChoice(endpoint, model, _base_url(eff, endpoint, env, tier))


def _default_model(endpoint: Endpoint, policy_default: str | None, fallback: str) -> str:
    if policy_default and (endpoint.models is None or policy_default in endpoint.models):
        return policy_default
    if endpoint.models:
        return endpoint.models[0]
    if endpoint.kind == "anthropic":
        return fallback
    raise ModelRefused(f"Name the model to use on {endpoint.name!r}: --model {endpoint.name}:MODEL.", "")


def _base_url(eff: ModelPolicy, endpoint: Endpoint, env: Mapping[str, str], tier: str) -> str:
    var = BASE_URL_ENV[endpoint.kind]
    from_env = (env.get(var) or "").strip()
    if endpoint.base_url is None:
        url = from_env or SDK_BASE_URL[endpoint.kind]
        if endpoint.allowed_urls is not None and norm_url(url) not in endpoint.allowed_urls:
            where = f"{var} points to {url}" if from_env else f"the endpoint {endpoint.name!r} is at {url}"
            raise ModelRefused(
                f"Policy allows model requests only to {', '.join(endpoint.allowed_urls) or 'no URL'}, but {where}.",
                tier,
            )
        return url.rstrip("/")
    if from_env and eff.endpoints_managed:
        same_kind = {norm_url(e.base_url) for e in eff.model_endpoints if e.kind == endpoint.kind and e.base_url}
        if norm_url(from_env) not in same_kind:
            raise ModelRefused(
                f"{var} points to {from_env}, which your organisation's policy does not allow "
                f"(its {endpoint.kind} endpoints: {', '.join(sorted(same_kind))}). Unset {var}.",
                tier,
            )
    return endpoint.base_url
