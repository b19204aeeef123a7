"""UC (upstream connection termination): an upstream that closes a reused keep-alive connection
without answering, the 503 Envoy makes of it, and a retry policy that hides it.

One Envoy (one worker) in front of labs/common/upstream.py. Its path /reuse-drop answers the
first request of a connection and closes the connection on the next one, as an upstream does when
its keep-alive timeout fires just as the proxy reuses the connection. Listener :8000 has no retry
policy (cluster "backend"); :8001 retries on reset (cluster "backend_retry"). Sections: start,
first-request, reused-connection, access-log, upstream-log, stats, retry, retry-stats.
"""

import time

from labs.kit import LabFailure

TITLE = "UC: an upstream closes a reused keep-alive connection"
SUMMARY_ZH = "UC：上游关闭了一条正被复用的长连接，以及一条重试策略如何把它掩盖。"
NEEDS_ROOT = True
USES = ["upstream.py"]
NORMALIZE = [
    (r"127\.0\.0\.1:\d{4,5} GET", "127.0.0.1:<port> GET"),  # the upstream sees Envoy's ephemeral source ports
]
ADMIN = 15000
ENVOY = "envoy -c envoy.yaml --disable-hot-restart --concurrency 1 --file-flush-interval-msec 100 --log-level warn"


def wait_log(lab, lines: int, timeout: float = 5.0) -> None:
    """The access log is written on a timer (--file-flush-interval-msec 100): wait, bounded,
    until it holds `lines` lines."""
    path = lab.workdir / "access.log"
    deadline = time.monotonic() + timeout
    while True:
        text = path.read_text() if path.exists() else ""
        if text.count("\n") >= lines:
            return
        if time.monotonic() > deadline:
            raise LabFailure(f"lab {lab.name}: access.log has {text.count(chr(10))} lines, not {lines}, after {timeout} s")
        time.sleep(0.05)


def counters(lab, ns, cluster, names):
    return {n: lab.stat(ADMIN, f"cluster.{cluster}.{n}", ns=ns) for n in names}


def run(lab):
    ns = lab.pod("flag-uc")
    watched = ["upstream_rq_503", "upstream_cx_destroy_remote_with_active_rq", "upstream_rq_retry",
               "upstream_rq_retry_success", "upstream_cx_total", "upstream_rq_total"]

    with lab.section("start"):
        lab.start("python3 common/upstream.py --host 127.0.0.1 --port 8080", name="upstream", ns=ns,
                  ready=lab.port_open(8080, ns=ns))
        lab.start(ENVOY, name="envoy", ns=ns, ready=lab.envoy_ready(ADMIN, ns=ns))

    with lab.section("first-request"):
        lab.sh("curl -s -w 'status=%{http_code}\\n' 127.0.0.1:8000/reuse-drop", ns=ns)
        lab.fact("status=200" in lab.last.output, "the first request on a new upstream connection gets 200")
        before = counters(lab, ns, "backend", watched)

    with lab.section("reused-connection"):
        lab.sh("curl -s -w '\\nstatus=%{http_code}\\n' 127.0.0.1:8000/reuse-drop", ns=ns)
        out = lab.last.output
        lab.fact("status=503" in out, "the second request, on the reused connection, gets 503")
        lab.fact("upstream connect error or disconnect/reset before headers. reset reason: connection termination" in out,
                 "the 503 body names the reset reason: connection termination")
        after = counters(lab, ns, "backend", watched)

    with lab.section("access-log"):
        wait_log(lab, 2)
        lab.sh("cat access.log")
        lines = lab.last.output.splitlines()
        lab.fact("code=200 flags=- details=via_upstream" in lines[0], "the first request is logged 200, no flag, via_upstream")
        lab.fact("code=503 flags=UC details=upstream_reset_before_response_started{connection_termination}" in lines[1],
                 "the second is logged 503 with flag UC and details upstream_reset_before_response_started{connection_termination}")

    with lab.section("upstream-log"):
        lab.sh("grep reuse-drop upstream.log")
        lab.fact("conn=2 req=1" in lab.last.output and "conn=2 req=2" in lab.last.output
                 and "closed without an answer" in lab.last.output,
                 "both requests reached the upstream on the same connection; it closed on the second")

    with lab.section("stats"):
        lab.sh(f"curl -s '127.0.0.1:{ADMIN}/stats?filter=^cluster\\.backend\\.(upstream_rq_503|upstream_cx_destroy_remote_with_active_rq|upstream_rq_retry|upstream_cx_total|upstream_rq_total)$'", ns=ns)
        delta = {n: after[n] - before[n] for n in watched}
        lab.fact(delta["upstream_rq_503"] == 1, "the UC 503 moves upstream_rq_503 by 1 (Envoy charges its own 503 to the cluster)")
        lab.fact(delta["upstream_cx_destroy_remote_with_active_rq"] == 1,
                 "upstream_cx_destroy_remote_with_active_rq moves by 1: the upstream closed a connection with a request on it")
        lab.fact(delta["upstream_cx_total"] == 0 and delta["upstream_rq_total"] == 1,
                 "no new connection was opened for the second request: it went out on the pooled one")
        lab.fact(delta["upstream_rq_retry"] == 0, "without a retry policy nothing is retried")

    with lab.section("retry"):
        before = counters(lab, ns, "backend_retry", watched)
        lab.sh("curl -s -w 'status=%{http_code}\\n' 127.0.0.1:8001/reuse-drop", ns=ns)
        lab.sh("curl -s -w 'status=%{http_code}\\n' 127.0.0.1:8001/reuse-drop", ns=ns)
        lab.fact(lab.last.output.count("status=200") == 1, "with retry_on: reset the second request also gets 200")
        after = counters(lab, ns, "backend_retry", watched)
        wait_log(lab, 4)
        lab.sh("tail -n 2 access.log")
        lab.fact("code=200 flags=- details=via_upstream transport_failure=- attempts=2" in lab.last.output,
                 "the retried request is logged 200 with no flag and attempts=2")

    with lab.section("retry-stats"):
        lab.sh(f"curl -s '127.0.0.1:{ADMIN}/stats?filter=^cluster\\.backend_retry\\.(upstream_rq_503|upstream_cx_destroy_remote_with_active_rq|upstream_rq_retry|upstream_rq_retry_success|upstream_cx_total|upstream_rq_total)$'", ns=ns)
        delta = {n: after[n] - before[n] for n in watched}
        lab.fact(delta["upstream_rq_retry"] == 1 and delta["upstream_rq_retry_success"] == 1,
                 "the retry shows only in upstream_rq_retry and upstream_rq_retry_success (1 each)")
        lab.fact(delta["upstream_cx_destroy_remote_with_active_rq"] == 1 and delta["upstream_rq_503"] == 0,
                 "the connection was still lost (upstream_cx_destroy_remote_with_active_rq 1), but no 503 was charged")
        lab.fact(delta["upstream_cx_total"] == 2 and delta["upstream_rq_total"] == 3,
                 "two requests took three upstream attempts over two connections")
