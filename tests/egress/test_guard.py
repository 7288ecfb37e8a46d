"""The guard around the gateway's hooks, with mitmproxy's own flow objects (run in the gateway's
environment, where mitmproxy lives): any exception in any hook refuses and is recorded; a
failure to record kills the flow; a hook outside the guard stops the gateway from starting."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from paddock.egress.gateway import APP_ROOT, gateway_python

SCRIPT = r"""
from mitmproxy import hooks, http
from mitmproxy.test import tflow

from paddock.egress.addon import Gate
from paddock.egress.guard import HOOKS, INTERNAL_ERROR, KNOWN_HOOKS, Guard, GuardError

# Every hook mitmproxy knows is known to the guard, and every hook the real rules define is guarded.
assert set(hooks.all_hooks) <= KNOWN_HOOKS, set(hooks.all_hooks) - KNOWN_HOOKS
defined = {name for name in hooks.all_hooks if callable(getattr(Gate, name, None))}
assert defined <= set(HOOKS), defined - set(HOOKS)


class Broken:
    def __init__(self, record=True):
        self.recorded, self.record = [], record

    def refuse_after_error(self, flow, reason):
        flow.response = http.Response.make(403, reason.encode())
        if not self.record:
            raise OSError("disk full")
        self.recorded.append(reason)

    def http_connect(self, flow):
        raise TypeError("a CONNECT the rules did not expect")

    def request(self, flow):
        raise RecursionError("maximum recursion depth exceeded")

    def response(self, flow):
        raise ValueError("bad redirect")

    def server_connect(self, data):
        raise KeyError("no such address")


rules = Broken()
guard = Guard(rules)
for hook in ("http_connect", "request", "response"):
    flow = tflow.tflow(resp=hook == "response")
    getattr(guard, hook)(flow)
    assert flow.response is not None and flow.response.status_code == 403, hook
assert rules.recorded == [INTERNAL_ERROR] * 3, rules.recorded


class Data:
    def __init__(self):
        self.server = tflow.tserver_conn()


data = Data()
guard.server_connect(data)
assert data.server.error == INTERNAL_ERROR

unrecordable = Guard(Broken(record=False))
flow = tflow.tflow()
unrecordable.request(flow)
assert flow.error is not None and flow.error.msg == "Connection killed.", flow.error


class Sneaky(Broken):
    def websocket_message(self, flow):
        pass


try:
    Guard(Sneaky())
except GuardError as exc:
    assert "websocket_message" in str(exc)
else:
    raise AssertionError("a hook outside the guard was accepted")
print("OK")
"""


def test_every_hook_fails_closed_and_no_hook_escapes_the_guard(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(APP_ROOT), "PYTHONDONTWRITEBYTECODE": "1"}
    proc = subprocess.run([str(gateway_python()), "-c", SCRIPT], capture_output=True, text=True, timeout=120,
                          env=env, cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0 and proc.stdout.strip().endswith("OK"), proc.stdout + proc.stderr
