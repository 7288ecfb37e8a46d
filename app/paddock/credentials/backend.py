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
    name: str
    acceptable: bool
    detail: str


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
        )
    return BackendStatus(name, True, f"secrets go to {type(kr).__name__}")
