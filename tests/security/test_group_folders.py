"""Shared group folders: in a set-group-ID folder whose group is one of the person's other groups,
what the guest creates gets the folder's group, as it would on the host, and no set-id bit but
the one a subfolder inherits; a folder Paddock cannot act in (another account's) is refused when
it is chosen, in a plain sentence.

Real: the VM, each folder-sharing daemon that runs here (``virtiofsd``), bubblewrap's user
namespace with the person's uid and primary group only, a real group the test user belongs to
(``scripts/test_user.sh`` makes ``paddock-team``). Before: every create failed with "Invalid
argument" inside the guest.
"""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import pytest

from paddock.policy import EffectivePolicy
from paddock.vm.sharing import FolderSharing
from tests.conftest import VMFactory
from tests.framework.waits import wait_until


def _team_gid() -> int:
    others = [g for g in os.getgroups() if g != os.getgid()]
    if not others:
        pytest.skip("the test user belongs to no second group (scripts/test_user.sh adds it to paddock-team)")
    return others[0]


@pytest.mark.vm
def test_files_made_in_a_set_group_id_folder_get_its_group(
    vms: VMFactory, tmp_path: Path, virtiofsd: FolderSharing
) -> None:
    team = _team_gid()
    b = vms.boot(tmp_path)
    folder = b.workspace
    os.chown(folder, -1, team)
    folder.chmod(0o2775)
    deadline = time.monotonic() + 30  # the guest's cached attributes expire within a second
    while b.sh("stat -c %g /workspace")[0].strip() == "1000":
        assert time.monotonic() < deadline, "the guest never saw the folder's new group"
        time.sleep(0.2)
    out, err, code = b.sh(
        "cd /workspace && echo hello > made.txt && mkdir sub && echo x > sub/deeper.txt && mkdir sub/inner && ls -ln"
    )
    assert code == 0, f"{out}{err}"
    for rel in ("made.txt", "sub", "sub/deeper.txt", "sub/inner"):
        st = (folder / rel).lstat()
        assert (st.st_uid, st.st_gid) == (os.getuid(), team), rel
        assert not st.st_mode & stat.S_ISUID, rel
        assert bool(st.st_mode & stat.S_ISGID) == stat.S_ISDIR(st.st_mode), rel  # subfolders inherit it
    assert (folder / "made.txt").read_text() == "hello\n"
    # Not set-group-ID: new files get the person's own primary group, as the person's programs do.
    folder.chmod(0o775)
    wait_until(lambda: b.sh("test -g /workspace")[2] == 1, what="the guest to see the folder without set-group-ID")
    out, err, code = b.sh("echo plain > /workspace/plain.txt")
    assert code == 0, f"{out}{err}"
    assert (folder / "plain.txt").stat().st_gid == os.getgid()
    # The guest still cannot set the bit itself, nor give a file a group by number.
    out, _err, _code = b.sh("cd /workspace; chmod g+s made.txt; chgrp 0 made.txt; mkdir -m 2755 own; true")
    assert not (folder / "made.txt").stat().st_mode & stat.S_ISGID
    assert (folder / "made.txt").stat().st_gid == team
    own = folder / "own"
    assert not own.exists() or own.stat().st_gid == os.getgid()
    vms.close(b)


def test_a_folder_of_another_account_is_refused_when_chosen(tmp_path: Path) -> None:
    policy = EffectivePolicy()
    theirs = Path("/tmp")  # root's: any folder the person does not own
    decision = policy.check_folder(theirs)
    assert not decision.allowed
    assert decision.reason.startswith(f"{theirs} belongs to the account root, not to you")
    assert "Invalid argument" not in decision.reason
    assert policy.check_folder(tmp_path).allowed  # the person's own
    ro = EffectivePolicy(read_only=[theirs])
    assert ro.check_folder(theirs).allowed  # read only: nothing is created there
