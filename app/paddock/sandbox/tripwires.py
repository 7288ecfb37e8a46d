"""Planting a session's tripwires in the guest (``paddock.egress.tripwires`` makes them, the
gateway watches for them): through the guest agent's ordinary calls, no new one.

The files go where credential-hunting code looks (``~/.aws/credentials``, ``~/.ssh/id_ed25519``,
``~/.netrc``, ``~/.git-credentials``), written by one command run as the guest's user with the
content on its standard input (never on a command line, so not in a process listing or the
audit trail); the variables go with the egress proxy's into every later command's environment.
"""

from __future__ import annotations

import json

from paddock.egress.tripwires import Planted
from paddock.guest import GuestClient, GuestError

# Runs in the guest: writes each file (parents 0700, file 0600) from the JSON on stdin.
_PLANT = r"""
import json, os, sys
for path, text in json.load(sys.stdin).items():
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
"""


class PlantingFailed(GuestError):
    """The decoys could not be written in the guest."""


async def plant(guest: GuestClient, planted: Planted) -> None:
    """Write the decoy files in the guest (the variables go through ``configure``)."""
    stdin = json.dumps(planted.files).encode()
    _out, err, result = await guest.run(["python3", "-I", "-c", _PLANT], stdin=stdin, timeout_s=30)
    if result.shell_code != 0:
        raise PlantingFailed(f"the decoy secrets could not be planted: {err.decode(errors='replace')[-300:]}")
