"""Secrets in the OS keychain (service ``paddock``). The only user of keyring."""

from paddock.credentials.backend import BackendStatus, backend_status

__all__ = ["BackendStatus", "backend_status"]
