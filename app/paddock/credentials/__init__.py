"""Secrets in the OS keychain (service ``paddock``) and per-session tokens. The only user of keyring."""

from paddock.credentials.backend import BackendStatus, backend_status
from paddock.credentials.keychain import MODEL_KEY, SERVICE, Keychain, KeychainError
from paddock.credentials.tokens import SessionToken, TokenAuthority, TokenError

__all__ = [
    "MODEL_KEY",
    "SERVICE",
    "BackendStatus",
    "Keychain",
    "KeychainError",
    "SessionToken",
    "TokenAuthority",
    "TokenError",
    "backend_status",
]
