"""Runs as the person: no session process is root, and what the guest leaves in the folder is
the person's own, with no set-id bit, no device node and no link to a file outside it.

Real: the VM under QEMU, virtiofsd in its user namespace with its seccomp filter, bubblewrap.
The guest attacks both as its ordinary user (what every command runs as) and as its root (an
attacker who escalated inside the guest, ``booted_as_guest_root``). Guest root may change the
person's files but not create any: only the person's uid exists in virtiofsd's namespace, and
QEMU 7.2's daemon takes on the creator's uid. The suite itself runs as an ordinary user
(scripts/test.sh hands it to one when started as root).
"""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

from paddock.vm import HostTools
from paddock.vm.sharing import seccomp_fd
from tests.conftest import Booted

pytestmark = pytest.mark.vm

ATTACKS = (
    "echo plain > plain.txt; mkdir -p made/deeper; echo x > made/deeper/x.txt; "  # guest root: refused
    "cp plain.txt setuid; chmod u+s setuid; chmod 4755 setuid; "
    "cp plain.txt setgid; chmod g+s setgid; chmod 2755 setgid; "
    "mkdir -m 2755 sgid-dir; mkdir sgid-dir2; chmod g+s sgid-dir2; "
    "python3 -c \"import os; os.close(os.open('born-setuid', os.O_CREAT | os.O_WRONLY, 0o6755))\"; "
    "install -m 4755 plain.txt installed-setuid; "
    "mknod char-dev c 1 3; mknod block-dev b 7 0; "
    "cp plain.txt rootowned; chown 0:0 rootowned; chown 1234:1234 plain.txt; chown :0 made; "
    "ln /etc/passwd hard-passwd; ln /etc/shadow hard-shadow; "
    "ln -s /etc/passwd soft-passwd; "
    "true"
)


def _uid_of(pid: int) -> tuple[int, int]:
    """(real uid, effective uid) of a host process."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            real, effective = line.split()[1:3]
            return int(real), int(effective)
    raise AssertionError(f"no Uid line for {pid}")


def _descendants(pids: list[int]) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    seen: set[int] = set()
    todo = list(pids)
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        todo.extend(children.get(pid, []))
    return seen


def _check_folder(folder: Path) -> list[str]:
    """Everything in the folder that the person would not have made themselves."""
    bad = []
    me = (os.getuid(), os.getgid())
    for path in [folder, *folder.rglob("*")]:
        st = path.lstat()
        name = str(path.relative_to(folder))
        if st.st_mode & (stat.S_ISUID | stat.S_ISGID):
            bad.append(f"{name}: set-id bits {oct(st.st_mode)}")
        if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
            bad.append(f"{name}: a device node")
        if (st.st_uid, st.st_gid) != me:
            bad.append(f"{name}: owned by {st.st_uid}:{st.st_gid}, not {me[0]}:{me[1]}")
        if stat.S_ISREG(st.st_mode) and st.st_nlink != 1:
            bad.append(f"{name}: {st.st_nlink} hard links")
    return bad


def test_no_process_of_a_session_runs_as_root(booted: Booted) -> None:
    assert os.geteuid() != 0, "the suite must run as an ordinary user (scripts/test.sh arranges it)"
    pids = _descendants([os.getpid(), *booted.sandbox.vm.pids.values()])
    assert len(pids) >= 4, pids  # this process, QEMU, and a jailed virtiofsd per share
    rooted = {pid: _uid_of(pid) for pid in pids if 0 in _uid_of(pid)}
    assert not rooted, f"processes of the session running as root: {rooted}"


def test_what_the_guest_writes_belongs_to_the_person(booted: Booted) -> None:
    out, _, code = booted.sh("echo hi > mine.txt; mkdir -p sub; echo x > sub/y; id -u")
    assert code == 0 and out.strip() == "1000"  # the guest's ordinary user, never its root
    booted.engine.run(booted.sandbox.guest.write_file("via-api.txt", b"api", mode=0o6755))
    for name in ("mine.txt", "sub", "sub/y", "via-api.txt"):
        st = (booted.workspace / name).lstat()
        assert (st.st_uid, st.st_gid) == (os.getuid(), os.getgid()), name
    assert not (booted.workspace / "via-api.txt").stat().st_mode & 0o7000


@pytest.mark.parametrize("who", ["agent", "root"])
def test_the_guest_leaves_no_set_id_file_device_or_foreign_owner(
    who: str, booted: Booted, booted_as_guest_root: Booted
) -> None:
    b = booted if who == "agent" else booted_as_guest_root
    folder = b.workspace / f"attack-{who}"
    folder.mkdir()
    for name in ("plain.txt", "setuid", "setgid", "rootowned"):  # the person's files, to attack
        (folder / name).write_text("mine\n")
    (folder / "made").mkdir()
    b.sh(f"cd {folder.name} && {ATTACKS}")
    # The guest could write (so the attacks ran with real access)...
    assert (folder / "plain.txt").read_text() == "plain\n", "the guest could not write at all"
    # ...and left nothing that is not the person's own, plain file or folder.
    assert _check_folder(b.workspace) == []
    passwd = Path("/etc/passwd").stat()
    assert passwd.st_nlink == 1 and (b.outside / "canary.txt").stat().st_nlink == 1


def test_the_folder_helpers_jail_refuses_what_a_compromised_helper_would_try(tmp_path: Path) -> None:
    """The jail virtiofsd runs in, with a shell in its place: every capability the daemon holds
    (all of them, in its own user namespace) and still no set-id bit, no device node, no other
    owner, and nothing of the host but /usr."""
    tools = HostTools.find()
    share, outside, run_dir = tmp_path / "share", tmp_path / "outside", tmp_path / "run"
    for d in (share, outside, run_dir):
        d.mkdir()
    mount_point = run_dir / "share-workspace"
    mount_point.mkdir()
    (outside / "secret.txt").write_text("host secret\n")
    (share / "f").write_text("f\n")
    script = (
        'cd "$0"; '
        "chmod u+s f; chmod g+s f; chown 0:0 f; chown 1234 f; mknod dev c 1 3; "
        "python3 -c \"import os; os.close(os.open('s', os.O_CREAT | os.O_WRONLY, 0o4755))\"; "
        "python3 -c \"import os; os.mkdir('d', 0o2755)\"; "
        f"cat {outside}/secret.txt; ls {Path.home()} /etc /root; "
        "cat /proc/self/status | grep -E '^(Uid|CapEff)'"
    )
    fd = seccomp_fd()
    try:
        argv = tools.sharing.jail_argv(share, mount_point, run_dir, read_only=False, seccomp_fd=fd)
        proc = subprocess.run(
            [*argv, "/bin/sh", "-c", script, str(mount_point)],
            capture_output=True, text=True, timeout=60, pass_fds=(fd,),
        )  # fmt: skip
    finally:
        os.close(fd)
    caps = next(line for line in proc.stdout.splitlines() if line.startswith("CapEff:"))
    assert int(caps.split()[1], 16) & (1 << 21), f"the jail should hold CAP_SYS_ADMIN in its namespace: {caps}"
    assert "Uid:\t1000\t1000" in proc.stdout  # the person is the guest's user there; nobody else is mapped
    assert "host secret" not in proc.stdout
    assert _check_folder(share) == [], proc.stderr
    assert sorted(p.name for p in share.iterdir()) == ["f"], proc.stderr
