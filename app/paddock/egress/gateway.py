"""Start, watch and stop the egress gateway: mitmproxy with Paddock's rules behind the guard
(``python -m paddock.egress.run``), in its own environment.

The gateway listens on loopback only. Its configuration (grants, the VM it
serves, where token state and decisions live) goes in a file only this user
can read; the real keys go over its standard input and are never written to
disk or put on a command line. If the process dies while the session runs, the
exit listeners are told (the sandbox closes its egress channel) and the crash
is a recorded decision. Its certificate authority is per install
(``$PADDOCK_DATA_DIR/gateway-ca``); only the CA's certificate ever goes to
the guest.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from paddock.core.errors import PaddockError
from paddock.core.paths import data_dir
from paddock.core.processes import terminate
from paddock.egress.taint import ALLOW_FILE, TAINT_FILE, write_json
from paddock.egress.tripwires import Decoy

if TYPE_CHECKING:  # the addon imports this package inside the gateway's own environment, which has no pydantic
    from paddock.policy import EgressGrant

log = logging.getLogger(__name__)
ADDON = Path(__file__).with_name("addon.py")
MAX_DECISIONS_READ = 4 * 1024 * 1024  # per read; a line longer than this is no decision and is passed over
APP_ROOT = Path(__file__).resolve().parents[2]
# Tests only, set in-process by the test harness (monkeypatch): names the gateway sends to a
# loopback upstream instead of resolving them, and the CA that upstream's certificate is signed
# by. Empty in the product: no setting, file or environment variable fills them, so nothing a
# person, the folder or the guest controls can turn off the private-address guard.
LOOPBACK_UPSTREAMS: dict[str, str] = {}
UPSTREAM_CA: Path | None = None
# Tests only, like the two above: more mitmproxy scripts, loaded after Paddock's addon (a test
# stands in for a lying DNS server with one).
TEST_ADDONS: list[Path] = []


def _log_file(path: Path) -> BinaryIO:
    """A log for the child's output (opened here, closed once the child has it)."""
    return open(path, "wb")


class GatewayError(PaddockError):
    """The egress gateway could not start."""


def gateway_python() -> Path:
    """The Python of the gateway's environment: the interpreter ``mitmdump`` was installed for."""
    mitmdump = find_mitmdump()
    with open(mitmdump, "rb") as fh:
        first = fh.readline(1024)
    if first.startswith(b"#!"):
        interpreter = Path(first[2:].decode(errors="replace").split()[0])
        if os.access(interpreter, os.X_OK):
            return interpreter
    for name in ("python3", "python"):
        if os.access(mitmdump.with_name(name), os.X_OK):
            return mitmdump.with_name(name)
    raise GatewayError(f"The egress gateway's Python was not found beside {mitmdump}.",
                       hint="Run ./scripts/setup.sh, which installs it into .venv-gateway/.")  # fmt: skip


def find_mitmdump() -> Path:
    env = os.environ.get("PADDOCK_MITMDUMP")
    candidates = [env] if env else []
    installed = Path(sys.prefix).parent / "gateway" / "bin" / "mitmdump"  # /opt/paddock/{venv,gateway}: the package
    candidates += [str(installed), str(APP_ROOT.parent / ".venv-gateway" / "bin" / "mitmdump"),
                   shutil.which("mitmdump") or ""]  # fmt: skip
    for c in candidates:
        if c and os.access(c, os.X_OK):
            return Path(c)
    raise GatewayError(
        "The egress gateway (mitmproxy) is not installed.",
        hint="Run ./scripts/setup.sh, which installs it into .venv-gateway/.",
    )


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str
    grant: str | None
    method: str
    host: str
    path: str
    port: int = 0
    scheme: str = "https"
    no_grant: bool = False  # refused only because no grant covers the request (it may be asked about)
    tripwire: str = ""  # the decoy secret this request carried, or that closed egress earlier
    closed: bool = False  # refused because a tripwire closed this session's egress before
    held: bool = False  # held after a sensitive read (``paddock.egress.taint``): asked about or refused
    taint: str = ""  # the id of the sensitive read that held it
    taint_path: str = ""  # that read's path inside the folder
    allowed_once: str = ""  # let through by the person's one-time yes (its id)


class EgressGateway:
    def __init__(
        self, run_dir: Path, vm_id: str, grants: Sequence[EgressGrant], secrets: dict[str, str],
        *, decoys: Sequence[Decoy] = (), taint_mode: str = "ask",
    ) -> None:  # fmt: skip
        self.run_dir = run_dir
        self.taint_mode = taint_mode  # after a sensitive read: ask | refuse
        self._allowed: list[dict[str, str]] = []
        self.decoys = tuple(decoys)  # the session's tripwires (``paddock.egress.tripwires``)
        self.vm_id = vm_id
        self.grants = list(grants)
        self._secrets = secrets
        self.port = 0
        self._proc: asyncio.subprocess.Process | None = None
        self.confdir = data_dir() / "gateway-ca"
        self._decisions_read = 0
        self.session_grants: list[EgressGrant] = []
        self.decision_listeners: list[Callable[[Decision], None]] = []
        # Called once if the gateway process stops while the session still needs it (a crash):
        # the sandbox closes its egress channel, so a crash stops egress, never opens it.
        self.exit_listeners: list[Callable[[str], None]] = []
        self._watch: asyncio.Task[None] | None = None
        self._stopping = False

    def alive(self) -> bool:
        """Whether the gateway process runs (its port is its own only while it does)."""
        return self._proc is not None and self._proc.returncode is None and not self._stopping

    @property
    def ca_cert_pem(self) -> bytes:
        return (self.confdir / "mitmproxy-ca-cert.pem").read_bytes()

    async def start(self) -> None:
        self.run_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.confdir.mkdir(mode=0o700, parents=True, exist_ok=True)
        ready = self.run_dir / "gateway.ready"
        config: dict[str, Any] = {
            "vm_id": self.vm_id,
            "grants": [g.model_dump() for g in self.grants],
            "token_dir": str(data_dir() / "tokens"),
            "decisions": str(self.run_dir / "egress-decisions.jsonl"),
            "ready": str(ready),
            "session_grants": str(self.run_dir / "session-grants.json"),
            "test_upstream_overrides": _loopback_upstreams(),
            "tripwires": [{"name": d.name, "secret": d.secret} for d in self.decoys],
            "taint_mode": self.taint_mode,
        }
        cfg_path = self.run_dir / "gateway.json"
        fd = os.open(cfg_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(config, fh)
        argv = [str(gateway_python()), "-m", "paddock.egress.run", "--confdir", str(self.confdir)]
        for extra in TEST_ADDONS:
            argv += ["--test-addon", str(extra)]
        if UPSTREAM_CA is not None:
            argv += ["--upstream-ca", str(UPSTREAM_CA)]
        env = {**os.environ, "PADDOCK_GATEWAY_CONFIG": str(cfg_path),
               "PYTHONPATH": str(APP_ROOT), "PYTHONDONTWRITEBYTECODE": "1"}  # fmt: skip
        log = _log_file(self.run_dir / "gateway.log")
        try:
            self._proc = await asyncio.create_subprocess_exec(
                *argv, stdin=asyncio.subprocess.PIPE, stdout=log, stderr=log, env=env, start_new_session=True
            )
        finally:
            log.close()
        assert self._proc.stdin is not None
        self._proc.stdin.write(json.dumps(self._secrets).encode() + b"\n")
        await self._proc.stdin.drain()
        self._proc.stdin.close()
        for _ in range(600):
            if ready.exists() and ready.read_text():
                self.port = int(json.loads(ready.read_text())["port"])
                self._watch = asyncio.ensure_future(self._watch_exit(self._proc))
                return
            if self._proc.returncode is not None:
                break
            await asyncio.sleep(0.05)
        tail = (self.run_dir / "gateway.log").read_text(errors="replace")[-800:]
        await self.stop()
        raise GatewayError(f"The egress gateway did not start: {tail.strip() or 'no output'}")

    def decisions(self) -> list[Decision]:
        """Decisions made since the last call (for the audit trail). Only whole lines are taken:
        a line the gateway is still writing is read next time, never counted as read and lost. A
        line that is whole but not a decision is logged and passed over; a listener that fails
        does not stop the others."""
        path = self.run_dir / "egress-decisions.jsonl"
        try:
            with open(path, "rb") as fh:
                fh.seek(self._decisions_read)
                chunk = fh.read(MAX_DECISIONS_READ)
        except FileNotFoundError:
            return []
        whole = chunk[: chunk.rfind(b"\n") + 1]
        if not whole and len(chunk) == MAX_DECISIONS_READ:  # one endless line: not a decision
            self._decisions_read += len(chunk)
        self._decisions_read += len(whole)
        out = []
        for line in whole.splitlines():
            try:
                d = json.loads(line)
                fields = (d["allowed"], d["reason"], d.get("grant"), d["method"], d["host"], d["path"])
                extra = {"port": d.get("port", 0), "scheme": d.get("scheme", "https"),
                         "no_grant": bool(d.get("no_grant")), "tripwire": str(d.get("tripwire") or ""),
                         "closed": bool(d.get("closed")), "held": bool(d.get("held")),
                         "taint": str(d.get("taint") or ""), "taint_path": str(d.get("taint_path") or ""),
                         "allowed_once": str(d.get("allowed_once") or "")}  # fmt: skip
                out.append(Decision(*fields, **extra))
            except (ValueError, KeyError, TypeError) as exc:
                log.warning("an egress decision line could not be read: %s", exc)
        for decision in out:
            for listener in list(self.decision_listeners):
                try:
                    listener(decision)
                except Exception:  # one listener's bug must not lose the decision for the rest
                    log.exception("an egress decision listener failed")
        return out

    def add_session_grant(self, grant: EgressGrant) -> None:
        """Allow one more capability until this gateway stops (a person said yes to a question).
        The addon reads the file on every request, so the next request may use it."""
        self.session_grants.append(grant)
        path = self.run_dir / "session-grants.json"
        tmp = self.run_dir / "session-grants.json.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump([g.model_dump() for g in self.session_grants], fh)
        os.replace(tmp, path)

    def taint(self, reads: list[dict[str, str]]) -> None:
        """The session read sensitive files (``{"id", "path"}`` each, first first): from the next
        request on, what can carry data out is held (``paddock.egress.taint``)."""
        self.run_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        write_json(self.run_dir / TAINT_FILE, {"reads": reads})

    def allow_once(self, allow_id: str, method: str, host: str, path: str) -> None:
        """The person said yes to one held request: the next request with this method, host and
        path goes through, once."""
        self._allowed.append({"id": allow_id, "method": method, "host": host, "path": path})
        write_json(self.run_dir / ALLOW_FILE, self._allowed)

    async def _watch_exit(self, proc: asyncio.subprocess.Process) -> None:
        code = await proc.wait()
        if self._stopping:
            return
        reason = (f"the egress gateway stopped unexpectedly (exit code {code}); the sandbox has no network "
                  "until it is restarted")  # fmt: skip
        record = {"time_unix": time.time(), "allowed": False, "reason": reason, "grant": None, "no_grant": False,
                  "method": "", "scheme": "", "host": "", "port": 0, "path": ""}  # fmt: skip
        _append(self.run_dir / "egress-decisions.jsonl", json.dumps(record) + "\n")
        for listener in list(self.exit_listeners):
            listener(reason)

    async def stop(self) -> None:
        self._stopping = True
        if self._watch is not None:
            self._watch.cancel()
        proc, self._proc = self._proc, None
        try:
            if proc is not None and proc.returncode is None:
                await terminate([proc], 5.0)
        finally:
            shutil.rmtree(self.run_dir, ignore_errors=True)


def _append(path: Path, line: str) -> None:
    with contextlib.suppress(OSError), open(path, "a") as fh:
        fh.write(line)


def _loopback_upstreams() -> dict[str, str]:
    """``LOOPBACK_UPSTREAMS``, loopback targets only."""
    out = {}
    for name, target in LOOPBACK_UPSTREAMS.items():
        if not target.startswith("127.0.0.1:"):
            raise GatewayError(f"a test upstream must be on 127.0.0.1, not {target!r}")
        out[name] = target
    return out
