"""Staged fixtures, after Firecracker's suite: image built → VM booted → agent claimed.

* ``guest_image``: the built image (the test command builds it first; a
  missing image fails the run, it is never skipped).
* ``engine``: one asyncio loop on its own thread, as in the app.
* ``vms``: the VM factory every sandbox is booted through; it tracks them.
* ``booted``: a cold-booted sandbox shared by a module's tests (one boot per module);
  ``woken``: the same, woken from the saved sandbox (the app's fast start);
  ``booted_as_guest_root``: commands run as the guest's root (an attacker inside).
* ``fresh_sandbox``: a sandbox of its own, for tests that break it.

Every VM is stopped at teardown, and the session ends by checking that no
QEMU, virtiofsd or bubblewrap process of ours is left. When a test fails, the
QEMU, virtiofsd and console logs of every VM still running are copied to
``test-artifacts/<test>/``.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from paddock.core.engine import Engine
from paddock.sandbox import SNAPSHOT_ENV, Sandbox, ensure_snapshot
from paddock.vm import GuestImage, Keeper, find_image
from paddock.vm.sharing import Daemon, FolderSharing, runnable

REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = Path(os.environ.get("PADDOCK_TEST_ARTIFACTS") or REPO / "test-artifacts")
# scripts/test.sh, as root, runs the suite in two halves: "user" (everything but the package
# install, as an ordinary user) and "root" (the package install only). Unset: everything here.
ROLE = os.environ.get("PADDOCK_TEST_ROLE", "")


def pytest_configure(config: pytest.Config) -> None:
    # CPython before 3.11.5 (Debian 12 ships 3.11.2) can fail ast.parse with "AST constructor
    # recursion depth mismatch" once some earlier parse failed (cpython#106905); pytest's long
    # tracebacks parse source, so one failing test would end the whole run in an INTERNALERROR.
    # Native tracebacks do not parse source.
    if (3, 11) <= sys.version_info[:3] < (3, 11, 5) and config.option.tbstyle == "auto":
        config.option.tbstyle = "native"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if ROLE not in ("user", "root"):
        return
    keep, drop = [], []
    for item in items:
        as_root = item.get_closest_marker("package") is not None
        (keep if as_root == (ROLE == "root") else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture(scope="session", autouse=True)
def _isolated_dirs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """App data and the runtime folder of the tests never touch the user's own."""
    base = tmp_path_factory.mktemp("paddock-home")
    old = {k: os.environ.get(k) for k in ("PADDOCK_DATA_DIR", "XDG_RUNTIME_DIR", "PADDOCK_SNAPSHOTS")}
    os.environ["PADDOCK_DATA_DIR"] = str(base / "data")
    os.environ["PADDOCK_SNAPSHOTS"] = "0"  # cold boots, deterministic; tests/vm/test_snapshot.py wakes saved ones
    runtime = Path("/tmp") / f"pdk-test-{os.getpid()}"  # short: unix socket paths are limited
    runtime.mkdir(mode=0o700, exist_ok=True)
    os.environ["XDG_RUNTIME_DIR"] = str(runtime)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        shutil.rmtree(runtime, ignore_errors=True)


@pytest.fixture(scope="session")
def guest_image() -> GuestImage:
    try:
        return find_image()
    except Exception as exc:  # noqa: BLE001
        pytest.fail(f"the guest image is not built: {exc}\n(run ./build_vm.sh, or the README's test command)")


@pytest.fixture(scope="session")
def engine() -> Iterator[Engine]:
    eng = Engine("paddock-test-engine")
    yield eng
    eng.close()


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


def _make_dirs(base: Path) -> tuple[Path, Path, Path]:
    workspace = base / "workspace"
    profile = base / "profile" / ".claude"
    outside = base / "outside"
    for d in (workspace, profile, outside):
        d.mkdir(parents=True)
    (profile / "CLAUDE.md").write_text("profile instructions\n")
    (outside / "canary.txt").write_text("CANARY-OUTSIDE-WORKSPACE\n")
    return workspace, profile, outside


class VMFactory:
    """Every sandbox a test boots goes through here (after Firecracker's microvm factory): it
    is tracked while it runs, its QEMU, virtiofsd and console logs are kept when a test using
    it fails, and whatever is still running at the end of the session is stopped."""

    def __init__(self, engine: Engine, image: GuestImage) -> None:
        self.engine = engine
        self.image = image
        self.live: list[Booted] = []

    def boot(
        self, base: Path, *, guest_root: bool = False, woken: bool = False, keeper: Keeper | None = None
    ) -> Booted:
        """A sandbox on a new workspace under ``base``: booted cold, or ``woken`` from the saved
        sandbox (made first if needed)."""
        workspace, profile, outside = _make_dirs(base)
        old = os.environ.get(SNAPSHOT_ENV)
        if woken:
            self.engine.run(ensure_snapshot(self.image), timeout=300)
            os.environ[SNAPSHOT_ENV] = "1"
        try:
            sandbox = self.engine.run(
                Sandbox.boot(workspace, image=self.image, profile=profile, guest_root=guest_root, keeper=keeper),
                timeout=180,
            )
        finally:
            if woken:
                os.environ[SNAPSHOT_ENV] = old or "0"
        b = Booted(sandbox, workspace, profile, outside, self.engine)
        self.live.append(b)
        if guest_root:
            out, _, _ = b.sh("id -u")
            assert out.strip() == "0", f"the guest-root sandbox runs commands as uid {out}"
        if woken:
            assert sandbox.timings.restored, "the saved sandbox was not used"
        return b

    def close(self, b: Booted) -> None:
        if b in self.live:
            self.live.remove(b)
        self.engine.run(b.sandbox.close(), timeout=60)

    def keep_logs(self, dest: Path) -> None:
        """Copy every running VM's logs (QEMU, each virtiofsd, the guest console) to ``dest``."""
        for b in self.live:
            vm = b.sandbox.vm
            folder = dest / f"vm-{vm.id}"
            folder.mkdir(parents=True, exist_ok=True)
            if vm.run_dir is not None and vm.run_dir.is_dir():
                for log in vm.run_dir.glob("*.log"):
                    shutil.copyfile(log, folder / log.name)
            (folder / "console-tail.log").write_text(vm.console_tail(200_000))

    def close_all(self) -> None:
        for b in list(self.live):
            self.close(b)


@pytest.fixture(scope="session")
def vms(engine: Engine, guest_image: GuestImage) -> Iterator[VMFactory]:
    factory = VMFactory(engine, guest_image)
    yield factory
    factory.close_all()


def _failed(request: pytest.FixtureRequest) -> bool:
    rep = getattr(request.node, "rep_call", None)
    return rep is not None and bool(rep.failed)


@pytest.fixture(autouse=True)
def _logs_of_a_failed_test(request: pytest.FixtureRequest) -> Iterator[None]:
    """When a test fails, every VM still running keeps its logs in test-artifacts/<test>/."""
    yield
    if _failed(request) and "vms" in request.fixturenames:
        factory = request.getfixturevalue("vms")
        assert isinstance(factory, VMFactory)
        factory.keep_logs(ARTIFACTS / request.node.name)


@pytest.fixture(scope="module")
def booted(vms: VMFactory, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Booted]:
    """One cold-booted sandbox for a module's tests."""
    b = vms.boot(tmp_path_factory.mktemp("booted"))
    yield b
    vms.close(b)


@pytest.fixture(scope="module")
def woken(vms: VMFactory, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Booted]:
    """One sandbox woken from the saved sandbox (the stage the app uses) for a module's tests."""
    b = vms.boot(tmp_path_factory.mktemp("woken"), woken=True)
    yield b
    vms.close(b)


@pytest.fixture(scope="module")
def booted_as_guest_root(vms: VMFactory, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Booted]:
    """A sandbox whose commands run as the guest's root: an attacker who escalated inside the
    guest. The host's fence (shares, ownership, network) must hold against it too."""
    b = vms.boot(tmp_path_factory.mktemp("booted-root"), guest_root=True)
    yield b
    vms.close(b)


@pytest.fixture(params=[Daemon.QEMU_C, Daemon.RUST], ids=["c-virtiofsd", "rust-virtiofsd"])
def virtiofsd(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> FolderSharing:
    """The test runs once with each folder-sharing daemon that is installed and runs here (Debian
    12: QEMU's C one; Debian 13 and Ubuntu: the Rust one), and is skipped, saying so, for the other."""
    bwrap = shutil.which("bwrap")
    found = [s for s in runnable(Path(bwrap)) if s.daemon is request.param] if bwrap else []
    if not found:
        name = "the Rust virtiofsd" if request.param is Daemon.RUST else "QEMU's C virtiofsd"
        pytest.skip(f"{name} is not installed or does not run here (Debian 12 has only the C one, 13 the Rust one)")
    monkeypatch.setenv("PADDOCK_VIRTIOFSD", str(found[0].binary))
    return found[0]


@pytest.fixture
def fresh_sandbox(request: pytest.FixtureRequest, vms: VMFactory, tmp_path: Path) -> Iterator[Booted]:
    """A sandbox of the test's own, for tests that break it."""
    b = vms.boot(tmp_path, guest_root=request.node.get_closest_marker("guest_root") is not None)
    yield b
    if _failed(request):  # this fixture ends before the autouse one: keep its logs now
        vms.keep_logs(ARTIFACTS / request.node.name)
    vms.close(b)


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    rep = outcome.get_result()  # type: ignore[attr-defined]
    setattr(item, f"rep_{rep.when}", rep)


def live_processes(names: tuple[str, ...] = ("qemu-system", "virtiofsd", "bwrap")) -> list[str]:
    """This test run's helper processes still running (zombies excluded: they hold nothing)."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as fh:
                state = fh.read().rsplit(")", 1)[1].split()[0]
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if state != "Z" and any(n in cmdline for n in names) and f"pdk-test-{os.getpid()}/" in cmdline:
            found.append(f"{pid}: {cmdline[:200]}")
    return found


@pytest.fixture(scope="session", autouse=True)
def _no_leftover_processes() -> Iterator[None]:
    yield
    left = live_processes()
    assert not left, f"processes left behind after the tests: {left}"
