"""Three upstream "Pods" of the Service backend.lab.svc.cluster.local, in one process.

    python3 pods.py a1=127.0.1.1 a2=127.0.1.2 b1=127.0.2.1 [--port 8080]

Each Pod listens on its own loopback address (the whole of 127.0.0.0/8 is local on Linux), on
the Service's target port. Every answer's body is ``<pod>: <METHOD> <path>``. The path decides:

- ``/delay/<ms>``: wait that long, then 200 (a request that holds its connection);
- ``/fail-on/<pod>,<pod>...``: 503 from the Pods named, 200 from the others;
- anything else: 200.

Each request is logged as ``<pod> <method> <path> -> <status>``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys


async def read_head(reader: asyncio.StreamReader) -> tuple[str, str]:
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
    method, path, _ = head.split("\r\n", 1)[0].split(" ", 2)
    for line in head.split("\r\n")[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length" and int(value) > 0:
            await reader.readexactly(int(value))
    return method, path


def answer(pod: str, path: str) -> tuple[int, float]:
    """(status, seconds to wait) for this Pod and path."""
    parts = path.split("?")[0].strip("/").split("/")
    if parts[0] == "delay" and len(parts) > 1 and parts[1].isdigit():
        return 200, int(parts[1]) / 1000
    if parts[0] == "fail-on" and len(parts) > 1 and pod in parts[1].split(","):
        return 503, 0.0
    return 200, 0.0


async def serve(pods: list[tuple[str, str]], port: int) -> None:
    async def handle(pod: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    method, path = await read_head(reader)
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                status, wait = answer(pod, path)
                if wait:
                    await asyncio.sleep(wait)
                body = f"{pod}: {method} {path}\n".encode()
                reason = "OK" if status == 200 else "Service Unavailable"
                writer.write(f"HTTP/1.1 {status} {reason}\r\ncontent-type: text/plain\r\n"
                             f"content-length: {len(body)}\r\n\r\n".encode() + body)  # fmt: skip
                await writer.drain()
                print(f"{pod} {method} {path} -> {status}", flush=True)
        except ConnectionError:
            return
        finally:
            writer.close()

    servers = []
    for pod, address in pods:
        servers.append(await asyncio.start_server(lambda r, w, pod=pod: handle(pod, r, w), address, port))
        print(f"{pod} listening on {address}:{port}", flush=True)
    await asyncio.gather(*(s.serve_forever() for s in servers))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("pods", nargs="+", help="name=address")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args()
    asyncio.run(serve([tuple(p.split("=", 1)) for p in args.pods], args.port))


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(0)
