"""A stand-in for pilot-agent's status server on port 15020: GET /healthz/ready only.

    python3 status_standin.py --port 15020 --admin 15000

It makes the checks pilot-agent's readiness probe makes (pilot/cmd/pilot-agent/status/ready/
probe.go), from Envoy's admin /stats: CDS and LDS have each been updated successfully at least
once; then server.state is 0 (LIVE) and listener_manager.workers_started is 1. It answers 200
when they hold and 503 when not, without a body, as pilot-agent does, and logs each answer with
its reason on stdout.
"""

import argparse
import http.server
import re
import urllib.request

STATS = r"^(cluster_manager\.cds|listener_manager\.lds)\.update_success$|^server\.state$|^listener_manager\.workers_started$"


def not_ready(admin: int) -> str:
    """Why Envoy is not ready, or "" when it is."""
    url = f"http://127.0.0.1:{admin}/stats?usedonly&filter={STATS}"
    with urllib.request.urlopen(url, timeout=3) as response:
        text = response.read().decode()
    stats = {name: int(value) for name, value in re.findall(r"^(\S+): (\d+)$", text, re.M)}
    if not stats.get("cluster_manager.cds.update_success") or not stats.get("listener_manager.lds.update_success"):
        return "config not received from XDS server"
    if stats.get("server.state") != 0:
        return f"server is not live, server.state={stats.get('server.state')}"
    if stats.get("listener_manager.workers_started") != 1:
        return "workers have not yet started"
    return ""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=15020)
    parser.add_argument("--admin", type=int, default=15000)
    args = parser.parse_args()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's name
            if self.path != "/healthz/ready":
                self.send_response(404)
                self.end_headers()
                return
            reason = not_ready(args.admin)
            self.send_response(503 if reason else 200)
            self.send_header("content-length", "0")
            self.end_headers()
            print(f"GET /healthz/ready -> {503 if reason else 200}" + (f" ({reason})" if reason else ""), flush=True)

        def log_message(self, *_):  # our own one line per request instead
            pass

    http.server.HTTPServer(("127.0.0.1", args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
