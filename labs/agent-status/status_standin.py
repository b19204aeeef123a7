"""A stand-in for pilot-agent's readiness endpoint on port 15020 (GET /healthz/ready only).

    python3 status_standin.py --port 15020 --admin 15000

It is not pilot-agent. It repeats, in Python, the decision Istio 1.30.3 makes for this one path,
against the same Envoy admin queries:

- status.Server.handleReadyProbe (pilot/cmd/pilot-agent/status/server.go): 200 or 503 without a
  body; on 503 it logs "Envoy proxy is NOT ready: <reason>", on the first 200 after a failure
  "Envoy proxy is ready";
- ready.Probe.Check (pilot/cmd/pilot-agent/status/ready/probe.go): first checkConfigStatus, then
  checkEnvoyReadiness, each remembered once it has passed (receivedFirstUpdate, atleastOnceReady);
- util.GetUpdateStatusStats and util.GetReadinessStats (pilot/cmd/pilot-agent/status/util/stats.go):
  the two /stats?usedonly&filter=... queries, parsed by line prefix, with the same messages.

What it leaves out: the probes pilot-agent adds after this one (the gRPC bootstrap file check and,
with DNS capture on, the DNS table check), the "server is terminated" answer once pilot-agent has
received SIGTERM, and Go's wording of transport errors (this stand-in is always started after Envoy).
"""

import argparse
import http.server
import urllib.parse
import urllib.request

UPDATE_STATS = r"^(cluster_manager\.cds|listener_manager\.lds)\.(update_success|update_rejected)$"
READY_STATS = r"^(server\.state|listener_manager\.workers_started)"
STATES = {0: "LIVE", 1: "DRAINING", 2: "PRE_INITIALIZING", 3: "INITIALIZING"}


class NotReady(Exception):
    pass


def get_stats(admin: int, regex: str) -> str:
    url = f"http://127.0.0.1:{admin}/stats?usedonly&filter={urllib.parse.quote(regex)}"
    with urllib.request.urlopen(url, timeout=3) as response:  # noqa: S310 - loopback only
        return response.read().decode()


def parse(text: str, names: list[str]) -> dict[str, int]:
    """First line starting with each name (stats.go's processLine); 0 when absent."""
    values = dict.fromkeys(names, 0)
    found = set()
    for line in text.splitlines():
        for name in names:
            if name not in found and line.startswith(name):
                found.add(name)
                values[name] = int(line.split(":")[1].strip())
    return values


class Probe:
    def __init__(self, admin: int):
        self.admin = admin
        self.received_first_update = False
        self.atleast_once_ready = False

    def check(self) -> None:
        self.check_config_status()
        self.check_envoy_readiness()

    def check_config_status(self) -> None:
        if self.received_first_update:
            return
        s = parse(get_stats(self.admin, UPDATE_STATS), [
            "cluster_manager.cds.update_success", "cluster_manager.cds.update_rejected",
            "listener_manager.lds.update_success", "listener_manager.lds.update_rejected"])  # fmt: skip
        cds_ok, cds_rej = s["cluster_manager.cds.update_success"], s["cluster_manager.cds.update_rejected"]
        lds_ok, lds_rej = s["listener_manager.lds.update_success"], s["listener_manager.lds.update_rejected"]
        summary = (f"cds updates: {cds_ok} successful, {cds_rej} rejected; "
                   f"lds updates: {lds_ok} successful, {lds_rej} rejected")  # fmt: skip
        if cds_ok > 0 and lds_ok > 0:
            self.received_first_update = True
            return
        if cds_ok == 0 and lds_ok == 0:
            raise NotReady(f"config not received from XDS server (is Istiod running?): {summary}")
        if lds_rej > 0 or cds_rej > 0:
            raise NotReady(f"config received from XDS server, but was rejected: {summary}")
        raise NotReady(f"config not fully received from XDS server: {summary}")

    def check_envoy_readiness(self) -> None:
        if self.atleast_once_ready:
            return
        text = get_stats(self.admin, READY_STATS)
        if "server.state" not in text:
            raise NotReady(f"failed to get readiness stats: server.state is not yet updated: {text}")
        if "listener_manager.workers_started" not in text:
            raise NotReady(f"failed to get readiness stats: listener_manager.workers_started is not yet updated: {text}")
        s = parse(text, ["server.state", "listener_manager.workers_started"])
        if s["server.state"] != 0:
            raise NotReady(f"server is not live, current state is: {STATES.get(s['server.state'], 'UNKNOWN')}")
        if s["listener_manager.workers_started"] != 1:
            raise NotReady("workers have not yet started")
        self.atleast_once_ready = True


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=15020)
    parser.add_argument("--admin", type=int, default=15000)
    args = parser.parse_args()
    probe = Probe(args.admin)
    last_ok = [False]

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's name
            if self.path != "/healthz/ready":
                self.send_response(404)
                self.send_header("content-length", "0")
                self.end_headers()
                return
            try:
                probe.check()
                reason = ""
            except NotReady as exc:
                reason = str(exc)
            self.send_response(503 if reason else 200)
            self.send_header("content-length", "0")
            self.end_headers()
            if reason:
                print(f"warn\tEnvoy proxy is NOT ready: {reason}", flush=True)
                last_ok[0] = False
            else:
                if not last_ok[0]:
                    print("info\tEnvoy proxy is ready", flush=True)
                last_ok[0] = True

        def log_message(self, *_):  # only the lines pilot-agent itself would log
            pass

    http.server.HTTPServer(("0.0.0.0", args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
