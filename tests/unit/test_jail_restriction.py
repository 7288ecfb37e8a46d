"""`paddock doctor` on a computer that forbids the jail's user namespace (Ubuntu 24.04 and later).

Real: bubblewrap, run as the person, really fails to make its user namespace: the doctor runs in
a child process whose seccomp filter refuses every namespace-making call with EPERM, as a kernel
does that forbids it. The one stand-in: this kernel has no AppArmor, so the restriction's switch
(``/proc/sys/kernel/apparmor_restrict_unprivileged_userns``) is a file of the test's, pointed at
in-process in the child.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

CHILD = r"""
import asyncio, errno, json, sys
from pathlib import Path
import pyseccomp
import paddock.vm.jail as jail
jail.RESTRICT_SWITCH = Path(sys.argv[1])
jail.CLONE_SWITCH = Path(sys.argv[2])
if sys.argv[3] == "forbid":
    NEWUSER = 0x10000000  # CLONE_NEWUSER
    flt = pyseccomp.SyscallFilter(pyseccomp.ALLOW)
    for call in ("unshare", "clone"):
        flt.add_rule(pyseccomp.ERRNO(errno.EPERM), call, pyseccomp.Arg(0, pyseccomp.MASKED_EQ, NEWUSER, NEWUSER))
    flt.add_rule(pyseccomp.ERRNO(errno.ENOSYS), "clone3")  # its flags are out of reach: back to clone
    flt.load()
from paddock.session.doctor import run_checks
checks = asyncio.run(run_checks(probe=False))
print(json.dumps([[c.name, c.ok, c.detail, c.fix] for c in checks]))
"""

pytestmark = pytest.mark.skipif(os.geteuid() == 0, reason="root is exempt: doctor probes as the person")


def _doctor(tmp_path: Path, restrict: str, clone: str, forbid: bool) -> dict[str, tuple[bool, str, str | None]]:
    (tmp_path / "restrict").write_text(restrict)
    (tmp_path / "clone").write_text(clone)
    argv = [
        sys.executable,
        "-c",
        CHILD,
        str(tmp_path / "restrict"),
        str(tmp_path / "clone"),
        "forbid" if forbid else "allow",
    ]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    return {name: (ok, detail, fix) for name, ok, detail, fix in json.loads(proc.stdout.splitlines()[-1])}


def test_the_apparmor_restriction_is_named_with_what_to_do(tmp_path: Path) -> None:
    checks = _doctor(tmp_path, restrict="1\n", clone="1\n", forbid=True)
    ok, detail, fix = checks["Folder sharing (virtiofsd)"]
    assert not ok
    assert "apparmor_restrict_unprivileged_userns=1" in detail
    # One sentence, saying what to do: install the package (its profile), not switch the restriction off.
    assert fix is not None and fix.count(". ") == 0 and fix.endswith(".")
    assert "Paddock's package" in fix and "AppArmor profile" in fix
    assert "Host tools" not in checks, "the restriction must not be reported as a missing program"


def test_other_refusals_are_not_blamed_on_apparmor(tmp_path: Path) -> None:
    checks = _doctor(tmp_path, restrict="0\n", clone="0\n", forbid=True)
    ok, detail, fix = checks["Folder sharing (virtiofsd)"]
    assert not ok and "AppArmor" not in detail and fix is not None and "unprivileged_userns_clone=1" in fix


def test_where_the_jail_works_the_switch_changes_nothing(tmp_path: Path) -> None:
    checks = _doctor(tmp_path, restrict="1\n", clone="1\n", forbid=False)
    ok, detail, fix = checks["Folder sharing (virtiofsd)"]
    assert ok and "no root needed" in detail and fix is None
