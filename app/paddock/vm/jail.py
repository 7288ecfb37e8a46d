"""Which bubblewrap builds the folder-sharing jail, and whether this account may build it.

The package installs a copy of bubblewrap at ``PADDOCK_JAIL`` (on releases that ship its AppArmor
profile): Ubuntu 24.04 and later let a program make a user namespace with capabilities in it only
under an AppArmor profile that allows it, and the package's profile allows it to that copy alone.
Paddock prefers that copy when it is there, else the system's ``bwrap``.

Whether the jail can be built is probed as the person (root is exempt from the restriction), by
building it: a failure, with the restriction's switch on, means the profile is missing or not loaded.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from paddock.vm.sharing import user_namespaces_work

PADDOCK_JAIL = Path("/usr/libexec/paddock/bwrap")
PROFILE = Path("/etc/apparmor.d/paddock-jail")
RESTRICT_SWITCH = Path("/proc/sys/kernel/apparmor_restrict_unprivileged_userns")  # Ubuntu 24.04+
CLONE_SWITCH = Path("/proc/sys/kernel/unprivileged_userns_clone")  # older Debian and Ubuntu kernels


def find_jail() -> Path | None:
    """Paddock's own copy of bubblewrap when the package installed one, else the system's."""
    if os.access(PADDOCK_JAIL, os.X_OK):
        return PADDOCK_JAIL
    found = shutil.which("bwrap")
    return Path(found) if found else None


@dataclass(frozen=True)
class JailCheck:
    ok: bool
    detail: str
    fix: str | None = None


def _switch(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def jail_check(bwrap: Path) -> JailCheck:
    """Build the jail's user namespace with ``bwrap`` as this account; when that fails, say why
    and what to do in one sentence."""
    ok, why = user_namespaces_work(bwrap)
    if ok:
        return JailCheck(True, why)
    if _switch(RESTRICT_SWITCH) == "1":
        detail = (
            f"AppArmor lets programs make user namespaces only under a profile "
            f"(kernel.apparmor_restrict_unprivileged_userns=1), and no loaded profile allows {bwrap} one: {why}"
        )
        if bwrap == PADDOCK_JAIL and PROFILE.exists():
            fix = (
                "Ask your administrator to switch on Paddock's AppArmor profile with "
                "`sudo dpkg-reconfigure paddock` (it allows Paddock's own jail only)."
            )
        else:
            fix = (
                "Ask your administrator to install Paddock's package for this release, which brings an "
                "AppArmor profile that allows Paddock's own jail only (turning the restriction off is not needed)."
            )
        return JailCheck(False, detail, fix)
    if _switch(CLONE_SWITCH) == "0":
        return JailCheck(
            False,
            f"unprivileged user namespaces are switched off (kernel.unprivileged_userns_clone=0): {why}",
            "Ask your administrator to allow them with `sudo sysctl kernel.unprivileged_userns_clone=1`.",
        )
    return JailCheck(
        False,
        f"cannot make a user namespace: {why}",
        "Ask your administrator to allow unprivileged user namespaces (the installation guide says how).",
    )
