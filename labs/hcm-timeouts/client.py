"""A raw HTTP/1.1 client for the timers curl cannot trigger on purpose.

    python3 client.py --port 10000 --mode slow-body|partial-headers PATH

--mode slow-body: a POST with a chunked body, one 2-byte chunk every 100 ms for up to 3 s, so
the stream is never idle but the request never completes in time. --mode partial-headers: the
request line and one header, without the blank line that ends the headers; then nothing.
Either way it prints the response's status line, its connection header and its body, and
whether the request body was still unfinished when the response came.
"""

from __future__ import annotations

import argparse
import select
import socket
import time


def read_response(sock: socket.socket, data: bytes) -> tuple[str, str, bytes]:
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:] if ":" in line)}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(4096)
        if not chunk:
            break
        body += chunk
    return lines[0], headers.get("connection", "-"), body


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--mode", choices=("slow-body", "partial-headers"), required=True)
    parser.add_argument("path")
    args = parser.parse_args()
    sock = socket.create_connection(("127.0.0.1", args.port), timeout=5)
    unfinished = True
    if args.mode == "partial-headers":
        sock.sendall(f"GET {args.path} HTTP/1.1\r\nhost: lab\r\n".encode())
        data = b""
    else:
        sock.sendall(f"POST {args.path} HTTP/1.1\r\nhost: lab\r\ntransfer-encoding: chunked\r\n\r\n".encode())
        deadline = time.monotonic() + 3
        data = b""
        while time.monotonic() < deadline:
            readable, _, _ = select.select([sock], [], [], 0.1)
            if readable:
                data = sock.recv(4096)
                break
            sock.sendall(b"2\r\nab\r\n")
        else:
            sock.sendall(b"0\r\n\r\n")
            unfinished = False
    status, connection, body = read_response(sock, data)
    print(f"response: {status} | connection: {connection} | body: {body.decode().strip()}")
    if args.mode == "slow-body":
        print("the request body was still unfinished" if unfinished else "the request body was complete")
    sock.close()


if __name__ == "__main__":
    main()
