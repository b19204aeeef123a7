"""Startup phases: an Envoy whose first cluster and first route come late.

One Envoy (two workers) in a namespace; its only cluster gets its endpoints by EDS and its only
listener its routes by RDS, both from the lab's control plane (slow_control_plane.py), which
holds each resource back until the lab moves its file into served/. Between the steps the lab
reads /ready, the server.state gauge, /init_dump and the control plane's log. Sections: start,
pre-initializing, initializing, live.
"""

import time

TITLE = "Startup phases: server.state while clusters, then routes, are still missing"
SUMMARY_ZH = "集群和路由迟到时 Envoy 的启动阶段：PRE_INITIALIZING、INITIALIZING、LIVE 与 server.state。"
NEEDS_ROOT = True
USES = ["upstream.py"]
NORMALIZE = [
    (r"after \d+ ms", "after <n> ms"),  # curl's time to a refused connection
]
ADMIN = 15000
STATS = r"^(server\.state|listener_manager\.workers_started|cluster\.backend\.membership_total)$"




def until(lab, what: str, holds, timeout: float = 10) -> None:
    """Wait (without recording) for the state the next step shows; fail with `what` if it never comes."""
    deadline = time.monotonic() + timeout
    while not holds():
        if time.monotonic() > deadline:
            lab.fact(False, what)
        time.sleep(0.05)


def state(lab, ns) -> tuple[str, int]:
    """What /ready says (computed on the spot) and the server.state gauge (set at each stats flush)."""
    ready = lab.query(f"curl -s -m 2 127.0.0.1:{ADMIN}/ready", ns=ns, check=False).output.strip()
    return ready, lab.stat(ADMIN, "server.state", ns=ns)


def show_state(lab, ns) -> None:
    lab.sh(f"curl -s -w 'HTTP %{{http_code}}\\n' 127.0.0.1:{ADMIN}/ready", ns=ns)
    lab.sh(f"curl -s '127.0.0.1:{ADMIN}/stats?filter={STATS}'", ns=ns)


def run(lab):
    ns = lab.pod("startup")

    with lab.section("start"):
        lab.query("mkdir -p served/eds served/rds")
        lab.start("python3 common/upstream.py --port 8080 --name backend", name="upstream", ns=ns,
                  ready=lab.port_open(8080, ns=ns))
        lab.start("python3 slow_control_plane.py --port 18000 --dir served", name="cp", ns=ns,
                  ready=lab.port_open(18000, ns=ns))
        lab.start("envoy -c envoy.yaml --concurrency 2 --disable-hot-restart --log-level warn",
                  name="envoy", ns=ns, ready=lab.port_open(ADMIN, ns=ns))

    with lab.section("pre-initializing"):
        # The gauge is written at each stats flush (1 s in this bootstrap): wait for the first one.
        until(lab, "the server stays in PRE_INITIALIZING while EDS has not answered",
              lambda: state(lab, ns) == ("PRE_INITIALIZING", 2))
        # The control plane logs a request as soon as it reads it: wait for EDS's.
        until(lab, "Envoy asks for the cluster's endpoints", lambda: "EDS: Envoy asks" in lab.log("cp"))
        show_state(lab, ns)
        lab.fact(lab.stat(ADMIN, "server.state", ns=ns) == 2 and lab.stat(ADMIN, "listener_manager.workers_started", ns=ns) == 0,
                 "server.state is 2 (PRE_INITIALIZING) and no worker has started")
        lab.fact(lab.stat(ADMIN, "cluster.backend.membership_total", ns=ns) == 0, "the cluster has no endpoint yet")
        lab.sh("cat cp.log")
        lab.fact("EDS: Envoy asks for backend" in lab.last.output and "RDS" not in lab.last.output,
                 "Envoy asked for the endpoints, and not yet for the routes")
        lab.sh("curl -sS 127.0.0.1:8000/", ns=ns, check=False)
        lab.fact(lab.last.code == 7, "the listener's port refuses connections: it is bound but not listening")

    with lab.section("initializing"):
        lab.sh("mv held/backend.json served/eds/")
        until(lab, "with the endpoints in, the server moves to INITIALIZING",
              lambda: state(lab, ns) == ("INITIALIZING", 3)
              and "RDS: Envoy asks" in lab.log("cp") and "EDS: Envoy ACKs" in lab.log("cp"))
        show_state(lab, ns)
        lab.fact(lab.stat(ADMIN, "server.state", ns=ns) == 3 and lab.stat(ADMIN, "listener_manager.workers_started", ns=ns) == 0,
                 "server.state is 3 (INITIALIZING), workers still not started")
        lab.fact(lab.stat(ADMIN, "cluster.backend.membership_total", ns=ns) == 1, "the cluster has its endpoint")
        # EDS and RDS are two gRPC streams: their lines interleave in the log in no fixed order,
        # so each stream's lines are shown on their own.
        lab.sh("grep ^EDS cp.log")
        lab.fact("EDS: control plane sends backend (version 1)" in lab.last.output
                 and "EDS: Envoy ACKs version 1" in lab.last.output, "the endpoints went out and Envoy accepted them")
        lab.sh("grep ^RDS cp.log")
        lab.fact(lab.last.output.strip() == "RDS: Envoy asks for local-routes",
                 "only now does Envoy ask for the listener's routes")
        lab.sh(f"curl -s 127.0.0.1:{ADMIN}/init_dump", ns=ns)
        lab.fact("local-routes" in lab.last.output, "init_dump names the RDS target the listener waits for")
        lab.sh("curl -sS 127.0.0.1:8000/", ns=ns, check=False)
        lab.fact(lab.last.code == 7, "still refused")

    with lab.section("live"):
        lab.sh("mv held/local-routes.json served/rds/")
        until(lab, "with the routes in, the server goes LIVE and starts its workers",
              lambda: state(lab, ns) == ("LIVE", 0) and lab.stat(ADMIN, "listener_manager.workers_started", ns=ns) == 1)
        show_state(lab, ns)
        lab.sh(f"curl -s 127.0.0.1:{ADMIN}/init_dump", ns=ns)
        lab.sh("curl -sS 127.0.0.1:8000/hello", ns=ns)
        lab.fact("backend: GET /hello" in lab.last.output, "the listener now answers through the route and the cluster")
