"""Admin endpoints that change a running Envoy: /logging, /healthcheck/fail and /runtime_modify.

One Envoy (two workers) in a namespace, in front of one upstream; its listener's first HTTP
filter is Envoy's health check filter, answering GET /healthz. Sections: start, post-only,
logging, healthcheck-fail, healthcheck-ok, runtime-modify.
"""

import time

TITLE = "Admin endpoints that change a running Envoy: logging levels, health check fail, runtime"
SUMMARY_ZH = "运行中改变 Envoy 的管理接口：POST 才能调用、/logging 即时改日志级别、/healthcheck/fail 让 /ready 与健康检查过滤器返回 503、没有 admin 层时 /runtime_modify 失败。"
NEEDS_ROOT = True
USES = ["upstream.py"]
NORMALIZE = [
    # Connection ids in Envoy's debug lines depend on how often the lab polled /ready before
    # Envoy was up; stream ids are random.
    (r'"ConnectionId":"\d+"', '"ConnectionId":"<n>"'),
    (r'"StreamId":"\d+"', '"StreamId":"<n>"'),
]
ADMIN = 15000


def http_debug_lines(lab) -> int:
    return sum(1 for line in lab.log("envoy").splitlines() if line.startswith("[debug][http]"))


def until(lab, what: str, holds, timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while not holds():
        if time.monotonic() > deadline:
            lab.fact(False, what)
        time.sleep(0.05)


def run(lab):
    ns = lab.pod("admin-ep")

    with lab.section("start"):
        lab.start("python3 common/upstream.py --port 8080 --name backend", name="upstream", ns=ns,
                  ready=lab.port_open(8080, ns=ns))  # fmt: skip
        lab.start("envoy -c envoy.yaml --concurrency 2 --disable-hot-restart --log-level warn "
                  "--log-format '[%l][%n] %v'", name="envoy", ns=ns, ready=lab.envoy_ready(ADMIN, ns=ns))  # fmt: skip
        lab.sh(f"curl -s 127.0.0.1:{ADMIN}/ready", ns=ns)

    with lab.section("post-only"):
        lab.sh(f"curl -s -w ' HTTP %{{http_code}}\\n' 127.0.0.1:{ADMIN}/healthcheck/fail", ns=ns)
        lab.fact("Method GET not allowed, POST required. HTTP 405" in lab.last.output,
                 "a handler that changes state answers GET with 405")  # fmt: skip
        lab.sh(f"curl -s -w ' HTTP %{{http_code}}\\n' 127.0.0.1:{ADMIN}/logging", ns=ns)
        lab.fact("HTTP 405" in lab.last.output, "/logging is POST only, even to list the levels")
        lab.sh(f"curl -s -o /dev/null -w 'HTTP %{{http_code}}\\n' 127.0.0.1:{ADMIN}/config_dump/", ns=ns)
        lab.fact(lab.last.output.strip() == "HTTP 404", "paths match exactly: /config_dump/ is not /config_dump")
        lab.sh("grep '\\[admin\\]' envoy.log")
        lab.fact(lab.last.output.count("rather than POST") == 2, "Envoy logs each refused GET at error level")

    with lab.section("logging"):
        lab.sh(f"curl -s -X POST '127.0.0.1:{ADMIN}/logging?http=debug' | grep -E '^  (http|router|connection|config):'",
               ns=ns)  # fmt: skip
        lab.fact("  http: debug" in lab.last.output and "  router: warning" in lab.last.output,
                 "only the http logger changes")  # fmt: skip
        lab.sh("curl -s 127.0.0.1:8000/hello", ns=ns)
        until(lab, "the worker logs the request's headers", lambda: "':path', '/hello'" in lab.log("envoy"))
        lab.sh("grep -m1 -A3 'request headers complete' envoy.log")
        lab.sh(f"curl -s -X POST '127.0.0.1:{ADMIN}/logging?http=warning' | grep -E '^  http:'", ns=ns)
        until(lab, "the admin request's own lines", lambda: "':path', '/logging?http=warning'" in lab.log("envoy"))
        before = http_debug_lines(lab)
        lab.sh("curl -s 127.0.0.1:8000/hello", ns=ns)
        time.sleep(0.3)  # give a late line the chance to show up; none should
        lab.sh("grep -A2 'request headers complete' envoy.log | grep \"':path'\"")
        lab.fact(lab.last.output.splitlines() == ["':path', '/hello'", "':path', '/logging?http=warning'"],
                 "debug lines for the first /hello and for the admin request itself, none for the second /hello")  # fmt: skip
        lab.fact(http_debug_lines(lab) == before, "back at warning, the next request logs no http debug line")

    with lab.section("healthcheck-fail"):
        lab.sh("curl -s -o /dev/null -w 'HTTP %{http_code}\\n' 127.0.0.1:8000/healthz", ns=ns)
        lab.fact(lab.last.output.strip() == "HTTP 200", "the health check filter answers 200 while the server is live")
        lab.sh(f"curl -s -X POST 127.0.0.1:{ADMIN}/healthcheck/fail", ns=ns)
        lab.sh(f"curl -s -w 'HTTP %{{http_code}}\\n' 127.0.0.1:{ADMIN}/ready", ns=ns)
        lab.fact("DRAINING" in lab.last.output and "HTTP 503" in lab.last.output, "/ready says DRAINING with 503")
        lab.sh(f"curl -s '127.0.0.1:{ADMIN}/stats?filter=^server\\.live$'", ns=ns)
        lab.fact(lab.last.output.strip() == "server.live: 0", "server.live drops to 0 at once")
        lab.sh("curl -si 127.0.0.1:8000/healthz | grep -iE '^(HTTP|x-envoy-immediate-health-check-fail|connection)'", ns=ns)
        out = lab.last.output.lower()
        lab.fact("503" in out and "x-envoy-immediate-health-check-fail: true" in out,
                 "the health check filter answers 503 with x-envoy-immediate-health-check-fail")  # fmt: skip
        lab.sh("curl -si 127.0.0.1:8000/hello | grep -iE '^(HTTP|x-envoy-immediate-health-check-fail|connection)'", ns=ns)
        out = lab.last.output.lower()
        lab.fact("200 ok" in out and "connection: close" in out,
                 "ordinary requests are still served, each closing its connection")  # fmt: skip
        lab.sh(f"curl -s '127.0.0.1:{ADMIN}/stats?filter=^http\\.http_8000\\.health_check\\.(request_total|ok|failed)$'", ns=ns)
        lab.fact("http.http_8000.health_check.failed: 1" in lab.last.output
                 and "http.http_8000.health_check.ok: 1" in lab.last.output, "one ok, one failed")  # fmt: skip

    with lab.section("healthcheck-ok"):
        lab.sh(f"curl -s -X POST 127.0.0.1:{ADMIN}/healthcheck/ok", ns=ns)
        lab.sh(f"curl -s -w 'HTTP %{{http_code}}\\n' 127.0.0.1:{ADMIN}/ready", ns=ns)
        lab.fact("LIVE" in lab.last.output and "HTTP 200" in lab.last.output, "/ready is LIVE again")
        lab.sh("curl -s -o /dev/null -w 'HTTP %{http_code}\\n' 127.0.0.1:8000/healthz", ns=ns)
        lab.fact(lab.last.output.strip() == "HTTP 200", "and the health check filter answers 200 again")

    with lab.section("runtime-modify"):
        lab.sh(f"curl -s -X POST -w ' HTTP %{{http_code}}\\n' '127.0.0.1:{ADMIN}/runtime_modify?insider.demo=1'", ns=ns)
        lab.fact("No admin layer specified" in lab.last.output and "HTTP 503" in lab.last.output,
                 "without an admin layer, /runtime_modify fails with 503")  # fmt: skip
