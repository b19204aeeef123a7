"""Small TCP tools for the lab interception-variants (written for the book, not Istio's).

    python3 probe.py listen NAME ADDR:PORT [ADDR:PORT ...]
    python3 probe.py dial HOST PORT

``listen`` accepts TCP connections on every address given and answers each with one line:

    NAME: accepted on <local address> from <peer>, SO_ORIGINAL_DST <address or ->

then closes it. The local address is what accept() returned; SO_ORIGINAL_DST is what the kernel's
conntrack recorded as the destination the client dialed (``getsockopt(SOL_IP, SO_ORIGINAL_DST)``,
the call Envoy's original_dst listener filter makes through Network::Utility::getOriginalDst);
``-`` when the kernel has no record for the connection. The same line is printed on stdout.

``dial`` connects, prints what the listener answered (or why it could not connect) and exits 0
either way; the lab checks the words.
"""

from __future__ import annotations

import argparse
import socket
import struct
import sys
import threading

SO_ORIGINAL_DST = 80  # linux/netfilter_ipv4.h


def original_dst(conn: socket.socket) -> str:
    try:
        raw = conn.getsockopt(socket.SOL_IP, SO_ORIGINAL_DST, 16)
    except OSError:
        return "-"
    port, addr = struct.unpack("!2xH4s8x", raw)
    return f"{socket.inet_ntoa(addr)}:{port}"


def serve(name: str, listener: socket.socket) -> None:
    while True:
        conn, peer = listener.accept()
        with conn:
            local = conn.getsockname()
            line = f"{name}: accepted on {local[0]}:{local[1]} from {peer[0]}:{peer[1]}, SO_ORIGINAL_DST {original_dst(conn)}"
            print(line, flush=True)
            try:
                conn.sendall(line.encode() + b"\n")
            except OSError:
                pass


def listen(name: str, addresses: list[str]) -> None:
    threads = []
    for address in addresses:
        host, port = address.rsplit(":", 1)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, int(port)))
        sock.listen(64)
        thread = threading.Thread(target=serve, args=(name, sock), daemon=True)
        thread.start()
        threads.append(thread)
    print(f"{name}: listening on {' '.join(addresses)}", flush=True)
    for thread in threads:
        thread.join()


def dial(host: str, port: int) -> None:
    try:
        with socket.create_connection((host, port), timeout=3) as conn:
            data = b""
            while chunk := conn.recv(4096):
                data += chunk
        print(data.decode().rstrip("\n") or "connected; the other end closed without a word")
    except OSError as exc:
        print(f"dial {host}:{port}: {exc.strerror or exc}")


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="cmd", required=True)
    p_listen = sub.add_parser("listen")
    p_listen.add_argument("name")
    p_listen.add_argument("addresses", nargs="+")
    p_dial = sub.add_parser("dial")
    p_dial.add_argument("host")
    p_dial.add_argument("port", type=int)
    args = parser.parse_args()
    if args.cmd == "listen":
        listen(args.name, args.addresses)
    else:
        dial(args.host, args.port)


if __name__ == "__main__":
    sys.exit(main())
