"""UO (upstream overflow): each circuit breaker of a cluster, filled deterministically with slow
requests or a held connection, and the overflow stat and flag each one produces.

One Envoy (one worker) in front of labs/common/upstream.py, whose /delay/<ms> answers late. Five
clusters, one breaker turned down to 1 on each: "pending" (max_connections 1, max_pending_requests 1,
listener :8001), "requests" (max_requests 1, :8002), "retries" (max_retries 1, :8003, whose route
retries 5xx once with a 1 s per-try timeout), "budget" (a retry budget that allows exactly one retry
at a time, :8004, routed like :8003) and "tcp" (max_connections 1 behind a tcp_proxy, :8005). The lab
waits on Envoy's own gauges before each next request, so the counts do not depend on timing.
Sections: start, pending-fill, pending-overflow, pending-done, pending-stats, requests-fill,
requests-overflow, requests-done, requests-stats, retries-fill, retries-overflow, retries-done,
retries-stats, budget-fill, budget-overflow, budget-done, budget-stats, tcp-fill, tcp-overflow,
tcp-done, tcp-stats.
"""

import time

from labs.kit import LabFailure

TITLE = "UO: five circuit breakers overflow (pending requests, requests, retries, a retry budget, tcp_proxy connections)"
SUMMARY_ZH = "UO：挂起请求、并发请求、重试、重试预算、TCP 代理连接数五种熔断阈值各自溢出。"
NEEDS_ROOT = True
USES = ["upstream.py"]
ADMIN = 15000
ENVOY = "envoy -c envoy.yaml --disable-hot-restart --concurrency 1 --file-flush-interval-msec 100 --log-level warn"
CURL_BG = "curl -s -o /dev/null -w '{name} status=%{{http_code}}\\n' 127.0.0.1:{port}{path}"
CURL = "curl -s -w '\\nstatus=%{http_code} x-envoy-overloaded=%header{x-envoy-overloaded}\\n' 127.0.0.1:"
COUNTERS = ["upstream_cx_total", "upstream_cx_overflow", "upstream_rq_pending_overflow", "upstream_rq_active_overflow",
            "upstream_rq_retry", "upstream_rq_retry_overflow", "upstream_rq_retry_limit_exceeded",
            "upstream_rq_per_try_timeout"]


def wait_log(lab, lines: int, timeout: float = 5.0, name: str = "access.log") -> None:
    """Access logs are written on a timer (--file-flush-interval-msec 100): wait, bounded,
    until the log holds `lines` lines."""
    path = lab.workdir / name
    deadline = time.monotonic() + timeout
    while True:
        text = path.read_text() if path.exists() else ""
        if text.count("\n") >= lines:
            return
        if time.monotonic() > deadline:
            raise LabFailure(f"lab {lab.name}: {name} has {text.count(chr(10))} lines, not {lines}, after {timeout} s")
        time.sleep(0.05)


def wait_stat(lab, ns, name: str, value: int, timeout: float = 5.0) -> None:
    """Wait, bounded, until a gauge or counter reaches a value (the state the next step needs)."""
    deadline = time.monotonic() + timeout
    while lab.stat(ADMIN, name, ns=ns) != value:
        if time.monotonic() > deadline:
            raise LabFailure(f"lab {lab.name}: {name} did not reach {value} in {timeout} s")
        time.sleep(0.02)


def show_stats(lab, ns, cluster: str, names: list[str]) -> dict[str, int]:
    """Show some stats of a cluster; the values shown are the values returned (one admin query,
    so the step stays short while a slow request holds its place)."""
    pattern = "|".join(n.replace(".", "\\.") for n in names)
    lab.sh(f"curl -s '127.0.0.1:{ADMIN}/stats?filter=^cluster\\.{cluster}\\.({pattern})$'", ns=ns)
    shown = dict(line.rsplit(": ", 1) for line in lab.last.output.splitlines() if ": " in line)
    missing = [n for n in names if f"cluster.{cluster}.{n}" not in shown]
    if missing:
        raise LabFailure(f"lab {lab.name}: no stat {', '.join(missing)} for cluster {cluster}")
    return {n: int(shown[f"cluster.{cluster}.{n}"]) for n in names}


def run(lab):
    ns = lab.pod("flag-uo")
    lines = 0

    with lab.section("start"):
        lab.start("python3 common/upstream.py --host 127.0.0.1 --port 8080", name="upstream", ns=ns,
                  ready=lab.port_open(8080, ns=ns))
        lab.start(ENVOY, name="envoy", ns=ns, ready=lab.envoy_ready(ADMIN, ns=ns))

    # -- max_pending_requests ---------------------------------------------------------------------
    with lab.section("pending-fill"):
        lab.start(CURL_BG.format(name="p1", port=8001, path="/delay/1000"), name="p1", ns=ns)
        wait_stat(lab, ns, "cluster.pending.upstream_rq_active", 1)  # p1 holds the only connection
        lab.start(CURL_BG.format(name="p2", port=8001, path="/delay/1000"), name="p2", ns=ns)
        wait_stat(lab, ns, "cluster.pending.upstream_rq_pending_active", 1)  # p2 waits for it
        g = show_stats(lab, ns, "pending", ["upstream_rq_active", "upstream_rq_pending_active",
                                            "circuit_breakers.default.cx_open", "circuit_breakers.default.rq_pending_open"])
        lab.fact(g["circuit_breakers.default.cx_open"] == 1 and g["circuit_breakers.default.rq_pending_open"] == 1,
                 "with one request active and one pending, both breakers report open (cx_open 1, rq_pending_open 1)")

    with lab.section("pending-overflow"):
        lab.sh(CURL + "8001/delay/1000", ns=ns)
        out = lab.last.output
        lab.fact("reset reason: overflow" in out and "status=503 x-envoy-overloaded=true" in out,
                 "the third request gets 503 at once: reset reason overflow, x-envoy-overloaded: true")

    with lab.section("pending-done"):
        lab.wait("p1", timeout=10)
        lab.wait("p2", timeout=10)
        lab.sh("cat p1.log p2.log")
        lab.fact(lab.last.output.count("status=200") == 2, "the active and the pending request both end with 200")
        lines += 3
        wait_log(lab, lines)
        lab.sh("tail -n 3 access.log")
        lab.fact("code=503 flags=UO details=upstream_reset_before_response_started{overflow}" in lab.last.output,
                 "the overflow is logged 503 UO upstream_reset_before_response_started{overflow}")

    with lab.section("pending-stats"):
        c = show_stats(lab, ns, "pending", COUNTERS[:4])
        lab.fact(c["upstream_rq_pending_overflow"] == 1 and c["upstream_rq_active_overflow"] == 0,
                 "max_pending_requests overflow: upstream_rq_pending_overflow 1")
        lab.fact(c["upstream_cx_overflow"] == 1 and c["upstream_cx_total"] == 1,
                 "the pending request found max_connections full: upstream_cx_overflow 1, still one connection")

    # -- max_requests -----------------------------------------------------------------------------
    with lab.section("requests-fill"):
        lab.start(CURL_BG.format(name="r1", port=8002, path="/delay/1000"), name="r1", ns=ns)
        wait_stat(lab, ns, "cluster.requests.upstream_rq_active", 1)
        g = show_stats(lab, ns, "requests", ["upstream_rq_active", "circuit_breakers.default.rq_open"])
        lab.fact(g["circuit_breakers.default.rq_open"] == 1, "one active request fills max_requests 1 (rq_open 1)")

    with lab.section("requests-overflow"):
        lab.sh(CURL + "8002/delay/1000", ns=ns)
        out = lab.last.output
        lab.fact("reset reason: overflow" in out and "status=503 x-envoy-overloaded=true" in out,
                 "the second request gets 503, reset reason overflow")

    with lab.section("requests-done"):
        lab.wait("r1", timeout=10)
        lab.sh("cat r1.log")
        lab.fact("r1 status=200" in lab.last.output, "the active request ends with 200")
        lines += 2
        wait_log(lab, lines)
        lab.sh("tail -n 2 access.log")
        lab.fact("code=503 flags=UO details=upstream_reset_before_response_started{overflow}" in lab.last.output,
                 "the max_requests overflow is logged 503 UO as well")

    with lab.section("requests-stats"):
        c = show_stats(lab, ns, "requests", COUNTERS[:4])
        lab.fact(c["upstream_rq_active_overflow"] == 1 and c["upstream_rq_pending_overflow"] == 0,
                 "max_requests overflow: upstream_rq_active_overflow 1, upstream_rq_pending_overflow 0")
        lab.fact(c["upstream_cx_total"] == 2,
                 "the refused request had already opened a second connection (upstream_cx_total 2)")

    # -- max_retries ------------------------------------------------------------------------------
    with lab.section("retries-fill"):
        lab.start(CURL_BG.format(name="t1", port=8003, path="/delay/3000"), name="t1", ns=ns)
        # t1's first try hits the 1 s per-try timeout; its retry holds the only retry slot
        wait_stat(lab, ns, "cluster.retries.circuit_breakers.default.rq_retry_open", 1)
        # upstream_rq_retry counts a retry when it is sent, after its backoff (0-25 ms): wait for it
        wait_stat(lab, ns, "cluster.retries.upstream_rq_retry", 1)
        g = show_stats(lab, ns, "retries", ["upstream_rq_per_try_timeout", "upstream_rq_retry",
                                            "circuit_breakers.default.rq_retry_open"])
        lab.fact(g["upstream_rq_retry"] == 1 and g["circuit_breakers.default.rq_retry_open"] == 1,
                 "t1's retry is in flight and holds max_retries 1 (rq_retry_open 1)")

    with lab.section("retries-overflow"):
        lab.sh(CURL + "8003/status/503", ns=ns)
        out = lab.last.output
        lab.fact("upstream: GET /status/503" in out and out.rstrip().endswith("status=503 x-envoy-overloaded="),
                 "the upstream's own 503 reaches the client unretried (no x-envoy-overloaded header)")

    with lab.section("retries-done"):
        lab.wait("t1", timeout=10)
        lab.sh("cat t1.log")
        lab.fact("t1 status=504" in lab.last.output, "t1's retry times out too: 504")
        lines += 2
        wait_log(lab, lines)
        lab.sh("tail -n 2 access.log")
        lab.fact("/status/503 code=503 flags=UO details=via_upstream" in lab.last.output,
                 "the unretried 503 is logged with flag UO and details via_upstream")
        lab.fact("/delay/3000 code=504 flags=URX,UT details=upstream_per_try_timeout" in lab.last.output,
                 "t1 is logged 504 URX,UT upstream_per_try_timeout")

    with lab.section("retries-stats"):
        c = show_stats(lab, ns, "retries", COUNTERS[4:])
        lab.fact(c["upstream_rq_retry_overflow"] == 1, "max_retries overflow: upstream_rq_retry_overflow 1")
        lab.fact(c["upstream_rq_retry"] == 1 and c["upstream_rq_retry_limit_exceeded"] == 1
                 and c["upstream_rq_per_try_timeout"] == 2,
                 "t1: one retry, two per-try timeouts, then upstream_rq_retry_limit_exceeded 1")

    # -- retry_budget -----------------------------------------------------------------------------
    # budget_percent 0 and min_retry_concurrency 1: the budget is max(0 % x (active + pending), 1) = 1
    # whatever the traffic, so one retry in flight exhausts it. max_retries is 4294967295, as Istio
    # writes it, and track_remaining is on so that remaining_retries exists.
    with lab.section("budget-fill"):
        lab.start(CURL_BG.format(name="b1", port=8004, path="/delay/3000"), name="b1", ns=ns)
        # b1's first try hits the 1 s per-try timeout; its retry takes the budget's only place.
        # rq_retry_open cannot be waited on here (it stays 0): wait for the retry to be sent
        wait_stat(lab, ns, "cluster.budget.upstream_rq_retry", 1)
        g = show_stats(lab, ns, "budget", ["upstream_rq_per_try_timeout", "upstream_rq_retry",
                                           "circuit_breakers.default.rq_retry_open",
                                           "circuit_breakers.default.remaining_retries"])
        lab.fact(g["upstream_rq_retry"] == 1, "b1's retry is in flight")
        lab.fact(g["circuit_breakers.default.rq_retry_open"] == 0,
                 "under a retry budget rq_retry_open follows max_retries (4294967295): 0 while the budget is full")
        lab.fact(g["circuit_breakers.default.remaining_retries"] == 0,
                 "under a retry budget remaining_retries is held at 0")

    with lab.section("budget-overflow"):
        lab.sh(CURL + "8004/status/503", ns=ns)
        out = lab.last.output
        lab.fact("upstream: GET /status/503" in out and out.rstrip().endswith("status=503 x-envoy-overloaded="),
                 "the upstream's own 503 reaches the client unretried (no x-envoy-overloaded header)")

    with lab.section("budget-done"):
        lab.wait("b1", timeout=10)
        lab.sh("cat b1.log")
        lab.fact("b1 status=504" in lab.last.output, "b1's retry times out too: 504")
        lines += 2
        wait_log(lab, lines)
        lab.sh("tail -n 2 access.log")
        lab.fact("/status/503 code=503 flags=UO details=via_upstream" in lab.last.output,
                 "the retry the budget refused is logged with flag UO and details via_upstream")
        lab.fact("/delay/3000 code=504 flags=URX,UT details=upstream_per_try_timeout" in lab.last.output,
                 "b1 is logged 504 URX,UT upstream_per_try_timeout")

    with lab.section("budget-stats"):
        c = show_stats(lab, ns, "budget", COUNTERS[4:] + ["circuit_breakers.default.rq_retry_open"])
        lab.fact(c["upstream_rq_retry_overflow"] == 1, "retry budget overflow: upstream_rq_retry_overflow 1")
        lab.fact(c["upstream_rq_retry"] == 1 and c["upstream_rq_retry_limit_exceeded"] == 1,
                 "b1: one retry, then upstream_rq_retry_limit_exceeded 1")
        lab.fact(c["circuit_breakers.default.rq_retry_open"] == 0, "rq_retry_open never left 0")

    # -- max_connections on a tcp_proxy -----------------------------------------------------------
    with lab.section("tcp-fill"):
        # an HTTP request carried as opaque bytes through the tcp_proxy holds its upstream connection
        lab.start(CURL_BG.format(name="c1", port=8005, path="/delay/1000"), name="c1", ns=ns)
        wait_stat(lab, ns, "cluster.tcp.upstream_cx_active", 1)
        g = show_stats(lab, ns, "tcp", ["upstream_cx_active", "circuit_breakers.default.cx_open"])
        lab.fact(g["upstream_cx_active"] == 1 and g["circuit_breakers.default.cx_open"] == 1,
                 "one proxied connection fills max_connections 1 (cx_open 1)")

    with lab.section("tcp-overflow"):
        # the probe sends nothing, so Envoy's close is a FIN, never a reset of unread data
        lab.sh("python3 probe.py --port 8005 --wait 3", ns=ns)
        lab.fact("closed by the proxy (FIN), 0 bytes received" in lab.last.output,
                 "the second connection is accepted, then closed at once without a byte")

    with lab.section("tcp-done"):
        lab.wait("c1", timeout=10)
        lab.sh("cat c1.log")
        lab.fact("c1 status=200" in lab.last.output, "the connection that held the place is served: 200")
        wait_log(lab, 2, name="tcp.log")
        lab.sh("cat tcp.log")
        log = lab.last.output.splitlines()
        # ResourceLimitExceeded is value 2 of TcpProxy's UpstreamFailureReason ("initializion" is Envoy's spelling)
        lab.fact(log[0] == "tcp flags=UO upstream_host=- local_close=tcp_initializion_failure:2",
                 "the refused connection is logged first (it ended first): flag UO, no upstream host, "
                 "closed by Envoy for exceeding a resource limit")
        lab.fact(log[1].startswith("tcp flags=- upstream_host=127.0.0.1:8080 "),
                 "the held connection is logged with no flag")

    with lab.section("tcp-stats"):
        c = show_stats(lab, ns, "tcp", ["upstream_cx_total", "upstream_cx_overflow"])
        lab.fact(c["upstream_cx_overflow"] == 1 and c["upstream_cx_total"] == 1,
                 "tcp_proxy max_connections overflow: upstream_cx_overflow 1, no second upstream connection")
        lab.sh(f"curl -s '127.0.0.1:{ADMIN}/stats?filter=^tcp\\.tcp\\.downstream_cx_total$'", ns=ns)
        lab.fact("tcp.tcp.downstream_cx_total: 2" in lab.last.output, "the proxy accepted both connections")
