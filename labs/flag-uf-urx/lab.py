"""UF (upstream connection failure) and URX (retries exhausted): a cluster that points at a port
nobody listens on, without and with a retry policy.

One Envoy (one worker). The application (labs/common/upstream.py) listens on 127.0.0.1:8080, but
both clusters point at 127.0.0.1:8081, so every connection attempt is refused. Listener :8000 has
no retry policy (cluster "wrong_port"); :8001 retries connect failures twice (cluster
"wrong_port_retry"). Sections: start, connect-failure, connect-failure-log, connect-failure-stats,
retries, retries-log, retries-stats.
"""

import time

from labs.kit import LabFailure

TITLE = "UF and URX: connection refused, then retries exhausted"
SUMMARY_ZH = "UF 与 URX：上游拒绝连接，重试耗尽。"
NEEDS_ROOT = True
USES = ["upstream.py"]
ADMIN = 15000
ENVOY = "envoy -c envoy.yaml --disable-hot-restart --concurrency 1 --file-flush-interval-msec 100 --log-level warn"
WATCHED = ["upstream_cx_total", "upstream_cx_connect_fail", "upstream_rq_pending_failure_eject", "upstream_rq_503",
           "upstream_rq_retry", "upstream_rq_retry_limit_exceeded", "upstream_rq_total"]


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


def counters(lab, ns, cluster):
    return {n: lab.stat(ADMIN, f"cluster.{cluster}.{n}", ns=ns) for n in WATCHED}


def stats_command(cluster: str) -> str:
    names = "|".join(WATCHED)
    return f"curl -s '127.0.0.1:{ADMIN}/stats?filter=^cluster\\.{cluster}\\.({names})$'"


def run(lab):
    ns = lab.pod("flag-uf-urx")

    with lab.section("start"):
        lab.start("python3 common/upstream.py --host 127.0.0.1 --port 8080", name="upstream", ns=ns,
                  ready=lab.port_open(8080, ns=ns))
        lab.start(ENVOY, name="envoy", ns=ns, ready=lab.envoy_ready(ADMIN, ns=ns))
        lab.sh(f"curl -s 127.0.0.1:{ADMIN}/clusters | grep -E '::127.0.0.1:8081::cx_total' | sort", ns=ns)

    with lab.section("connect-failure"):
        lab.sh("curl -s -w '\\nstatus=%{http_code}\\n' 127.0.0.1:8000/", ns=ns)
        lab.fact("status=503" in lab.last.output, "a refused connection gives the client 503")
        lab.fact("upstream connect error or disconnect/reset before headers. reset reason: remote connection failure"
                 in lab.last.output and "transport failure reason" not in lab.last.output,
                 "the body names the reset reason (remote connection failure) but not the transport failure reason")

    with lab.section("connect-failure-log"):
        wait_log(lab, 1)
        lab.sh("tail -n 1 access.log")
        lab.fact("code=503 flags=UF details=upstream_reset_before_response_started{remote_connection_failure|"
                 "delayed_connect_error:_Connection_refused} transport_failure=delayed_connect_error:_Connection_refused "
                 "attempts=1" in lab.last.output,
                 "the log line: 503, flag UF, the reset reason and the transport failure reason in the details")

    with lab.section("connect-failure-stats"):
        lab.sh(stats_command("wrong_port"), ns=ns)
        c = counters(lab, ns, "wrong_port")
        lab.fact(c["upstream_cx_connect_fail"] == 1 and c["upstream_rq_pending_failure_eject"] == 1,
                 "one refused connection: upstream_cx_connect_fail 1, upstream_rq_pending_failure_eject 1")
        lab.fact(c["upstream_rq_503"] == 1 and c["upstream_rq_retry"] == 0, "upstream_rq_503 1, nothing retried")
        lab.fact(c["upstream_rq_total"] == 0, "upstream_rq_total stays 0: no connection ever took the request")

    with lab.section("retries"):
        lab.sh("curl -s -w '\\nstatus=%{http_code}\\n' 127.0.0.1:8001/", ns=ns)
        lab.fact("status=503" in lab.last.output, "after two retries the client still gets 503")
        lab.fact("retried and the latest reset reason: remote connection failure" in lab.last.output,
                 "the body says the request was retried")

    with lab.section("retries-log"):
        wait_log(lab, 2)
        lab.sh("tail -n 1 access.log")
        lab.fact("code=503 flags=URX,UF " in lab.last.output and "attempts=3" in lab.last.output,
                 "the log line carries URX then UF (in the order they were set) and three attempts")

    with lab.section("retries-stats"):
        lab.sh(stats_command("wrong_port_retry"), ns=ns)
        c = counters(lab, ns, "wrong_port_retry")
        lab.fact(c["upstream_cx_connect_fail"] == 3 and c["upstream_cx_total"] == 3,
                 "three attempts, three refused connections (upstream_cx_connect_fail 3)")
        lab.fact(c["upstream_rq_retry"] == 2 and c["upstream_rq_retry_limit_exceeded"] == 1,
                 "upstream_rq_retry 2, upstream_rq_retry_limit_exceeded 1")
        lab.fact(c["upstream_rq_503"] == 1, "the client's one 503 is charged once (upstream_rq_503 1)")
