"""The sandbox layer: a VM with the folder shared and the guest agent claimed, its egress
gateway and session token. Below the assistant; knows nothing of models or the window."""

from paddock.sandbox.failure import SandboxFailed
from paddock.sandbox.placement import BootTimings, Here, Machine, OnHost, Placement
from paddock.sandbox.request import BootRequest
from paddock.sandbox.sandbox import Sandbox
from paddock.sandbox.warm import (
    SNAPSHOT_ENV,
    WarmPool,
    Woken,
    ensure_snapshot,
    snapshot_path,
    snapshots_enabled,
    wake,
    wake_ahead,
)

__all__ = [
    "SNAPSHOT_ENV",
    "BootRequest",
    "BootTimings",
    "Here",
    "Machine",
    "OnHost",
    "Placement",
    "Sandbox",
    "SandboxFailed",
    "WarmPool",
    "Woken",
    "ensure_snapshot",
    "snapshot_path",
    "snapshots_enabled",
    "wake",
    "wake_ahead",
]
