"""DR (downstream remote reset): an HTTP/2 client cancels one request with RST_STREAM(CANCEL)
while Envoy waits for a slow upstream (/delay/3000), then sends another request on the same
connection. This is what a gRPC client does when it cancels a call.

One Envoy (one worker) in front of labs/common/upstream.py, with two hops the way a client
sidecar and a server sidecar are chained: listener :8000 ("outer", codec_type AUTO, so the
client speaks HTTP/2 with prior knowledge) -> cluster "hop" (HTTP/2) -> listener :8001
("inner") -> cluster "backend" (HTTP/1.1). The default route timeout (15 s). The client is
h2cancel.py (standard library only). Sections: start, cancel, access-log, stats, upstream-log.
"""

import re
import time

from labs.kit import LabFailure

TITLE = "DR: an HTTP/2 client resets its stream before the response"
SUMMARY_ZH = "DR：HTTP/2 客户端在响应到来前用 RST_STREAM 取消一个流，连接照常使用，访问日志里的状态码 0。"
NEEDS_ROOT = True
USES = ["upstream.py"]
NORMALIZE = [
    (r"127\.0\.0\.1:\d{4,5} GET", "127.0.0.1:<port> GET"),  # the upstream sees Envoy's ephemeral source ports
]
ADMIN = 15000
ENVOY = "envoy -c envoy.yaml --disable-hot-restart --concurrency 1 --file-flush-interval-msec 100 --log-level warn"
WATCHED = {
    "http.outer": ["downstream_rq_rx_reset", "downstream_cx_destroy_remote_active_rq", "downstream_rq_completed"],
    "http.inner": ["downstream_rq_rx_reset", "downstream_cx_destroy_remote_active_rq"],
    "http2": ["rx_reset"],
    "cluster.hop": ["upstream_rq_tx_reset", "upstream_cx_total", "http2.tx_reset"],
    "cluster.backend": ["upstream_cx_destroy_local_with_active_rq", "upstream_rq_tx_reset", "upstream_cx_total"],
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
    ns = lab.pod("flag-dr")

    with lab.section("start"):
        lab.start("python3 common/upstream.py --host 127.0.0.1 --port 8080 --name backend", name="upstream", ns=ns,
                  ready=lab.port_open(8080, ns=ns))
        lab.start(ENVOY, name="envoy", ns=ns, ready=lab.envoy_ready(ADMIN, ns=ns))
        before = snapshot(lab, ns)

    with lab.section("cancel"):
        lab.sh(f"python3 h2cancel.py --port 8000 --path /delay/3000 --admin {ADMIN}", ns=ns)
        out = lab.last.output
        lab.fact("> RST_STREAM stream=1 error=CANCEL" in out and "< RST_STREAM" not in out,
                 "the client resets stream 1; Envoy sends no frame back for it")
        lab.fact("< HEADERS stream=3 :status 200" in out and "'backend: GET /'" in out and " end_stream" in out
                 and "GOAWAY" not in out and "EOF" not in out,
                 "the next request on the same connection gets its 200; the connection stays open")

    with lab.section("access-log"):
        wait_file(lab, "access.log", "/ code=")
        wait_file(lab, "inner-access.log", "/ code=")
        lab.sh("cat access.log")
        lab.fact("/delay/3000 code=0 flags=DR details=http2.remote_reset" in lab.last.output,
                 "the outer hop logs the cancelled request with code 0, flag DR and details http2.remote_reset")
        lab.fact("/ code=200 flags=- details=via_upstream" in lab.last.output,
                 "the request after it is logged normally")
        lab.sh("cat inner-access.log")
        lab.fact("/delay/3000 code=0 flags=DR details=http2.remote_reset" in lab.last.output,
                 "the inner hop, reset by the outer hop's router, logs DR too")

    with lab.section("stats"):
        shown = "|".join(f"{re.escape(scope)}\\.({'|'.join(re.escape(n) for n in names)})" for scope, names in WATCHED.items())
        lab.sh(f"curl -s '127.0.0.1:{ADMIN}/stats?filter=^({shown})$'", ns=ns)
        after = snapshot(lab, ns)
        delta = {k: after[k] - before[k] for k in after}
        lab.fact(delta["http.outer.downstream_rq_rx_reset"] == 1 and delta["http.inner.downstream_rq_rx_reset"] == 1
                 and delta["http2.rx_reset"] == 2,
                 "each hop counts one downstream_rq_rx_reset; the two server codecs received two RST_STREAM frames")
        lab.fact(delta["http.outer.downstream_cx_destroy_remote_active_rq"] == 0
                 and delta["http.inner.downstream_cx_destroy_remote_active_rq"] == 0
                 and delta["http.outer.downstream_rq_completed"] == 1,
                 "no connection was closed with a request in flight; the second request completed")
        lab.fact(delta["cluster.hop.upstream_rq_tx_reset"] == 1 and delta["cluster.hop.http2.tx_reset"] == 1
                 and delta["cluster.hop.upstream_cx_total"] == 1,
                 "on the HTTP/2 hop Envoy resets only the stream (upstream_rq_tx_reset 1) and reuses the connection")
        lab.fact(delta["cluster.backend.upstream_cx_destroy_local_with_active_rq"] == 1
                 and delta["cluster.backend.upstream_rq_tx_reset"] == 0
                 and delta["cluster.backend.upstream_cx_total"] == 2,
                 "on the HTTP/1 backend it can only close the connection (upstream_cx_destroy_local_with_active_rq 1, "
                 "upstream_rq_tx_reset 0); the next request opens a new one")

    with lab.section("upstream-log"):
        wait_file(lab, "upstream.log", "GET /delay/3000 -> ")
        lab.sh("grep GET upstream.log")
        out = lab.last.output
        conns = {m.group(2): m.group(1) for m in re.finditer(r"^(conn=\d+) req=1 \S+ GET (\S+) -> 200$", out, re.M)}
        lab.fact(set(conns) == {"/delay/3000", "/"} and conns["/delay/3000"] != conns["/"],
                 "the upstream, unaware, finishes its 3 s of work and answers into a closed connection; "
                 "the second request came on another connection")
