"""Open one TCP connection, send nothing, and report how it ends.

    python3 probe.py --port 8005 [--wait 3]

Prints "connected", then one of: "closed by the proxy (FIN), 0 bytes received" when the peer
closes it without sending anything, "reset by the proxy (RST)", "<n> bytes received, then
closed", or "still open after <wait> s". Sending nothing keeps the outcome independent of timing:
a proxy that closes a connection holding unread data would reset it instead of closing it.
"""

from __future__ import annotations

import argparse
import socket


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--wait", type=float, default=3.0)
    args = parser.parse_args()
    sock = socket.create_connection(("127.0.0.1", args.port), timeout=args.wait)
    print("connected", flush=True)
    received = 0
    try:
        while True:
            chunk = sock.recv(4096)
            if not chunk:
                break
            received += len(chunk)
    except ConnectionResetError:
        print("reset by the proxy (RST)")
        return
    except TimeoutError:
        print(f"still open after {args.wait:g} s")
        return
    finally:
        sock.close()
    if received:
        print(f"{received} bytes received, then closed")
    else:
        print("closed by the proxy (FIN), 0 bytes received")


if __name__ == "__main__":
    main()
