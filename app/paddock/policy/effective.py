"""Tiers, precedence and the effective policy.

    managed   root-owned file the admin pushes; always wins; a lower tier can narrow it, never widen it
    user      the user's settings in Paddock's app data
    recommended  defaults the admin ships beside the managed file; the user may override them
    folder    the workspace's own .claude/settings.json, read only once the user trusted the folder

Each effective value remembers which tier set it (``sources``), so
``paddock policy check`` can explain the result. A managed file that the user
could write, or a symlink leading to one, is refused; a malformed managed file
fails closed (``PolicyError``), never falls back to defaults.
"""

from __future__ import annotations

import json
import os
import pwd
import stat
import sys
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from paddock.core import beneath
from paddock.core.errors import PaddockError
from paddock.core.paths import data_dir
from paddock.policy.hosts import SandboxHost, check_unique, describe_host
from paddock.policy.models import BASE_URL_ENV, BUILT_IN, Endpoint
from paddock.policy.schema import EgressGrant, PolicyFile

if sys.platform == "darwin":
    MANAGED_DIR = Path("/Library/Application Support/Paddock")
elif sys.platform == "win32":
    MANAGED_DIR = Path(os.environ.get("PROGRAMDATA", r"C:\ProgramData")) / "Paddock"
else:
    MANAGED_DIR = Path("/etc/paddock")
MANAGED_FILE = MANAGED_DIR / "managed-policy.json"
RECOMMENDED_FILE = MANAGED_DIR / "recommended-policy.json"

HOME_DENIED = [
    "~/.ssh",
    "~/.aws",
    "~/.gnupg",
    "~/.kube",
    "~/.docker",
    "~/.azure",
    "~/.config/gcloud",
    "~/.netrc",
    "~/.password-store",
    "~/.local/share/keyrings",
    "~/.mozilla",
    "~/.config/google-chrome",
    "~/.config/chromium",
    "~/.config/BraveSoftware",
    "~/.config/microsoft-edge",
    "~/snap/firefox",
    "~/Library/Keychains",
    "~/Library/Application Support/Google/Chrome",
    "~/Library/Safari",
    "~/Library/Application Support/Firefox",
    "~/.claude",
]
SYSTEM_DENIED = [
    "/etc",
    "/usr",
    "/bin",
    "/sbin",
    "/lib",
    "/lib64",
    "/boot",
    "/dev",
    "/proc",
    "/sys",
    "/var",
    "/opt",
    "/srv",
    "/run",
    "/snap",
    "/System",
    "/Library",
    "/Applications",
    "/private/etc",
]


class PolicyError(PaddockError):
    """A policy file is unsafe or malformed."""


@dataclass(frozen=True)
class Tier:
    name: str  # managed | recommended | user | folder
    path: Path
    policy: PolicyFile


@dataclass
class EffectivePolicy:
    allowed_roots: list[Path] | None = None
    denied_paths: list[Path] = field(default_factory=list)
    read_only: list[Path] = field(default_factory=list)
    grants: list[EgressGrant] = field(default_factory=list)
    allow_asking: bool = False
    model_endpoints: list[Endpoint] = field(default_factory=lambda: list(BUILT_IN))
    endpoints_managed: bool = False  # the managed tier names the endpoints (the base URL variables are checked)
    models_allowed: list[str] | None = None
    default_model: str | None = None
    allow_folder_hooks: bool = False
    otlp_endpoint: str | None = None
    otlp_headers: dict[str, str] = field(default_factory=dict)
    max_log_mb: int = 50
    keychain_fallback: str | None = None
    undo_budget_mb: int | None = None  # None: a share of the free disk (paddock.undo.store)
    sandbox_hosts: list[SandboxHost] = field(default_factory=list)  # managed only (paddock.remote)
    sensitive_paths: list[str] = field(default_factory=list)  # besides the built-in list (policy.sensitive)
    on_sensitive_send: str = "ask"  # ask | refuse: a request that can carry data out after a sensitive read
    tiers: list[Tier] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)

    # ------------------------------------------------------------- decisions

    def check_folder(self, folder: Path) -> FolderDecision:
        """Whether ``folder`` may be shared with the sandbox, with the reason in plain words.

        The folder is resolved first, so symlinks and ``..`` cannot slip past a rule.
        """
        try:
            real = folder.expanduser().resolve(strict=True)
        except (OSError, RuntimeError):
            return FolderDecision(False, f"The folder {folder} does not exist.", "")
        if not real.is_dir():
            return FolderDecision(False, f"{folder} is not a folder.", "")
        for denied in self.denied_paths:
            if real == denied or _inside(real, denied):
                return FolderDecision(
                    False,
                    f"{folder} is inside {denied}, which Paddock never shares.",
                    self.sources.get("denied_paths", "built-in"),
                )
            if _inside(denied, real):
                return FolderDecision(
                    False,
                    f"{folder} contains {denied}, which Paddock never shares; choose a folder inside it instead.",
                    self.sources.get("denied_paths", "built-in"),
                )
        if self.allowed_roots is not None and not any(real == r or _inside(real, r) for r in self.allowed_roots):
            roots = ", ".join(str(r) for r in self.allowed_roots) or "(none)"
            return FolderDecision(
                False,
                f"Your organisation allows folders only inside: {roots}.",
                self.sources.get("allowed_roots", "managed"),
            )
        read_only = any(real == r or _inside(real, r) for r in self.read_only)
        if not read_only and (owner := _not_yours(real)) is not None:
            return FolderDecision(
                False,
                f"{folder} belongs to {owner}, not to you: Paddock can work only in a folder of your own. "
                "Make a folder inside it (or ask its owner to), and choose that one.",
                "built-in",
            )
        return FolderDecision(True, "allowed", "", read_only=read_only, folder=real)

    def describe(self) -> list[tuple[str, str, str]]:
        """(setting, value, tier that set it), for ``paddock policy check``."""
        rows = []
        for key in (
            "allowed_roots",
            "denied_paths",
            "read_only",
            "grants",
            "allow_asking",
            "model_endpoints",
            "models_allowed",
            "default_model",
            "allow_folder_hooks",
            "otlp_endpoint",
            "otlp_headers",
            "max_log_mb",
            "keychain_fallback",
            "undo_budget_mb",
            "sandbox_hosts",
            "sensitive_paths",
            "on_sensitive_send",
        ):
            value = getattr(self, key)
            if key == "grants":
                shown = (
                    ", ".join(
                        f"{g.id} ({'/'.join(g.methods)} {g.scheme}://{g.host}:{g.port}{g.path_pattern})" for g in value
                    )
                    or "none"
                )
            elif key == "model_endpoints":
                shown = "; ".join(describe_endpoint(e) for e in value) or "none"
            elif key == "sandbox_hosts":
                shown = "; ".join(describe_host(h) for h in value) or "none (sandboxes run on this computer)"
            elif key == "otlp_headers":
                shown = ", ".join(f"{k}: ***" for k in value) or "none"  # header values are often secrets
            elif isinstance(value, list):
                shown = ", ".join(str(v) for v in value) or "none"
            elif value is None and key == "undo_budget_mb":
                shown = "a tenth of the free disk"
            else:
                shown = "any" if value is None and key in ("allowed_roots", "models_allowed") else str(value)
            rows.append((key, shown, self.sources.get(key, "default")))
        return rows


def describe_endpoint(e: Endpoint) -> str:
    where = e.base_url or f"built in, at its SDK's URL or ${BASE_URL_ENV[e.kind]}"
    if e.allowed_urls is not None:
        where += f" (only {', '.join(e.allowed_urls) or 'no URL'})"
    models = ", ".join(e.models) if e.models is not None else "any model"
    key = f"key {e.key}" if e.key else "no key"
    return f"{e.name} ({e.kind}, {where}; {models}; {key})"


@dataclass(frozen=True)
class FolderDecision:
    allowed: bool
    reason: str
    tier: str
    read_only: bool = False
    folder: Path | None = None  # the resolved folder the decision is about (None when it does not exist)


def _not_yours(folder: Path) -> str | None:
    """Who owns ``folder``, when it is not the person running Paddock. (The sandbox acts as that
    person only: the guest would see an owner the folder-sharing helper cannot act as, and every
    file it made there would fail.) Its group does not matter: a shared group folder is served."""
    try:
        uid = folder.stat().st_uid
    except OSError:
        return None
    if uid == os.geteuid():
        return None
    try:
        return f"the account {pwd.getpwuid(uid).pw_name}"
    except KeyError:
        return f"another account (uid {uid})"


def _inside(child: Path, parent: Path) -> bool:
    return child != parent and child.is_relative_to(parent)


def _expand(raw: str, home: Path) -> Path:
    """``~`` and ``~/x`` are the person's home; ``~bob/x`` is bob's (not ``<home>bob/x``)."""
    if raw == "~" or raw.startswith("~/"):
        p = home / raw[2:] if len(raw) > 1 else home
    elif raw.startswith("~"):
        import pwd  # here: POSIX only

        name, _, rest = raw[1:].partition("/")
        try:
            p = Path(pwd.getpwnam(name).pw_dir) / rest
        except KeyError:
            p = Path("/nonexistent-user-home") / name / rest  # no such user: matches no real folder
    else:
        p = Path(raw)
    try:
        return p.resolve()
    except (OSError, RuntimeError):
        return p


# ----------------------------------------------------------------- reading files


ROOT_UID = 0


def check_admin_owned(path: Path, admin_uid: int = ROOT_UID) -> None:
    """Refuse a managed file that a non-admin could have written (or a link to one): the file
    and every folder above it must belong to root (or to ``admin_uid``, which tests that run
    as an ordinary user set to their own uid) and be writable by nobody else."""
    if sys.platform == "win32":  # ACLs: checked by the installer; nothing portable to do here
        return
    real = path.resolve()
    for p in [real, *real.parents]:
        st = p.stat()
        if st.st_uid not in (ROOT_UID, admin_uid):
            raise PolicyError(
                f"{path} is refused as a managed policy: {p} is owned by uid {st.st_uid}, not root.",
                hint="Only an administrator may provide the managed policy (owner root, mode 0644).",
            )
        if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and not (p.is_dir() and st.st_mode & stat.S_ISVTX):
            raise PolicyError(
                f"{path} is refused as a managed policy: {p} can be written by other users.",
                hint="Make it writable by root only (chmod go-w).",
            )


FOLDER_SETTINGS_MAX = 1024 * 1024


def read_tier(
    name: str, path: Path, *, admin_owned: bool, section: str | None = None, admin_uid: int = ROOT_UID
) -> Tier | None:
    """Read one tier's file; None when it does not exist. Errors name the file and the field.

    ``section``: read only that key of the file (a folder's .claude/settings.json
    is shared with other tools; Paddock's part is under "paddock").
    """
    if not path.exists() and not path.is_symlink():
        return None
    if admin_owned:
        check_admin_owned(path, admin_uid)
    try:
        raw = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError(f"{path}: cannot be read ({exc.strerror}).") from exc
    policy = parse(raw, path, section=section)
    if name != "managed":
        _refuse_admin_only(policy, path)
    return Tier(name, path, policy)


def read_folder_tier(folder: Path) -> Tier | None:
    """The trusted folder's own settings: Paddock's part of ``.claude/settings.json``, read
    without following links and bounded (the guest can change that file; it is data)."""
    path = folder_settings_file(folder)
    try:
        if beneath.lstat(folder, path.relative_to(folder)) is None:
            return None
        raw = beneath.read_file(folder, path.relative_to(folder), FOLDER_SETTINGS_MAX)
    except beneath.UnsafePath as exc:
        raise PolicyError(
            f"{path}: refused ({exc.message})",
            hint="Paddock reads a folder's settings only from a plain file inside it; remove or replace it.",
        ) from exc
    except OSError as exc:
        raise PolicyError(f"{path}: cannot be read ({exc.strerror}).") from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PolicyError(f"{path}: not UTF-8 text.") from exc
    policy = parse(text, path, section="paddock")
    _refuse_admin_only(policy, path)
    if any(not isinstance(e, str) for e in policy.models.endpoints or []):
        raise PolicyError(
            f"{path}: models.endpoints: a folder may only narrow the endpoints (by name or base URL), "
            "not define one (a folder must not choose where the model requests and their keys go)."
        )
    return Tier("folder", path, policy)


def _refuse_admin_only(policy: PolicyFile, path: Path) -> None:
    """Grants, audit export and the keychain fallback are the admin's; say so instead of ignoring them."""
    fields = policy.model_fields_set
    admin_only = []
    if policy.egress.grants:
        admin_only.append("egress.grants")
    if "audit" in fields:
        admin_only.append("audit")
    if "keychain" in fields:
        admin_only.append("keychain")
    if policy.sandbox_hosts:
        admin_only.append("sandbox_hosts")
    if admin_only:
        raise PolicyError(
            f"{path}: {', '.join(admin_only)} may be set only in the managed policy "
            "(a lower tier can narrow, never widen); use egress.disabled_grants to switch grants off."
        )


def parse(raw: str, path: Path, *, section: str | None = None) -> PolicyFile:
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise PolicyError(f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}).") from exc
    if not isinstance(data, dict):
        raise PolicyError(f"{path}: the policy must be a JSON object.")
    if section is not None:
        data = data.get(section, {})
        if not isinstance(data, dict):
            raise PolicyError(f"{path}: {section}: must be a JSON object.")
    data.pop("$comment", None)
    try:
        policy = PolicyFile.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"]) or "(top level)"
            msg = "unknown field" if err["type"] == "extra_forbidden" else err["msg"]
            problems.append(f"{where}: {msg}")
        raise PolicyError(f"{path}: " + "; ".join(problems)) from exc
    duplicate = check_unique(policy.sandbox_hosts)
    if duplicate:
        raise PolicyError(f"{path}: sandbox_hosts: {duplicate}")
    return policy


def user_settings_file() -> Path:
    return data_dir() / "settings.json"


def folder_settings_file(folder: Path) -> Path:
    return folder / ".claude" / "settings.json"


def read_tiers(
    *,
    managed: Path | None = None,
    recommended: Path | None = None,
    user: Path | None = None,
    folder: Path | None = None,
    folder_trusted: bool = False,
    admin_uid: int = ROOT_UID,
) -> list[Tier]:
    """Every tier that exists, in the order ``paddock.policy.merging.load`` merges them. The folder
    tier is read only if ``folder_trusted``. ``admin_uid``: who besides root may own the managed
    tiers (tests only; see check_admin_owned)."""
    tiers: list[Tier] = []
    for name, path, admin in (
        ("managed", managed or MANAGED_FILE, True),
        ("recommended", recommended or RECOMMENDED_FILE, True),
        ("user", user or user_settings_file(), False),
    ):
        tier = read_tier(name, path, admin_owned=admin, admin_uid=admin_uid)
        if tier:
            tiers.append(tier)
    if folder is not None and folder_trusted:
        tier = read_folder_tier(folder)
        if tier:
            tiers.append(tier)
    return tiers
