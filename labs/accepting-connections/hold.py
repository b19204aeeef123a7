"""Open connections one after another, send one HTTP/1.1 request on each, and keep them open.

    python3 hold.py --port 10001 --count 8 [--each]

For every connection: "answered" when a response came back on it (Envoy accepted it and it is
still open), "closed" when the peer closed or reset it instead. Prints one line per connection
with --each, otherwise a summary; then "holding" and keeps every answered connection open until
it is terminated.
"""

from __future__ import annotations

import argparse
import signal
import socket
import sys
import time

REQUEST = b"GET / HTTP/1.1\r\nhost: lab\r\n\r\n"


def one(port: int) -> tuple[socket.socket | None, str]:
    sock = socket.create_connection(("127.0.0.1", port), timeout=3)
    try:
        sock.sendall(REQUEST)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                raise ConnectionResetError("closed")
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length"))
        while len(body) < length:
            body += sock.recv(4096)
        return sock, "answered " + head.split(b"\r\n")[0].decode()
    except OSError:
        sock.close()
        return None, "closed by the peer"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--each", action="store_true")
    args = parser.parse_args()
    held, closed = [], 0
    for i in range(1, args.count + 1):
        sock, outcome = one(args.port)
        if sock is None:
            closed += 1
        else:
            held.append(sock)
        if args.each:
            print(f"connection {i}: {outcome}")
    if not args.each:
        print(f"connections={args.count} answered={len(held)} closed={closed}")
    print("holding", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
