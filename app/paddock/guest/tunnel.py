"""The host end of the egress channel: each guest connection to the guest agent's proxy port
becomes one TCP connection from this process to the egress gateway on host loopback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

from paddock.guest.v1 import agent_pb2 as pb


class Tunnel:
    """The host end of the egress channel: one gateway connection per guest connection."""

    def __init__(self, gateway_port: int, alive: Callable[[], bool] | None = None) -> None:
        self.gateway_port = gateway_port
        # Whether the gateway process still runs: once it has stopped, its port may belong to
        # anything else on this computer, so no guest connection is carried there.
        self.alive = alive or (lambda: True)
        self.outgoing: asyncio.Queue[pb.EgressFrame | None] = asyncio.Queue()
        self.writers: dict[int, asyncio.StreamWriter] = {}
        self.pumps: set[asyncio.Task[None]] = set()

    async def requests(self) -> AsyncIterator[pb.EgressFrame]:
        while True:
            frame = await self.outgoing.get()
            if frame is None:
                return
            yield frame

    async def on_frame(self, frame: pb.EgressFrame) -> None:
        if frame.kind == pb.EgressFrame.KIND_OPEN:
            await self._open(frame.conn)
        elif frame.kind == pb.EgressFrame.KIND_DATA:
            writer = self.writers.get(frame.conn)
            if writer is not None:
                writer.write(frame.data)
                await writer.drain()
        elif frame.kind == pb.EgressFrame.KIND_CLOSE:
            closing = self.writers.pop(frame.conn, None)
            if closing is not None:
                closing.close()

    async def _open(self, conn: int) -> None:
        if not self.alive():
            await self.outgoing.put(pb.EgressFrame(conn=conn, kind=pb.EgressFrame.KIND_CLOSE))
            return
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", self.gateway_port)
        except OSError:
            await self.outgoing.put(pb.EgressFrame(conn=conn, kind=pb.EgressFrame.KIND_CLOSE))
            return
        self.writers[conn] = writer
        task = asyncio.ensure_future(self._pump(conn, reader))
        self.pumps.add(task)
        task.add_done_callback(self.pumps.discard)

    async def _pump(self, conn: int, reader: asyncio.StreamReader) -> None:
        try:
            while data := await reader.read(64 * 1024):
                await self.outgoing.put(pb.EgressFrame(conn=conn, kind=pb.EgressFrame.KIND_DATA, data=data))
        except OSError:
            pass
        finally:
            writer = self.writers.pop(conn, None)
            if writer is not None:
                writer.close()
                await self.outgoing.put(pb.EgressFrame(conn=conn, kind=pb.EgressFrame.KIND_CLOSE))

    async def close(self) -> None:
        await self.outgoing.put(None)
        for task in list(self.pumps):
            task.cancel()
        for writer in self.writers.values():
            writer.close()
