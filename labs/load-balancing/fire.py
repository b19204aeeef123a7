"""Send N requests one after another without letting a slow answer hold up the next one.

    python3 fire.py --port 8002 --path /slow-on/c/1500 -n 60

Each request goes on its own connection. The client waits up to --wait-ms (50 by default) for its
answer; an answer that takes longer is left to arrive in the background while the next request goes out,
so a slow host keeps the requests it got in flight, and fast hosts have finished theirs before
the next pick. At the end it waits for every answer and prints how many requests were sent and
the status codes, in a fixed order: ``sent=60 200=60``.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import sys


async def one(port: int, path: str) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nhost: lab\r\nconnection: close\r\n\r\n".encode())
    await writer.drain()
    data = await reader.read()
    writer.close()
    status_line = data.split(b"\r\n", 1)[0].decode("latin-1")
    return int(status_line.split(" ")[1]) if status_line.startswith("HTTP/") else 0


async def fire(port: int, path: str, n: int, wait: float, total_timeout: float) -> collections.Counter:
    tasks = []
    for _ in range(n):
        task = asyncio.create_task(one(port, path))
        tasks.append(task)
        # Give a fast answer the time to arrive before the next request; do not wait for a slow one.
        await asyncio.wait({task}, timeout=wait)
    done, pending = await asyncio.wait(tasks, timeout=total_timeout)
    codes = collections.Counter(t.result() if not t.exception() else 0 for t in done)
    if pending:
        codes["unanswered"] = len(pending)
        for task in pending:
            task.cancel()
    return codes


def main(argv=None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", default="/")
    parser.add_argument("-n", type=int, default=60)
    parser.add_argument("--wait-ms", type=int, default=50)
    parser.add_argument("--timeout", type=float, default=15.0)
    args = parser.parse_args(argv)
    codes = asyncio.run(fire(args.port, args.path, args.n, args.wait_ms / 1000, args.timeout))
    print(f"sent={args.n} " + " ".join(f"{code}={count}" for code, count in sorted(codes.items(), key=str)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
