#!/bin/sh
# Paddock as installed by the package: the guest image and the egress gateway from /opt/paddock.
PADDOCK_GUEST_IMAGE="${PADDOCK_GUEST_IMAGE:-/opt/paddock/guest}"
PADDOCK_MITMDUMP="${PADDOCK_MITMDUMP:-/opt/paddock/gateway/bin/mitmdump}"
export PADDOCK_GUEST_IMAGE PADDOCK_MITMDUMP
exec /opt/paddock/venv/bin/paddock "$@"
