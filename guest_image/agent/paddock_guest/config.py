"""The agent's constants, its log line and the flags the kernel command line carries."""

from __future__ import annotations

import os
import sys

# Read at call time (config.WORKSPACE), never copied at import, so tests can point it elsewhere.
WORKSPACE = os.environ.get("PADDOCK_WORKSPACE", "/workspace")
AGENT_SOCKET = "/run/paddock/agent.sock"
PORT_NAME = "paddock.agent"
AGENT_HOME = "/home/agent"
RUNAS = "/opt/paddock/bin/paddock-runas"  # guest_image/helper/runas.c, built static by the image build
RELAY = "/opt/paddock/bin/paddock-relay"  # guest_image/helper/relay.c, likewise
BUSYBOX = "/opt/paddock/bin/busybox"
CA_PATH = "/etc/ssl/certs/paddock-egress-ca.pem"
EGRESS_PORT = 3128
COMMANDS_CGROUP = "/sys/fs/cgroup/commands/cgroup.procs"
BOOT_KEY_METADATA = "paddock-boot-key"
READ_CAP = 16 * 1024 * 1024
LIST_CAP = 10_000
CHUNK = 32 * 1024

# Shares the host may attach after a snapshot restore: tag -> (mount point, read-only).
SHARE_MOUNTS: dict[str, tuple[str, bool]] = {
    "workspace": ("/workspace", False),
    "profile": ("/home/agent/.claude", True),
}
MOUNT_WAIT_S = 20.0


def _kernel_flag(flag: str) -> bool:
    try:
        with open("/proc/cmdline") as fh:
            return flag in fh.read().split()
    except OSError:
        return False


# Set by the host's fence tests only (VMConfig.guest_root): commands run as guest root, as an
# attacker who escalated inside the guest would. The host's fence must hold against that too.
EXEC_AS_ROOT = _kernel_flag("paddock.exec_as_root")


def log(msg: str) -> None:
    print(f"paddock-agent: {msg}", file=sys.stderr, flush=True)


def uptime() -> float:
    with open("/proc/uptime") as fh:
        return float(fh.read().split()[0])


def read_small(path: str) -> bytes:
    """A small kernel file's contents, with plain system calls: for what is read at every command
    (the RTC, the share's inode count), where ``open()``'s file objects cost more than the read
    itself under emulation."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return os.read(fd, 256)
    finally:
        os.close(fd)
