"""A tiny DNS server and client over UDP for the lab interception-variants (ours, not Istio's).

    python3 dnsprobe.py serve NAME ADDR:PORT [--answer HOST=IP ...] [--upstream IP:PORT]
    python3 dnsprobe.py query SERVER NAME

``serve`` answers A queries: a name given with --answer is answered from that table (the way
pilot-agent's DNS proxy answers names istiod sent it); any other name is forwarded, from a new
UDP socket, to --upstream and its reply relayed (the way the proxy falls back to the resolvers of
/etc/resolv.conf); without --upstream the answer is NXDOMAIN. Each query is logged on stdout.

``query`` sends one A query to SERVER port 53 and prints the answer together with the address
the reply came from, as the client's socket saw it.
"""

from __future__ import annotations

import argparse
import socket
import struct
import sys


def encode_name(name: str) -> bytes:
    return b"".join(bytes([len(p)]) + p.encode() for p in name.rstrip(".").split(".")) + b"\0"


def question(packet: bytes) -> tuple[str, bytes]:
    """The queried name and the raw question section of a query."""
    labels, i = [], 12
    while packet[i]:
        labels.append(packet[i + 1 : i + 1 + packet[i]].decode())
        i += 1 + packet[i]
    return ".".join(labels), packet[12 : i + 5]


def answer(query: bytes, ip: str | None) -> bytes:
    qid = query[:2]
    _, raw_q = question(query)
    if ip is None:
        return qid + struct.pack("!HHHHH", 0x8183, 1, 0, 0, 0) + raw_q
    record = struct.pack("!HHHIH", 0xC00C, 1, 1, 30, 4) + socket.inet_aton(ip)
    return qid + struct.pack("!HHHHH", 0x8180, 1, 1, 0, 0) + raw_q + record


def serve(name: str, address: str, table: dict[str, str], upstream: str | None) -> None:
    host, port = address.rsplit(":", 1)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((host, int(port)))
    print(f"{name}: listening on udp {address}", flush=True)
    while True:
        query, peer = sock.recvfrom(512)
        qname, _ = question(query)
        if qname in table:
            reply, how = answer(query, table[qname]), f"{table[qname]} (own table)"
        elif upstream:
            up_host, up_port = upstream.rsplit(":", 1)
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as up:
                up.settimeout(2)
                up.connect((up_host, int(up_port)))
                up.send(query)
                reply = up.recv(512)
            how = f"forwarded to {upstream}"
        else:
            reply, how = answer(query, None), "NXDOMAIN"
        print(f"{name}: {qname} from {peer[0]}:{peer[1]} -> {how}", flush=True)
        sock.sendto(reply, peer)


def query(server: str, qname: str) -> None:
    packet = struct.pack("!HHHHHH", 0x1ab5, 0x0100, 1, 0, 0, 0) + encode_name(qname) + struct.pack("!HH", 1, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(3)
        sock.sendto(packet, (server, 53))
        try:
            reply, source = sock.recvfrom(512)
        except TimeoutError:
            print(f"{qname}: no answer from {server}:53")
            return
    flags, ancount = struct.unpack("!2xH2xH", reply[:8])
    if flags & 0xF == 3:
        print(f"{qname}: NXDOMAIN, reply from {source[0]}:{source[1]}")
    elif ancount:
        print(f"{qname}: A {socket.inet_ntoa(reply[-4:])}, reply from {source[0]}:{source[1]}")
    else:
        print(f"{qname}: no record, reply from {source[0]}:{source[1]}")


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="cmd", required=True)
    p_serve = sub.add_parser("serve")
    p_serve.add_argument("name")
    p_serve.add_argument("address")
    p_serve.add_argument("--answer", action="append", default=[])
    p_serve.add_argument("--upstream")
    p_query = sub.add_parser("query")
    p_query.add_argument("server")
    p_query.add_argument("qname")
    args = parser.parse_args()
    if args.cmd == "serve":
        serve(args.name, args.address, dict(a.split("=", 1) for a in args.answer), args.upstream)
    else:
        query(args.server, args.qname)


if __name__ == "__main__":
    sys.exit(main())
