"""Sandbox hosts: servers that run the sandbox over SSH when this computer cannot (managed policy only).

A person never types an address or accepts a host key: the admin names each host, pins its key by
fingerprint (``SHA256:...``, as ``ssh-keygen -lf`` prints it) and says who uses it. Pure: nothing
here connects anywhere.
"""

from __future__ import annotations

import re
import shlex
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

NO_VIRTUALISATION = "no-virtualisation"
FINGERPRINT_RE = r"SHA256:[A-Za-z0-9+/]{43}"
NAME_RE = r"[a-z0-9][a-z0-9_-]{0,31}"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class SandboxHost(_Strict):
    """One server that runs sandboxes for the people it names."""

    name: str = Field(description="What people and the window call this host, e.g. 'lab-1'.")
    address: str = Field(description="Host name or IP address of the server.")
    port: int = Field(default=22, ge=1, le=65535)
    host_key: str = Field(description="The server's SSH host key fingerprint, SHA256:... (ssh-keygen -lf).")
    account: str = Field(description="The account on the server that runs the sandboxes.")
    sessions: int = Field(default=4, ge=1, le=256, description="How many sessions this host takes at once.")
    command: str = Field(default="paddock", description="The Paddock command on the server.")
    key: str | None = Field(
        default=None,
        description="The keychain entry holding the SSH private key (None: the person's ssh-agent).",
    )
    who: list[str] | Literal["no-virtualisation"] = Field(
        default="no-virtualisation",
        description="Who uses this host: a list of user names ('*' for everyone), or 'no-virtualisation' "
        "(anyone whose computer cannot run the sandbox itself).",
    )

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not re.fullmatch(NAME_RE, v):
            raise ValueError("use lower-case letters, digits, '_' or '-' (at most 32)")
        return v

    @field_validator("address")
    @classmethod
    def _address(cls, v: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9.:_-]{1,253}", v) or v.startswith("-"):
            raise ValueError("must be a host name or an IP address")
        return v

    @field_validator("host_key")
    @classmethod
    def _host_key(cls, v: str) -> str:
        if not re.fullmatch(FINGERPRINT_RE, v):
            raise ValueError("must be a SHA256 fingerprint as ssh-keygen -lf prints it: SHA256: and 43 characters")
        return v

    @field_validator("account")
    @classmethod
    def _account(cls, v: str) -> str:
        if not re.fullmatch(r"[a-z_][a-z0-9_-]{0,31}", v):
            raise ValueError("must be a user name (lower-case letters, digits, '_' or '-')")
        return v

    @field_validator("command")
    @classmethod
    def _command(cls, v: str) -> str:
        try:
            words = shlex.split(v)
        except ValueError as exc:
            raise ValueError(f"cannot be read as a command ({exc})") from None
        if not words or any(c in v for c in "\n\r;&|`$<>"):
            raise ValueError("must be a command with its arguments, no shell operators")
        return v

    @field_validator("key")
    @classmethod
    def _key(cls, v: str | None) -> str | None:
        if v is not None and not re.fullmatch(r"[a-z0-9][a-z0-9._-]{0,63}", v):
            raise ValueError("use lower-case letters, digits, '.', '_' or '-' (at most 64)")
        return v

    def serves(self, user: str, *, can_virtualise: bool) -> bool:
        """Whether a session of ``user`` goes to this host."""
        if self.who == NO_VIRTUALISATION:
            return not can_virtualise
        return user in self.who or "*" in self.who


def check_unique(hosts: list[SandboxHost]) -> str | None:
    """A plain error when two hosts share a name, else None."""
    seen: set[str] = set()
    for h in hosts:
        if h.name in seen:
            return f"two sandbox hosts are called {h.name!r}; each needs its own name"
        seen.add(h.name)
    return None


def describe_host(h: SandboxHost) -> str:
    who = h.who if isinstance(h.who, str) else ", ".join(h.who)
    return f"{h.name} ({h.account}@{h.address}:{h.port}, {h.sessions} sessions, for {who})"
