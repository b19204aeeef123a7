"""A small HTTP/1.1 upstream for the labs, whose misbehaviour is chosen by the request path.

    python3 upstream.py --port 8080 [--name NAME] [--host 0.0.0.0]

- ``/`` and anything else: 200, body ``NAME: METHOD PATH``;
- ``/status/<code>``: answers with that status;
- ``/delay/<ms>``: waits, then answers 200 (a slow upstream);
- ``/drop``: reads the request and closes the connection without answering;
- ``/reuse-drop``: answers the first request of a connection normally, and closes the
  connection without answering any later request on it (an upstream that has given up on an
  idle keep-alive connection just as the proxy reuses it);
- ``/headers``: answers with the request's headers, one per line;
- ``/peer``: answers with the address the connection came from, as this server sees it;
- ``/big/<bytes>``: answers with that many bytes (for flow-control labs).

Each request is logged on stdout as ``conn=<n> req=<k> <peer> <method> <path> -> <outcome>``,
connections numbered in the order they were accepted.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import sys

REASONS = {200: "OK", 404: "Not Found", 500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}


async def read_request(reader: asyncio.StreamReader):
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = lines[0].split(" ", 2)
    headers = [tuple(part.strip() for part in line.split(":", 1)) for line in lines[1:] if ":" in line]
    length = next((int(v) for k, v in headers if k.lower() == "content-length"), 0)
    if length:
        await reader.readexactly(length)
    return method, path, headers


def response(status: int, body: bytes, close: bool = False) -> bytes:
    head = [f"HTTP/1.1 {status} {REASONS.get(status, 'Status')}", "content-type: text/plain",
            f"content-length: {len(body)}"]  # fmt: skip
    if close:
        head.append("connection: close")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


class Upstream:
    def __init__(self, name: str):
        self.name = name
        self.connections = itertools.count(1)

    def log(self, *parts) -> None:
        print(*parts, flush=True)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = next(self.connections)
        peer = writer.get_extra_info("peername")
        peer_text = f"{peer[0]}:{peer[1]}" if peer else "?"
        try:
            for req in itertools.count(1):
                try:
                    method, path, headers = await read_request(reader)
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                where = f"conn={conn} req={req} {peer_text} {method} {path}"
                parts = path.split("?")[0].strip("/").split("/")
                if parts[0] == "drop" or (parts[0] == "reuse-drop" and req > 1):
                    self.log(where, "-> closed without an answer")
                    return
                status, body = 200, f"{self.name}: {method} {path}\n".encode()
                if parts[0] == "status" and len(parts) > 1 and parts[1].isdigit():
                    status = int(parts[1])
                elif parts[0] == "delay" and len(parts) > 1 and parts[1].isdigit():
                    await asyncio.sleep(int(parts[1]) / 1000)
                elif parts[0] == "headers":
                    body = "".join(f"{k.lower()}: {v}\n" for k, v in headers).encode()
                elif parts[0] == "peer":
                    body = f"{peer[0]}\n".encode()
                elif parts[0] == "big" and len(parts) > 1 and parts[1].isdigit():
                    body = b"x" * int(parts[1])
                writer.write(response(status, body))
                await writer.drain()
                self.log(where, f"-> {status}")
        finally:
            writer.close()


async def main(argv=None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--name", default="upstream")
    args = parser.parse_args(argv)
    server = await asyncio.start_server(Upstream(args.name).handle, args.host, args.port)
    print(f"{args.name} listening on {args.host}:{args.port}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
