"""The ``paddock`` command (contract: DESIGN.md, "The contracts").

Exit codes of ``paddock sandbox exec``: the command's own code; 128+N when
it was killed by signal N; 124 when it timed out; 127 when it could not be
started; 125 when the sandbox itself failed; 130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from paddock import __version__
from paddock.core.errors import PaddockError

if TYPE_CHECKING:
    from paddock.undo.changes import Change

from paddock.cli.admin import _audit, _doctor, _keys, _memory, _policy_check, add_support_parser
from paddock.cli.out import err as _err
from paddock.cli.out import progress as _progress
from paddock.cli.remote import add_parser as add_remote_parser
from paddock.cli.schedule import add_parser as _add_schedule_parser
from paddock.cli.undo import add_parser as add_undo_parser

NOBODY_RUN = "answered no: paddock run was not given --yes"
NOBODY_EXEC = "answered no: nobody can answer in paddock sandbox exec"
EXIT_SANDBOX_FAILED = 125
EXIT_INTERRUPTED = 130


async def _sandbox_exec(ns: argparse.Namespace) -> int:
    from paddock.guest import ExecOutput, ExecResult, Stream
    from paddock.session.composer import AnswerNo, SessionPlan, compose
    from paddock.session.runner import EntryPoint

    argv = list(ns.cmd)
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv:
        _err("no command given; usage: paddock sandbox exec --folder DIR -- CMD [ARG...]")
        return 2
    plan = SessionPlan(EntryPoint.EXEC, AnswerNo(NOBODY_EXEC), host=ns.host, warn=_err)
    session = await compose(Path(ns.folder), plan)
    outcome = "failed"
    try:
        sandbox = await session.boot(on_progress=_progress(ns.quiet))
        result: ExecResult | None = None
        async for ev in sandbox.exec(argv, timeout_s=ns.timeout or 0.0):
            if isinstance(ev, ExecOutput):
                out = sys.stdout.buffer if ev.stream is Stream.STDOUT else sys.stderr.buffer
                out.write(ev.data)
                out.flush()
            elif isinstance(ev, ExecResult):
                result = ev
        assert result is not None
        if result.message:
            _err(result.message)
        outcome = "finished"
        return result.shell_code
    finally:
        await session.close(outcome=outcome)


async def _run(ns: argparse.Namespace) -> int:
    from paddock.assistant.loop import AssistantEvent, Failed, TextDelta, ToolCalled, ToolFinished, TurnStarted
    from paddock.session.composer import AnswerNo, AnswerYes, SessionPlan, compose
    from paddock.session.runner import EntryPoint

    out = sys.stdout

    def show(ev: AssistantEvent) -> None:
        if isinstance(ev, TextDelta):
            out.write(ev.text)
        elif isinstance(ev, TurnStarted) and ev.turn > 1:
            out.write("\n")
        elif isinstance(ev, ToolCalled):
            out.write(f"\n▸ {ev.summary}\n")
        elif isinstance(ev, ToolFinished) and ev.is_error:
            out.write(f"  (that did not work: {ev.detail.strip().splitlines()[-1][:200] if ev.detail else 'error'})\n")
        elif isinstance(ev, Failed):
            out.write(f"\n✗ {ev.message}\n")
        out.flush()

    plan = SessionPlan(
        EntryPoint.RUN, AnswerYes() if ns.yes else AnswerNo(NOBODY_RUN), assistant=True, model=ns.model,
        summary=True, new_conversation=ns.new, warn=_err, on_event=show, wake_ahead=True,
    )  # fmt: skip
    session = await compose(Path(ns.folder), plan)  # a refused folder or model is recorded; nothing is sent
    if session.ignored and not ns.quiet:
        _err(f"this folder is not trusted, so its own settings are ignored ({', '.join(session.ignored)}); "
             "pass --yes to trust it")  # fmt: skip
    try:
        await session.boot(on_progress=_progress(ns.quiet))
        assert session.agent is not None
        await session.agent.send(ns.task)
        out.write("\n")
    finally:
        await session.close(outcome="failed")  # recorded only if the loop did not say how it ended
        _print_summary(await session.changes())
        answered = "yes" if ns.yes else "no (pass --yes to allow it)"
        for q in [] if ns.quiet else session.questions:
            _err(f"the assistant asked to reach {q.host}: answered {answered}")
    return 0


def _print_summary(changes: list[Change]) -> None:
    if not changes:
        return
    counts = {k: sum(1 for c in changes if c.kind == k) for k in ("created", "changed", "deleted")}
    print("Files: " + ", ".join(f"{n} {k}" for k, n in counts.items() if n), file=sys.stderr)
    for c in changes[:50]:  # names as the guest chose them, control characters made visible
        print(f"  {c.kind:8} {c.shown_path}", file=sys.stderr)
    risky = [c for c in changes if c.risk]
    if risky:
        print("⚠ These files could run on your computer later; look at them before you use this folder "
              "with other tools:", file=sys.stderr)  # fmt: skip
        for c in risky:
            print(f"  {c.shown_path}: {c.risk}", file=sys.stderr)


async def _mcp(ns: argparse.Namespace) -> int:
    from paddock.mcp.server import serve_stdio

    await serve_stdio(Path(ns.folder), on_progress=_progress(False))
    return 0


COMMANDS = (
    "  paddock doctor                                  check this computer\n"
    "  paddock keys set [--endpoint NAME]              store a model key in the keychain\n"
    '  paddock run --folder DIR "what to do"           let the assistant work on a folder\n'
    "  paddock sandbox exec --folder DIR -- CMD        run one command in the sandbox (--host NAME: on a server)\n"
    "  paddock mcp --folder DIR                        the sandbox's tools for any MCP client\n"
    '  paddock schedule add --folder DIR --when "every monday 09:00" "what to do"   a recurring task\n'
    "  paddock undo --folder DIR [--list|--to ID]      put back what the assistant changed\n"
    "  paddock policy check | audit export | memory list\n"
)


def _open_app(ns: argparse.Namespace) -> int:
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY") or os.environ.get("QT_QPA_PLATFORM")):
        print(
            "Paddock's window needs a desktop session (no display was found). Everything it does works from here:\n"
            f"\n{COMMANDS}\npaddock --help lists everything."
        )
        return 0
    try:
        from paddock.ui.app import main as open_window
    except ImportError as exc:
        _err(f"the desktop window cannot start ({exc}); run ./scripts/setup.sh to install what it needs")
        return 1
    return open_window()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="paddock", description="Hand real work to an AI agent, fenced in a VM.")
    parser.add_argument("--version", action="version", version=f"paddock {__version__}")
    sub = parser.add_subparsers(dest="command")

    sandbox = sub.add_parser("sandbox", help="use the sandbox directly")
    sandbox_sub = sandbox.add_subparsers(dest="sandbox_command", required=True)
    ex = sandbox_sub.add_parser(
        "exec",
        help="boot the sandbox on a folder and run one command in it",
        description="Boot the sandbox on DIR (seen as /workspace), run CMD there, stream its output "
        "and exit with its code.",
    )
    ex.add_argument("--folder", required=True, metavar="DIR", help="the folder the sandbox may see")
    ex.add_argument("--timeout", type=float, metavar="S", help="kill the command after S seconds")
    ex.add_argument("--host", metavar="NAME", help="run on this sandbox host the managed policy names")
    ex.add_argument("--quiet", "-q", action="store_true", help="no progress messages")
    ex.add_argument("cmd", nargs=argparse.REMAINDER, metavar="-- CMD [ARG...]")
    ex.set_defaults(handler=_sandbox_exec)

    run = sub.add_parser(
        "run",
        help="run one agent session on a folder, headless",
        description="Run one agent session on DIR and print the transcript. Exit 0 when the agent finished.",
    )
    run.add_argument("--folder", required=True, metavar="DIR", help="the folder the agent works on")
    run.add_argument(
        "--model",
        metavar="MODEL",
        help="the model to use, on an endpoint policy allows (e.g. openai:llama3.1, anthropic:claude-sonnet-4-5); "
        "a bare MODEL is on the default endpoint; `paddock keys status` lists the endpoints",
    )
    run.add_argument(
        "--yes", action="store_true", help="trust the folder and answer yes to the questions policy lets a user answer"
    )
    run.add_argument("--new", action="store_true", help="start a new conversation instead of resuming")
    run.add_argument("--quiet", "-q", action="store_true", help="no progress messages")
    run.add_argument("task", metavar="TASK", help="what the agent should do")
    run.set_defaults(handler=_run)

    _add_schedule_parser(sub)
    add_remote_parser(sub)

    mcp = sub.add_parser("mcp", help="serve the sandbox tools as an MCP server on stdio")
    mcp.add_argument("--folder", required=True, metavar="DIR", help="the folder the tools work on")
    mcp.set_defaults(handler=_mcp)

    pol = sub.add_parser("policy", help="admin policy")
    pol_sub = pol.add_subparsers(dest="policy_command", required=True)
    chk = pol_sub.add_parser(
        "check",
        help="validate a policy file and print the effective policy",
        description="Validate FILE (or the installed policy files) and print the effective policy, "
        "with the tier that set each value.",
    )
    chk.add_argument("file", nargs="?", metavar="FILE", help="a policy file to check as the managed policy")
    chk.set_defaults(handler=_policy_check)

    mem = sub.add_parser("memory", help="review the notes the agent keeps between sessions")
    mem_sub = mem.add_subparsers(dest="memory_command", required=True)
    mem_sub.add_parser("list", help="list notes with where they came from").set_defaults(handler=_memory)
    forget = mem_sub.add_parser("forget", help="delete one note")
    forget.add_argument("id")
    forget.set_defaults(handler=_memory)
    share = mem_sub.add_parser("share", help="load a note on every folder, not only the one it was made on")
    share.add_argument("id")
    share.set_defaults(handler=_memory)
    mem_sub.add_parser("purge-expired", help="delete expired notes").set_defaults(handler=_memory)

    aud = sub.add_parser("audit", help="the local audit log")
    aud_sub = aud.add_subparsers(dest="audit_command", required=True)
    exp = aud_sub.add_parser("export", help="print the audit log as JSON lines")
    exp.add_argument("--since", metavar="T", help="only records from T on (ISO date/time or Unix seconds)")
    exp.set_defaults(handler=_audit)
    verify = aud_sub.add_parser("verify", help="check the log's keyed hash chain")
    verify.add_argument("--anchor", action="append", metavar="RECORD:HASH",
                        help="a record's number and hash as the collector received them (repeatable)")  # fmt: skip
    verify.set_defaults(handler=_audit)

    keys = sub.add_parser(
        "keys", help="the model keys in this computer's keychain; cut off every session's internet access"
    )
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    for name, text in (
        ("set", "store a model endpoint's key (read from a prompt or standard input)"),
        ("remove", "delete a model endpoint's key"),
    ):
        cmd = keys_sub.add_parser(name, help=text)
        cmd.add_argument("--endpoint", metavar="NAME", help="the model endpoint (default: the default endpoint)")
        cmd.set_defaults(handler=_keys)
    keys_sub.add_parser(
        "status", help="list the model endpoints policy allows, and whether each has its key"
    ).set_defaults(handler=_keys)
    keys_sub.add_parser("revoke-sessions", help="cut off the internet access of every session so far").set_defaults(
        handler=_keys
    )

    add_undo_parser(sub)

    doc = sub.add_parser("doctor", help="check this computer and say what to fix")
    doc.add_argument("--no-probe", action="store_true", help="do not test-boot under KVM")
    doc.set_defaults(handler=_doctor)
    add_support_parser(sub)
    return parser


async def _run_cancellable(handler: object, ns: argparse.Namespace) -> int:
    """Run a handler so that SIGTERM, like Ctrl-C, unwinds it and cleans up."""
    task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    assert task is not None
    loop.add_signal_handler(signal.SIGTERM, task.cancel)
    try:
        return await handler(ns)  # type: ignore[operator,no-any-return]
    except asyncio.CancelledError:
        return EXIT_INTERRUPTED


def _crash_report(exc: BaseException) -> int:
    import time
    import traceback

    from paddock.core.paths import data_dir

    report = data_dir() / "logs" / f"crash-{time.strftime('%Y%m%d-%H%M%S')}.txt"
    try:
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text("".join(traceback.format_exception(exc)))
        where = f"; the details are in {report}"
    except OSError:
        where = ""
    _err(f"something unexpected went wrong ({type(exc).__name__}: {exc}){where}")
    return 70


def main(argv: Sequence[str] | None = None) -> int:
    from paddock.core.terminal import escaped_output

    with escaped_output():  # every string the guest or the model chose is escaped on its way out
        return _main(argv)


def _main(argv: Sequence[str] | None = None) -> int:
    from paddock.core.logs import configure

    configure()  # PADDOCK_LOG_LEVEL: the log on stderr too
    parser = build_parser()
    ns = parser.parse_args(argv)
    if ns.command is None:
        return _open_app(ns)
    try:
        return asyncio.run(_run_cancellable(ns.handler, ns))
    except KeyboardInterrupt:
        _err("interrupted; the sandbox was stopped")
        return EXIT_INTERRUPTED
    except PaddockError as exc:
        _err(str(exc))
        return EXIT_SANDBOX_FAILED if ns.command == "sandbox" else 1
    except OSError as exc:
        _err(f"{exc.filename or ''}: {exc.strerror}" if exc.strerror else str(exc))
        return 1
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except Exception as exc:  # noqa: BLE001 - last resort: a sentence and a saved report, not a traceback
        return _crash_report(exc)


if __name__ == "__main__":
    sys.exit(main())
