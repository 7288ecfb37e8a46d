"""Secrets in the OS keychain (service ``paddock``). The only user of keyring. (The per-session
tokens the guest holds are ``paddock.egress.tokens``: the gateway checks them without keyring.)"""

from paddock.credentials.audit_key import AUDIT_KEY, AuditKey, audit_key
from paddock.credentials.backend import BackendStatus, backend_status
from paddock.credentials.keychain import MODEL_KEY, SERVICE, Keychain, KeychainError

__all__ = [
    "AUDIT_KEY",
    "MODEL_KEY",
    "SERVICE",
    "AuditKey",
    "BackendStatus",
    "Keychain",
    "KeychainError",
    "audit_key",
    "backend_status",
]
