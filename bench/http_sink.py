"""A fast loopback HTTP sink for the webhook scenario: HTTP/1.1 keep-alive, answers every
POST with 200 and counts it. `GET /__count` returns the count, `POST /__reset` zeroes it.

Run as `python -m bench.http_sink PORT`; it exits when its parent closes stdin."""

from __future__ import annotations

import asyncio
import os
import sys

OK = b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{"ok":true}'


class SinkProtocol(asyncio.Protocol):
    count = 0

    def connection_made(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end].decode("latin-1")
            length = 0
            for line in head.split("\r\n")[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value.strip())
            if len(self.buffer) < end + 4 + length:
                return
            self.buffer = self.buffer[end + 4 + length :]
            request_line = head.split("\r\n", 1)[0]
            if " /__count" in request_line:
                body = str(SinkProtocol.count).encode()
                self.transport.write(
                    b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
                )
            elif " /__reset" in request_line:
                SinkProtocol.count = 0
                self.transport.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
            else:
                SinkProtocol.count += 1
                self.transport.write(OK)


async def main(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(SinkProtocol, "127.0.0.1", port, backlog=1024)
    stop = asyncio.Event()
    # The parent holds our stdin: when it goes away, so do we.
    loop.add_reader(sys.stdin.fileno(), lambda: os.read(sys.stdin.fileno(), 1024) or stop.set())
    async with server:
        print("ready", flush=True)
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
