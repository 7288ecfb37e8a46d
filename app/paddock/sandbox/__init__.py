"""The sandbox layer: a VM with the folder shared and the guest agent claimed, its egress
gateway and session token. Below the assistant; knows nothing of models or the window."""

from paddock.sandbox.local import (
    SNAPSHOT_ENV,
    BootTimings,
    SandboxFailed,
    ensure_snapshot,
    snapshot_path,
    snapshots_enabled,
)
from paddock.sandbox.sandbox import Sandbox

__all__ = [
    "SNAPSHOT_ENV",
    "BootTimings",
    "Sandbox",
    "SandboxFailed",
    "ensure_snapshot",
    "snapshot_path",
    "snapshots_enabled",
]
