"""A server-first service and a client that waits for its greeting (standard library only).

    python3 banner.py serve --host 10.48.0.5 --port 2525
    python3 banner.py dial --host 10.96.0.40 --port 2525 --wait 1.5

The server writes a one-line greeting as soon as it accepts a connection and waits for nothing,
as SMTP, MySQL and other server-first protocols do. The client connects, sends nothing, and
prints what arrived within --wait seconds.
"""

import argparse
import socket
import threading
import time

GREETING = b"220 mail.insider ready\r\n"


def serve(host: str, port: int) -> None:
    server = socket.create_server((host, port))
    print(f"banner listening on {host}:{port}", flush=True)
    count = 0
    while True:
        conn, peer = server.accept()
        count += 1
        print(f"conn={count} from {peer[0]} -> greeting sent", flush=True)
        conn.sendall(GREETING)
        threading.Thread(target=lambda c=conn: (time.sleep(5), c.close()), daemon=True).start()


def dial(host: str, port: int, wait: float) -> None:
    with socket.create_connection((host, port), timeout=3) as conn:
        conn.settimeout(wait)
        try:
            data = conn.recv(100)
        except socket.timeout:
            data = None
    if data:
        print(f"greeting: {data.decode().strip()}")
    else:
        print(f"no greeting within {wait} s")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["serve", "dial"])
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--wait", type=float, default=1.5)
    args = parser.parse_args()
    if args.mode == "serve":
        serve(args.host, args.port)
    else:
        dial(args.host, args.port, args.wait)


if __name__ == "__main__":
    main()
