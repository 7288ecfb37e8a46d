"""The window's warm pool: one sandbox woken ahead of the folder, handed out once.

``WarmPool`` wakes the saved sandbox before a folder is chosen (no folder, no key, no claim);
choosing a folder attaches its shares and claims it. These tests try to get a sandbox reused:
taken twice, claimed twice, handed to a second folder, or left holding the first folder's
files; and check that each woken sandbox still gets its own randomness, clock and key.
Real VMs, real virtiofs, real gRPC; nothing is faked.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from paddock.core.engine import Engine
from paddock.desk import Desk
from paddock.guest import GuestError
from paddock.llm import AnthropicProvider
from paddock.sandbox import SNAPSHOT_ENV, Sandbox, SandboxFailed, WarmPool, ensure_snapshot
from paddock.vm import GuestImage, Share, VirtualMachine, VMState
from tests.conftest import _make_dirs
from tests.fakes.messages_api import MessagesAPI, text, tool

pytestmark = pytest.mark.vm


@pytest.fixture
def snapshots(monkeypatch: pytest.MonkeyPatch, engine: Engine, guest_image: GuestImage) -> Iterator[Path]:
    monkeypatch.setenv(SNAPSHOT_ENV, "1")
    yield engine.run(ensure_snapshot(guest_image), timeout=300)


def _pss_mb(pid: int) -> float:
    """PSS of one process (shared pages split between their users), MB."""
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no PSS for {pid}")


def _sh(engine: Engine, sandbox: Sandbox, script: str) -> tuple[str, int]:
    out, err, result = engine.run(sandbox.guest.run(["sh", "-c", script]), timeout=120)
    assert not err or result.shell_code != 0, err
    return out.decode(), result.shell_code


def test_a_pooled_sandbox_is_handed_out_once_to_one_folder(
    engine: Engine, guest_image: GuestImage, snapshots: Path, tmp_path: Path
) -> None:
    pool = WarmPool(guest_image)

    async def fill() -> bool:
        pool.fill()
        return await pool.wait()

    sandboxes: list[Sandbox] = []
    try:
        seen = []
        for name in ("first", "second"):
            assert engine.run(fill(), timeout=180), pool.last_error
            held = dict(pool.pids)
            if name == "first":  # the all-zero pages of its RAM were given back after loading
                assert _pss_mb(held["qemu"]) < 1024 / 2, "the woken sandbox holds all of its guest RAM"
            workspace, profile, _ = _make_dirs(tmp_path / name)
            (workspace / f"{name}.txt").write_text(f"{name} folder\n")
            sandbox = engine.run(Sandbox.boot(workspace, image=guest_image, profile=profile, warm=pool), timeout=180)
            sandboxes.append(sandbox)
            assert sandbox.timings.pooled and sandbox.timings.restored
            assert sandbox.vm.pids["qemu"] == held["qemu"], "the pool's own sandbox was not the one handed out"
            assert not pool.holding and pool.pids == {}, "the pool kept a sandbox it handed out"
            # Only this folder: the other folder's file is not there, on either side.
            out, code = _sh(engine, sandbox, "ls; date +%s; head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \\n'")
            assert code == 0
            names, clock, noise = out.splitlines()
            assert names == f"{name}.txt", names
            assert abs(int(clock) - time.time()) < 120, "the woken guest kept the saved clock"
            seen.append(noise)
            # Claimed once, with a key only this session holds.
            with pytest.raises(GuestError):
                engine.run(sandbox.guest.claim(), timeout=30)
        assert len(seen[0]) == 64 and seen[0] != seen[1], "two woken sandboxes shared randomness"
        first, second = sandboxes
        assert first.vm.pids["qemu"] != second.vm.pids["qemu"]
        assert not (tmp_path / "second" / "workspace" / "first.txt").exists()
        # The pool is empty now: a third session wakes its own, never a handed-out one.
        workspace, profile, _ = _make_dirs(tmp_path / "third")
        progress: list[str] = []
        third = engine.run(
            Sandbox.boot(workspace, image=guest_image, profile=profile, warm=pool, on_progress=progress.append),
            timeout=180,
        )
        sandboxes.append(third)
        assert third.timings.restored and not third.timings.pooled, progress
        assert third.vm.pids["qemu"] not in (first.vm.pids["qemu"], second.vm.pids["qemu"])
    finally:
        for sandbox in sandboxes:
            engine.run(sandbox.close(), timeout=60)
        engine.run(pool.close(), timeout=60)
    assert all(s.vm.state is VMState.STOPPED for s in sandboxes)


def test_a_woken_sandbox_is_claimed_once_and_a_closed_pool_stops_its_own(
    engine: Engine, guest_image: GuestImage, snapshots: Path, tmp_path: Path
) -> None:
    pool = WarmPool(guest_image)

    async def scenario() -> tuple[int, int]:
        pool.fill()
        assert await pool.wait(), pool.last_error
        qemu = pool.pids["qemu"]
        woken = await pool.take(guest_image, 1024)
        assert woken is not None and await pool.take(guest_image, 1024) is None  # handed out once
        workspace, profile, _ = _make_dirs(tmp_path / "once")
        shares = (Share("workspace", workspace, read_only=False), Share("profile", profile, read_only=True))
        try:
            await woken.claim(shares)
            with pytest.raises(SandboxFailed, match="never used twice"):
                await woken.claim(shares)
        finally:
            await woken.discard()
        pool.fill()  # one more, then the window closes with it still held
        assert await pool.wait(), pool.last_error
        held = pool.pids["qemu"]
        await pool.close()
        pool.fill()  # a closed pool wakes nothing more
        assert not pool.holding
        return qemu, held

    qemu, held = engine.run(scenario(), timeout=300)
    assert held != qemu
    for pid in (qemu, held):  # both stopped: the claimed one by discard, the held one by close
        assert not Path(f"/proc/{pid}").exists() or "qemu" not in Path(f"/proc/{pid}/comm").read_text()


def test_with_snapshots_off_the_pool_holds_nothing(monkeypatch: pytest.MonkeyPatch, engine: Engine) -> None:
    monkeypatch.setenv(SNAPSHOT_ENV, "0")
    pool = WarmPool()

    async def scenario() -> bool:
        pool.fill()
        return pool.holding or await pool.wait()

    assert not engine.run(scenario(), timeout=30)


def _running(pid: int) -> bool:
    try:
        return "qemu" in Path(f"/proc/{pid}/comm").read_text()
    except OSError:
        return False


def test_the_window_hands_its_woken_sandbox_to_the_folder_and_wakes_the_next_after(
    engine: Engine, snapshots: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The desk (the window's engine): woken ahead while no folder is open, taken by the folder
    chosen, stopped with that session; the next one woken only after; none left at close.
    The model API is the scripted loopback fake (tests/fakes/messages_api.py)."""
    monkeypatch.setenv("PADDOCK_DATA_DIR", str(tmp_path / "data"))
    folder = tmp_path / "work"
    folder.mkdir()
    with MessagesAPI([tool("run_command", command="echo pooled > made.txt"), text("Done.")]) as api:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", api.url)
        desk = Desk(
            provider_factory=lambda target, _key: AnthropicProvider(f"test-{secrets.token_hex(6)}", model=target.model)
        )

        async def session() -> tuple[int, int]:
            await desk.warm()
            assert await desk.pool.wait(), desk.pool.last_error
            held = desk.pool.pids["qemu"]
            await desk.trust(folder)
            await desk.open(folder)
            assert not desk.pool.holding, "the pool kept the sandbox the folder took"
            assert await desk.send("make a file") == "Done."
            assert _running(held), "the session is not running on the woken sandbox"
            await desk.finish()
            assert desk.pool.holding and await desk.pool.wait(), "no sandbox woken for the next folder"
            following = desk.pool.pids["qemu"]
            await desk.close()
            return held, following

        held, following = engine.run(session(), timeout=300)
    assert (folder / "made.txt").read_text() == "pooled\n"
    assert following != held
    assert not _running(held) and not _running(following), "a woken sandbox outlived its session or the window"


def test_a_pooled_sandbox_waits_paused_and_answers_its_first_command_with_the_hosts_clock(
    engine: Engine, guest_image: GuestImage, snapshots: Path, tmp_path: Path
) -> None:
    """The woken sandbox waits with its CPU stopped (QEMU says "paused"); the folder's claim lets
    it run on, and its clock, which stood still while it waited, is the host's again."""
    pool = WarmPool(guest_image)
    workspace, profile, _ = _make_dirs(tmp_path / "paused")

    async def scenario() -> tuple[str, str, str, int, float]:
        pool.fill()
        assert await pool.wait(), pool.last_error
        woken = await pool.take(guest_image, 1024)
        assert woken is not None
        try:
            waiting = (await woken.vm.query_status())["status"]
            await asyncio.sleep(8)  # the person choosing a folder: the guest's clock stands still
            still = (await woken.vm.query_status())["status"]
            shares = (Share("workspace", workspace, read_only=False), Share("profile", profile, read_only=True))
            await woken.claim(shares)
            running = (await woken.vm.query_status())["status"]
            out, err, result = await woken.guest.run(["sh", "-c", "date +%s.%N"])
            assert result.exit_code == 0, err
            return waiting, still, running, result.exit_code, float(out) - time.time()
        finally:
            await woken.discard()
            await pool.close()

    waiting, still, running, code, skew = engine.run(scenario(), timeout=300)
    assert (waiting, still) == ("paused", "paused"), "the woken sandbox ran while it waited for a folder"
    assert running == "running" and code == 0
    assert abs(skew) < 4, f"the guest's clock is {skew:.1f} s off the host's after waiting paused"


def test_a_call_to_a_paused_sandbox_resumes_it_and_is_answered(
    engine: Engine, guest_image: GuestImage, tmp_path: Path
) -> None:
    """Pausing is no failure: a command sent while the guest is paused resumes it first (the
    channel's idle gate) and is answered."""
    workspace, profile, _ = _make_dirs(tmp_path / "session")

    async def scenario() -> tuple[str, bytes, str, bool]:
        async with Sandbox.open(workspace, image=guest_image, profile=profile) as sandbox:
            vm = sandbox.vm
            assert isinstance(vm, VirtualMachine)
            await vm.pause()
            await vm.pause()  # idempotent
            before = str((await vm.query_status())["status"])
            out, _, result = await asyncio.wait_for(sandbox.guest.run(["echo", "after"]), 120)
            assert result.exit_code == 0
            after = str((await vm.query_status())["status"])
            return before, out, after, vm.state is VMState.READY

    before, out, after, ready = engine.run(scenario(), timeout=300)
    assert before == "paused"
    assert out == b"after\n" and after == "running" and ready
