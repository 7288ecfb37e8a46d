"""Planting a session's tripwires in the guest (``paddock.egress.tripwires`` makes them, the
gateway watches for them): through the guest agent's ordinary calls, no new one.

The files go where credential-hunting code looks (``~/.aws/credentials``, ``~/.ssh/id_ed25519``,
``~/.netrc``, ``~/.git-credentials``), written by one shell (``sh -s``) run as the guest's user, the
script and content on its standard input (never on a command line, so not in a process listing or the
audit trail); the variables go with the egress proxy's into every later command's environment.
"""

from __future__ import annotations

import posixpath
import secrets

from paddock.egress.tripwires import Planted
from paddock.guest import GuestClient, GuestError

PLANT_TIMEOUT_S = 120.0  # a shell, a few small files: seconds even under software emulation on a busy host


class PlantingFailed(GuestError):
    """The decoys could not be written in the guest."""


def plant_script(files: dict[str, str]) -> str:
    """A shell script (read by ``sh -s`` from stdin) that writes each file (folders 0700, files 0600)."""
    end = "PADDOCK_" + secrets.token_hex(8)
    lines = ["set -e", "umask 077"]
    for path, text in files.items():
        if end in text or "'" in path:
            raise ValueError("a decoy file cannot be written safely")
        lines += [f"mkdir -p '{posixpath.dirname(path)}'", f"cat > '{path}' <<'{end}'", text.rstrip("\n"), end]
    return "\n".join(lines) + "\n"


async def plant(guest: GuestClient, planted: Planted) -> None:
    """Write the decoy files in the guest (the variables go through ``configure``)."""
    stdin = plant_script(planted.files).encode()
    _out, err, result = await guest.run(["sh", "-s"], stdin=stdin, timeout_s=PLANT_TIMEOUT_S)
    if result.shell_code != 0:
        raise PlantingFailed(f"the decoy secrets could not be planted ({result.reason.value}, code "
                             f"{result.shell_code}): {err.decode(errors='replace')[-300:]}")  # fmt: skip
