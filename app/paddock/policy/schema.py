"""The policy file: one typed schema for every tier (managed, recommended, user, folder).

Unknown fields, wrong types and bad values are errors that name the file and
the field; nothing falls back to a default silently.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator

from paddock.policy.hosts import NAME_RE, SandboxHost, _Strict
from paddock.policy.sensitive import check_pattern

__all__ = ["NAME_RE", "SandboxHost"]

Method = Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]
Api = Literal["any", "anthropic-messages", "openai-chat"]


def _only_get() -> list[Method]:
    return ["GET"]


class MountRules(_Strict):
    allowed_roots: list[str] | None = Field(
        default=None,
        description="Folders under which a user may choose a workspace (None: anywhere not denied).",
    )
    denied_paths: list[str] = Field(default_factory=list, description="Extra folders that may never be shared.")
    read_only: list[str] = Field(default_factory=list, description="Folders that are shared read-only.")


class EgressGrant(_Strict):
    id: str = Field(description="A name for this grant; audit records cite it.")
    scheme: Literal["https", "http"] = "https"
    host: str
    port: int = Field(default=443, ge=1, le=65535)
    methods: list[Method] = Field(default_factory=_only_get)
    path_pattern: str = Field(default="/*", description="Glob for the request path, e.g. /v1/messages")
    credential: str | None = Field(default=None, description="Name of the keychain secret the gateway attaches.")
    credential_header: str = Field(
        default="authorization", description="Header the secret goes in (authorization: Bearer)."
    )
    api: Api | None = Field(
        default=None,
        validate_default=True,
        description="The API this grant serves. Required when the grant attaches a credential. "
        "anthropic-messages (the Messages API) or openai-chat (an OpenAI-compatible Chat Completions API): only "
        "that API's requests pass, and only the fields the assistant needs (no MCP servers, no server-side tools "
        "such as web fetch or search, no documents or images by URL or file id, no batch or file endpoints); "
        "anything else, or a body that cannot be read, is refused. any: no check at all, so the credential goes "
        "with whatever the guest sends there (paddock policy check and paddock doctor warn about it).",
    )
    sends_data: bool | None = Field(
        default=None,
        description="Whether this grant's requests can carry data out, for the hold after a sensitive read "
        "(sensitive.on_send). Unset: judged per request (a body, a query longer than 256 characters, or a method "
        "other than GET or HEAD); true: every request is held; false: never held (a read-only mirror).",
    )
    forward_headers: list[str] = Field(
        default_factory=list,
        description="Request headers passed upstream besides the plain ones every grant passes "
        "(content-type, accept, user-agent, …); any other header the guest sends is dropped.",
    )

    @field_validator("forward_headers")
    @classmethod
    def _forward(cls, v: list[str]) -> list[str]:
        for name in v:
            if not re.fullmatch(r"[A-Za-z0-9-]{1,64}", name):
                raise ValueError(f"{name!r} is not a header name")
        return [name.lower() for name in v]

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        if not re.fullmatch(r"[a-z0-9][a-z0-9._-]{0,63}", v):
            raise ValueError("use lower-case letters, digits, '.', '_' or '-' (at most 64)")
        return v

    @field_validator("api")
    @classmethod
    def _api(cls, v: Api | None, info: ValidationInfo) -> Api:
        """A grant that attaches a credential must say which API it serves: with the person's key
        attached, a grant that checks nothing is a way out for anything the guest sends."""
        if v is None:
            if info.data.get("credential"):
                raise ValueError(
                    "this grant attaches a credential, so it must say which API it serves: "
                    '"anthropic-messages", "openai-chat", or "any" (no check at all; only if you mean it)'
                )
            return "any"
        return v

    @field_validator("host")
    @classmethod
    def _host(cls, v: str) -> str:
        if not re.fullmatch(
            r"(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+", v
        ):
            raise ValueError("must be a lower-case DNS name such as api.example.com (no IP addresses, no wildcards)")
        if v.rsplit(".", 1)[-1].isdigit():
            raise ValueError("must be a DNS name, not an IP address")
        return v

    @field_validator("path_pattern")
    @classmethod
    def _path(cls, v: str) -> str:
        if not v.startswith("/"):
            raise ValueError("must start with /")
        return v


def credential_warnings(grants: list[EgressGrant]) -> list[str]:
    """Plain-words warnings about grants that attach a credential with no API check (``api: any``)."""
    return [
        f"The grant {g.id!r} attaches the credential {g.credential!r} to any request the sandbox sends to "
        f"{g.host} (api: any), so anything the assistant writes can go there with that key, including requests "
        "that make the service fetch or upload on its own. If it is a model API, set api to "
        '"anthropic-messages" or "openai-chat".'
        for g in grants
        if g.credential and g.api == "any"
    ]


class EgressRules(_Strict):
    grants: list[EgressGrant] = Field(default_factory=list)
    disabled_grants: list[str] = Field(default_factory=list, description="Grant ids a lower tier switches off.")
    allow_asking: bool = Field(default=False, description="Whether the app may ask the user for a one-session grant.")


class ModelEndpoint(_Strict):
    """A model service the assistant may talk to."""

    name: str = Field(description="What people type before the colon in --model NAME:MODEL.")
    kind: Literal["anthropic", "openai"] = Field(
        description="anthropic: the Messages API; openai: an OpenAI-compatible Chat Completions API "
        "(OpenAI, Azure OpenAI, vLLM, Ollama, LM Studio, ...)."
    )
    base_url: str = Field(description="The API's base URL, e.g. http://127.0.0.1:11434/v1")
    models: list[str] | None = Field(default=None, description="Models allowed on this endpoint (None: any).")
    key: str | None = Field(
        default=None, description="The keychain entry that holds this endpoint's key (None: it needs none)."
    )

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not re.fullmatch(NAME_RE, v):
            raise ValueError("use lower-case letters, digits, '_' or '-' (at most 32), no dots or colons")
        return v

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, v: str) -> str:
        if not re.fullmatch(r"https?://[^\s/?#@]+(/[^\s?#]*)?", v):
            raise ValueError("must be an http:// or https:// URL with no user name, query or fragment")
        return v

    @field_validator("key")
    @classmethod
    def _key(cls, v: str | None) -> str | None:
        if v is not None and not re.fullmatch(r"[a-z0-9][a-z0-9._-]{0,63}", v):
            raise ValueError("use lower-case letters, digits, '.', '_' or '-' (at most 64)")
        return v


class ModelRules(_Strict):
    endpoints: list[ModelEndpoint | str] | None = Field(
        default=None,
        description="The model services allowed: endpoint objects define them; a plain string (an endpoint's "
        "name or an API base URL) narrows what a higher tier or the built-in endpoints allow (None: the built-in "
        "endpoints).",
    )
    allowed: list[str] | None = Field(default=None, description="Allowed model names (None: any).")
    default: str | None = None


class HookRules(_Strict):
    allow_folder_hooks: bool = False


class AuditRules(_Strict):
    otlp_endpoint: str | None = None
    otlp_headers: dict[str, str] = Field(default_factory=dict)
    max_log_mb: int = Field(default=50, ge=1, le=10_000)


class UndoRules(_Strict):
    budget_mb: int | None = Field(
        default=None,
        ge=0,
        le=100_000_000,
        description="Disk Paddock may use per folder for restore points, in MB (None: a tenth of the free disk, "
        "at most 20,000; 0: no restore points). Oldest points are dropped first.",
    )


class SensitiveRules(_Strict):
    paths: list[str] = Field(
        default_factory=list,
        description="Globs inside the shared folder (gitignore style: HR/**, **/payroll*, *.xlsx) of files whose "
        "reading taints the session, besides the built-in list (keys, credentials, .env, password exports).",
    )
    on_send: Literal["ask", "refuse"] | None = Field(
        default=None,
        description="After a sensitive read, a request that can carry data out is held: ask the person once per "
        "request (ask, the default) or refuse it (refuse). The strictest tier wins.",
    )

    @field_validator("paths")
    @classmethod
    def _paths(cls, v: list[str]) -> list[str]:
        return [check_pattern(p) for p in v]


class KeychainRules(_Strict):
    fallback_backend: str | None = Field(
        default=None, description="A keyring backend allowed when no secure keychain exists (admins only)."
    )


class PolicyFile(_Strict):
    """What any one tier's file may say."""

    version: Literal[1] = 1
    mounts: MountRules = Field(default_factory=MountRules)
    egress: EgressRules = Field(default_factory=EgressRules)
    models: ModelRules = Field(default_factory=ModelRules)
    hooks: HookRules = Field(default_factory=HookRules)
    audit: AuditRules = Field(default_factory=AuditRules)
    keychain: KeychainRules = Field(default_factory=KeychainRules)
    undo: UndoRules = Field(default_factory=UndoRules)
    sensitive: SensitiveRules = Field(default_factory=SensitiveRules)
    sandbox_hosts: list[SandboxHost] = Field(
        default_factory=list, description="Servers that run sandboxes over SSH (managed policy only)."
    )
