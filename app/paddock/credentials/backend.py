"""Which keychain backend keyring would use, and whether Paddock accepts it."""

from __future__ import annotations

from dataclasses import dataclass

import keyring
import keyring.backend

# Backends that keep secrets in plain files or nowhere: refused unless an
# admin policy names them as the fallback (see the policy layer).
UNSAFE_BACKENDS = ("keyring.backends.fail", "keyring.backends.null", "keyrings.alt")


@dataclass(frozen=True)
class BackendStatus:
    name: str  # the backend's class, for support (never shown to a person: see ``plain``)
    acceptable: bool
    detail: str
    plain: str = "your system's keychain"  # what a person calls it


# What a person calls each backend (by the module that implements it); any other is "your system's keychain".
PLAIN_NAMES = (
    ("keyring.backends.SecretService", "your desktop's keychain (GNOME Keyring or KWallet)"),
    ("keyring.backends.libsecret", "your desktop's keychain (GNOME Keyring or KWallet)"),
    ("keyring.backends.kwallet", "KWallet"),
    ("keyring.backends.macOS", "the macOS Keychain"),
    ("keyring.backends.Windows", "Windows Credential Manager"),
    ("keyring.backends.fail", "no keychain"),
    ("keyring.backends.null", "no keychain"),
    ("keyrings.alt", "a plain file, not a keychain"),
)


def plain_name(module: str) -> str:
    return next((words for prefix, words in PLAIN_NAMES if module.startswith(prefix)), "your system's keychain")


def backend_status() -> BackendStatus:
    kr: keyring.backend.KeyringBackend = keyring.get_keyring()
    module = type(kr).__module__
    name = f"{module}.{type(kr).__name__}"
    if module.startswith(UNSAFE_BACKENDS):
        return BackendStatus(
            name,
            False,
            "no secure keychain is available (on Linux, a Secret Service such as GNOME Keyring "
            "or KWallet must be running)",
            plain_name(module),
        )
    return BackendStatus(name, True, f"keys are kept in {plain_name(module)}", plain_name(module))
