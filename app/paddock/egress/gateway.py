"""Start, watch and stop the egress gateway: mitmproxy with Paddock's rules behind the guard
(``python -m paddock.egress.run``), in its own environment.

The gateway listens on loopback only. Its configuration (grants, the VM it
serves, where token state lives) goes in a file only this user can read; the
real keys go over its standard input and are never written to disk or put on a
command line. It pushes what happens (ready, each decision, questions, alerts)
over its channel (``paddock.egress.channel``), and the host's ``decided``,
``questions`` and ``alerts`` signals fire as each arrives: nothing is polled. If
the process dies while the session runs, ``stopped`` fires (the sandbox closes
its egress channel) and the crash is a decision. Its certificate authority is
per install (``$PADDOCK_DATA_DIR/gateway-ca``); only the CA's certificate ever
goes to the guest.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import shutil
import socket
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from paddock.core.errors import PaddockError
from paddock.core.lifetime import Lifetime
from paddock.core.paths import data_dir
from paddock.core.processes import terminate
from paddock.core.signal import Signal
from paddock.egress.channel import MAX_LINE, Alert, Answer, BadMessage, Decision, Ping, Pong, Question, Ready, decode
from paddock.egress.channel import encode as _encode
from paddock.egress.taint import ALLOW_FILE, TAINT_FILE, write_json
from paddock.egress.tripwires import Decoy

if TYPE_CHECKING:  # the addon imports this package inside the gateway's own environment, which has no pydantic
    from paddock.policy import EgressGrant

log = logging.getLogger(__name__)
ADDON = Path(__file__).with_name("addon.py")
START_TIMEOUT_S = 30.0  # the gateway says it is ready within this, or it did not start
SETTLE_TIMEOUT_S = 30.0
KEEP_DECISIONS = 10_000  # kept for ``decisions``; the audit trail has them all
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
        self.session_grants: list[EgressGrant] = []
        # Each decision as it arrives (the audit trail, the egress questions), in the gateway's order.
        self.decided: Signal[Decision] = Signal("egress decision")
        # The gateway holds something and asks (answer with ``answer``); an alert needs no answer.
        self.questions: Signal[Question] = Signal("gateway question")
        self.alerts: Signal[Alert] = Signal("gateway alert")
        # Fired once if the gateway process stops while the session still needs it (a crash):
        # the sandbox closes its egress channel, so a crash stops egress, never opens it.
        self.stopped: Signal[str] = Signal("egress gateway stopped")
        self.received: list[Decision] = []  # every decision so far (``decisions`` reads it)
        self._read = 0
        self._writer: asyncio.StreamWriter | None = None
        self._pings = itertools.count(1)
        self._pongs: dict[int, asyncio.Future[None]] = {}
        self._life: Lifetime | None = None
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
        config: dict[str, Any] = {
            "vm_id": self.vm_id,
            "grants": [g.model_dump() for g in self.grants],
            "token_dir": str(data_dir() / "tokens"),
            "session_grants": str(self.run_dir / "session-grants.json"),
            "test_upstream_overrides": _loopback_upstreams(),
            "tripwires": [{"name": d.name, "secret": d.secret} for d in self.decoys],
            "taint_mode": self.taint_mode,
        }
        cfg_path = self.run_dir / "gateway.json"
        fd = os.open(cfg_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(config, fh)
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        argv = [str(gateway_python()), "-m", "paddock.egress.run", "--confdir", str(self.confdir),
                "--channel-fd", str(theirs.fileno())]  # fmt: skip
        for extra in TEST_ADDONS:
            argv += ["--test-addon", str(extra)]
        if UPSTREAM_CA is not None:
            argv += ["--upstream-ca", str(UPSTREAM_CA)]
        env = {**os.environ, "PADDOCK_GATEWAY_CONFIG": str(cfg_path),
               "PYTHONPATH": str(APP_ROOT), "PYTHONDONTWRITEBYTECODE": "1"}  # fmt: skip
        log_fh = _log_file(self.run_dir / "gateway.log")
        try:
            self._proc = await asyncio.create_subprocess_exec(
                *argv, stdin=asyncio.subprocess.PIPE, stdout=log_fh, stderr=log_fh, env=env,
                start_new_session=True, pass_fds=(theirs.fileno(),),
            )  # fmt: skip
        except BaseException:
            ours.close()
            raise
        finally:
            log_fh.close()
            theirs.close()  # the gateway holds its end: when it dies, ours reads the end
        reader, self._writer = await asyncio.open_unix_connection(sock=ours, limit=2 * MAX_LINE)
        assert self._proc.stdin is not None
        self._proc.stdin.write(json.dumps(self._secrets).encode() + b"\n")
        await self._proc.stdin.drain()
        self._proc.stdin.close()
        ready = await self._first_message(reader)
        if ready is None:
            tail = (self.run_dir / "gateway.log").read_text(errors="replace")[-800:]
            await self.stop()
            raise GatewayError(f"The egress gateway did not start: {tail.strip() or 'no output'}")
        self.port = ready.port
        self._life = await Lifetime.start(f"egress gateway {self.vm_id}")
        self._life.spawn(self._follow(reader, self._proc), name="channel")

    async def _first_message(self, reader: asyncio.StreamReader) -> Ready | None:
        """The gateway's ``ready``; None when it ends (or says something else) first."""
        try:
            line = await asyncio.wait_for(reader.readline(), START_TIMEOUT_S)
            message = decode(line)
        except (TimeoutError, BadMessage, ValueError, OSError):
            return None
        return message if isinstance(message, Ready) else None

    async def _follow(self, reader: asyncio.StreamReader, proc: asyncio.subprocess.Process | None) -> None:
        """Hand on each event as it arrives, until the gateway's end closes; then, unless the
        gateway was being stopped, say that it stopped."""
        while True:
            try:
                line = await reader.readline()
            except (ValueError, OSError) as exc:  # a line over the limit, a reset: the channel is done
                log.warning("the egress gateway's channel broke: %s", exc)
                break
            if not line:
                break
            try:
                self._received(decode(line))
            except BadMessage as exc:
                log.warning("a message from the egress gateway was passed over: %s", exc)
        self._writer_close()
        code = await proc.wait() if proc is not None else -1
        if not self._stopping:
            self._crashed(code)

    def _received(self, message: object) -> None:
        if isinstance(message, Decision):
            self._keep(message)
            self.decided.emit(message)
        elif isinstance(message, Question):
            self.questions.emit(message)
        elif isinstance(message, Alert):
            self.alerts.emit(message)
        elif isinstance(message, Pong):
            future = self._pongs.pop(message.id, None)
            if future is not None and not future.done():
                future.set_result(None)

    def _crashed(self, code: int) -> None:
        reason = (f"the egress gateway stopped unexpectedly (exit code {code}); the sandbox has no network "
                  "until it is restarted")  # fmt: skip
        crash = Decision(False, reason, None, "", "", "", scheme="", time_unix=time.time())
        self._keep(crash)
        self.decided.emit(crash)
        self.stopped.emit(reason)

    def _keep(self, decision: Decision) -> None:
        self.received.append(decision)
        if len(self.received) > KEEP_DECISIONS:  # a long session: the oldest half goes
            drop = len(self.received) // 2
            del self.received[:drop]
            self._read = max(0, self._read - drop)

    def decisions(self) -> list[Decision]:
        """The decisions that arrived since the last call (nothing is read or fired here: the
        channel hands each on as it arrives; ``await settle()`` first to include every decision
        made so far)."""
        new, self._read = self.received[self._read :], len(self.received)
        return new

    async def settle(self) -> None:
        """Return once every event the gateway sent before now has arrived and been handed on (a
        ping answered in order on the channel). Returns at once when the gateway is not running."""
        if self._writer is None or not self.alive():
            return
        ping = Ping(next(self._pings))
        future = asyncio.get_running_loop().create_future()
        self._pongs[ping.id] = future
        try:
            self._writer.write(_encode(ping))
            await self._writer.drain()
            await asyncio.wait_for(future, SETTLE_TIMEOUT_S)
        except (OSError, TimeoutError) as exc:
            log.warning("the egress gateway did not answer a ping: %s", exc)
        finally:
            self._pongs.pop(ping.id, None)

    def answer(self, question_id: str, allow: bool) -> None:
        """Answer the gateway's question ``question_id``. A broken channel is a no (the gateway
        treats a question whose channel broke as refused)."""
        if self._writer is None or self._writer.is_closing():
            log.warning("the egress gateway's question %s could not be answered: its channel is closed", question_id)
            return
        self._writer.write(_encode(Answer(question_id, allow)))

    def _writer_close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        for future in self._pongs.values():
            if not future.done():
                future.set_result(None)
        self._pongs.clear()

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

    async def stop(self) -> None:
        self._stopping = True
        proc, self._proc = self._proc, None
        try:
            if proc is not None and proc.returncode is None:
                await terminate([proc], 5.0)
        finally:
            self._writer_close()
            if self._life is not None:
                await self._life.close()
            shutil.rmtree(self.run_dir, ignore_errors=True)


def _loopback_upstreams() -> dict[str, str]:
    """``LOOPBACK_UPSTREAMS``, loopback targets only."""
    out = {}
    for name, target in LOOPBACK_UPSTREAMS.items():
        if not target.startswith("127.0.0.1:"):
            raise GatewayError(f"a test upstream must be on 127.0.0.1, not {target!r}")
        out[name] = target
    return out
