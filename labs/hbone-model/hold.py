"""An application that keeps TCP connections open, for the lab hbone-model.

    python3 hold.py --to 10.48.8.2:8080 --conns N

Opens N connections one after the other; on each it sends one HTTP/1.1 request (path /conn/<i>)
and prints the answer's body, then keeps every connection open. Then it waits and prints, for
each connection, when the other side closes it ("conn <i>: closed"), until all are closed or it
is stopped. Connections are opened in order, so which tunnel carries which connection is the same
on every run.
"""

from __future__ import annotations

import argparse
import select
import socket
import sys


def request(sock: socket.socket, index: int) -> str:
    sock.sendall(f"GET /conn/{index} HTTP/1.1\r\nhost: app\r\n\r\n".encode())
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(4096)
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:"))
    while len(body) < length:
        body += sock.recv(4096)
    return body.decode()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--to", required=True)
    parser.add_argument("--conns", type=int, default=1)
    args = parser.parse_args()
    host, port = args.to.rsplit(":", 1)
    open_ = {}
    for index in range(1, args.conns + 1):
        sock = socket.create_connection((host, int(port)), timeout=5)
        print(f"conn {index}: {request(sock, index).strip()}", flush=True)
        sock.settimeout(None)
        open_[sock] = index
    print(f"all {len(open_)} open", flush=True)
    while open_:
        readable, _, _ = select.select(list(open_), [], [])
        for sock in readable:
            try:
                data = sock.recv(4096)
            except OSError as exc:
                data, how = b"", f"reset ({exc.strerror})"
            else:
                how = "closed"
            if not data:
                print(f"conn {open_.pop(sock)}: {how}", flush=True)
                sock.close()
    sys.exit(0)


if __name__ == "__main__":
    main()
