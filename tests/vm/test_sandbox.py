"""The sandbox, booted for real under QEMU: commands, files, streaming, timeouts."""

from __future__ import annotations

import asyncio
import re
import secrets
import time
from pathlib import Path

import pytest

from paddock.assistant.tools import ToolBox
from paddock.audit import AuditLog, AuditTrail
from paddock.desk.activity import Activity, activity
from paddock.guest import (
    ExecOutput,
    ExecResult,
    ExecStarted,
    ExitReason,
    FileChangedEvent,
    FileType,
    ProcessExitedEvent,
    ProcessStartedEvent,
)
from paddock.session.auditing import SessionAuditor
from paddock.vm import VirtualMachine
from tests.conftest import Booted
from tests.framework.fixtures import booted_any
from tests.framework.waits import eventually

pytestmark = pytest.mark.vm
booted = booted_any  # the sandbox's lifecycle: every test here runs on a woken and on a cold one


def test_output_and_exit_codes(booted: Booted) -> None:
    out, err, code = booted.sh("echo to-stdout; echo to-stderr >&2; exit 7")
    assert (out, err, code) == ("to-stdout\n", "to-stderr\n", 7)
    assert booted.run(["true"])[2] == 0
    assert booted.run(["false"])[2] == 1


def test_missing_program_is_a_clear_start_failure(booted: Booted) -> None:
    _, _, result = booted.engine.run(booted.sandbox.guest.run(["no-such-program"]))
    assert result.reason is ExitReason.START_FAILED
    assert "command not found" in result.message
    assert result.shell_code == 127


def test_signal_is_reported(booted: Booted) -> None:
    _, _, code = booted.sh("kill -TERM $$")
    assert code == 128 + 15


def test_stdin_cwd_and_env(booted: Booted) -> None:
    (booted.workspace / "sub").mkdir()
    out, _, code = booted.run(
        ["sh", "-c", 'pwd; echo "$GREETING"; cat'], cwd="sub", env={"GREETING": "hej"}, stdin=b"from stdin\n"
    )
    assert code == 0
    assert out == "/workspace/sub\nhej\nfrom stdin\n"


def test_a_command_inherits_no_descriptor_of_the_agent(booted: Booted) -> None:
    """Commands start by posix_spawn from the agent, which holds its gRPC socket, the host's port
    (through its relay) and the file watcher's descriptor: the command gets its three streams
    and nothing else (``ls`` opens the fourth itself, to read the folder)."""
    out, _, code = booted.run(["ls", "/proc/self/fd"])
    assert code == 0
    assert out.split() == ["0", "1", "2", "3"]
    out, _, code = booted.sh("ls -l /proc/$$/fd | grep -c -- '->'")  # the shell's own: three
    assert (out.strip(), code) == ("3", 0)


def test_cwd_outside_workspace_is_refused(booted: Booted) -> None:
    from paddock.guest import PathOutsideWorkspace

    for cwd in ("..", "/etc", "sub/../../.."):
        with pytest.raises(PathOutsideWorkspace):
            booted.run(["pwd"], cwd=cwd)


def test_long_output_streams_in_chunks(booted: Booted) -> None:
    async def collect() -> tuple[int, bytes, ExecResult | None]:
        chunks, data, result = 0, bytearray(), None
        async for ev in booted.sandbox.guest.exec(["seq", "1", "300000"]):
            if isinstance(ev, ExecOutput):
                chunks += 1
                data.extend(ev.data)
            elif isinstance(ev, ExecResult):
                result = ev
        return chunks, bytes(data), result

    chunks, data, result = booted.engine.run(collect(), timeout=120)
    lines = data.decode().splitlines()
    assert result is not None and result.exit_code == 0
    assert len(lines) == 300000 and lines[0] == "1" and lines[-1] == "300000"
    assert chunks > 10, "output should arrive as a stream, not in one piece"


def _guest_processes(booted: Booted, needle: str) -> list[str]:
    out, _, _ = booted.sh("for p in /proc/[0-9]*; do tr '\\0' ' ' < $p/cmdline 2>/dev/null; echo; done")
    return [line for line in out.splitlines() if needle in line and "for p in" not in line]


def test_timeout_kills_the_whole_process_group(booted: Booted) -> None:
    _, _, result = booted.engine.run(
        booted.sandbox.guest.run(["sh", "-c", "sleep 301 & sleep 302; echo never"], timeout_s=1.5), timeout=60
    )
    assert result.reason is ExitReason.TIMED_OUT
    assert result.shell_code == 124
    assert _guest_processes(booted, "sleep 30") == []


def test_cancelling_the_call_kills_the_process(booted: Booted) -> None:
    async def start_then_cancel() -> None:
        async def consume() -> None:
            async for ev in booted.sandbox.guest.exec(["sh", "-c", "sleep 303 & sleep 304"]):
                if isinstance(ev, ExecStarted):
                    started.set()

        async def both_running() -> bool:
            ps = "for p in /proc/[0-9]*; do tr '\\0' ' ' < $p/cmdline 2>/dev/null; echo; done | grep -c '^sleep 30[34]'"
            out, _, _ = await booted.sandbox.guest.run(["sh", "-c", ps])
            return out.strip() == b"2"

        started = asyncio.Event()
        task = asyncio.ensure_future(consume())
        await asyncio.wait_for(started.wait(), 30)
        await eventually(both_running, what="both sleeps to run in the guest")
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    booted.engine.run(start_then_cancel(), timeout=60)
    deadline = time.monotonic() + 10
    while _guest_processes(booted, "sleep 30") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _guest_processes(booted, "sleep 30") == []


def test_files_written_on_either_side_appear_on_the_other(booted: Booted) -> None:
    (booted.workspace / "from-host.txt").write_text("written on the host\n")
    out, _, code = booted.sh("cat from-host.txt && echo 'written in the guest' > from-guest.txt")
    assert code == 0 and out == "written on the host\n"
    assert (booted.workspace / "from-guest.txt").read_text() == "written in the guest\n"

    guest = booted.sandbox.guest
    booted.engine.run(guest.write_file("deep/dir/api.txt", b"via the API"))
    assert (booted.workspace / "deep" / "dir" / "api.txt").read_bytes() == b"via the API"
    data, size, eof = booted.engine.run(guest.read_file("from-host.txt"))
    assert (data, size, eof) == (b"written on the host\n", 20, True)

    entries, truncated = booted.engine.run(guest.list_dir("", recursive=True))
    paths = {e.path: e.type for e in entries}
    assert paths["deep/dir/api.txt"] is FileType.FILE and paths["deep"] is FileType.DIRECTORY
    assert not truncated

    booted.engine.run(guest.remove("deep", recursive=True))
    assert not (booted.workspace / "deep").exists()
    (booted.workspace / "from-host.txt").unlink()
    # virtiofsd runs with cache=auto: the guest may keep a name for up to 1 s.
    deadline = time.monotonic() + 5
    while booted.sh("test -e from-host.txt")[2] == 0 and time.monotonic() < deadline:
        time.sleep(0.25)
    assert booted.sh("test -e from-host.txt")[2] == 1


def test_write_file_is_atomic_and_keeps_no_temp_files(booted: Booted) -> None:
    guest = booted.sandbox.guest
    booted.engine.run(guest.write_file("atomic.txt", b"one"))
    booted.engine.run(guest.write_file("atomic.txt", b"two" * 1000))
    assert (booted.workspace / "atomic.txt").read_bytes() == b"two" * 1000
    assert not [p for p in booted.workspace.iterdir() if p.name.startswith(".paddock-tmp")]


def test_guest_events_report_processes_and_writes(booted: Booted) -> None:
    from paddock.guest import FileChangedEvent, ProcessExitedEvent, ProcessStartedEvent

    async def scenario() -> list[object]:
        seen: list[object] = []

        async def listen() -> None:
            async for ev in booted.sandbox.guest.events():
                seen.append(ev)

        task = asyncio.ensure_future(listen())
        await asyncio.sleep(0.5)
        await booted.sandbox.guest.run(["sh", "-c", "exit 3"])
        await booted.sandbox.guest.write_file("evented.txt", b"x")
        for _ in range(50):
            if any(isinstance(e, FileChangedEvent) for e in seen):
                break
            await asyncio.sleep(0.1)
        task.cancel()
        return seen

    seen = booted.engine.run(scenario(), timeout=60)
    started = [e for e in seen if isinstance(e, ProcessStartedEvent)]
    exited = [e for e in seen if isinstance(e, ProcessExitedEvent)]
    written = [e for e in seen if isinstance(e, FileChangedEvent)]
    assert started and started[0].argv == ("sh", "-c", "exit 3")
    assert exited and exited[0].result.exit_code == 3 and exited[0].exec_id == started[0].exec_id
    assert written and written[0].path == "evented.txt" and not written[0].removed


def test_guest_info(booted: Booted) -> None:
    info = booted.engine.run(booted.sandbox.guest.info())
    assert info.agent_version
    assert info.kernel.endswith("-amd64")
    assert info.uptime_s > 0
    assert ("workspace", "/workspace", False) in info.mounts
    assert ("profile", "/home/agent/.claude", True) in info.mounts


def test_the_guests_clock_keeps_the_hosts_pace(booted: Booted) -> None:
    """Under emulation the guest's time-stamp counter is the host's own, and its kernel is told
    the host's rate (``kernel_cmdline``): a second in the guest is a second. Before, told 2 GHz
    on this 2.6 GHz host, the guest's clock ran 1.3× fast (a 4 s sleep took 3.1 s; its uptimes,
    time-outs and file times with it). A host whose counter runs at 2 GHz passes either way."""
    t0 = time.monotonic()
    _out, err, code = booted.sh("sleep 4")
    took = time.monotonic() - t0
    assert code == 0, err
    assert took >= 4.0 * 0.99, f"a 4 s sleep in the guest took {took:.2f} s"


def test_the_agent_serves_only_once_the_shares_are_mounted(booted: Booted) -> None:
    """The guest mounts its shares while the agent starts (guest_image/rootfs/etc/inittab): the
    agent serves only once the share script has written /run/paddock-shares, so the host's first
    call finds the folder mounted. A cold boot mounted both at start; the saved sandbox had none
    to mount (its Claim mounted them after the wake)."""
    out, err, code = booted.sh("cat /run/paddock-shares")
    assert code == 0, err
    cold = booted.sandbox.timings.how == "cold"
    state = "mounted" if cold else "not mounted"
    assert out.splitlines() == [f"workspace {state}", f"profile {state}"]
    if cold:
        vm = booted.sandbox.vm
        assert isinstance(vm, VirtualMachine)
        console = vm.console_log.read_text(errors="replace")
        mounted = re.search(r"shares mounted \(uptime ([0-9.]+) s\)", console)
        ready = re.search(r"paddock-agent: ready\b.*?uptime ([0-9.]+) s", console)
        assert mounted is not None, console
        if ready is not None:  # an agent that says when it became ready: not before the mounts
            assert float(mounted[1]) <= float(ready[1]), console


def test_files_any_command_writes_are_reported_and_recorded(booted: Booted, tmp_path: Path) -> None:
    """The guest agent's watcher (#20): files a shell command writes reach the activity panel's
    model live (while being written, then written) and the audit trail, under names the host made
    safe (escaped control and direction characters, cut when very long). Real VM, agent, audit log."""
    auditor = SessionAuditor(AuditTrail(AuditLog(tmp_path / "audit", key=secrets.token_bytes(32))), booted.workspace)
    seen: list[Activity] = []
    raw: list[object] = []
    auditor.guest_events.connect(lambda ev: seen.append(activity(ev)))
    auditor.guest_events.connect(raw.append)
    long = "L" * 250
    script = (
        "mkdir -p made && printf 'a,b\\n1,2\\n' > made/table.csv"
        " && python3 -c \"open('made/big.bin','wb').write(b'x' * 300000)\""
        " && printf x > \"$(printf 'made/evil\\nname\\033[2J\\342\\200\\256txt.exe')\""
        " && printf x > \"$(printf 'made/bad\\377name')\""
        f" && mkdir -p made/{long}/{long}/{long}/{long} && echo hi > made/{long}/{long}/{long}/{long}/{long}"
        " && printf x > made/locked.txt && chmod 000 made/locked.txt"  # the guest may not read it back
        " && python3 -c \"import time; f = open('made/slow.log', 'w')\n"
        "for _ in range(6): f.write('x' * 1000); f.flush(); time.sleep(0.4)\""
    )

    async def scenario() -> None:
        auditor.follow(booted.sandbox)
        await asyncio.sleep(0.5)
        _, err, result = await booted.sandbox.guest.run(["sh", "-c", script])
        assert result.shell_code == 0, err
        await booted.sandbox.guest.write_file("made/by-tool.txt", b"tool")
        for _ in range(50):
            if {"made/slow.log", "made/by-tool.txt"} <= {a.key for a in seen if a.kind == "written"}:
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.0)  # anything reported twice would have arrived by now
        await auditor.close()

    booted.engine.run(scenario(), timeout=120)  # closing the auditor lets go of the shared sandbox
    evil = "made/evil\\x0aname\\x1b[2J\\u202etxt.exe"
    written = {a.key for a in seen if a.kind == "written"}
    assert {"made/table.csv", "made/big.bin", evil, "made/bad\\xffname", "made/slow.log"} <= written, written
    slow = [a.kind for a in seen if a.key == "made/slow.log"]
    assert "writing" in slow and slow.index("writing") < slow.index("written"), slow
    assert [a.key for a in seen if a.key == "made/by-tool.txt"] == ["made/by-tool.txt"]  # the tool's, once
    [run] = [e.exec_id for e in raw if isinstance(e, ProcessStartedEvent) and e.argv[:1] == ("sh",)]
    by = {e.path: e.exec_id for e in raw if isinstance(e, FileChangedEvent) and not e.writing}
    assert by["made/table.csv"] == run and by["made/slow.log"] == run  # the command that wrote them
    assert by["made/by-tool.txt"] == ""  # the file tool's own report
    cut = [a for a in seen if a.key.startswith(f"made/{long}/")]
    assert cut and all(a.key.endswith("characters cut]") and len(a.key) < 1100 for a in cut)
    records = [r for r in AuditLog(tmp_path / "audit").records() if r["kind"] == "guest.file.written"]
    paths = [r["attributes"]["file.path"] for r in records]
    assert {"made/table.csv", evil, "made/slow.log", "made/by-tool.txt"} <= set(paths), paths
    assert paths.count("made/slow.log") == 1 and paths.count("made/by-tool.txt") == 1  # done writes only
    assert (
        next(r for r in records if r["attributes"]["file.path"] == "made/big.bin")["attributes"]["file.size"] == 300000
    )
    raw = (tmp_path / "audit" / "audit.jsonl").read_text()
    assert "\x1b" not in raw and "\u202e" not in raw and "\\u001b" not in raw


def test_live_output_keeps_characters_split_across_chunks(booted: Booted) -> None:
    """A running card's live output (#20): a character whose bytes arrive in two chunks is shown
    whole, not as two replacement marks; bytes that are not text still show as one mark each."""
    box = ToolBox(booted.sandbox)
    got: list[str] = []
    box.on_output = got.append
    script = (
        "printf 'caf\\303'; sleep 0.5; printf '\\251 \\342\\202'; sleep 0.5; printf '\\254 done\\n';"
        " sleep 0.3; printf '\\377' >&2; sleep 0.3; printf '\\342'"
    )
    out, _, result = booted.engine.run(box.collect(["sh", "-c", script], 30), timeout=60)
    assert result is not None and result.shell_code == 0
    assert len(got) >= 3, got  # it did arrive in pieces
    assert "".join(got) == "café € done\n\ufffd\ufffd", got
    assert out == "café € done\n\ufffd"


def test_a_commands_events_carry_its_id_in_one_order_before_it_ends(booted: Booted) -> None:
    """One ordered guest event stream (#31): the command's process and file events carry the id
    the host gave it, arrive in the guest's order (started, each file it finished writing, exited),
    and are all on the host by the time the command's result is: no pause, no second stream."""
    sandbox = booted.sandbox
    ids: list[str] = []
    events: list[object] = []

    def on_event(ev: object) -> None:
        events.append(ev)

    async def scenario() -> ExecResult:
        sandbox.exec_started.connect(ids.append)
        sandbox.guest_event.connect(on_event)
        try:
            result = None
            async for ev in sandbox.exec(["sh", "-c", "echo a > first.txt; echo b > second.txt; exit 4"]):
                if isinstance(ev, ExecResult):
                    result = ev
                    seen_at_result = list(events)
            assert result is not None
            events[:] = seen_at_result  # what had arrived when the result did
            return result
        finally:
            sandbox.exec_started.disconnect(ids.append)
            sandbox.guest_event.disconnect(on_event)

    result = booted.engine.run(scenario(), timeout=120)
    assert result.exit_code == 4 and len(ids) == 1
    [command] = ids
    mine = [e for e in events if getattr(e, "exec_id", None) == command]
    kinds = [
        "started" if isinstance(e, ProcessStartedEvent)
        else "exited" if isinstance(e, ProcessExitedEvent)
        else f"{e.path}:{'writing' if e.writing else 'written'}" if isinstance(e, FileChangedEvent)
        else type(e).__name__
        for e in mine
    ]  # fmt: skip
    kinds = [k for k in kinds if not k.endswith(":writing")]  # a write in progress may be seen first
    assert kinds == ["started", "first.txt:written", "second.txt:written", "exited"], kinds
    seqs = [e.seq for e in mine]  # type: ignore[attr-defined]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert result.seq == mine[-1].seq  # type: ignore[attr-defined]
