"""The router's retries and timeouts: a retry that succeeds, one that runs out, a per-try timeout
cut short by the route timeout, the timeout headers an untrusted client cannot set, a reset after
the response started, Istio's inbound retry policy, and the host a retry goes to.

One Envoy (one worker). Upstreams: flaky.py (this folder) on 8090, whose /fail/<n>/<key> fails
the first <n> requests for a key with 503 and whose /partial breaks off a started response; and
labs/common/upstream.py as "a" on 8081 and "b" on 8082. envoy.yaml has one listener and one
cluster per case. Sections: start, retry-success, retry-success-stats, retry-exhausted,
retry-exhausted-stats, per-try-vs-route, per-try-vs-route-stats, timeout-headers,
timeout-header-honoured, reset-after-headers, inbound-policy, inbound-policy-stats, same-host,
other-host, hosts.
"""

import time

from labs.kit import LabFailure

TITLE = "Router: retries, per-try and route timeouts, retry host selection"
SUMMARY_ZH = "路由器的重试：成功的重试、耗尽的重试、单次尝试超时与总超时、重试换主机。"
NEEDS_ROOT = True
USES = ["upstream.py"]
ADMIN = 15000
ENVOY = "envoy -c envoy.yaml --disable-hot-restart --concurrency 1 --file-flush-interval-msec 100 --log-level warn"
CURL = "curl -s -w '\\nstatus=%{http_code}\\n' 127.0.0.1:"
RETRY_STATS = ["upstream_rq_total", "upstream_rq_retry", "upstream_rq_retry_success", "upstream_rq_retry_limit_exceeded",
               "upstream_rq_retry_backoff_exponential", "upstream_rq_200", "upstream_rq_503", "retry.upstream_rq_503"]
TIMEOUT_STATS = ["upstream_rq_total", "upstream_rq_per_try_timeout", "upstream_rq_timeout", "upstream_rq_retry",
                 "upstream_rq_retry_limit_exceeded", "upstream_rq_504"]


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


def show_stats(lab, ns, cluster: str, names: list[str]) -> dict[str, int]:
    pattern = "|".join(n.replace(".", "\\.") for n in names)
    out = lab.sh(f"curl -s '127.0.0.1:{ADMIN}/stats?filter=^cluster\\.{cluster}\\.({pattern})$'", ns=ns).output
    # read the values from the output shown (a counter not yet created is absent, i.e. 0)
    values = dict(line.rsplit(": ", 1) for line in out.splitlines() if ": " in line)
    return {n: int(values.get(f"cluster.{cluster}.{n}", 0)) for n in names}


def run(lab):
    ns = lab.pod("router-retries")
    lines = 0

    with lab.section("start"):
        lab.start("python3 flaky.py --port 8090", name="flaky", ns=ns, ready=lab.port_open(8090, ns=ns))
        lab.start("python3 common/upstream.py --host 127.0.0.1 --port 8081 --name a", name="a", ns=ns,
                  ready=lab.port_open(8081, ns=ns))
        lab.start("python3 common/upstream.py --host 127.0.0.1 --port 8082 --name b", name="b", ns=ns,
                  ready=lab.port_open(8082, ns=ns))
        lab.start(ENVOY, name="envoy", ns=ns, ready=lab.envoy_ready(ADMIN, ns=ns))

    # -- a retry that succeeds, and one that runs out ----------------------------------------------
    with lab.section("retry-success"):
        lab.sh(CURL + "8001/fail/1/a", ns=ns)
        lab.fact("flaky: /fail/1/a -> 200\n\nstatus=200" in lab.last.output, "the client gets 200: the 503 of the first try never reaches it")
        lines += 1
        wait_log(lab, lines)
        lab.sh("tail -n 1 access.log")
        lab.fact("code=200 flags=- details=via_upstream attempts=2" in lab.last.output,
                 "logged 200 with no flag after two attempts")
        lab.sh("grep /fail/1/a flaky.log")
        lab.fact(lab.last.output.splitlines() == ["/fail/1/a -> 503", "/fail/1/a -> 200"],
                 "the upstream saw the request twice: 503, then 200")

    with lab.section("retry-success-stats"):
        c = show_stats(lab, ns, "flaky", RETRY_STATS)
        lab.fact(c["upstream_rq_retry"] == 1 and c["upstream_rq_retry_success"] == 1
                 and c["upstream_rq_retry_backoff_exponential"] == 1,
                 "one retry, after an exponential back-off, that succeeded")
        lab.fact(c["retry.upstream_rq_503"] == 1 and c["upstream_rq_503"] == 0 and c["upstream_rq_200"] == 1,
                 "the retried 503 is counted under retry.upstream_rq_503, not upstream_rq_503")

    with lab.section("retry-exhausted"):
        lab.sh(CURL + "8001/fail/5/b", ns=ns)
        lab.fact("flaky: /fail/5/b -> 503\n\nstatus=503" in lab.last.output,
                 "after the last retry the client gets the upstream's own 503 body")
        lines += 1
        wait_log(lab, lines)
        lab.sh("tail -n 1 access.log")
        lab.fact("code=503 flags=URX details=via_upstream attempts=3" in lab.last.output,
                 "logged 503 URX via_upstream after three attempts")

    with lab.section("retry-exhausted-stats"):
        c = show_stats(lab, ns, "flaky", RETRY_STATS)
        lab.fact(c["upstream_rq_retry"] == 3 and c["upstream_rq_retry_limit_exceeded"] == 1,
                 "two more retries (3 in all), then upstream_rq_retry_limit_exceeded 1")
        lab.fact(c["retry.upstream_rq_503"] == 3 and c["upstream_rq_503"] == 1,
                 "only the 503 that went to the client is in upstream_rq_503")

    # -- per-try timeout inside the route timeout ------------------------------------------------
    with lab.section("per-try-vs-route"):
        lab.sh(CURL + "8002/delay/3000", ns=ns)
        lab.fact("upstream request timeout\nstatus=504" in lab.last.output, "504 upstream request timeout")
        lines += 1
        wait_log(lab, lines)
        lab.sh("tail -n 1 access.log")
        lab.fact("code=504 flags=UT details=response_timeout attempts=3" in lab.last.output,
                 "the route timeout ended it (response_timeout), during the third attempt")

    with lab.section("per-try-vs-route-stats"):
        c = show_stats(lab, ns, "per_try", TIMEOUT_STATS)
        lab.fact(c["upstream_rq_per_try_timeout"] == 2 and c["upstream_rq_timeout"] == 1 and c["upstream_rq_retry"] == 2,
                 "two per-try timeouts, two retries, then the route timeout (upstream_rq_timeout 1)")
        lab.fact(c["upstream_rq_retry_limit_exceeded"] == 0, "three of the six allowed attempts were left unused")

    # -- the timeout headers ---------------------------------------------------------------------
    with lab.section("timeout-headers"):
        lab.sh("curl -s 127.0.0.1:8003/headers | grep '^x-envoy'", ns=ns)
        lab.fact("x-envoy-expected-rq-timeout-ms: 15000" in lab.last.output,
                 "a route without timeout gets Envoy's 15 s default, and tells the upstream so")
        lab.sh("curl -s -H 'x-envoy-upstream-rq-timeout-ms: 200' 127.0.0.1:8003/headers | grep '^x-envoy'", ns=ns)
        lab.fact("x-envoy-expected-rq-timeout-ms: 15000" in lab.last.output and "x-envoy-external-address" in lab.last.output,
                 "from an external peer the timeout header is stripped: still 15000")
        lab.sh("curl -s -H 'x-envoy-upstream-rq-timeout-ms: 200' 127.0.0.1:8004/headers | grep '^x-envoy'", ns=ns)
        lab.fact("x-envoy-expected-rq-timeout-ms: 200" in lab.last.output and "x-envoy-internal: true" in lab.last.output,
                 "from an internal peer the header sets the route timeout: 200")
        lines += 3

    with lab.section("timeout-header-honoured"):
        lab.sh("curl -s -o /dev/null -w 'status=%{http_code}\\n' -H 'x-envoy-upstream-rq-timeout-ms: 200' "
               "127.0.0.1:8003/delay/600", ns=ns)
        lab.fact("status=200" in lab.last.output, "external: the 600 ms response arrives")
        lab.sh("curl -s -o /dev/null -w 'status=%{http_code}\\n' -H 'x-envoy-upstream-rq-timeout-ms: 200' "
               "127.0.0.1:8004/delay/600", ns=ns)
        lab.fact("status=504" in lab.last.output, "internal: cut at 200 ms")
        lines += 2
        wait_log(lab, lines)
        lab.sh("tail -n 2 access.log")
        lab.fact("code=504 flags=UT details=response_timeout attempts=1" in lab.last.output,
                 "the header-set timeout is a route timeout: UT response_timeout")

    # -- a reset after the response started ------------------------------------------------------
    with lab.section("reset-after-headers"):
        lab.sh("curl -s -o /dev/null -w 'status=%{http_code}\\n' 127.0.0.1:8005/partial", ns=ns, check=False)
        lab.fact("status=200" in lab.last.output, "the client already has the 200 headers")
        lines += 1
        wait_log(lab, lines)
        lab.sh("tail -n 1 access.log")
        lab.fact("code=200 flags=UPE details=upstream_reset_after_response_started{protocol_error} attempts=1"
                 in lab.last.output,
                 "a body cut short is a reset after the response started: UPE, one attempt despite retry_on reset")
        c = show_stats(lab, ns, "partial", ["upstream_rq_total", "upstream_rq_retry", "upstream_cx_protocol_error"])
        lab.fact(c["upstream_rq_retry"] == 0 and c["upstream_cx_protocol_error"] == 1,
                 "no retry; the connection is counted as a protocol error")

    # -- Istio's inbound policy: reset-before-request --------------------------------------------
    with lab.section("inbound-policy"):
        lab.sh(CURL + "8006/closed", ns=ns)
        lab.fact("retried and the latest reset reason: remote connection failure\nstatus=503" in lab.last.output,
                 "a refused connection is retried by reset-before-request, and still fails")
        lab.sh(CURL + "8006/reuse-drop", ns=ns)
        lab.fact("status=200" in lab.last.output, "the first request on a new connection gets 200")
        lab.sh(CURL + "8006/reuse-drop", ns=ns)
        lab.fact("reset reason: connection termination\nstatus=503" in lab.last.output
                 and "retried" not in lab.last.output, "the reused connection is dropped: UC, not retried")
        lines += 3
        wait_log(lab, lines)
        lab.sh("tail -n 3 access.log")
        out = lab.last.output
        lab.fact("/closed code=503 flags=URX,UF" in out and "attempts=3" in out, "refused: URX,UF after three attempts")
        lab.fact("code=503 flags=UC details=upstream_reset_before_response_started{connection_termination} attempts=1"
                 in out, "dropped after the request was sent: UC after one attempt")

    with lab.section("inbound-policy-stats"):
        c = show_stats(lab, ns, "closed", ["upstream_cx_connect_fail", "upstream_rq_retry", "upstream_rq_retry_limit_exceeded"])
        lab.fact(c["upstream_cx_connect_fail"] == 3 and c["upstream_rq_retry"] == 2, "three refused connections, two retries")
        c = show_stats(lab, ns, "inbound", ["upstream_cx_destroy_remote_with_active_rq", "upstream_rq_retry", "upstream_rq_503"])
        lab.fact(c["upstream_cx_destroy_remote_with_active_rq"] == 1 and c["upstream_rq_retry"] == 0,
                 "the dropped connection had the request on it; no retry")

    # -- which host a retry goes to --------------------------------------------------------------
    for section, port in (("same-host", 8007), ("other-host", 8008)):
        with lab.section(section):
            for _ in range(3):
                lab.sh("curl -s -o /dev/null -w 'status=%{http_code}\\n' -H 'x-user: alice' "
                       f"127.0.0.1:{port}/status/503", ns=ns)
            lines += 3
            wait_log(lab, lines)
            lab.sh("tail -n 3 access.log")
            lab.fact(lab.last.output.count("code=503 flags=URX details=via_upstream attempts=2") == 3,
                     "each request: two attempts, both 503, URX")
            lab.fact(all(line.count("hosts_attempted=127.0.0.1:808") == 1 and "," not in line.split("hosts_attempted=")[1]
                         for line in lab.last.output.splitlines()[1:]),
                     "%UPSTREAM_HOSTS_ATTEMPTED% names one host: the router resets it for every attempt")

    with lab.section("hosts"):
        lab.sh(f"curl -s 127.0.0.1:{ADMIN}/clusters | grep -E '^pair_(hash|prev)::127.0.0.1:808[12]::rq_total::' | sort",
               ns=ns)
        counts = {}
        for line in lab.last.output.splitlines():
            cluster, host, _, value = line.split("::")
            counts.setdefault(cluster, []).append(int(value))
        lab.fact(sorted(counts["pair_hash"]) == [0, 6],
                 "without a host predicate, the hash sends every retry to the same host: 6 and 0")
        lab.fact(counts["pair_prev"] == [3, 3], "with previous_hosts each retry goes to the other host: 3 and 3")
