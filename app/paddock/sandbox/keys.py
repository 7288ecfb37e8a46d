"""The real keys a session's egress grants attach (they go to the gateway only, never the guest)."""

from __future__ import annotations

from paddock.credentials import Keychain, KeychainError
from paddock.policy import EffectivePolicy


def secrets_for(policy: EffectivePolicy) -> dict[str, str]:
    """The real keys the grants name, from the keychain (they go to the gateway only)."""
    out: dict[str, str] = {}
    names = {g.credential for g in policy.grants if g.credential}
    if not names:
        return out
    chain = Keychain(allowed_fallback=policy.keychain_fallback)
    for name in names:
        try:
            value = chain.get(name)
        except KeychainError:
            continue  # the gateway then refuses that grant's requests, saying the credential is missing
        if value:
            out[name] = value
    return out
