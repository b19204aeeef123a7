"""Slow and stubborn peers for the flow-control and filter-order steps.

    python3 client.py slow-reader --port 10000 --bytes 4000000
        GET /big/<bytes> over HTTP/1.1 with a 4 KiB receive buffer, reading 4 KiB at a time
        with a pause between reads; prints how many body bytes arrived.
    python3 client.py fast-writer --port 10003 --bytes 4000000
        sends that many bytes as fast as the socket takes them, then closes its side and waits
        for the peer to close; prints how many bytes it sent.
    python3 client.py slow-sink --port 8090
        a server that reads 4 KiB at a time with a pause between reads, and prints how many
        bytes each connection carried when it ends.
    python3 client.py two --port 10002
        opens a connection and keeps it, opens a second one and reports whether the peer
        closed it.
"""

from __future__ import annotations

import argparse
import socket
import threading
import time

CHUNK = 4096
PAUSE = 0.0005


def slow_reader(port: int, size: int) -> None:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, CHUNK)
    sock.settimeout(10)
    sock.connect(("127.0.0.1", port))
    sock.sendall(f"GET /big/{size} HTTP/1.1\r\nhost: lab\r\n\r\n".encode())
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(CHUNK)
    head, _, body = data.partition(b"\r\n\r\n")
    received = len(body)
    while received < size:
        chunk = sock.recv(CHUNK)
        if not chunk:
            break
        received += len(chunk)
        time.sleep(PAUSE)
    sock.close()
    status = head.split(b"\r\n")[0].decode()
    print(f"{status}, body bytes received: {received}")


def fast_writer(port: int, size: int) -> None:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    block = b"y" * 65536
    sent = 0
    while sent < size:
        sent += sock.send(block[: min(len(block), size - sent)])
    sock.shutdown(socket.SHUT_WR)
    while sock.recv(CHUNK):
        pass
    sock.close()
    print(f"bytes sent: {sent}")


def slow_sink(port: int) -> None:
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, CHUNK)
    server.bind(("127.0.0.1", port))
    server.listen(8)
    print(f"slow sink listening on 127.0.0.1:{port}", flush=True)

    def drain(conn: socket.socket) -> None:
        total = 0
        while chunk := conn.recv(CHUNK):
            total += len(chunk)
            time.sleep(PAUSE)
        conn.close()
        print(f"connection carried {total} bytes", flush=True)

    while True:
        conn, _ = server.accept()
        threading.Thread(target=drain, args=(conn,), daemon=True).start()


def two(port: int) -> None:
    first = socket.create_connection(("127.0.0.1", port), timeout=3)
    second = socket.create_connection(("127.0.0.1", port), timeout=3)
    try:
        closed = second.recv(CHUNK) == b""
    except ConnectionResetError:
        closed = True
    except socket.timeout:
        closed = False
    print("first connection: kept open")
    print(f"second connection: {'closed by the proxy' if closed else 'still open'}")
    second.close()
    first.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=("slow-reader", "fast-writer", "slow-sink", "two"))
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--bytes", type=int, default=4_000_000)
    args = parser.parse_args()
    if args.mode == "slow-reader":
        slow_reader(args.port, args.bytes)
    elif args.mode == "fast-writer":
        fast_writer(args.port, args.bytes)
    elif args.mode == "slow-sink":
        slow_sink(args.port)
    else:
        two(args.port)


if __name__ == "__main__":
    main()
