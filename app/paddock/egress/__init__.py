"""The egress gateway: the guest's only way out, built on mitmproxy (run as its own process)."""

from paddock.egress.gateway import Decision, EgressGateway, GatewayError, find_mitmdump

__all__ = ["Decision", "EgressGateway", "GatewayError", "find_mitmdump"]
