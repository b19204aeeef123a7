"""Hold one keep-alive HTTP/1.1 connection open and report what happens to it.

    python3 hold.py --port 8003 [--again-when FILE] [--until-closed]

Sends GET /hold on a new connection and prints the response's status line and Connection
header. With --again-when, waits (up to 15 s) until FILE exists, then sends GET /again on the
same connection and prints that response too. With --until-closed, then waits (up to 15 s)
for the proxy to close the connection and prints how it ended.
"""

from __future__ import annotations

import argparse
import os
import socket
import time


def exchange(sock: socket.socket, path: str, host: str) -> str:
    sock.sendall(f"GET {path} HTTP/1.1\r\nhost: {host}\r\n\r\n".encode())
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            return "no answer: the connection was closed"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:] if ":" in line)}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        body += sock.recv(4096)
    return f"{lines[0]}, connection: {headers.get('connection', '(none)')}"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--again-when")
    parser.add_argument("--until-closed", action="store_true")
    args = parser.parse_args()
    sock = socket.create_connection((args.host, args.port), timeout=15)
    print(f"GET /hold -> {exchange(sock, '/hold', args.host)}", flush=True)
    if args.again_when:
        deadline = time.monotonic() + 15
        while not os.path.exists(args.again_when) and time.monotonic() < deadline:
            time.sleep(0.05)
        print(f"GET /again on the same connection -> {exchange(sock, '/again', args.host)}", flush=True)
    if args.until_closed:
        try:
            ended = "the proxy closed it (EOF)" if sock.recv(1) == b"" else "the proxy sent unexpected bytes"
        except ConnectionResetError:
            ended = "the proxy reset it (RST)"
        except socket.timeout:
            ended = "still open after 15 s"
        print(f"connection: {ended}", flush=True)
    sock.close()


if __name__ == "__main__":
    main()
