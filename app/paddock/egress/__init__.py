"""The egress gateway: the guest's only way out, built on mitmproxy (run as its own process)."""

from paddock.egress.gateway import Decision, EgressGateway, GatewayError, find_mitmdump
from paddock.egress.tokens import SessionToken, TokenAuthority, TokenError

__all__ = [
    "Decision",
    "EgressGateway",
    "GatewayError",
    "SessionToken",
    "TokenAuthority",
    "TokenError",
    "find_mitmdump",
]
