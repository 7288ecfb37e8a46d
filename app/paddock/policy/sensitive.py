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
    """Whether a path inside the folder names a sensitive file."""

    def __init__(self, extra: Iterable[str] = ()) -> None:
        self.patterns = (*BUILT_IN, *extra)
        self._spec = pathspec.PathSpec.from_lines("gitignore", self.patterns)

    def matches(self, rel: str) -> bool:
        return bool(rel) and self._spec.match_file(rel)


def looks_like_private_key(head: bytes) -> bool:
    """Whether the start of a file holds a PEM private-key header."""
    return PRIVATE_KEY.search(head) is not None
