"""What pilot-agent counts before it ends a draining sidecar (EXIT_ON_ZERO_ACTIVE_CONNECTIONS).

    python3 active_connections.py --admin 15000

It is not pilot-agent. It makes the query envoy.Agent.activeProxyConnections makes
(pkg/envoy/agent.go: GET /stats?usedonly&filter=downstream_cx_active$ on the admin port) and
applies its rules to each line, printing the verdict: only "listener." stats count; per-worker
lines, Envoy internal listeners and the four listeners Istio itself owns (the status port 15021,
the Prometheus port 15090, and the admin listener, total and main thread) are skipped. The last
line is the sum pilot-agent compares with zero ("-1" when the query returns nothing).
"""

import argparse
import urllib.request

KNOWN = {
    "listener.0.0.0.0_15021.downstream_cx_active",
    "listener.0.0.0.0_15090.downstream_cx_active",
    "listener.admin.downstream_cx_active",
    "listener.admin.main_thread.downstream_cx_active",
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--admin", type=int, default=15000)
    args = parser.parse_args()
    url = f"http://127.0.0.1:{args.admin}/stats?usedonly&filter=downstream_cx_active$"
    with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - loopback only
        text = response.read().decode()
    if not text:
        print("(no downstream_cx_active stats) -> -1: pilot-agent stops waiting and ends Envoy")
        return
    total = 0
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if not name.startswith("listener.") or "worker_" in name:
            verdict = "skipped (not a listener total)"
        elif name.startswith("listener.envoy_internal_"):
            verdict = "skipped (internal listener)"
        elif name in KNOWN:
            verdict = "skipped (Istio's own listener)"
        else:
            total += int(value)
            verdict = "counted"
        print(f"{line.strip():<58} {verdict}")
    print(f"active connections: {total}")


if __name__ == "__main__":
    main()
