"""A client that reports how the proxy ends its connection.

    python3 client.py --port 10000 --send request|garbage --then wait|close

--send request: one HTTP/1.1 keep-alive request for /local; --send garbage: a line that is not
HTTP. Prints the status line of the response, then either closes at once (--then close) or
waits, sending nothing more, and reports how the proxy ended the connection (--then wait).
"""

from __future__ import annotations

import argparse
import socket

SEND = {"request": b"GET /local HTTP/1.1\r\nhost: lab\r\n\r\n", "garbage": b"HELLO THERE\r\n\r\n"}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--send", choices=SEND, required=True)
    parser.add_argument("--then", choices=("wait", "close"), required=True)
    args = parser.parse_args()
    sock = socket.create_connection(("127.0.0.1", args.port), timeout=5)
    sock.sendall(SEND[args.send])
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(4096)
    head = data.split(b"\r\n\r\n")[0].decode().split("\r\n")
    print("response:", head[0], "|", ", ".join(h for h in head[1:] if h.lower().startswith("connection")) or "keep-alive")
    if args.then == "close":
        sock.close()
        print("client closed the connection")
        return
    rest = data.split(b"\r\n\r\n", 1)[1]
    try:
        while True:
            chunk = sock.recv(4096)
            if not chunk:
                print("proxy closed the connection (FIN)")
                break
            rest += chunk
    except ConnectionResetError:
        print("proxy reset the connection (RST)")
    except socket.timeout:
        print("still open after 5 s")
    sock.close()


if __name__ == "__main__":
    main()
