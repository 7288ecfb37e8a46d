"""Paddock guest agent: the gRPC server inside the sandbox VM.

Runs as root in the guest (started by busybox init, respawned if it dies) and
serves paddock.guest.v1.GuestAgent on a unix socket that only root can open.
A relay thread joins that socket to the virtio-serial port `paddock.agent`,
whose host end is a unix socket in a folder only the host user can open.

Commands run as the unprivileged `agent` user (uid 1000) in their own process
group, so a timeout or a cancelled call kills everything they started.
Every file operation is confined to /workspace.

This package runs under the guest's Python (Debian's python3) with the grpcio and
protobuf wheels the image build installed; it imports nothing from the host but the
generated code (paddock.guest.v1). Start it with `python3 -u -m paddock_guest`.
"""

from __future__ import annotations

import os

# Must be set before grpc is imported: the agent forks for every command. Importing any
# submodule runs this file first, so every module may import grpc after it.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "0")
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")

AGENT_VERSION = "0.1.0"
