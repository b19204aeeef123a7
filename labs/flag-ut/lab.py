"""UT (upstream request timeout): the route timeout, the per-try timeout with retries, and the
per-try timeout under the retry_on list Istio uses by default.

One Envoy (one worker) in front of labs/common/upstream.py, whose /delay/2000 answers after 2 s.
Three listeners and clusters: "route_timeout" (:8001, route timeout 0.5 s), "per_try" (:8002,
per_try_timeout 0.2 s, retry_on 5xx, num_retries 2) and "istio_retry_on" (:8003, the same per-try
timeout and retries with Istio's default retry_on). Sections: start, route-timeout,
route-timeout-log, route-timeout-stats, per-try, per-try-log, per-try-stats, istio-retry-on,
istio-retry-on-log, istio-retry-on-stats.
"""

import time

from labs.kit import LabFailure

TITLE = "UT: route timeout and per-try timeout"
SUMMARY_ZH = "UT：路由超时与单次尝试超时。"
NEEDS_ROOT = True
USES = ["upstream.py"]
ADMIN = 15000
ENVOY = "envoy -c envoy.yaml --disable-hot-restart --concurrency 1 --file-flush-interval-msec 100 --log-level warn"
CURL = "curl -s -w '\\nstatus=%{http_code}\\n' 127.0.0.1:"
WATCHED = ["upstream_rq_timeout", "upstream_rq_per_try_timeout", "upstream_rq_retry", "upstream_rq_retry_limit_exceeded",
           "upstream_rq_504", "upstream_rq_total"]


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


def show_stats(lab, ns, cluster: str) -> dict[str, int]:
    lab.sh(f"curl -s '127.0.0.1:{ADMIN}/stats?filter=^cluster\\.{cluster}\\.({'|'.join(WATCHED)})$'", ns=ns)
    return {n: lab.stat(ADMIN, f"cluster.{cluster}.{n}", ns=ns) for n in WATCHED}


def run(lab):
    ns = lab.pod("flag-ut")

    with lab.section("start"):
        lab.start("python3 common/upstream.py --host 127.0.0.1 --port 8080", name="upstream", ns=ns,
                  ready=lab.port_open(8080, ns=ns))
        lab.start(ENVOY, name="envoy", ns=ns, ready=lab.envoy_ready(ADMIN, ns=ns))

    with lab.section("route-timeout"):
        lab.sh(CURL + "8001/delay/2000", ns=ns)
        lab.fact("upstream request timeout\nstatus=504" in lab.last.output, "the route timeout gives 504 upstream request timeout")

    with lab.section("route-timeout-log"):
        wait_log(lab, 1)
        lab.sh("tail -n 1 access.log")
        lab.fact("code=504 flags=UT details=response_timeout" in lab.last.output and "attempts=1" in lab.last.output,
                 "logged 504 UT response_timeout, one attempt")

    with lab.section("route-timeout-stats"):
        c = show_stats(lab, ns, "route_timeout")
        lab.fact(c["upstream_rq_timeout"] == 1 and c["upstream_rq_per_try_timeout"] == 0 and c["upstream_rq_504"] == 1,
                 "upstream_rq_timeout 1 and upstream_rq_504 1")

    with lab.section("per-try"):
        lab.sh(CURL + "8002/delay/2000", ns=ns)
        lab.fact("upstream request timeout\nstatus=504" in lab.last.output,
                 "three tries that each time out also end in 504 upstream request timeout")

    with lab.section("per-try-log"):
        wait_log(lab, 2)
        lab.sh("tail -n 1 access.log")
        lab.fact("code=504 flags=URX,UT details=upstream_per_try_timeout" in lab.last.output and "attempts=3" in lab.last.output,
                 "logged 504 URX,UT upstream_per_try_timeout after three attempts")

    with lab.section("per-try-stats"):
        c = show_stats(lab, ns, "per_try")
        lab.fact(c["upstream_rq_per_try_timeout"] == 3 and c["upstream_rq_timeout"] == 0,
                 "upstream_rq_per_try_timeout 3; the route's own timeout (upstream_rq_timeout) never fired")
        lab.fact(c["upstream_rq_retry"] == 2 and c["upstream_rq_retry_limit_exceeded"] == 1,
                 "upstream_rq_retry 2, upstream_rq_retry_limit_exceeded 1")

    with lab.section("istio-retry-on"):
        lab.sh(CURL + "8003/delay/2000", ns=ns)
        lab.fact("upstream request timeout\nstatus=504" in lab.last.output, "504 after the first per-try timeout")

    with lab.section("istio-retry-on-log"):
        wait_log(lab, 3)
        lab.sh("tail -n 1 access.log")
        lab.fact("code=504 flags=UT details=upstream_per_try_timeout" in lab.last.output and "attempts=1" in lab.last.output,
                 "logged 504 UT upstream_per_try_timeout after one attempt: the per-try timeout was not retried")

    with lab.section("istio-retry-on-stats"):
        c = show_stats(lab, ns, "istio_retry_on")
        lab.fact(c["upstream_rq_per_try_timeout"] == 1 and c["upstream_rq_retry"] == 0,
                 "upstream_rq_per_try_timeout 1, upstream_rq_retry 0: Istio's default retry_on does not cover a per-try timeout")
