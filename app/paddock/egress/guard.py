"""The one guard every hook of the gateway runs inside: any exception refuses, and is recorded.

mitmproxy, when an addon's hook raises, logs the error and carries on with the flow as it was:
the request would leave unchecked, with the guest's own headers. So the gateway's rules are
never handed to mitmproxy directly. The only addon mitmproxy sees is a ``Guard``, whose hooks
are a fixed table: each calls the rules' hook of the same name inside ``try``, and on any
exception turns the flow into a refusal (403, a plain reason, a recorded decision). If even
recording fails, the flow is killed. A rules object with a hook this table does not know is
refused when the gateway starts, so a hook cannot be added outside the guard by mistake.
"""

from __future__ import annotations

import logging
import traceback
from typing import Any, Protocol

log = logging.getLogger("paddock.egress.guard")

# Hook name -> what a failure there does. "flow": refuse the flow; "kill": kill it (a stream that is
# not HTTP); "server": refuse the connection to the upstream; "stop": stop the gateway (it could not
# start safely); "log": nothing to refuse.
HOOKS = {
    "tcp_start": "kill",
    "udp_start": "kill",
    "websocket_start": "kill",
    "running": "stop",
    "http_connect": "flow",
    "requestheaders": "flow",
    "request": "flow",
    "response": "flow",
    "error": "log",
    "server_connect": "server",
    "client_disconnected": "log",
}
# Every hook name mitmproxy calls on an addon (mitmproxy.hooks.all_hooks, as of mitmproxy 11),
# so that a rules object defining one the table above does not guard is caught at start.
KNOWN_HOOKS = frozenset({
    "load", "configure", "running", "done", "update", "client_connected", "client_disconnected",
    "server_connect", "server_connected", "server_disconnected", "server_connect_error", "next_layer",
    "http_connect", "http_connect_upstream", "http_connected", "http_connect_error", "requestheaders",
    "request", "responseheaders", "response", "error", "tls_clienthello", "tls_start_client",
    "tls_start_server", "tls_established_client", "tls_established_server", "tls_failed_client",
    "tls_failed_server", "tcp_start", "tcp_message", "tcp_end", "tcp_error", "udp_start", "udp_message",
    "udp_end", "udp_error", "websocket_start", "websocket_message", "websocket_end", "dns_request",
    "dns_response", "dns_error", "quic_start_client", "quic_start_server", "add_log", "clienthello",
})  # fmt: skip
INTERNAL_ERROR = "the gateway could not check this request (an internal error), so it was not sent"


class Rules(Protocol):
    def refuse_after_error(self, flow: Any, reason: str) -> None:
        """Answer ``flow`` with a refusal and record the decision."""


class GuardError(RuntimeError):
    pass


class Guard:
    """The gateway's only mitmproxy addon (see the module's docstring)."""

    def __init__(self, rules: Rules, stop: Any = None) -> None:
        unguarded = sorted(n for n in KNOWN_HOOKS - set(HOOKS) if callable(getattr(rules, n, None)))
        if unguarded:
            raise GuardError(f"these gateway hooks would run outside the guard: {', '.join(unguarded)}")
        if getattr(rules, "addons", None):
            raise GuardError("the gateway's rules may not carry addons of their own")
        self._rules = rules
        self._stop = stop  # called when the gateway cannot start safely

    def _call(self, name: str, arg: Any) -> None:
        hook = getattr(self._rules, name, None)
        if hook is None:
            return
        try:
            hook(arg)
        except BaseException as exc:  # noqa: BLE001 - every failure refuses; nothing is let through
            self._failed(name, arg, exc)

    def _failed(self, name: str, arg: Any, exc: BaseException) -> None:
        log.error("gateway hook %s failed: %s", name, "".join(traceback.format_exception(exc))[-4000:])
        action = HOOKS[name]
        if action == "flow":
            refuse(self._rules, arg)
        elif action == "kill":
            kill(arg)
        elif action == "server":
            arg.server.error = INTERNAL_ERROR
        elif action == "stop" and self._stop is not None:
            self._stop()

    # The table, one method per hook (mitmproxy finds hooks by attribute name).
    def running(self) -> None:
        try:
            self._rules.running()  # type: ignore[attr-defined]
        except BaseException as exc:  # noqa: BLE001
            self._failed("running", None, exc)

    def http_connect(self, flow: Any) -> None:
        self._call("http_connect", flow)

    def requestheaders(self, flow: Any) -> None:
        self._call("requestheaders", flow)

    def request(self, flow: Any) -> None:
        self._call("request", flow)

    def response(self, flow: Any) -> None:
        self._call("response", flow)

    def error(self, flow: Any) -> None:
        self._call("error", flow)

    def server_connect(self, data: Any) -> None:
        self._call("server_connect", data)

    def client_disconnected(self, client: Any) -> None:
        self._call("client_disconnected", client)

    def tcp_start(self, flow: Any) -> None:
        self._call("tcp_start", flow)

    def udp_start(self, flow: Any) -> None:
        self._call("udp_start", flow)

    def websocket_start(self, flow: Any) -> None:
        self._call("websocket_start", flow)


def refuse(rules: Rules, flow: Any) -> None:
    """Refuse ``flow`` after an error: with a recorded decision if possible, killed if not."""
    try:
        rules.refuse_after_error(flow, INTERNAL_ERROR)
        if getattr(flow, "response", None) is not None and flow.response.status_code == 403:
            return
    except BaseException as exc:  # noqa: BLE001
        log.error("recording a refusal failed: %r", exc)
    kill(flow)


def kill(flow: Any) -> None:
    try:
        flow.kill()
    except BaseException as exc:  # noqa: BLE001
        log.error("killing a refused flow failed: %r", exc)
