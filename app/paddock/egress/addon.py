"""The egress gateway's rules, as a mitmproxy addon (loaded by ``mitmdump -s``).

Runs in the gateway's own Python environment (mitmproxy cannot share the
app's: it pins an older h11). Every request from the guest is checked against
the capability grants of the managed policy:

* the session token (Proxy-Authorization) must be valid for this VM, now:
  revocation is read on every request;
* scheme, host, port, method and path must fall inside one grant;
* the Host header and SNI must agree with the CONNECT target;
* names must not resolve to private, loopback or link-local addresses, and
  the gateway connects to the address it checked (a second lookup could
  answer differently: DNS rebinding);
* every credential the guest supplied is stripped (Authorization, x-api-key,
  cookies, keys in the query string), and the real key is attached only where
  the grant names one;
* redirects to other hosts and oversized bodies are refused.

Anything unclear is refused. Every decision is written as a JSON line naming
the grant that allowed it (or why nothing did) for the audit trail.
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

from mitmproxy import ctx, http  # type: ignore[import-not-found]  # the gateway's own environment

from paddock.egress.rules import (
    STRIP_QUERY,
    authority_matches,
    blocked_address,
    forwardable,
    match_grant,
    messages_body_problem,
)
from paddock.egress.tokens import TokenAuthority, TokenError

MAX_BODY = 10 * 1024 * 1024


class Gate:
    def __init__(self) -> None:
        cfg_path = os.environ["PADDOCK_GATEWAY_CONFIG"]
        self.cfg: dict[str, Any] = json.loads(Path(cfg_path).read_text())
        self.secrets: dict[str, str] = json.loads(sys.stdin.readline() or "{}")  # never on disk or argv
        self.authority = TokenAuthority(Path(self.cfg["token_dir"]))
        self.vm_id: str = self.cfg["vm_id"]
        self.grants: list[dict[str, Any]] = self.cfg["grants"]
        self.grant_ids = [g["id"] for g in self.grants]
        # host -> "ip:port": only for tests, written by the host side from the test process's environment.
        self.overrides: dict[str, str] = self.cfg.get("test_upstream_overrides", {})
        self.decisions = open(self.cfg["decisions"], "a", buffering=1)  # noqa: SIM115 - lives as long as the addon
        self.tokens: dict[str, str] = {}  # client connection id -> token
        self.tunnel_hosts: dict[str, str] = {}  # client connection id -> the host its CONNECT named
        self.checked: dict[tuple[str, int], str] = {}  # (name, port) -> the address that was checked
        # Grants the person gave for this session only (written by the host app, read on every request).
        self.session_grants_path = Path(self.cfg["session_grants"]) if self.cfg.get("session_grants") else None
        self._session_grants: list[dict[str, Any]] = []
        self._session_grants_mtime = 0

    # ------------------------------------------------------------------ lifecycle

    def running(self) -> None:
        server = ctx.master.addons.get("proxyserver")
        addrs = server.listen_addrs() if server else []
        Path(self.cfg["ready"]).write_text(json.dumps({"port": addrs[0][1] if addrs else 0}))

    # ------------------------------------------------------------------ decisions

    def _decide(self, flow: http.HTTPFlow, allowed: bool, reason: str, grant: str | None = None, *,
                status: int = 403, no_grant: bool = False) -> None:  # fmt: skip
        req = flow.request
        record = {"time_unix": time.time(), "allowed": allowed, "reason": reason, "grant": grant, "no_grant": no_grant,
                  "method": req.method, "scheme": req.scheme, "host": req.pretty_host, "port": req.port,
                  "path": req.path.split("?")[0][:300]}  # fmt: skip
        self.decisions.write(json.dumps(record) + "\n")
        if not allowed:
            flow.response = http.Response.make(status, f"Paddock refused this request: {reason}\n".encode(),
                                               {"content-type": "text/plain"})  # fmt: skip

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
        if not self._token_ok(flow, self._proxy_token(req.headers)):
            return
        if self._matching_grant("https", req.host, req.port, None, None) is None:
            self._decide(flow, False, f"no grant for {req.host}:{req.port}", no_grant=True)
            return
        if not self._resolves_safely(flow, req.host, req.port):
            return
        self.tokens[flow.client_conn.id] = self._proxy_token(req.headers) or ""
        self.tunnel_hosts[flow.client_conn.id] = req.host

    def request(self, flow: http.HTTPFlow) -> None:
        req = flow.request
        if req.method == "CONNECT":
            return
        token = self._tunnel_token(flow)
        if token is None:
            return
        if not self._token_ok(flow, token):  # checked on every request: revocation is immediate
            return
        grant = self._matching_grant(req.scheme, req.host, req.port, req.method, req.path)
        if grant is None:
            where = f"{req.scheme}://{req.host}{req.path.split('?')[0]}"
            self._decide(flow, False, f"no grant allows {req.method} {where}", no_grant=True)
            return
        if len(req.raw_content or b"") > MAX_BODY:
            self._decide(flow, False, "the request body is too large", grant["id"], status=413)
            return
        if grant.get("api") == "anthropic-messages" and (problem := self._body_problem(flow)):
            self._decide(flow, False, problem, grant["id"])
            return
        if not self._swap_credentials(flow, grant):
            return
        self._decide(flow, True, "granted", grant["id"])

    def _tunnel_token(self, flow: http.HTTPFlow) -> str | None:
        """The session token this request came with; None (and refused) when the request does
        not stay with the host its granted tunnel was opened to, or resolves unsafely."""
        req = flow.request
        if flow.client_conn.id not in self.tokens:  # plain HTTP through the proxy
            if req.host_header and not authority_matches(req.host_header, req.host, req.port, req.scheme):
                self._decide(flow, False, "the Host header disagrees with the request's target")
                return None
            return (self._proxy_token(req.headers) or "") if self._resolves_safely(flow, req.host, req.port) else None
        connect_host = self.tunnel_hosts.get(flow.client_conn.id)
        sni = flow.client_conn.sni
        if req.host_header and not authority_matches(req.host_header, req.host, req.port, req.scheme):
            self._decide(flow, False, "the Host header disagrees with the tunnel's target")
        elif sni and sni != req.host:
            self._decide(flow, False, "the TLS server name disagrees with the tunnel's target")
        elif connect_host != req.host:
            self._decide(flow, False, "the request left its tunnel's host")
        else:
            return self.tokens[flow.client_conn.id]
        return None

    def _body_problem(self, flow: http.HTTPFlow) -> str | None:
        """The body as the upstream would read it, checked. A compressed body is refused rather
        than inflated here (a small body can inflate to gigabytes; the model SDKs send plain JSON)."""
        encoding = flow.request.headers.get("content-encoding", "identity").strip().lower()
        if encoding not in ("", "identity"):
            return f"a {encoding}-compressed request body is not allowed on this grant"
        return messages_body_problem(flow.request.raw_content or b"")

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
        self.tunnel_hosts.pop(client.id, None)

    def response(self, flow: http.HTTPFlow) -> None:
        resp = flow.response
        if resp is None or not (300 <= resp.status_code < 400):
            return
        location = resp.headers.get("location", "")
        if location.startswith(("http://", "https://")):
            target = location.split("://", 1)[1].split("/", 1)[0].split(":")[0]
            if target != flow.request.host:
                flow.response = http.Response.make(403, b"Paddock refused a redirect to another host\n",
                                                   {"content-type": "text/plain"})  # fmt: skip
                self._decide(flow, False, f"redirect to another host ({target})")


addons = [Gate()]
