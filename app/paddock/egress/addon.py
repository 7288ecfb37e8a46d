"""The egress gateway's rules, for mitmproxy (``paddock.egress.run`` loads them behind the guard).

Runs in the gateway's own Python environment (mitmproxy cannot share the
app's: it pins an older h11). Every hook runs inside ``paddock.egress.guard``: an
exception anywhere refuses the request and records it. Every request from the
guest is checked against the capability grants of the managed policy:

* the session token (Proxy-Authorization) must be valid for this VM, now:
  revocation is read on every request;
* scheme, host, port, method and path must fall inside one grant;
* one canonical request (scheme, host, port, method, path) is derived from the
  tunnel before any rule runs; a request line (absolute-form target), Host
  header or SNI that disagrees with it is refused, and the request goes
  upstream in origin-form;
* a grant that attaches a credential serves one API (``paddock.egress.profiles``):
  only that API's paths and request fields pass, read within bounds;
* names must not resolve to private, loopback or link-local addresses, and
  the gateway connects to the address it checked (a second lookup could
  answer differently: DNS rebinding);
* every credential the guest supplied is stripped (Authorization, x-api-key,
  cookies, keys in the query string), and the real key is attached only where
  the grant names one;
* redirects to other hosts and oversized bodies are refused;
* after a sensitive read in the folder, a request that can carry data out is held
  (``paddock.egress.taint``) until the person allows it once, or refused where policy says so;
* a request carrying one of the session's decoy secrets (``paddock.egress.tripwires``), in any
  disguise that module knows, is refused, and so is every request after it: the session's
  egress is closed for good (the decision names the decoy, and the host revokes the token).

Anything unclear is refused. Every decision, naming the grant that allowed it
(or why nothing did), is pushed to the host over the gateway's channel
(``paddock.egress.channel``) before the request goes on; if the channel is
broken the request is refused and the gateway stops.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from mitmproxy import ctx, http  # type: ignore[import-not-found]  # the gateway's own environment

from paddock.egress.channel import ChannelClosed, Decision, GatewaySide, Ready
from paddock.egress.profiles import MAX_BODY, request_problem
from paddock.egress.rules import (
    STRIP_QUERY,
    authority_matches,
    blocked_address,
    clean_path,
    forwardable,
    framing_problem,
    match_grant,
)
from paddock.egress.taint import TaintGate, carries_data
from paddock.egress.tokens import TokenAuthority, TokenError
from paddock.egress.tripwires import Tripwires

CHANNEL_BROKEN = "the gateway lost its link to Paddock, so nothing more is sent"


class Gate:
    def __init__(self, channel: GatewaySide) -> None:
        self.channel = channel  # every decision goes to the host here, before the request goes on
        cfg_path = os.environ["PADDOCK_GATEWAY_CONFIG"]
        self.cfg: dict[str, Any] = json.loads(Path(cfg_path).read_text())
        self.secrets: dict[str, str] = json.loads(sys.stdin.readline() or "{}")  # never on disk or argv
        self.authority = TokenAuthority(Path(self.cfg["token_dir"]))
        self.vm_id: str = self.cfg["vm_id"]
        self.grants: list[dict[str, Any]] = self.cfg["grants"]
        self.grant_ids = [g["id"] for g in self.grants]
        # host -> "ip:port": only for tests, written by the host side from the test process's environment.
        self.overrides: dict[str, str] = self.cfg.get("test_upstream_overrides", {})
        self.tokens: dict[str, str] = {}  # client connection id -> token
        self.tunnels: dict[str, tuple[str, int]] = {}  # client connection id -> the (host, port) its CONNECT named
        self.checked: dict[tuple[str, int], str] = {}  # (name, port) -> the address that was checked
        # Grants the person gave for this session only (written by the host app, read on every request).
        self.session_grants_path = Path(self.cfg["session_grants"]) if self.cfg.get("session_grants") else None
        self._session_grants: list[dict[str, Any]] = []
        self._session_grants_mtime = 0
        self.tripwires = Tripwires(self.cfg.get("tripwires", []))
        self.tripped: str | None = None  # the decoy that closed this session's egress
        self.taint = TaintGate(Path(cfg_path).parent, str(self.cfg.get("taint_mode", "ask")))

    # ------------------------------------------------------------------ lifecycle

    def running(self) -> None:
        server = ctx.master.addons.get("proxyserver")
        addrs = server.listen_addrs() if server else []
        self.channel.send(Ready(addrs[0][1] if addrs else 0))

    # ------------------------------------------------------------------ decisions

    def _decide(self, flow: http.HTTPFlow, allowed: bool, reason: str, grant: str | None = None, *,
                status: int = 403, no_grant: bool = False, **extra: Any) -> None:  # fmt: skip
        """Push the decision to the host; a refusal answers the guest first (so it stands even if
        that fails), and an allowed request whose decision cannot reach the host is refused."""
        flow.metadata["paddock.decided"] = True
        if not allowed:
            flow.response = http.Response.make(status, f"Paddock refused this request: {reason}\n".encode(),
                                               {"content-type": "text/plain"})  # fmt: skip
        req = flow.request
        tunnel = self.tunnels.get(flow.client_conn.id)
        host, port = tunnel if tunnel and req.method != "CONNECT" else (str(req.host)[:253], req.port)
        decision = Decision(allowed, reason[:500], grant, str(req.method)[:20], host, str(req.path).split("?")[0][:300],
                            port, req.scheme, no_grant, time.time(), **extra)  # fmt: skip
        try:
            self.channel.send(decision)
        except ChannelClosed:
            flow.response = http.Response.make(503, f"Paddock refused this request: {CHANNEL_BROKEN}\n".encode(),
                                               {"content-type": "text/plain"})  # fmt: skip
            ctx.master.shutdown()

    def refuse_after_error(self, flow: http.HTTPFlow, reason: str) -> None:
        """The guard's refusal, when a hook failed: 403 and a recorded decision."""
        self._decide(flow, False, reason)

    def _tripwire(self, flow: http.HTTPFlow) -> bool:
        """True (and refused) when egress is closed or this request carries a decoy secret:
        its target, request line, every header and the body are looked at."""
        if self.tripped is not None:
            self._decide(flow, False, "egress is closed for this session: a decoy secret was sent out earlier",
                         tripwire=self.tripped, closed=True)  # fmt: skip
            return True
        if not self.tripwires:
            return False
        req = flow.request
        headers = [bytes(k) + b": " + bytes(v) for k, v in req.headers.fields]
        name = self.tripwires.found(str(req.host).encode(), str(req.path).encode(), *headers, req.raw_content or b"")
        if name is None:
            return False
        self.tripped = name
        self._decide(flow, False, f"the request carried a decoy secret ({name}); egress is closed for this session",
                     tripwire=name, severity="high")  # fmt: skip
        return True

    def _token_ok(self, flow: http.HTTPFlow, value: str | None) -> bool:
        try:
            self.authority.check(value, vm_id=self.vm_id, grant_ids=self.grant_ids)
            return True
        except TokenError as exc:
            self._decide(flow, False, f"session token refused ({exc.reason})", status=407)
            return False

    @staticmethod
    def _proxy_token(headers: http.Headers) -> str | None:
        raw = headers.get("proxy-authorization", "")
        if not raw.lower().startswith("basic "):
            return None
        try:
            user_pass = base64.b64decode(raw[6:]).decode()
        except ValueError:
            return None
        return user_pass.partition(":")[2] or None

    def _matching_grant(
        self, scheme: str, host: str, port: int, method: str | None, path: str | None
    ) -> dict[str, Any] | None:
        return match_grant(self.grants + self._load_session_grants(), scheme, host, port, method=method, path=path)

    def _load_session_grants(self) -> list[dict[str, Any]]:
        path = self.session_grants_path
        if path is None:
            return []
        try:
            mtime = path.stat().st_mtime_ns
            if mtime != self._session_grants_mtime:
                self._session_grants = list(json.loads(path.read_text()))
                self._session_grants_mtime = mtime
        except FileNotFoundError:
            self._session_grants = []
        except (OSError, ValueError):
            self._session_grants = []  # unreadable: nothing extra is allowed
        return self._session_grants

    def _resolves_safely(self, flow: http.HTTPFlow, host: str, port: int) -> bool:
        if host in self.overrides:
            return True  # test upstream on loopback, set by the host side only
        try:
            ipaddress.ip_address(host)
            self._decide(flow, False, "IP addresses are not granted; use a name")
            return False
        except ValueError:
            pass
        try:
            addrs = {str(ai[4][0]) for ai in socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)}
        except OSError:
            self._decide(flow, False, f"{host} does not resolve", status=502)
            return False
        if not addrs or any(blocked_address(a) for a in addrs):
            self._decide(flow, False, f"{host} resolves to a private, loopback or link-local address")
            return False
        self.checked[(host, port)] = sorted(addrs)[0]  # server_connect connects here, not to a new lookup
        return True

    # ------------------------------------------------------------------ hooks

    def http_connect(self, flow: http.HTTPFlow) -> None:
        req = flow.request
        if self._tripwire(flow):
            return
        if flow.client_conn.id in self.tunnels:
            self._decide(flow, False, "a tunnel may not open another tunnel")
            return
        if not self._token_ok(flow, self._proxy_token(req.headers)):
            return
        host = str(req.host).lower()
        if self._matching_grant("https", host, req.port, None, None) is None:
            self._decide(flow, False, f"no grant for {host[:253]}:{req.port}", no_grant=True)
            return
        if not self._resolves_safely(flow, host, req.port):
            return
        self.tokens[flow.client_conn.id] = self._proxy_token(req.headers) or ""
        self.tunnels[flow.client_conn.id] = (host, req.port)

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        """A body declared larger than the limit is refused before it is read into memory."""
        length = flow.request.headers.get("content-length", "0").strip()
        if flow.request.method != "CONNECT" and (not length.isdigit() or int(length) > MAX_BODY):
            self._decide(flow, False, "the request body is too large", status=413)
            flow.kill()

    def request(self, flow: http.HTTPFlow) -> None:
        req = flow.request
        if req.method == "CONNECT" or self._tripwire(flow):
            return
        token = self._tunnel_token(flow)
        if token is None:
            return
        if not self._token_ok(flow, token):  # checked on every request: revocation is immediate
            return
        grant = self._matching_grant(req.scheme, req.host, req.port, req.method, req.path)
        if grant is None:
            where = f"{req.scheme}://{req.host}{req.path.split('?')[0]}"
            self._decide(flow, False, f"no grant allows {req.method} {where[:300]}", no_grant=True)
            return
        if len(req.raw_content or b"") > MAX_BODY:
            self._decide(flow, False, "the request body is too large", grant["id"], status=413)
            return
        if self._held(flow, grant):
            return
        if problem := self._profile_problem(flow, grant):
            self._decide(flow, False, problem, grant["id"])
            return
        if not self._swap_credentials(flow, grant):
            return
        req.authority = ""  # origin-form upstream: the target is the canonical host, nothing else
        once = flow.metadata.get("paddock.allowed_once")
        self._decide(flow, True, "granted once by the person after a sensitive read" if once else "granted",
                     grant["id"], **({"allowed_once": once} if once else {}))  # fmt: skip

    def _held(self, flow: http.HTTPFlow, grant: dict[str, Any]) -> bool:
        """After a sensitive read, a request that can carry data out waits for the person's yes
        (``paddock.egress.taint``): refused and marked ``held`` unless a yes for it is unused."""
        req = flow.request
        read = self.taint.tainted_by()
        if read is None or not carries_data(grant, req.method, req.path, len(req.raw_content or b"")):
            return False
        path = str(req.path).split("?")[0][:300]
        if (allow := self.taint.allowed_once(req.method, req.host, path)) is not None:
            flow.metadata["paddock.allowed_once"] = allow
            return False
        name = str(read.get("path", ""))[:300]
        if self.taint.mode == "refuse":
            why = f"the assistant read {name}; policy refuses sending data out after a sensitive read"
        else:
            why = f"held: the assistant read {name}; sending data to {req.host} needs the person's yes"
        self._decide(flow, False, why, grant["id"], held=True, taint=str(read.get("id", "")), taint_path=name,
                     taint_mode=self.taint.mode)  # fmt: skip
        return True

    def _tunnel_token(self, flow: http.HTTPFlow) -> str | None:
        """The session token this request came with, once the request is canonical: its
        scheme, host and port are the tunnel's (or, outside a tunnel, its request line's), and
        its request line, Host header and SNI say the same. None (and refused) otherwise."""
        req = flow.request
        hosts = req.headers.get_all("host")
        if len(hosts) != 1:
            self._decide(flow, False, "the request must name its host exactly once (one Host header)")
            return None
        tunnel = self.tunnels.get(flow.client_conn.id)
        if tunnel is None:  # plain HTTP through the proxy: the request line is the target
            host, port, scheme = str(req.host).lower(), req.port, req.scheme
        else:
            (host, port), scheme = tunnel, ("https" if flow.client_conn.tls_established else "http")
        if (str(req.host).lower(), req.port, req.scheme) != (host, port, scheme):
            self._decide(flow, False, "the request names another target than its tunnel's")
        elif tunnel is not None and req.authority:  # mitmproxy keeps no scheme or port of it: refuse them all
            self._decide(flow, False, "inside a tunnel, the request line may name only a path, not a full address")
        elif req.authority and not authority_matches(req.authority, host, port, scheme):
            self._decide(flow, False, "the request line names another host than its Host header")
        elif not authority_matches(hosts[0], host, port, scheme):
            self._decide(flow, False, "the Host header disagrees with the request's target")
        elif (sni := flow.client_conn.sni) and str(sni).lower() != host:
            self._decide(flow, False, "the TLS server name disagrees with the tunnel's target")
        elif tunnel is None:
            return (self._proxy_token(req.headers) or "") if self._resolves_safely(flow, host, port) else None
        else:
            req.host = host  # the canonical name (lower case) from here on
            return self.tokens[flow.client_conn.id]
        return None

    def _profile_problem(self, flow: http.HTTPFlow, grant: dict[str, Any]) -> str | None:
        """A grant that attaches a credential serves one API; only that API's requests pass. On
        every grant the framing headers passed on must be well formed (``framing_problem``)."""
        if problem := framing_problem(list(flow.request.headers.items(multi=True))):
            return problem
        api = grant.get("api")
        if api in (None, "", "any"):
            if grant.get("credential") and api != "any":
                return "this grant attaches a key but does not say which API it serves"
            return None
        req = flow.request
        path = clean_path(req.path) or ""
        headers = {str(k).lower(): str(v) for k, v in req.headers.items()}
        return request_problem(str(api), req.method, path, query_keys=list(req.query.keys()), headers=headers,
                               body=req.raw_content or b"")  # fmt: skip

    def _swap_credentials(self, flow: http.HTTPFlow, grant: dict[str, Any]) -> bool:
        """Drop every header the grant does not pass (so every credential the guest sent) and
        credential-shaped query keys; attach the grant's real credential. False: refused."""
        req = flow.request
        for name in list(req.headers.keys()):
            if not forwardable(name, grant):
                del req.headers[name]
        for key in list(req.query.keys()):
            if key.lower() in STRIP_QUERY:
                del req.query[key]
        credential = grant.get("credential")
        if not credential:
            return True
        secret = self.secrets.get(credential)
        if not secret:
            self._decide(flow, False, f"the credential {credential} is not available", grant["id"], status=503)
            return False
        header = grant.get("credential_header") or "authorization"
        req.headers[header] = f"Bearer {secret}" if header.lower() == "authorization" else secret
        return True

    def server_connect(self, data: Any) -> None:
        """Connect to the address that was checked for this name, never to a fresh lookup.
        A name nothing checked (it cannot happen through the hooks above) is not connected."""
        host, port = data.server.address
        if host in self.overrides:
            ip, _, override_port = self.overrides[host].partition(":")
            data.server.address = (ip, int(override_port))
        elif (address := self.checked.get((host, port))) is not None:
            data.server.address = (address, port)
        else:
            data.server.error = f"Paddock connects only to addresses it checked; {host} was not checked"

    def client_disconnected(self, client: Any) -> None:
        self.tokens.pop(client.id, None)
        self.tunnels.pop(client.id, None)

    def tcp_start(self, flow: Any) -> None:
        """Only HTTP (in TLS or not) passes: a raw stream would carry anything, unchecked."""
        self._refuse_stream(flow, "a connection that is not HTTP")

    def udp_start(self, flow: Any) -> None:
        self._refuse_stream(flow, "a UDP stream")

    def websocket_start(self, flow: Any) -> None:
        self._refuse_stream(flow, "a WebSocket")

    def _refuse_stream(self, flow: Any, what: str) -> None:
        flow.kill()
        host, port = self.tunnels.get(flow.client_conn.id, (str(flow.server_conn.address), 0))
        refused = Decision(False, f"{what} is not allowed", None, "", host, "", port, "", False, time.time())
        try:
            self.channel.send(refused)
        except ChannelClosed:
            ctx.master.shutdown()

    def error(self, flow: http.HTTPFlow) -> None:
        """mitmproxy gave up on a request no rule has decided yet (a broken request): record it."""
        if not flow.metadata.get("paddock.decided") and flow.error is not None:
            self._decide(flow, False, f"the request could not be read ({str(flow.error.msg)[:200]})", status=400)

    def response(self, flow: http.HTTPFlow) -> None:
        resp = flow.response
        if resp is None or not (300 <= resp.status_code < 400):
            return
        target = _redirect_host(resp.headers.get("location", ""))
        if target is not None and target != flow.request.host.lower():
            flow.response = http.Response.make(403, b"Paddock refused a redirect to another host\n",
                                               {"content-type": "text/plain"})  # fmt: skip
            self._decide(flow, False, f"redirect to another host ({target})")


def _redirect_host(location: str) -> str | None:
    """The host a redirect sends the client to; None when it stays on this one (a relative path).
    Read with ``urlsplit``: ``//other/`` and ``HTTPS://other/`` name a host too, and a URL that
    cannot be read (``https:\\other``, ``http://[::1/``) names none this request went to ("")."""
    try:
        parts = urlsplit(location.strip())
        host = parts.hostname
    except ValueError:
        return ""
    if parts.netloc or parts.scheme in ("http", "https"):
        return host or ""
    return None
