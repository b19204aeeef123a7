"""An HTTP/1.1 upstream that starts a response and then goes quiet.

    python3 stall.py --port 8090

For every request it sends the status line, headers announcing a 100-byte body, and the first
8 bytes of that body; then it sends nothing more and waits until the proxy closes the connection.
Each connection is logged on stdout as ``conn=<n> <path> -> <outcome>``.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools

HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 100\r\n\r\n"


class Stall:
    def __init__(self):
        self.connections = itertools.count(1)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = next(self.connections)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()
            return
        path = head.split(b" ", 2)[1].decode("latin-1")
        writer.write(HEAD + b"partial\n")
        await writer.drain()
        try:
            while await reader.read(4096):
                pass
            outcome = "closed by the proxy"
        except ConnectionError:
            outcome = "reset by the proxy"
        print(f"conn={conn} {path} -> sent headers and 8 of 100 bytes, {outcome}", flush=True)
        writer.close()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args()
    server = await asyncio.start_server(Stall().handle, args.host, args.port)
    print(f"stall listening on {args.host}:{args.port}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
