"""Connections and network filters: what a tcp_proxy and an HTTP connection manager count, the
read filter chain stopping early, and watermarks pausing the other side of a slow connection.

One Envoy (one worker) in a namespace with four listeners (see envoy.yaml), one upstream
(labs/common/upstream.py, whose /big/<bytes> answers with a large body) and client.py's slow
peers: a reader that takes its time, a writer that does not, and an upstream that reads slowly.

Sections: two-listeners, filter-order, slow-reader, slow-upstream.
"""

import re
import time

TITLE = "Connections and network filters: tcp_proxy and HCM stats, filter order, watermarks"
SUMMARY_ZH = "TCP 代理与 HTTP 连接管理器各统计什么，网络过滤器的顺序，慢读的两端让流控计数器动起来。"
NEEDS_ROOT = True
USES = ["upstream.py"]
ADMIN = 15000
SIZE = 2_000_000
NORMALIZE = [
    # How often a slow peer makes a buffer cross its watermarks depends on scheduling and on the
    # kernel's socket buffers; the counters move (the lab asserts it), by an amount that varies.
    # A zero stays a zero, so a counter that did not move still shows.
    (r"^((cluster\.[a-z_]+\.upstream|tcp\.[a-z]+\.downstream)_flow_control_(paused|resumed)_reading_total: )[1-9]\d*$",
     r"\1<n>"),
]


def run(lab):
    ns = lab.pod("filters")

    def stat(name):
        return lab.stat(ADMIN, name, ns=ns)

    def until(name, value):
        deadline = time.monotonic() + 5
        while stat(name) < value and time.monotonic() < deadline:
            time.sleep(0.05)
        return stat(name)

    def stats(pattern):
        lab.sh(f"curl -s '127.0.0.1:{ADMIN}/stats?filter={pattern}'", ns=ns)

    lab.start("python3 common/upstream.py --port 8080 --name backend", name="upstream", ns=ns,
              ready=lab.port_open(8080, ns=ns), record=False)
    lab.start("python3 client.py slow-sink --port 8090", name="sink", ns=ns,
              ready=lambda: "listening" in lab.log("sink"), record=False)
    lab.start("envoy -c envoy.yaml --concurrency 1 --disable-hot-restart --log-level warn", name="envoy", ns=ns,
              ready=lab.envoy_ready(ADMIN, ns=ns))

    with lab.section("two-listeners"):
        lab.sh("curl -s http://127.0.0.1:10000/a http://127.0.0.1:10000/b", ns=ns)
        lab.sh("curl -s http://127.0.0.1:10001/a http://127.0.0.1:10001/b", ns=ns)
        until("listener.tcp.downstream_cx_destroy", 1)
        until("listener.http.downstream_cx_destroy", 1)
        stats("^(listener\\.(tcp|http)\\.downstream_cx_total|tcp\\.tcp\\.downstream_cx_total"
              "|http\\.http\\.downstream_(cx|rq)_total|cluster\\.(tcp|http)_backend\\.upstream_(cx|rq)_total)$")
        lab.fact(stat("tcp.tcp.downstream_cx_total") == 1 and stat("cluster.tcp_backend.upstream_rq_total") == 1
                 and stat("http.http.downstream_rq_total") == 2
                 and stat("cluster.http_backend.upstream_rq_total") == 2,
                 "curl sends two requests on one connection: tcp_proxy takes one stream from the pool "
                 "for the whole connection, the HCM routes each request")

    with lab.section("filter-order"):
        lab.sh("python3 client.py two --port 10002", ns=ns)
        lab.fact("second connection: closed by the proxy" in lab.last.output,
                 "connection_limit (max 1) closes the second connection")
        until("listener.guarded.downstream_cx_destroy", 2)
        stats("^(connection_limit\\.guard\\.limited_connections|tcp\\.guarded\\.downstream_cx_total"
              "|cluster\\.guarded_backend\\.upstream_cx_total)$")
        lab.fact(stat("connection_limit.guard.limited_connections") == 1
                 and stat("tcp.guarded.downstream_cx_total") == 2
                 and stat("cluster.guarded_backend.upstream_cx_total") == 1,
                 "tcp_proxy was installed on both connections (downstream_cx_total 2), but its "
                 "onNewConnection ran only on the first: one upstream connection")

    with lab.section("slow-reader"):
        lab.sh(f"python3 client.py slow-reader --port 10000 --bytes {SIZE}", ns=ns, timeout=20)
        lab.fact(f"body bytes received: {SIZE}" in lab.last.output, "the whole body arrived through tcp_proxy")
        lab.sh(f"python3 client.py slow-reader --port 10001 --bytes {SIZE}", ns=ns, timeout=20)
        lab.fact(f"body bytes received: {SIZE}" in lab.last.output, "the whole body arrived through the HCM")
        stats("^cluster\\.(tcp|http)_backend\\.upstream_flow_control_(paused|resumed)_reading_total$")
        for cluster in ("tcp_backend", "http_backend"):
            # Not always as many resumes as pauses: a pause can outlive the upstream response.
            paused = stat(f"cluster.{cluster}.upstream_flow_control_paused_reading_total")
            resumed = stat(f"cluster.{cluster}.upstream_flow_control_resumed_reading_total")
            lab.fact(paused > 0 and resumed > 0,
                     f"{cluster}: the downstream write buffer crossed its high watermark, reading from "
                     "the upstream paused and resumed")

    with lab.section("slow-upstream"):
        lab.sh(f"python3 client.py fast-writer --port 10003 --bytes {SIZE}", ns=ns, timeout=20)
        lab.fact(f"bytes sent: {SIZE}" in lab.last.output, "the writer sent everything")
        deadline = time.monotonic() + 5
        while "connection carried" not in lab.log("sink") and time.monotonic() < deadline:
            time.sleep(0.05)
        lab.sh("cat sink.log")
        lab.fact(re.search(rf"connection carried {SIZE} bytes", lab.last.output) is not None,
                 "every byte reached the slow upstream")
        stats("^tcp\\.upload\\.downstream_flow_control_(paused|resumed)_reading_total$")
        lab.fact(stat("tcp.upload.downstream_flow_control_paused_reading_total") > 0
                 and stat("tcp.upload.downstream_flow_control_resumed_reading_total") > 0,
                 "the upstream write buffer crossed its high watermark: tcp_proxy paused reading the "
                 "downstream and resumed")
