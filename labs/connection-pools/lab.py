"""Connection pools: how many upstream connections a proxy with two workers opens, and why.

Two Envoys and three upstreams in one namespace. The proxy (envoy.yaml, --concurrency 2) has five
listeners, each in front of a one-host cluster: seq and burst (HTTP/1.1 to upstream.py on 8080 and
8081), h2 (HTTP/2 to the backend Envoy on 9000), maxreq (HTTP/1.1 to upstream.py on 8082, at most
3 requests per connection) and goaway (HTTP/2 to the backend Envoy on 9001, which sends GOAWAY
after 2 requests on a connection). The backend Envoy (backend.yaml) answers by itself, after a
delay when a request asks for one. Upstream stats are per cluster, not per worker: the lab counts
connections on the upstream side (ss, upstream.py's connection numbers, the backend's own stats)
and reads the per-worker listener counters to see which workers took the client connections.
Sections: start, per-worker, http1-burst, http2-burst, max-requests, goaway.
"""

import time

TITLE = "Connection pools: per worker, HTTP/1 one request per connection, HTTP/2 multiplexing, lifetime limits"
SUMMARY_ZH = "连接池按 worker 各自一份：HTTP/1 每条连接同时只跑一个请求，HTTP/2 每个 worker 一条连接多路复用，max_requests_per_connection 与上游 GOAWAY 结束连接。"
NEEDS_ROOT = True
USES = ["upstream.py"]
NORMALIZE = [
    # The kernel spreads client connections over the two workers (SO_REUSEPORT hashes each
    # connection's addresses): how many each worker gets varies. That both get some is a fact below.
    (r"(\.worker_[01]\.downstream_cx_total: )\d+", r"\1<n>"),
]
ADMIN = 15000
BACKEND_ADMIN = 15001
WORKERS = ("worker_0", "worker_1")


def until(lab, what: str, holds, timeout: float = 10) -> None:
    """Wait (without recording) for the state the next step shows; fail with `what` if it never comes."""
    deadline = time.monotonic() + timeout
    while not holds():
        if time.monotonic() > deadline:
            lab.fact(False, what)
        time.sleep(0.05)


def run(lab):
    ns = lab.pod("pools")

    def stat(name, port=ADMIN):
        return lab.stat(port, name, ns=ns)

    def show(pattern, port=ADMIN):
        return lab.sh(f"curl -s '127.0.0.1:{port}/stats?filter={pattern}'", ns=ns)

    def cluster(name, counters):
        return show(f"^cluster\\.{name}\\.({'|'.join(counters)})$")

    def workers(listener):
        show(f"^listener\\.{listener}\\.worker_.\\.downstream_cx_total$")
        return {w: stat(f"listener.{listener}.{w}.downstream_cx_total") for w in WORKERS}

    def established(port):
        """Established connections whose local end is the upstream's port: one per upstream connection."""
        return f"ss -Htn state established '( sport = :{port} )' | wc -l"

    def count(port):
        return int(lab.query(established(port), ns=ns).output.strip() or 0)

    with lab.section("start"):
        for name, port in (("upstream-a", 8080), ("upstream-b", 8081), ("upstream-c", 8082)):
            # Ready when it says it listens: a test connection would take the upstream's connection number 1.
            lab.start(f"python3 common/upstream.py --host 127.0.0.1 --port {port} --name {name}", name=name, ns=ns,
                      ready=lambda name=name: "listening on" in lab.log(name))
        lab.start("envoy -c backend.yaml --concurrency 1 --disable-hot-restart --base-id 1 --log-level warn",
                  name="backend", ns=ns, ready=lab.envoy_ready(BACKEND_ADMIN, ns=ns))
        lab.start("envoy -c envoy.yaml --concurrency 2 --disable-hot-restart --log-level warn",
                  name="envoy", ns=ns, ready=lab.envoy_ready(ADMIN, ns=ns))

    # -- one request at a time: one connection per worker, reused ---------------------------------
    with lab.section("per-worker"):
        lab.sh("for i in $(seq 20); do curl -s 127.0.0.1:8000/; done | sort | uniq -c", ns=ns)
        lab.fact("20 upstream-a: GET /" in lab.last.output, "twenty requests, each on a new client connection, all answered")
        taken = workers("seq")
        lab.fact(all(taken[w] > 0 for w in WORKERS), "both workers took some of the twenty client connections")
        cluster("seq", ["upstream_cx_total", "upstream_cx_active", "upstream_cx_http1_total", "upstream_rq_total"])
        lab.fact(stat("cluster.seq.upstream_cx_total") == 2 and stat("cluster.seq.upstream_rq_total") == 20,
                 "twenty requests one after another used two upstream connections: one per worker")
        lab.sh("grep -o '^conn=[0-9]*' upstream-a.log | sort -u")
        lab.fact(lab.last.output.split() == ["conn=1", "conn=2"], "the upstream saw two connections")

    # -- HTTP/1.1: sixteen requests at once need sixteen connections ------------------------------
    with lab.section("http1-burst"):
        lab.start("sh burst.sh 16 127.0.0.1:8001/delay/1500", name="burst-h1", ns=ns)
        until(lab, "sixteen upstream connections while the requests are in flight", lambda: count(8081) == 16)
        lab.sh(established(8081), ns=ns)
        lab.fact(lab.last.output.strip() == "16", "sixteen requests in flight: sixteen upstream connections")
        lab.wait("burst-h1")
        lab.sh("cat burst-h1.log")
        lab.fact("16 200" in lab.last.output, "all sixteen answered 200")
        taken = workers("burst")
        lab.fact(all(taken[w] > 0 for w in WORKERS), "both workers took some of the sixteen client connections")
        cluster("burst", ["upstream_cx_total", "upstream_cx_active", "upstream_cx_http1_total", "upstream_rq_total"])
        lab.fact(stat("cluster.burst.upstream_cx_total") == 16 and stat("cluster.burst.upstream_cx_active") == 16,
                 "HTTP/1.1 carries one request at a time: sixteen connections, all still open in the pools")

    # -- HTTP/2: sixteen requests at once share one connection per worker -------------------------
    with lab.section("http2-burst"):
        lab.start("sh burst.sh 16 127.0.0.1:8002/ -H 'x-envoy-fault-delay-request: 1500'", name="burst-h2", ns=ns)
        until(lab, "sixteen streams in flight at the backend",
              lambda: stat("http.h2.downstream_rq_active", BACKEND_ADMIN) == 16)
        lab.sh(established(9000), ns=ns)
        lab.fact(lab.last.output.strip() == "2", "sixteen requests in flight over two upstream connections")
        show("^http\\.h2\\.downstream_(cx_active|rq_active)$", BACKEND_ADMIN)
        lab.wait("burst-h2")
        lab.sh("cat burst-h2.log")
        lab.fact("16 200" in lab.last.output, "all sixteen answered 200")
        taken = workers("h2")
        lab.fact(all(taken[w] > 0 for w in WORKERS), "both workers took some of the sixteen client connections")
        cluster("h2", ["upstream_cx_total", "upstream_cx_http2_total", "upstream_rq_total"])
        lab.fact(stat("cluster.h2.upstream_cx_http2_total") == 2 and stat("cluster.h2.upstream_rq_total") == 16,
                 "HTTP/2 multiplexes: one connection per worker carried all sixteen requests")

    # -- max_requests_per_connection: the proxy retires a connection after 3 requests -------------
    with lab.section("max-requests"):
        lab.sh("curl -s -o /dev/null -w '%{http_code} ' '127.0.0.1:8003/r[1-12]'; echo", ns=ns)
        lab.fact(lab.last.output.split() == ["200"] * 12, "twelve requests on one client connection (one worker)")
        until(lab, "the fourth connection is closed after its third request",
              lambda: stat("cluster.maxreq.upstream_cx_destroy_local") == 4)
        cluster("maxreq", ["upstream_cx_total", "upstream_cx_max_requests", "upstream_cx_destroy_local",
                           "upstream_rq_total"])
        lab.fact(stat("cluster.maxreq.upstream_cx_total") == 4 and stat("cluster.maxreq.upstream_cx_max_requests") == 4,
                 "max_requests_per_connection 3: twelve requests, four connections, each retired (upstream_cx_max_requests 4)")
        lab.sh("grep -o '^conn=[0-9]* req=[0-9]*' upstream-c.log | cut -d' ' -f1 | uniq -c")
        lab.fact([line.split() for line in lab.last.output.splitlines()]
                 == [["3", f"conn={i}"] for i in (1, 2, 3, 4)], "the upstream saw three requests on each of four connections")

    # -- GOAWAY: the upstream ends the connection, the pool opens a new one ----------------------
    with lab.section("goaway"):
        lab.sh("curl -s -o /dev/null -w '%{http_code} ' '127.0.0.1:8004/g[1-4]'; echo", ns=ns)
        lab.fact(lab.last.output.split() == ["200"] * 4, "four requests on one client connection (one worker)")
        until(lab, "both upstream connections are closed", lambda: stat("cluster.goaway.upstream_cx_destroy") == 2)
        cluster("goaway", ["upstream_cx_total", "upstream_cx_http2_total", "upstream_cx_close_notify",
                           "upstream_cx_destroy_local", "upstream_rq_total"])
        lab.fact(stat("cluster.goaway.upstream_cx_total") == 2 and stat("cluster.goaway.upstream_cx_close_notify") == 2,
                 "each connection got a GOAWAY after two requests (upstream_cx_close_notify 2): four requests, two connections")
        lab.fact(stat("cluster.goaway.upstream_cx_destroy_local") == 2,
                 "the proxy closed each connection itself once its last stream was done")
        show("^http\\.goaway\\.downstream_(cx_total|cx_max_requests_reached|rq_total)$", BACKEND_ADMIN)
        lab.fact(stat("http.goaway.downstream_cx_max_requests_reached", BACKEND_ADMIN) == 2,
                 "the backend reached its limit of two requests on each connection")
