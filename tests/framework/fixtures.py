"""The suite's fixtures and hooks (``tests/conftest.py`` imports them all).

Staged, after Firecracker's suite (image built → sandbox booted or woken → agent claimed):

* ``guest_image``: the built image (a missing image fails the run, it is never skipped).
* ``engine``: one asyncio loop on its own thread, as in the app.
* ``vms``: the factory fixtures and tests boot sandboxes through (``tests.framework.vms``).
* ``booted``: the default stage, shared by a module's tests: a sandbox WOKEN from the saved
  sandbox, as people almost always get one (``PADDOCK_TEST_STAGE=cold`` boots every stage cold
  instead, for comparing or debugging); ``woken``: the same, always woken; ``cold``: always
  booted cold; ``booted_as_guest_root``: commands run as the guest's root (an attacker inside;
  always cold).
* ``uvm_any``: a sandbox of the test's own, once woken and once cold (Firecracker's
  ``uvm_any``): for tests where the lifecycle matters. ``start``: just the stage's name
  (``"woken"``/``"cold"``), with ``PADDOCK_SNAPSHOTS`` set to match, for tests that boot
  through the product's own paths.
* ``fresh_sandbox``: a sandbox of the test's own, for tests that break it (woken; cold with
  ``@pytest.mark.guest_root``).

Every VM, however it was booted (a fixture, a session, the window, a ``paddock`` subprocess),
leaves its logs in ``PADDOCK_TEST_ARTIFACTS/<test>/vm-<id>/`` when its test fails, and one
the test's body left running is killed after the test (``tests.framework.vms.RunDirs``). The
session ends by checking that no QEMU, virtiofsd or bubblewrap process of ours is left (any that
is fails the run, named).
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from paddock.core.engine import Engine
from paddock.core.locks import file_lock
from paddock.core.paths import cache_dir
from paddock.sandbox import SNAPSHOT_ENV, ensure_snapshot
from paddock.vm import GuestImage, find_image
from paddock.vm.sharing import Daemon, FolderSharing, runnable
from tests.framework import bus, hangs, parallel
from tests.framework.skips import SkipGate
from tests.framework.vms import Booted, RunDirs, VMFactory, live_processes

REPO = Path(__file__).resolve().parent.parent.parent
ARTIFACTS = Path(os.environ.get("PADDOCK_TEST_ARTIFACTS") or REPO / "test-artifacts")
# scripts/test.sh, as root, runs the suite in two halves: "user" (everything but what must run
# as root, as an ordinary user) and "root" (the package install, and tests marked ``as_root``).
# Unset: everything here.
ROLE = os.environ.get("PADDOCK_TEST_ROLE", "")
# "cold": every stage boots cold (the suite before woken sandboxes were the default).
COLD_ONLY = os.environ.get("PADDOCK_TEST_STAGE", "") == "cold"
RUNTIME = Path("/tmp") / f"pdk-test-{os.getpid()}"  # short: unix socket paths are limited (one per worker)
_run_dirs = RunDirs(RUNTIME / "paddock", ARTIFACTS)

# Everything conftest.py brings in: the fixtures and hooks (pytest finds them by name).
__all__ = [
    "ARTIFACTS",
    "REPO",
    "ROLE",
    "STAGES",
    "_isolated_dirs",
    "_saved_sandbox",
    "booted",
    "booted_any",
    "booted_as_guest_root",
    "cold",
    "engine",
    "fresh_sandbox",
    "guest_image",
    "pytest_collection_modifyitems",
    "pytest_configure",
    "pytest_runtest_call",
    "pytest_runtest_makereport",
    "pytest_runtest_setup",
    "pytest_runtest_teardown",
    "pytest_sessionfinish",
    "pytest_terminal_summary",
    "pytest_unconfigure",
    "start",
    "uvm_any",
    "virtiofsd",
    "vms",
    "woken",
]


def pytest_configure(config: pytest.Config) -> None:
    # CPython before 3.11.5 (Debian 12 ships 3.11.2) can fail ast.parse with "AST constructor
    # recursion depth mismatch" once some earlier parse failed (cpython#106905); pytest's long
    # tracebacks parse source, so one failing test would end the whole run in an INTERNALERROR.
    # Native tracebacks do not parse source.
    if (3, 11) <= sys.version_info[:3] < (3, 11, 5) and config.option.tbstyle == "auto":
        config.option.tbstyle = "native"
    if not config.pluginmanager.has_plugin("paddock-skip-gate"):
        config.pluginmanager.register(SkipGate(), "paddock-skip-gate")
    if config.pluginmanager.has_plugin("xdist") and not config.pluginmanager.has_plugin("paddock-controller"):
        config.pluginmanager.register(_Controller(), "paddock-controller")
    global _bus
    if parallel.worker(config) and _bus is None:  # a worker of a parallel run: a bus and keyring of its own
        _bus = bus.start()


_bus: bus.PrivateBus | None = None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if ROLE not in ("user", "root"):
        return
    keep, drop = [], []
    for item in items:
        as_root = item.get_closest_marker("package") is not None or item.get_closest_marker("as_root") is not None
        (keep if as_root == (ROLE == "root") else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture(scope="session", autouse=True)
def _isolated_dirs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """App data and the runtime folder of the tests never touch the user's own."""
    base = tmp_path_factory.mktemp("paddock-home")
    keys = ("PADDOCK_DATA_DIR", "XDG_RUNTIME_DIR", SNAPSHOT_ENV, "PADDOCK_KEEP_RUN_DIR")
    old = {k: os.environ.get(k) for k in keys}
    os.environ["PADDOCK_DATA_DIR"] = str(base / "data")
    # Woken from the saved sandbox, as people get one; tests of the cold path ask for it.
    os.environ[SNAPSHOT_ENV] = "0" if COLD_ONLY else "1"
    # Every VM's run folder (its logs) stays after it stops, for RunDirs to keep on a failure.
    os.environ["PADDOCK_KEEP_RUN_DIR"] = "1"
    RUNTIME.mkdir(mode=0o700, exist_ok=True)
    os.environ["XDG_RUNTIME_DIR"] = str(RUNTIME)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        # The runtime folder goes in pytest_unconfigure: the last test's VM logs are kept after this.


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(RUNTIME, ignore_errors=True)
    global _bus
    if _bus is not None:
        _bus.stop()
        _bus = None


@pytest.fixture(scope="session")
def guest_image() -> GuestImage:
    try:
        return find_image()
    except Exception as exc:  # noqa: BLE001
        pytest.fail(f"the guest image is not built: {exc}\n(run ./build_vm.sh, or the README's test command)")


_engines: list[Engine] = []  # the run's engine loops: what each waits on is reported at a timeout


@pytest.fixture(scope="session")
def engine() -> Iterator[Engine]:
    eng = Engine("paddock-test-engine")
    _engines.append(eng)
    yield eng
    _engines.remove(eng)
    eng.close()


@pytest.fixture(scope="session", autouse=True)
def _saved_sandbox(request: pytest.FixtureRequest) -> None:
    """When the run boots VMs, the saved sandbox exists before the first test, so every boot,
    by whatever path (a session, the window, a ``paddock`` subprocess), wakes as the app's do."""
    if COLD_ONLY or os.geteuid() == 0 or not any(item.get_closest_marker("vm") for item in request.session.items):
        return  # (root: the package tests boot only inside their clean root, as its user)
    image = request.getfixturevalue("guest_image")
    # One maker at a time (parallel workers, other runs of this user): the others then find it made.
    with file_lock(cache_dir() / "saved-sandbox.lock"):
        request.getfixturevalue("engine").run(ensure_snapshot(image), timeout=600)


@pytest.fixture(scope="session")
def vms(engine: Engine, guest_image: GuestImage) -> Iterator[VMFactory]:
    factory = VMFactory(engine, guest_image)
    yield factory
    factory.close_all()


def _failed(item: pytest.Item) -> bool:
    return any(getattr(getattr(item, f"rep_{when}", None), "failed", False) for when in ("setup", "call"))


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    rep = outcome.get_result()  # type: ignore[attr-defined]
    setattr(item, f"rep_{rep.when}", rep)
    if rep.failed and "Timeout" in str(rep.longrepr):  # pytest-timeout: which await never ended
        for eng in _engines:
            rep.sections.append(("engine tasks at the timeout", hangs.describe(eng.loop)))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    _run_dirs.before_setup()
    yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    _run_dirs.before_call()
    yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    yield  # after every fixture of the test has finished
    _run_dirs.after_teardown(parallel.folder_name(item.nodeid), failed=_failed(item))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _run_dirs.killed:
        terminalreporter.section("VMs a test left running (killed after it)", yellow=True)
        for line in _run_dirs.killed:
            terminalreporter.write_line(line)
    if _left_behind:
        terminalreporter.section("processes left behind after the tests (killed; the run fails)", red=True)
        for line in _left_behind:
            terminalreporter.write_line(line)


def _stage(vms: VMFactory, base: Path, *, woken: bool, guest_root: bool = False) -> Booted:
    """The default stage: a wake that fails falls back to a cold boot, as in the app."""
    return vms.boot(base, woken=woken and not COLD_ONLY, guest_root=guest_root, strict=False)


@pytest.fixture(scope="module")
def booted(vms: VMFactory, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Booted]:
    """The default stage for a module's tests: woken, as the app starts a sandbox."""
    b = _stage(vms, tmp_path_factory.mktemp("booted"), woken=True)
    yield b
    vms.close(b)


@pytest.fixture(scope="module")
def woken(vms: VMFactory, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Booted]:
    """One sandbox woken from the saved sandbox (the stage the app uses) for a module's tests."""
    b = vms.boot(tmp_path_factory.mktemp("woken"), woken=True)
    yield b
    vms.close(b)


@pytest.fixture(scope="module")
def cold(vms: VMFactory, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Booted]:
    """One cold-booted sandbox (the first start after an upgrade) for a module's tests."""
    b = vms.boot(tmp_path_factory.mktemp("cold"), woken=False)
    yield b
    vms.close(b)


@pytest.fixture(scope="module")
def booted_as_guest_root(vms: VMFactory, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Booted]:
    """A sandbox whose commands run as the guest's root: an attacker who escalated inside the
    guest. The host's fence (shares, ownership, network) must hold against it too."""
    b = vms.boot(tmp_path_factory.mktemp("booted-root"), guest_root=True)
    yield b
    vms.close(b)


STAGES = ["woken", "cold"]


@pytest.fixture(scope="module", params=STAGES)
def booted_any(
    request: pytest.FixtureRequest, vms: VMFactory, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Booted]:
    """``booted``, once woken and once cold, for a module whose tests exercise the sandbox's
    lifecycle (a module takes it as its ``booted`` with ``booted = booted_any``)."""
    stage = str(request.param)
    b = vms.boot(tmp_path_factory.mktemp(f"booted-{stage}"), woken=stage == "woken")
    yield b
    vms.close(b)


@pytest.fixture(params=STAGES)
def start(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """How the test's sandboxes start, once each way: ``PADDOCK_SNAPSHOTS`` set to match."""
    stage = str(request.param)
    monkeypatch.setenv(SNAPSHOT_ENV, "1" if stage == "woken" else "0")
    return stage


@pytest.fixture
def uvm_any(start: str, vms: VMFactory, tmp_path: Path) -> Iterator[Booted]:
    """A sandbox of the test's own, once woken and once booted cold."""
    b = vms.boot(tmp_path, woken=start == "woken")
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
    """A sandbox of the test's own, for tests that break it: woken (cold for a guest-root one)."""
    guest_root = request.node.get_closest_marker("guest_root") is not None
    b = _stage(vms, tmp_path, woken=True, guest_root=guest_root)
    yield b
    vms.close(b)


_left_behind: list[str] = []


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """After the last test's teardown: no QEMU, virtiofsd or bubblewrap process of ours is left
    (any that is, is killed, named, and fails the run)."""
    _left_behind.extend(live_processes(str(RUNTIME) + "/"))
    _run_dirs.kill_all()
    if parallel.worker(session.config):  # the controller reports them, and fails the run
        parallel.send(session.config, killed=_run_dirs.killed, left_behind=_left_behind)
    if _left_behind and exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


class _Controller:
    """The controller of a parallel run (pytest-xdist): what each worker killed and found left
    behind is reported with the run's, and fails it likewise."""

    @pytest.hookimpl(tryfirst=True)
    def pytest_xdist_make_scheduler(self, config: pytest.Config, log: object) -> object:
        return parallel.scheduler(config, log) if config.getvalue("dist") == "loadfile" else None

    def pytest_testnodedown(self, node: object, error: object) -> None:
        killed, left = parallel.received(node)
        _run_dirs.killed.extend(killed)
        _left_behind.extend(left)
