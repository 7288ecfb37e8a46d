"""Egress: carry guest connections to 127.0.0.1:3128 to the host's gateway, one frame at a time,
and install the gateway's CA certificate."""

from __future__ import annotations

import os
import queue
import socket
import threading
from collections.abc import Iterator

import grpc

from paddock.guest.v1 import agent_pb2 as pb
from paddock_guest.config import CA_PATH, CHUNK, EGRESS_PORT
from paddock_guest.events import drain


def install_ca(pem: bytes) -> None:
    """Put the gateway's CA certificate where the guest's TLS clients look for it."""
    os.makedirs(os.path.dirname(CA_PATH), exist_ok=True)
    with open(CA_PATH + ".tmp", "wb") as fh:
        fh.write(pem)
    os.chmod(CA_PATH + ".tmp", 0o644)
    os.rename(CA_PATH + ".tmp", CA_PATH)


def tunnel(
    request_iterator: Iterator[pb.EgressFrame], context: grpc.ServicerContext, busy: threading.Lock
) -> Iterator[pb.EgressFrame]:
    """The body of Egress: one tunnel at a time (busy), open until either side goes away."""
    if not busy.acquire(blocking=False):
        context.abort(grpc.StatusCode.ALREADY_EXISTS, "an egress tunnel is already open")
    t = _Tunnel(_listen())
    context.add_callback(t.shutdown)
    threading.Thread(target=t.accept_loop, daemon=True).start()
    threading.Thread(target=t.from_host, args=(request_iterator,), daemon=True).start()
    try:
        yield from drain(t.out, context)
    finally:
        t.shutdown()
        busy.release()


def _listen() -> socket.socket:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", EGRESS_PORT))
    listener.listen(64)
    return listener


class _Tunnel:
    """The guest's connections on one Egress call, and the frames bound for the host."""

    def __init__(self, listener: socket.socket) -> None:
        self.out: queue.Queue[pb.EgressFrame | None] = queue.Queue(maxsize=256)
        self.conns: dict[int, socket.socket] = {}
        self.lock = threading.Lock()
        self.listener = listener
        self.stop = threading.Event()

    def close(self, conn_id: int) -> None:
        with self.lock:
            sock = self.conns.pop(conn_id, None)
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def read_from(self, conn_id: int, sock: socket.socket) -> None:
        try:
            while True:
                data = sock.recv(CHUNK)
                if not data:
                    break
                self.out.put(pb.EgressFrame(conn=conn_id, kind=pb.EgressFrame.KIND_DATA, data=data))
        except OSError:
            pass
        self.out.put(pb.EgressFrame(conn=conn_id, kind=pb.EgressFrame.KIND_CLOSE))

    def accept_loop(self) -> None:
        next_id = 1
        while not self.stop.is_set():
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            conn_id, next_id = next_id, next_id + 1
            with self.lock:
                self.conns[conn_id] = sock
            self.out.put(pb.EgressFrame(conn=conn_id, kind=pb.EgressFrame.KIND_OPEN))
            threading.Thread(target=self.read_from, args=(conn_id, sock), daemon=True).start()

    def from_host(self, request_iterator: Iterator[pb.EgressFrame]) -> None:
        try:
            for frame in request_iterator:
                if frame.kind == pb.EgressFrame.KIND_DATA:
                    self.send(frame.conn, frame.data)
                elif frame.kind == pb.EgressFrame.KIND_CLOSE:
                    self.close(frame.conn)
        except grpc.RpcError:
            pass
        finally:
            self.out.put(None)

    def send(self, conn_id: int, data: bytes) -> None:
        with self.lock:
            sock = self.conns.get(conn_id)
        if sock is not None:
            try:
                sock.sendall(data)
            except OSError:
                self.close(conn_id)

    def shutdown(self) -> None:
        self.stop.set()
        self.listener.close()
        for conn_id in list(self.conns):
            self.close(conn_id)
        self.out.put(None)
