"""An HTTP/1.1 upstream for the router-retries lab: it fails on purpose, and remembers.

    python3 flaky.py --port 8090 [--host 127.0.0.1]

- ``/fail/<n>/<key>``: the first <n> requests for <key> get 503, every later one 200 (a
  backend that recovers: a retry of the same request can succeed);
- ``/partial``: sends a 200 with ``content-length: 100000``, 1000 bytes of body, then closes
  the connection (a reset after the response has started);
- anything else: 200.

Each request is logged on stdout as ``<path> -> <outcome>``, before the answer is written.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import sys


async def read_request(reader: asyncio.StreamReader) -> str:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    if length:
        await reader.readexactly(length)
    return lines[0].split(" ")[1]


def response(status: int, body: bytes) -> bytes:
    reason = {200: "OK", 503: "Service Unavailable"}.get(status, "Status")
    head = f"HTTP/1.1 {status} {reason}\r\ncontent-type: text/plain\r\ncontent-length: {len(body)}\r\n\r\n"
    return head.encode() + body


class Flaky:
    def __init__(self) -> None:
        self.seen: collections.Counter[str] = collections.Counter()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    path = await read_request(reader)
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                parts = path.split("?")[0].strip("/").split("/")
                if parts[0] == "partial":
                    print(f"{path} -> 200, 1000 of 100000 bytes, then closed", flush=True)
                    head = "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 100000\r\n\r\n"
                    writer.write(head.encode() + b"x" * 1000)
                    await writer.drain()
                    return
                status = 200
                if parts[0] == "fail" and len(parts) == 3 and parts[1].isdigit():
                    self.seen[parts[2]] += 1
                    if self.seen[parts[2]] <= int(parts[1]):
                        status = 503
                # log first: the lab reads this log as soon as the client has its answer
                print(f"{path} -> {status}", flush=True)
                writer.write(response(status, f"flaky: {path} -> {status}\n".encode()))
                await writer.drain()
        finally:
            writer.close()


async def main(argv=None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args(argv)
    server = await asyncio.start_server(Flaky().handle, args.host, args.port)
    print(f"flaky listening on {args.host}:{args.port}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
