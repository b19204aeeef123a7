"""NR (no route): a request no route matches (404, route_not_found), and a connection no filter
chain matches (closed at once, logged by the listener with filter_chain_not_found).

One Envoy (one worker) in front of labs/common/upstream.py. Listener :8000 has one virtual host,
app.insider.test, with one route, /api/. Listener :9000 listens on every address of the Pod, but
its only filter chain matches the destination 127.0.0.1; its listener access log keeps only NR
lines, as Istio's does. Sections: start, route-found, no-route, route-log, route-stats,
chain-found, no-chain, chain-log, chain-stats.
"""

import time

from labs.kit import LabFailure

TITLE = "NR: no route, and no matching filter chain"
SUMMARY_ZH = "NR：没有匹配的路由（404），以及没有匹配的过滤器链。"
NEEDS_ROOT = True
USES = ["upstream.py"]
NORMALIZE = [
    # Envoy closes the socket as soon as it finds no filter chain. If curl's request bytes have
    # already arrived, the kernel answers them with a reset (curl 56), otherwise with a plain close
    # (curl 52): which one depends on scheduling. Either way no HTTP response comes back.
    (r"^curl: \((52|56)\) .*$", "curl: (52|56) <connection closed without a response>"),
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


def run(lab):
    ns = lab.pod("flag-nr")

    with lab.section("start"):
        lab.start("python3 common/upstream.py --host 127.0.0.1 --port 8080", name="upstream", ns=ns,
                  ready=lab.port_open(8080, ns=ns))
        lab.start(ENVOY, name="envoy", ns=ns, ready=lab.envoy_ready(ADMIN, ns=ns))

    with lab.section("route-found"):
        lab.sh("curl -s -w 'status=%{http_code}\\n' -H 'host: app.insider.test' 127.0.0.1:8000/api/orders", ns=ns)
        lab.fact("status=200" in lab.last.output, "host app.insider.test and path /api/orders match the route: 200")

    with lab.section("no-route"):
        lab.sh("curl -s -w 'status=%{http_code} body_bytes=%{size_download}\\n' -H 'host: app.insider.test' 127.0.0.1:8000/orders",
               ns=ns)
        lab.fact("status=404 body_bytes=0" in lab.last.output, "a path no route matches: 404 with an empty body")
        lab.sh("curl -s -w 'status=%{http_code} body_bytes=%{size_download}\\n' -H 'host: shop.insider.test' 127.0.0.1:8000/api/orders",
               ns=ns)
        lab.fact("status=404 body_bytes=0" in lab.last.output, "a host no virtual host matches: the same 404")

    with lab.section("route-log"):
        wait_log(lab, 3)
        lab.sh("cat access.log")
        out = lab.last.output
        lab.fact(out.count("code=404 flags=NR details=route_not_found") == 2,
                 "both 404s are logged with flag NR and details route_not_found")

    with lab.section("route-stats"):
        lab.sh(f"curl -s '127.0.0.1:{ADMIN}/stats?filter=^http\\.routes\\.(no_route|rq_total|downstream_rq_4xx)$'", ns=ns)
        lab.fact(lab.stat(ADMIN, "http.routes.no_route", ns=ns) == 2, "the router's no_route counter is 2")
        lab.fact(lab.stat(ADMIN, "http.routes.rq_total", ns=ns) == 3, "the router saw all three requests (rq_total 3)")

    with lab.section("chain-found"):
        lab.sh("curl -s -w 'status=%{http_code}\\n' 127.0.0.1:9000/", ns=ns)
        lab.fact("status=200" in lab.last.output, "a connection to 127.0.0.1:9000 matches the filter chain: 200")

    with lab.section("no-chain"):
        lab.sh("curl -sS -w 'status=%{http_code}\\n' 127.0.0.2:9000/", ns=ns, check=False)
        lab.fact(lab.last.code in (52, 56) and "status=000" in lab.last.output,
                 "a connection to 127.0.0.2:9000 is closed without any HTTP response (status 000)")

    with lab.section("chain-log"):
        wait_log(lab, 5)
        lab.sh("tail -n 2 access.log")
        lines = lab.last.output.splitlines()
        lab.fact("127.0.0.1:9000 127.0.0.1:9000 / code=200 flags=- details=via_upstream" in lines[0],
                 "the matched connection's request is logged by its HTTP connection manager")
        lab.fact(lines[1].startswith("127.0.0.2:9000 - - code=0 flags=NR details=filter_chain_not_found"),
                 "the unmatched connection is logged only by the listener: code 0, NR, filter_chain_not_found")

    with lab.section("chain-stats"):
        lab.sh(f"curl -s '127.0.0.1:{ADMIN}/stats?filter=^listener\\.0\\.0\\.0\\.0_9000\\.(no_filter_chain_match|downstream_cx_total)$'",
               ns=ns)
        lab.fact(lab.stat(ADMIN, "listener.0.0.0.0_9000.no_filter_chain_match", ns=ns) == 1,
                 "the listener's no_filter_chain_match counter is 1")
        lab.fact(lab.stat(ADMIN, "listener.0.0.0.0_9000.downstream_cx_total", ns=ns) == 1,
                 "downstream_cx_total counts only the connection that got a filter chain")
