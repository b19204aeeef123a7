"""A stand-in for the check the istio-validation init container runs (written for the book, not
Istio's code; Istio runs `istio-iptables --run-validation --skip-rule-apply`, see
tools/istio-iptables/pkg/validation/validator.go at 1.30.3).

    python3 validator.py [--timeout SECONDS]

Same addresses, ports and outcome as validation.NewValidator with the injection template's
arguments (-p 15001 -z 15006) and the defaults of tools/common/config (IptablesProbePort 15002,
ProbeTimeout 5 s):

- listen on 127.0.0.1:15001 and 127.0.0.1:15006 (the outbound and inbound capture ports);
- every second, connect from 127.0.0.1 (an ephemeral port) to 127.0.0.6:15002;
- a connection that arrives on either listener is checked with SO_ORIGINAL_DST: when the port
  the client dialed was 15002, the rules are in place: print and exit 0;
- nothing arrived before the timeout: print and exit 126 (constants.ValidationErrorCode).

Istio's client ignores connect errors; this one prints them, so the lab can show why it failed.
"""

from __future__ import annotations

import argparse
import socket
import struct
import sys
import threading
import time

SO_ORIGINAL_DST = 80  # linux/netfilter_ipv4.h
LISTEN = [("127.0.0.1", 15001), ("127.0.0.1", 15006)]
PROBE = ("127.0.0.6", 15002)
VALIDATION_ERROR_CODE = 126

done = threading.Event()


def serve(listener: socket.socket) -> None:
    while not done.is_set():
        conn, peer = listener.accept()
        with conn:
            raw = conn.getsockopt(socket.SOL_IP, SO_ORIGINAL_DST, 16)
            port, addr = struct.unpack("!2xH4s8x", raw)
            local = conn.getsockname()
            print(f"accepted on {local[0]}:{local[1]} from {peer[0]}, SO_ORIGINAL_DST {socket.inet_ntoa(addr)}:{port}", flush=True)
            if port == PROBE[1]:
                done.set()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--timeout", type=float, default=5.0)
    args = parser.parse_args()
    for addr in LISTEN:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(addr)
        listener.listen(16)
        print(f"listening on {addr[0]}:{addr[1]}", flush=True)
        threading.Thread(target=serve, args=(listener,), daemon=True).start()
    deadline = time.monotonic() + args.timeout
    while not done.is_set() and time.monotonic() < deadline:
        client = socket.socket()
        client.bind(("127.0.0.1", 0))
        try:
            client.connect(PROBE)
        except OSError as err:
            print(f"connect to {PROBE[0]}:{PROBE[1]}: {err.strerror}", flush=True)
        finally:
            client.close()
        done.wait(min(1.0, max(0.0, deadline - time.monotonic())))
    if done.is_set():
        print("validation passed", flush=True)
        return 0
    print(f"validation timeout after {args.timeout:g} s, exit {VALIDATION_ERROR_CODE}", flush=True)
    return VALIDATION_ERROR_CODE


if __name__ == "__main__":
    sys.exit(main())
