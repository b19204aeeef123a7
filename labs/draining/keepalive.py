"""Send requests over keep-alive HTTP/1.1 connections; count the responses that close them.

    python3 keepalive.py --port 8000 --count 40 --label early

A new connection is opened only when the proxy answered the previous request with
``connection: close``. Prints one line: ``<label>: responses=<n> connection_close=<n>
connections=<n>`` (and ``failed=<n>`` when a request got no 200).
"""

from __future__ import annotations

import argparse
import http.client


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--count", type=int, default=40)
    parser.add_argument("--label", default="run")
    args = parser.parse_args()
    conn, closes, opened, failed = None, 0, 0, 0
    for _ in range(args.count):
        if conn is None:
            conn = http.client.HTTPConnection(args.host, args.port, timeout=5)
            opened += 1
        try:
            conn.request("GET", "/")
            response = conn.getresponse()
            response.read()
        except OSError:
            failed += 1
            conn.close()
            conn = None
            continue
        if response.status != 200:
            failed += 1
        if (response.getheader("connection") or "").lower() == "close":
            closes += 1
            conn.close()
            conn = None
    if conn is not None:
        conn.close()
    line = f"{args.label}: responses={args.count - failed} connection_close={closes} connections={opened}"
    print(line + (f" failed={failed}" if failed else ""))


if __name__ == "__main__":
    main()
