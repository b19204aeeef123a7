"""An HTTP/2 client (prior knowledge, no TLS) that cancels a request the way a gRPC client does
when its deadline passes or its caller gives up: with RST_STREAM(CANCEL) on that one stream,
keeping the connection open.

    python3 h2cancel.py --port 8000 --path /delay/3000 --admin 15000

1. Sends GET <path> on stream 1.
2. Waits until Envoy's admin interface shows the request at the upstream
   (cluster.backend.upstream_rq_active is 1), so the cancel always lands in the same place.
3. Sends RST_STREAM(CANCEL) on stream 1.
4. Sends GET / on stream 3 of the same connection and prints the frames of its response.
5. Closes the connection once stream 3 has ended (no request is in flight then).

Only the standard library: the frames are built by hand. SETTINGS and PING are answered,
WINDOW_UPDATE is skipped.
"""

from __future__ import annotations

import argparse
import socket
import struct
import time
import urllib.request

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, RST_STREAM, SETTINGS, PING, GOAWAY = 0x0, 0x1, 0x3, 0x4, 0x6, 0x7
END_STREAM, ACK, END_HEADERS = 0x1, 0x1, 0x4
CANCEL = 0x8
ERRORS = {0: "NO_ERROR", 1: "PROTOCOL_ERROR", 2: "INTERNAL_ERROR", 7: "REFUSED_STREAM", 8: "CANCEL"}


def frame(kind: int, flags: int, stream: int, payload: bytes = b"") -> bytes:
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream) + payload


def request_block(authority: str, path: str) -> bytes:
    # HPACK: :method GET and :scheme http from the static table (indexes 2 and 6); :path and
    # :authority as literals without indexing whose names are static indexes 4 and 1.
    def literal(index: int, value: str) -> bytes:
        data = value.encode()
        return bytes([index, len(data)]) + data

    return b"\x82\x86" + literal(4, path) + literal(1, authority)


def read_exactly(sock: socket.socket, n: int) -> bytes | None:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def upstream_active(admin: int) -> int:
    url = f"http://127.0.0.1:{admin}/stats?filter=^cluster\\.backend\\.upstream_rq_active$"
    text = urllib.request.urlopen(url, timeout=2).read().decode()
    return int(text.rsplit(":", 1)[1]) if ":" in text else 0


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", required=True)
    parser.add_argument("--admin", type=int, required=True)
    args = parser.parse_args()
    authority = f"{args.host}:{args.port}"
    sock = socket.create_connection((args.host, args.port), timeout=5)
    sock.sendall(PREFACE + frame(SETTINGS, 0, 0))
    sock.sendall(frame(HEADERS, END_STREAM | END_HEADERS, 1, request_block(authority, args.path)))
    print(f"> HEADERS stream=1 GET {args.path}", flush=True)

    deadline = time.monotonic() + 5
    while upstream_active(args.admin) != 1:
        if time.monotonic() > deadline:
            raise SystemExit("the request did not reach the upstream within 5 s")
        time.sleep(0.05)
    print("  (cluster.backend.upstream_rq_active is 1: Envoy is waiting for the upstream)", flush=True)

    sock.sendall(frame(RST_STREAM, 0, 1, struct.pack(">I", CANCEL)))
    print("> RST_STREAM stream=1 error=CANCEL", flush=True)
    sock.sendall(frame(HEADERS, END_STREAM | END_HEADERS, 3, request_block(authority, "/")))
    print("> HEADERS stream=3 GET /", flush=True)

    try:
        while True:
            head = read_exactly(sock, 9)
            if head is None:
                print("< EOF: the proxy closed the connection")
                break
            length = int.from_bytes(head[:3], "big")
            kind, flags = head[3], head[4]
            stream = int.from_bytes(head[5:9], "big") & 0x7FFFFFFF
            payload = read_exactly(sock, length) if length else b""
            if payload is None:
                print("< EOF in the middle of a frame")
                break
            if kind == SETTINGS and not flags & ACK:
                sock.sendall(frame(SETTINGS, ACK, 0))
            elif kind == PING and not flags & ACK:
                sock.sendall(frame(PING, ACK, 0, payload))
            elif kind == GOAWAY:
                code = int.from_bytes(payload[4:8], "big")
                print(f"< GOAWAY error={ERRORS.get(code, code)}", flush=True)
            elif kind == RST_STREAM:
                code = int.from_bytes(payload[:4], "big")
                print(f"< RST_STREAM stream={stream} error={ERRORS.get(code, code)}", flush=True)
            elif kind in (HEADERS, DATA):
                if kind == HEADERS:
                    status = ":status 200" if payload[:1] == b"\x88" else f"{len(payload)} bytes of headers"
                    text = f"< HEADERS stream={stream} {status}"
                else:
                    body = payload.decode(errors="replace").strip()
                    text = f"< DATA stream={stream} {length} bytes" + (f" {body!r}" if body else "")
                print(text + (" end_stream" if flags & END_STREAM else ""), flush=True)
                if stream == 3 and flags & END_STREAM:
                    break
    except socket.timeout:
        print("< nothing more for 5 s")
    sock.close()
    print("  (connection closed by the client, nothing in flight)", flush=True)


if __name__ == "__main__":
    main()
