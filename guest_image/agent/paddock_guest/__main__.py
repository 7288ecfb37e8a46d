"""The agent's entry point: busybox init starts it through /opt/paddock/bin/paddock-agent (see
/etc/inittab), or `python3 -u -m paddock_guest`."""

from __future__ import annotations

from paddock_guest.startup import defer_unused

defer_unused()  # before grpc is imported: what it imports and the agent never uses is not loaded

import os  # noqa: E402
import time  # noqa: E402
from concurrent import futures  # noqa: E402

import grpc  # noqa: E402

from paddock.guest.v1 import agent_pb2_grpc as pb_grpc  # noqa: E402
from paddock_guest.claim import BootKeyInterceptor, KeyBox  # noqa: E402
from paddock_guest.config import AGENT_SOCKET, PORT_NAME, log, uptime  # noqa: E402
from paddock_guest.events import EventHub  # noqa: E402
from paddock_guest.service import Agent  # noqa: E402
from paddock_guest.transport import find_port, start_relay  # noqa: E402
from paddock_guest.watch import WATCHER  # noqa: E402


def serve() -> None:
    os.makedirs(os.path.dirname(AGENT_SOCKET), mode=0o700, exist_ok=True)
    if os.path.exists(AGENT_SOCKET):
        os.unlink(AGENT_SOCKET)
    hub = EventHub()
    key_box = KeyBox()
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=32),
        interceptors=[BootKeyInterceptor(key_box)],
        options=[
            ("grpc.max_receive_message_length", 64 * 1024 * 1024),
            ("grpc.max_send_message_length", 64 * 1024 * 1024),
        ],
    )
    pb_grpc.add_GuestAgentServicer_to_server(Agent(hub, key_box), server)
    server.add_insecure_port(f"unix:{AGENT_SOCKET}")
    server.start()
    WATCHER.ensure(hub)  # when the agent restarts with the shared folder already mounted
    os.chmod(AGENT_SOCKET, 0o600)
    port = None
    for _ in range(200):
        port = find_port(PORT_NAME)
        if port:
            break
        time.sleep(0.05)
    if port is None:
        log(f"no virtio-serial port named {PORT_NAME}; serving on {AGENT_SOCKET} only")
    else:
        how = start_relay(port, AGENT_SOCKET)
        log(f"ready on {port} ({how}; guest uptime {uptime():.2f} s)")
    server.wait_for_termination()


if __name__ == "__main__":
    serve()
