"""What counts as a sensitive file in the shared folder: reading one taints the session, and the
egress gateway then holds every request that can carry data out (``paddock.egress.taint``).

A built-in list (credential and key files, ``.env``, ``.netrc``, SSH and cloud configuration,
password-manager exports) plus the managed policy's ``sensitive.paths``; patterns are gitignore
globs (``pathspec``) on the path inside the folder: ``*.pem`` matches at any depth, ``HR/**`` a
folder's content, ``**/payroll*`` a name anywhere. A file whose first bytes are a private-key
header is sensitive whatever its name (``looks_like_private_key``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import pathspec
from pathspec.pattern import RegexPattern
from pathspec.util import normalize_file

BUILT_IN = (
    # environment and credential files
    ".env", ".env.*", "*.env", ".netrc", "_netrc", ".git-credentials", ".npmrc", ".pypirc", ".pgpass",
    ".my.cnf", ".htpasswd", "credentials", "credentials.json", "client_secret*.json", "service-account*.json",
    "secrets.json", "secrets.yaml", "secrets.yml", "*.tfstate", "*.tfvars",
    # SSH, GnuPG and cloud configuration
    ".ssh/", "id_rsa*", "id_dsa*", "id_ecdsa*", "id_ed25519*", ".gnupg/", ".aws/", ".azure/", ".config/gcloud/",
    ".kube/config", "kubeconfig", ".docker/config.json",
    # keys and certificates with keys
    "*.pem", "*.key", "*.p12", "*.pfx", "*.jks", "*.keystore", "*.ppk",
    # password managers and their exports
    "*.kdbx", "*.kdb", "*.1pux", "*.1pif", "*.agilekeychain", "*.opvault/", "bitwarden_export*",
    "*password*.csv", "*passwords*.json", "lastpass*.csv",
)  # fmt: skip
PRIVATE_KEY = re.compile(rb"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----")
HEAD_BYTES = 4096  # how much of a file is looked at for a private-key header


def check_pattern(pattern: str) -> str:
    """A policy glob, or ValueError naming what is wrong with it."""
    if not pattern or len(pattern) > 256 or pattern.startswith("/") or "\0" in pattern:
        raise ValueError(f"{pattern!r} is not a glob inside the folder (relative, at most 256 characters)")
    if ".." in pattern.split("/"):
        raise ValueError(f"{pattern!r} may not contain '..'")
    try:
        pathspec.PathSpec.from_lines("gitignore", [pattern])
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{pattern!r} is not a valid glob: {exc}") from None
    return pattern


class SensitiveMatcher:
    """Whether a path inside the folder names a sensitive file.

    Asked on every read open the guest makes (``paddock.sandbox.sensitive``): the including
    patterns' regular expressions, joined into one (``_joined``), answer "no" for an ordinary
    file in one search (pathspec tries each pattern in turn, 3-10x slower); a path that one
    matches is then decided by pathspec itself (a ``!`` pattern may exclude it again)."""

    def __init__(self, extra: Iterable[str] = ()) -> None:
        self.patterns = (*BUILT_IN, *extra)
        self._spec = pathspec.PathSpec.from_lines("gitignore", self.patterns)
        including = [p for p in self._spec.patterns if p.include]
        regexes = [p.regex.pattern for p in including if isinstance(p, RegexPattern) and p.regex is not None]
        # None: some pattern is not a regular expression, so pathspec answers every path
        self._any = _joined(regexes) if len(regexes) == len(including) else None

    def matches(self, rel: str) -> bool:
        if not rel:
            return False
        if self._any is not None and self._any.search(normalize_file(rel)) is None:
            return False  # no including pattern matches: not sensitive, whatever the rest say
        return self._spec.match_file(rel)


ANY_DEPTH = "^(?:.+/)?"  # how a gitignore pattern without a slash starts: "at any depth"


def _joined(regexes: list[str]) -> re.Pattern[str]:
    """One expression that matches (searching) every path one of ``regexes`` matches, and maybe
    more: "at any depth" is factored out as "at the start or after a slash", so the engine
    tries the names only where a name starts (about twice as quick as each in turn)."""
    deep = [r.removeprefix(ANY_DEPTH) for r in regexes if r.startswith(ANY_DEPTH)]
    rest = [r for r in regexes if not r.startswith(ANY_DEPTH)]
    parts = [f"(?:^|/)(?:{'|'.join(f'(?:{_ungrouped(r)})' for r in deep)})"] if deep else []
    parts += [f"(?:{_ungrouped(r)})" for r in rest]
    return re.compile("|".join(parts) or "$^")


def _ungrouped(regex: str | None) -> str:
    """A pattern's regular expression without its group names (they would clash when joined)."""
    return re.sub(r"\(\?P<[A-Za-z_][A-Za-z0-9_]*>", "(?:", regex or "")


def looks_like_private_key(head: bytes) -> bool:
    """Whether the start of a file holds a PEM private-key header."""
    return PRIVATE_KEY.search(head) is not None
