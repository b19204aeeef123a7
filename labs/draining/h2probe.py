"""An HTTP/2 client (prior knowledge, no TLS) that shows the frames a proxy sends it.

    python3 h2probe.py --port 8000

Sends one GET / on stream 1, then prints every HEADERS, DATA, GOAWAY and RST_STREAM frame it
receives, in order, until the proxy closes the connection (or 5 s pass). SETTINGS, PING and
WINDOW_UPDATE frames are answered or skipped silently.
"""

from __future__ import annotations

import argparse
import socket
import struct

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, RST_STREAM, SETTINGS, PING, GOAWAY = 0x0, 0x1, 0x3, 0x4, 0x6, 0x7
END_STREAM, ACK, END_HEADERS = 0x1, 0x1, 0x4
ERRORS = {0: "NO_ERROR", 1: "PROTOCOL_ERROR", 2: "INTERNAL_ERROR", 7: "REFUSED_STREAM", 8: "CANCEL"}


def frame(kind: int, flags: int, stream: int, payload: bytes = b"") -> bytes:
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream) + payload


def request_block(authority: str) -> bytes:
    # HPACK: :method GET, :scheme http, :path / from the static table (indexes 2, 6, 4), then
    # :authority as a literal without indexing whose name is static index 1.
    value = authority.encode()
    return b"\x82\x86\x84\x01" + bytes([len(value)]) + value


def read_exactly(sock: socket.socket, n: int) -> bytes | None:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    sock = socket.create_connection((args.host, args.port), timeout=5)
    sock.sendall(PREFACE + frame(SETTINGS, 0, 0))
    sock.sendall(frame(HEADERS, END_STREAM | END_HEADERS, 1, request_block(f"{args.host}:{args.port}")))
    print("> HEADERS stream=1 GET /", flush=True)
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
                last = int.from_bytes(payload[:4], "big") & 0x7FFFFFFF
                code = int.from_bytes(payload[4:8], "big")
                print(f"< GOAWAY last_stream_id={last} error={ERRORS.get(code, code)}", flush=True)
            elif kind == HEADERS:
                status = ":status 200" if payload[:1] == b"\x88" else f"{len(payload)} bytes of headers"
                print(f"< HEADERS stream={stream} {status}" + (" end_stream" if flags & END_STREAM else ""), flush=True)
            elif kind == DATA:
                print(f"< DATA stream={stream} {length} bytes" + (" end_stream" if flags & END_STREAM else ""), flush=True)
            elif kind == RST_STREAM:
                code = int.from_bytes(payload[:4], "big")
                print(f"< RST_STREAM stream={stream} error={ERRORS.get(code, code)}", flush=True)
    except socket.timeout:
        print("< nothing more for 5 s; the connection is still open")
    except ConnectionResetError:
        print("< RST: the proxy reset the connection")
    sock.close()


if __name__ == "__main__":
    main()
