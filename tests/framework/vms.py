"""Every VM a test boots, however it was booted, after Firecracker's microvm factory.

Two ways in, one record:

* ``VMFactory.boot`` boots a sandbox for a fixture or a test (``Booted``: the sandbox, its
  folders, and ``run``/``sh`` helpers).
* Everything else (a session, the window, the warm pool, ``paddock`` run as a subprocess, a
  test's own ``VirtualMachine``) is seen through the runtime folder: the suite sets
  ``PADDOCK_KEEP_RUN_DIR``, so each VM's run folder (``<runtime>/paddock/vm-<id>``: the QEMU,
  virtiofsd and console logs) stays after it stops, and ``RunDirs`` takes it from there.

After each test, ``RunDirs.after_teardown`` kills the QEMU, virtiofsd and bubblewrap processes
of any VM the test's body started and left running, and, when the test failed, copies the logs
of every VM of the test (and of those still running for its module) to
``PADDOCK_TEST_ARTIFACTS/<test>/vm-<id>/``.

The VMs a sandbox host boots for ``tests/remote`` run as the server's accounts, in their own
runtime folders (mode 0700; scripts/remote_test_host.sh gives each test server's sessions a
temporary folder of their own and ``PADDOCK_KEEP_RUN_DIR``): ``copy_server_logs`` reads them
over the accounts' SFTP (the access tests/remote already has), never through rights of the test
user on the accounts' files.
"""

from __future__ import annotations

import os
import shutil
import signal
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from paddock.core.engine import Engine
from paddock.sandbox import SNAPSHOT_ENV, Sandbox, ensure_snapshot
from paddock.vm import GuestImage, Keeper

HELPERS = ("qemu-system", "virtiofsd", "bwrap")


@dataclass
class Booted:
    sandbox: Sandbox
    workspace: Path
    profile: Path
    outside: Path  # a host folder beside the workspace that the guest must never see
    engine: Engine

    def run(self, argv: list[str], **kw: object) -> tuple[str, str, int]:
        out, err, result = self.engine.run(self.sandbox.guest.run(argv, **kw), timeout=120)  # type: ignore[arg-type]
        return out.decode(errors="replace"), err.decode(errors="replace"), result.shell_code

    def sh(self, script: str, **kw: object) -> tuple[str, str, int]:
        return self.run(["sh", "-c", script], **kw)


def make_dirs(base: Path) -> tuple[Path, Path, Path]:
    """A workspace, an agent profile and a folder outside both (with a canary in it)."""
    workspace = base / "workspace"
    profile = base / "profile" / ".claude"
    outside = base / "outside"
    for d in (workspace, profile, outside):
        d.mkdir(parents=True)
    (profile / "CLAUDE.md").write_text("profile instructions\n")
    (outside / "canary.txt").write_text("CANARY-OUTSIDE-WORKSPACE\n")
    return workspace, profile, outside


class VMFactory:
    """Boots sandboxes for fixtures and tests; stops whatever it booted that is still running
    at the end of the session. Logs are kept by ``RunDirs`` for every VM alike."""

    def __init__(self, engine: Engine, image: GuestImage) -> None:
        self.engine = engine
        self.image = image
        self.live: list[Booted] = []

    def boot(
        self,
        base: Path,
        *,
        guest_root: bool = False,
        woken: bool = True,
        keeper: Keeper | None = None,
        strict: bool = True,
    ) -> Booted:
        """A sandbox on a new workspace under ``base``: ``woken`` from the saved sandbox (made
        first if needed; the app's usual start, and the default), or booted cold. A guest-root
        sandbox is always booted cold (``Sandbox.boot`` says so). ``strict``: the stage asked
        for is the one booted (else a wake that failed may fall back to a cold boot, as in the
        app)."""
        workspace, profile, outside = make_dirs(base)
        woken = woken and not guest_root
        old = os.environ.get(SNAPSHOT_ENV)
        if woken:
            self.engine.run(ensure_snapshot(self.image), timeout=300)
        os.environ[SNAPSHOT_ENV] = "1" if woken else "0"
        try:
            sandbox = self.engine.run(
                Sandbox.boot(workspace, image=self.image, profile=profile, guest_root=guest_root, keeper=keeper),
                timeout=180,
            )
        finally:
            if old is None:
                os.environ.pop(SNAPSHOT_ENV, None)
            else:
                os.environ[SNAPSHOT_ENV] = old
        b = Booted(sandbox, workspace, profile, outside, self.engine)
        self.live.append(b)
        if guest_root:
            out, _, _ = b.sh("id -u")
            assert out.strip() == "0", f"the guest-root sandbox runs commands as uid {out}"
        if strict:
            asked, got = ("woken" if w else "cold" for w in (woken, sandbox.timings.restored))
            assert asked == got, f"asked for a {asked} sandbox, got a {got} one"
        return b

    def close(self, b: Booted) -> None:
        if b in self.live:
            self.live.remove(b)
        self.engine.run(b.sandbox.close(), timeout=60)

    def keep_logs(self, dest: Path) -> None:
        """Copy the logs of every VM this factory booted that still runs to ``dest``."""
        for b in self.live:
            if b.sandbox.vm.run_dir is not None:
                copy_logs(b.sandbox.vm.run_dir, dest)

    def close_all(self) -> None:
        for b in list(self.live):
            self.close(b)


def copy_logs(run_dir: Path, dest: Path) -> None:
    """A VM's logs (QEMU, each virtiofsd, the guest console) into ``dest/<vm-id>/``."""
    folder = dest / run_dir.name
    folder.mkdir(parents=True, exist_ok=True)
    for log in run_dir.glob("*.log"):
        try:
            shutil.copyfile(log, folder / log.name)
        except OSError:
            continue


def _processes() -> list[tuple[int, str]]:
    """(pid, command line) of every process that is not a zombie."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as fh:
                state = fh.read().rsplit(")", 1)[1].split()[0]
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, IndexError):
            continue
        if state != "Z":
            found.append((int(pid), cmdline))
    return found


def live_processes(marker: str | None = None, names: tuple[str, ...] = HELPERS) -> list[str]:
    """This test run's helper processes still running (zombies excluded: they hold nothing).
    ``marker``: a path their command line names (default: this run's runtime folder)."""
    marker = marker or f"pdk-test-{os.getpid()}/"
    return [f"{pid}: {cmd[:200]}" for pid, cmd in _processes() if any(n in cmd for n in names) and marker in cmd]


@dataclass
class RunDirs:
    """The run folders of the VMs under one runtime folder: which are new, which still run.
    Run folders stay until the session ends (a few kilobytes of logs each): removing one that a
    VM starting in the background has just made would break it."""

    root: Path  # <runtime>/paddock
    artifacts: Path
    at_setup: set[str] = field(default_factory=set)  # run folders before the test's fixtures
    at_call: set[str] = field(default_factory=set)  # run folders before the test's own body
    killed: list[str] = field(default_factory=list)  # "test: vm-id" of VMs left running and killed

    def _dirs(self) -> dict[str, Path]:
        return {p.name: p for p in self.root.glob("vm-*") if p.is_dir()} if self.root.is_dir() else {}

    def running(self) -> dict[str, list[int]]:
        """Run folder name → pids of the helper processes that name it."""
        return running_under(self.root)

    def before_setup(self) -> None:
        self.at_setup = set(self._dirs())

    def before_call(self) -> None:
        self.at_call = set(self._dirs())

    def after_teardown(self, name: str, *, failed: bool) -> None:
        """Kill the VMs the test's body started and left running (a module or session fixture's
        VM is started before the body and lives on), and keep the logs of the test's VMs and of
        every VM still running when the test failed."""
        dirs, running = self._dirs(), self.running()
        for vm in sorted(set(dirs) - self.at_call):
            pids = running.pop(vm, [])
            _kill(pids)
            if pids:
                self.killed.append(f"{name}: {vm}")
        if failed:
            for vm, path in sorted(dirs.items()):
                if vm not in self.at_setup or vm in running:
                    copy_logs(path, self.artifacts / name)

    def kill_all(self) -> list[str]:
        """Kill every helper process still running for these run folders; which VMs they were."""
        running = self.running()
        for pids in running.values():
            _kill(pids)
        return sorted(running)


def running_under(root: Path | str) -> dict[str, list[int]]:
    """Run folder name (under ``root``) → pids of the helper processes that name it (any user's:
    a command line is readable by all)."""
    out: dict[str, list[int]] = {}
    prefix = f"{root}/"
    for pid, cmd in _processes():
        if prefix in cmd and any(n in cmd for n in HELPERS):
            name = cmd.split(prefix, 1)[1].split("/", 1)[0]
            out.setdefault(name, []).append(pid)
    return out


class _Attrs(Protocol):  # what paramiko's SFTPAttributes hold
    filename: str
    st_mode: int | None
    st_mtime: int | float | None


class Reader(Protocol):  # paramiko.SFTPClient, as the account whose files they are
    def listdir_attr(self, path: str = ...) -> list[_Attrs]: ...
    def get(self, remotepath: str, localpath: str) -> object: ...


def copy_server_logs(files: Reader, root: str, dest: Path, *, since: float) -> list[str]:
    """The logs of the VMs under another account's runtime folder ``root``, read through
    ``files`` (its SFTP): every run folder touched (made, logged to, stopped) since ``since``
    (seconds since the epoch), or whose QEMU, virtiofsd or bubblewrap still runs, into
    ``dest/<vm-id>/``. Returns the run folders copied."""
    try:
        entries = files.listdir_attr(root)
    except OSError:  # no VM ran there yet
        return []
    running = running_under(root)
    kept = []
    for entry in sorted(entries, key=lambda e: e.filename):
        if not entry.filename.startswith("vm-") or not stat.S_ISDIR(entry.st_mode or 0):
            continue
        folder = f"{root}/{entry.filename}"
        try:
            logs = [a for a in files.listdir_attr(folder) if a.filename.endswith(".log")]
        except OSError:
            continue
        touched = max([entry.st_mtime or 0, *(a.st_mtime or 0 for a in logs)])
        if touched < int(since) and entry.filename not in running:  # SFTP's times are whole seconds
            continue
        out = dest / entry.filename
        out.mkdir(parents=True, exist_ok=True)
        for log in logs:
            try:
                files.get(f"{folder}/{log.filename}", str(out / log.filename))
            except OSError:
                continue
        kept.append(entry.filename)
    return kept


def _kill(pids: list[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            continue
