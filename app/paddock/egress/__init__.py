"""The egress gateway: the guest's only way out, built on mitmproxy (run as its own process)."""

from paddock.egress.channel import Alert, Decision, Question
from paddock.egress.gateway import EgressGateway, GatewayError, find_mitmdump
from paddock.egress.taint import UNWATCHED
from paddock.egress.tokens import SessionToken, TokenAuthority, TokenError

__all__ = [
    "UNWATCHED",
    "Alert",
    "Decision",
    "EgressGateway",
    "GatewayError",
    "Question",
    "SessionToken",
    "TokenAuthority",
    "TokenError",
    "find_mitmdump",
]
