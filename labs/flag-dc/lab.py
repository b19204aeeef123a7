"""DC (downstream connection termination): a client that gives up (curl -m 1) while Envoy waits
for a slow upstream (/delay/3000).

One Envoy (one worker) in front of labs/common/upstream.py, one listener (:8000), one cluster
("backend"), the default route timeout (15 s). Sections: start, client-gives-up, access-log,
stats, upstream-log.
"""

import time

from labs.kit import LabFailure

TITLE = "DC: the client hangs up before the response"
SUMMARY_ZH = "DC：客户端在响应到来前挂断，访问日志里的状态码 0。"
NEEDS_ROOT = True
USES = ["upstream.py"]
NORMALIZE = [
    (r"127\.0\.0\.1:\d{4,5} GET", "127.0.0.1:<port> GET"),  # the upstream sees Envoy's ephemeral source ports
    (r"after \d+ milliseconds", "after <n> milliseconds"),  # curl's own measure of its 1 s limit
]
ADMIN = 15000
ENVOY = "envoy -c envoy.yaml --disable-hot-restart --concurrency 1 --file-flush-interval-msec 100 --log-level warn"
WATCHED = {
    "http.ingress": ["downstream_cx_destroy_remote_active_rq", "downstream_rq_rx_reset", "downstream_rq_completed"],
    "cluster.backend": ["upstream_cx_destroy_local_with_active_rq", "upstream_rq_tx_reset", "upstream_rq_completed"],
}


def wait_file(lab, name: str, text: str, timeout: float = 5.0) -> None:
    """Wait, bounded, until a file in the work folder contains `text` (the access log is written
    on a timer, --file-flush-interval-msec 100)."""
    path = lab.workdir / name
    deadline = time.monotonic() + timeout
    while text not in (path.read_text() if path.exists() else ""):
        if time.monotonic() > deadline:
            raise LabFailure(f"lab {lab.name}: {name} does not show {text!r} after {timeout} s")
        time.sleep(0.05)


def snapshot(lab, ns):
    return {f"{scope}.{n}": lab.stat(ADMIN, f"{scope}.{n}", ns=ns) for scope, names in WATCHED.items() for n in names}


def run(lab):
    ns = lab.pod("flag-dc")

    with lab.section("start"):
        lab.start("python3 common/upstream.py --host 127.0.0.1 --port 8080", name="upstream", ns=ns,
                  ready=lab.port_open(8080, ns=ns))
        lab.start(ENVOY, name="envoy", ns=ns, ready=lab.envoy_ready(ADMIN, ns=ns))
        before = snapshot(lab, ns)

    with lab.section("client-gives-up"):
        lab.sh("curl -sS -m 1 -w 'status=%{http_code}\\n' 127.0.0.1:8000/delay/3000", ns=ns, check=False)
        lab.fact(lab.last.code == 28 and "status=000" in lab.last.output,
                 "curl gives up after 1 s (exit 28) without a response")

    with lab.section("access-log"):
        wait_file(lab, "access.log", "/delay/3000 ")
        lab.sh("cat access.log")
        lab.fact("/delay/3000 code=0 flags=DC details=downstream_remote_disconnect" in lab.last.output,
                 "the request is logged with code 0, flag DC and details downstream_remote_disconnect")

    with lab.section("stats"):
        names = "|".join(n for names in WATCHED.values() for n in names)
        lab.sh(f"curl -s '127.0.0.1:{ADMIN}/stats?filter=^(http\\.ingress|cluster\\.backend)\\.({names})$'", ns=ns)
        after = snapshot(lab, ns)
        delta = {k: after[k] - before[k] for k in after}
        lab.fact(delta["http.ingress.downstream_cx_destroy_remote_active_rq"] == 1
                 and delta["http.ingress.downstream_rq_rx_reset"] == 1,
                 "downstream_cx_destroy_remote_active_rq 1 and downstream_rq_rx_reset 1")
        lab.fact(delta["cluster.backend.upstream_cx_destroy_local_with_active_rq"] == 1
                 and delta["cluster.backend.upstream_rq_tx_reset"] == 0,
                 "Envoy closes the HTTP/1 upstream connection (upstream_cx_destroy_local_with_active_rq 1); upstream_rq_tx_reset stays 0")
        lab.fact(delta["http.ingress.downstream_rq_completed"] == 0 and delta["cluster.backend.upstream_rq_completed"] == 0,
                 "neither side counts a completed request")

    with lab.section("upstream-log"):
        wait_file(lab, "upstream.log", "GET /delay/3000 -> ")
        lab.sh("grep delay upstream.log")
        lab.fact("GET /delay/3000 -> 200" in lab.last.output,
                 "the upstream, unaware, finishes its 3 s of work and answers into a closed connection")
