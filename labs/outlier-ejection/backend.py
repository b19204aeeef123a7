"""Upstream hosts for the load-balancing labs, each behaving according to its own name.

    python3 backend.py a=8081 b=8082 c=8083

One process serves every host named on the command line, each on its own port of 127.0.0.1.

Every answer has the body ``<name>: <METHOD> <path>``, so a client can tell which host served it.
The path chooses how this host behaves; a list of names selects the hosts that misbehave:

- ``/health/<names>``: 503 on the hosts named, 200 on the others (an active health check path);
- ``/fail-on/<names>``: 503 on the hosts named, 200 on the others;
- ``/slow-on/<names>/<ms>``: the hosts named wait <ms> before answering 200, the others answer at once;
- anything else: 200.

Each request is logged on stdout as ``<name> <method> <path> -> <status>``.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import sys


async def read_request(reader: asyncio.StreamReader):
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = lines[0].split(" ", 2)
    length = 0
    for line in lines[1:]:
        key, _, value = line.partition(":")
        if key.strip().lower() == "content-length":
            length = int(value.strip())
    if length:
        await reader.readexactly(length)
    return method, path


def behaviour(name: str, path: str) -> tuple[int, float]:
    """(status, delay in seconds) of this host for a path."""
    parts = path.split("?")[0].strip("/").split("/")
    named = len(parts) > 1 and name in parts[1].split(",")
    if parts[0] in ("health", "fail-on") and named:
        return 503, 0.0
    if parts[0] == "slow-on" and named and len(parts) > 2 and parts[2].isdigit():
        return 200, int(parts[2]) / 1000
    return 200, 0.0


def main(argv=None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("hosts", nargs="+", help="name=port")
    parser.add_argument("--address", default="127.0.0.1")
    args = parser.parse_args(argv)
    hosts = [(name, int(port)) for name, port in (h.split("=", 1) for h in args.hosts)]

    async def handle(name: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    method, path = await read_request(reader)
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                status, delay = behaviour(name, path)
                if delay:
                    await asyncio.sleep(delay)
                body = f"{name}: {method} {path}\n".encode()
                reason = "OK" if status == 200 else "Service Unavailable"
                writer.write(f"HTTP/1.1 {status} {reason}\r\ncontent-type: text/plain\r\n"
                             f"content-length: {len(body)}\r\n\r\n".encode() + body)  # fmt: skip
                await writer.drain()
                print(f"{name} {method} {path} -> {status}", flush=True)
        except ConnectionError:
            return
        finally:
            writer.close()

    async def serve() -> None:
        servers = []
        for name, port in hosts:
            servers.append(await asyncio.start_server(functools.partial(handle, name), args.address, port))
            print(f"{name} listening on {args.address}:{port}", flush=True)
        await asyncio.gather(*(server.serve_forever() for server in servers))

    asyncio.run(serve())


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(0)
