"""A steady HTTP load for the labs: a new connection per request, as many clients as asked.

    python3 load.py --url http://10.0.0.1:8000/ --seconds 4 --clients 4

Prints one line when done: ``requests=<n> ok=<n> failed=<n>`` (failed: no answer, or a status
other than 200), then each distinct failure with its count.
"""

from __future__ import annotations

import argparse
import collections
import http.client
import threading
import time
from urllib.parse import urlparse


def client(url, deadline, tally, lock):
    parts = urlparse(url)
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=5)
            conn.request("GET", parts.path or "/", headers={"connection": "close"})
            status = conn.getresponse().status
            conn.close()
            outcome = "ok" if status == 200 else f"status {status}"
        except OSError as exc:
            outcome = type(exc).__name__
        with lock:
            tally[outcome] += 1


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--seconds", type=float, default=3)
    parser.add_argument("--clients", type=int, default=4)
    args = parser.parse_args()
    tally, lock = collections.Counter(), threading.Lock()
    deadline = time.monotonic() + args.seconds
    threads = [threading.Thread(target=client, args=(args.url, deadline, tally, lock)) for _ in range(args.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    failed = sum(n for k, n in tally.items() if k != "ok")
    print(f"requests={sum(tally.values())} ok={tally['ok']} failed={failed}")
    for outcome, n in sorted(tally.items()):
        if outcome != "ok":
            print(f"  {outcome}: {n}")


if __name__ == "__main__":
    main()
