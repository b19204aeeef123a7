"""UH (no healthy upstream): a cluster with no endpoints, and a one-host cluster whose host outlier
detection ejects, under Envoy's default max_ejection_percent, the default panic threshold, and the
panic threshold Istio sets (0).

One Envoy (one worker) in front of labs/common/upstream.py, whose /status/503 answers 503. Four
clusters, one listener each: "empty" (:8001, no endpoints), "one_host" (:8002, outlier detection
with consecutive_5xx 3, default max_ejection_percent), "panic" (:8003, max_ejection_percent 100,
default healthy_panic_threshold) and "no_panic" (:8004, max_ejection_percent 100,
healthy_panic_threshold 0). Sections: start, no-endpoints, no-endpoints-log, no-endpoints-stats,
eject-capped, eject-capped-stats, eject-panic, eject-panic-stats, eject-no-panic,
eject-no-panic-log, eject-no-panic-stats.
"""

import time

from labs.kit import LabFailure

TITLE = "UH: no endpoints, outlier ejection and the panic threshold"
SUMMARY_ZH = "UH：集群没有端点，异常检测驱逐了唯一的主机，以及恐慌阈值。"
NEEDS_ROOT = True
USES = ["upstream.py"]
ADMIN = 15000
ENVOY = "envoy -c envoy.yaml --disable-hot-restart --concurrency 1 --file-flush-interval-msec 100 --log-level warn"
OUTLIER = ["ejections_detected_consecutive_5xx", "ejections_enforced_consecutive_5xx", "ejections_overflow",
           "ejections_active"]


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


def wait_stat(lab, ns, name: str, value: int, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while lab.stat(ADMIN, name, ns=ns) != value:
        if time.monotonic() > deadline:
            raise LabFailure(f"lab {lab.name}: {name} did not reach {value} in {timeout} s")
        time.sleep(0.02)


def three_503s(lab, ns, port: int, cluster: str, ejected: bool) -> None:
    lab.sh(f"for i in 1 2 3; do curl -s -o /dev/null -w '%{{http_code}} ' 127.0.0.1:{port}/status/503; done; echo", ns=ns)
    lab.fact(lab.last.output.split() == ["503", "503", "503"], "the upstream answers 503 three times")
    # The worker reports the third 5xx to the outlier detector on the main thread, which decides.
    wait_stat(lab, ns, f"cluster.{cluster}.outlier_detection.ejections_detected_consecutive_5xx", 1)
    if ejected:
        wait_stat(lab, ns, f"cluster.{cluster}.outlier_detection.ejections_active", 1)
        # The main thread then posts the new host set to the worker; give the post a moment.
        time.sleep(0.2)


def outlier_stats(lab, ns, cluster: str, extra: list[str]) -> dict[str, int]:
    names = [f"outlier_detection.{n}" for n in OUTLIER] + extra
    pattern = "|".join(n.replace(".", "\\.") for n in names)
    lab.sh(f"curl -s '127.0.0.1:{ADMIN}/stats?filter=^cluster\\.{cluster}\\.({pattern})$'", ns=ns)
    return {n.split(".")[-1]: lab.stat(ADMIN, f"cluster.{cluster}.{n}", ns=ns) for n in names}


def run(lab):
    ns = lab.pod("flag-uh")
    lines = 0

    with lab.section("start"):
        lab.start("python3 common/upstream.py --host 127.0.0.1 --port 8080", name="upstream", ns=ns,
                  ready=lab.port_open(8080, ns=ns))
        lab.start(ENVOY, name="envoy", ns=ns, ready=lab.envoy_ready(ADMIN, ns=ns))

    # -- no endpoints -----------------------------------------------------------------------------
    with lab.section("no-endpoints"):
        lab.sh("curl -s -w '\\nstatus=%{http_code}\\n' 127.0.0.1:8001/", ns=ns)
        lab.fact("no healthy upstream\nstatus=503" in lab.last.output, "a cluster with no endpoints: 503 no healthy upstream")

    with lab.section("no-endpoints-log"):
        lines += 1
        wait_log(lab, lines)
        lab.sh("tail -n 1 access.log")
        lab.fact("code=503 flags=UH details=no_healthy_upstream" in lab.last.output, "logged 503 UH no_healthy_upstream")

    with lab.section("no-endpoints-stats"):
        lab.sh(f"curl -s '127.0.0.1:{ADMIN}/stats?filter=^cluster\\.empty\\.(upstream_cx_none_healthy|upstream_rq_503|upstream_rq_total|membership_total)$'",
               ns=ns)
        lab.fact(lab.stat(ADMIN, "cluster.empty.upstream_cx_none_healthy", ns=ns) == 1,
                 "upstream_cx_none_healthy 1")
        lab.fact(lab.stat(ADMIN, "cluster.empty.upstream_rq_503", ns=ns) == 1, "the 503 is charged to the cluster")

    # -- one host, default max_ejection_percent ---------------------------------------------------
    with lab.section("eject-capped"):
        three_503s(lab, ns, 8002, "one_host", ejected=False)
        lines += 3
        lab.sh("curl -s -w 'status=%{http_code}\\n' 127.0.0.1:8002/", ns=ns)
        lab.fact("status=200" in lab.last.output, "the host was not ejected: the next request reaches it")
        lines += 1

    with lab.section("eject-capped-stats"):
        c = outlier_stats(lab, ns, "one_host", [])
        lab.fact(c["ejections_detected_consecutive_5xx"] == 1 and c["ejections_overflow"] == 1
                 and c["ejections_active"] == 0 and c["ejections_enforced_consecutive_5xx"] == 0,
                 "detected once, not enforced: ejecting the only host would exceed max_ejection_percent 10 (ejections_overflow 1)")

    # -- one host ejected, default panic threshold ------------------------------------------------
    with lab.section("eject-panic"):
        three_503s(lab, ns, 8003, "panic", ejected=True)
        lines += 3
        lab.sh(f"curl -s 127.0.0.1:{ADMIN}/clusters | grep '^panic::127.0.0.1:8080::health_flags'", ns=ns)
        lab.fact("::health_flags::/failed_outlier_check" in lab.last.output, "the host is ejected (failed_outlier_check)")
        lab.sh("curl -s -w 'status=%{http_code}\\n' 127.0.0.1:8003/", ns=ns)
        lab.fact("status=200" in lab.last.output, "in panic mode the ejected host still gets the request: 200")
        lines += 1

    with lab.section("eject-panic-stats"):
        c = outlier_stats(lab, ns, "panic", ["lb_healthy_panic", "upstream_cx_none_healthy"])
        lab.fact(c["ejections_enforced_consecutive_5xx"] == 1 and c["ejections_active"] == 1,
                 "with max_ejection_percent 100 the only host is ejected (ejections_enforced_consecutive_5xx 1)")
        lab.fact(c["lb_healthy_panic"] == 1 and c["upstream_cx_none_healthy"] == 0,
                 "0% healthy is below the 50% panic threshold: lb_healthy_panic 1, no UH")

    # -- one host ejected, panic threshold 0 (Istio) ----------------------------------------------
    with lab.section("eject-no-panic"):
        three_503s(lab, ns, 8004, "no_panic", ejected=True)
        lines += 3
        lab.sh("curl -s -w '\\nstatus=%{http_code}\\n' 127.0.0.1:8004/", ns=ns)
        lab.fact("no healthy upstream\nstatus=503" in lab.last.output,
                 "with the panic threshold at 0 the ejected host gets nothing: 503 no healthy upstream")
        lines += 1

    with lab.section("eject-no-panic-log"):
        wait_log(lab, lines)
        lab.sh("tail -n 4 access.log")
        log = lab.last.output.splitlines()
        lab.fact(all("/status/503 code=503 flags=- details=via_upstream" in line for line in log[:3]),
                 "the upstream's own 503s carry no flag")
        lab.fact("/ code=503 flags=UH details=no_healthy_upstream" in log[3], "the request after the ejection: 503 UH")

    with lab.section("eject-no-panic-stats"):
        c = outlier_stats(lab, ns, "no_panic", ["lb_healthy_panic", "upstream_cx_none_healthy"])
        lab.fact(c["ejections_enforced_consecutive_5xx"] == 1 and c["ejections_active"] == 1,
                 "the only host is ejected (ejections_enforced_consecutive_5xx 1, ejections_active 1)")
        lab.fact(c["upstream_cx_none_healthy"] == 1 and c["lb_healthy_panic"] == 0,
                 "no panic: upstream_cx_none_healthy 1, lb_healthy_panic 0")
