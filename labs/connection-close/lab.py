"""Connection close: who closed a connection and why, told by Envoy's counters.

One Envoy in a namespace with an HTTP listener whose close timers are short (see envoy.yaml),
in front of one upstream (labs/common/upstream.py) whose pooled connections time out after
300 ms. client.py is a client that reports how the proxy ended its connection.

Sections: remote-close, upstream-idle, upstream-remote, idle-timeout, delayed-close, access-log,
counters.
"""

import time

TITLE = "Connection close: idle timeouts, delayed close, local and remote close counters"
SUMMARY_ZH = "连接的空闲、排空与延迟关闭定时器，本地关闭与远端关闭的计数，上游先关导致的 UC。"
NEEDS_ROOT = True
USES = ["upstream.py"]
ADMIN = 15000
NORMALIZE = []


def run(lab):
    ns = lab.pod("close")

    def until(name, value):
        """Counters move when a timer fires: wait for it (bounded), then assert the value."""
        deadline = time.monotonic() + 5
        while lab.stat(ADMIN, name, ns=ns) < value and time.monotonic() < deadline:
            time.sleep(0.05)
        return lab.stat(ADMIN, name, ns=ns)

    def stats(pattern):
        lab.sh(f"curl -s '127.0.0.1:{ADMIN}/stats?filter={pattern}'", ns=ns)

    lab.start("python3 common/upstream.py --port 8080 --name backend", name="upstream", ns=ns,
              ready=lab.port_open(8080, ns=ns), record=False)
    lab.start("envoy -c envoy.yaml --concurrency 1 --disable-hot-restart --file-flush-interval-msec 100 "
              "--log-level warn", name="envoy", ns=ns, ready=lab.envoy_ready(ADMIN, ns=ns))

    with lab.section("remote-close"):
        lab.sh("curl -s http://127.0.0.1:10000/hello", ns=ns)
        lab.fact(until("http.front.downstream_cx_destroy_remote", 1) == 1,
                 "curl closes after its response: the HCM counts a remote close")
        stats("^http\\.front\\.downstream_cx_destroy_(local|remote)$")

    with lab.section("upstream-idle"):
        lab.fact(until("cluster.backend.upstream_cx_idle_timeout", 1) == 1,
                 "the pooled upstream connection is closed by the cluster's idle timeout")
        stats("^cluster\\.backend\\.upstream_cx_(total|active|idle_timeout|destroy_local|destroy_remote)$")
        lab.fact(lab.stat(ADMIN, "cluster.backend.upstream_cx_destroy_local", ns=ns) == 1
                 and lab.stat(ADMIN, "cluster.backend.upstream_cx_destroy_remote", ns=ns) == 0,
                 "an idle timeout is a local close")

    with lab.section("upstream-remote"):
        lab.sh("curl -s -w '  status=%{http_code}\\n' http://127.0.0.1:10000/drop", ns=ns)
        lab.fact("status=503" in lab.last.output, "the upstream closed without answering: 503")
        lab.fact(until("cluster.backend.upstream_cx_destroy_remote", 1) == 1,
                 "an upstream that closes first is a remote close")
        stats("^cluster\\.backend\\.upstream_cx_(total|destroy_local|destroy_remote|destroy_remote_with_active_rq)$")
        lab.sh("grep -o 'GET .*' upstream.log")
        until("http.front.downstream_cx_destroy_remote", 2)

    with lab.section("idle-timeout"):
        lab.sh("python3 client.py --port 10000 --send request --then wait", ns=ns)
        lab.fact("proxy closed the connection (FIN)" in lab.last.output, "the idle connection is closed by the proxy")
        lab.fact(until("http.front.downstream_cx_delayed_close_timeout", 1) == 1
                 and lab.stat(ADMIN, "http.front.downstream_cx_idle_timeout", ns=ns) == 1
                 and until("http.front.downstream_cx_destroy_local", 1) == 1,
                 "idle timeout, then drain, then a delayed close that times out: a local close")
        stats("^http\\.front\\.downstream_cx_(idle_timeout|delayed_close_timeout|destroy_local|destroy_remote)$")

    with lab.section("delayed-close"):
        lab.sh("python3 client.py --port 10000 --send garbage --then close", ns=ns)
        lab.fact("400 Bad Request" in lab.last.output, "a request that is not HTTP gets a 400")
        lab.fact(until("http.front.downstream_cx_destroy_remote", 3) == 3
                 and lab.stat(ADMIN, "http.front.downstream_cx_delayed_close_timeout", ns=ns) == 1,
                 "the client closes during the delay: a remote close, and the delay timer never fires")
        lab.sh("python3 client.py --port 10000 --send garbage --then wait", ns=ns)
        lab.fact(until("http.front.downstream_cx_delayed_close_timeout", 2) == 2
                 and until("http.front.downstream_cx_destroy_local", 2) == 2,
                 "the client keeps quiet: the delay timer fires and Envoy closes")
        stats("^http\\.front\\.downstream_cx_(protocol_error|delayed_close_timeout|destroy_local|destroy_remote)$")

    with lab.section("access-log"):
        deadline = time.monotonic() + 5
        while (len(lab.log("connections").splitlines()) < 5 or len(lab.log("requests").splitlines()) < 5) \
                and time.monotonic() < deadline:
            time.sleep(0.05)
        lab.sh("cat requests.log")
        lab.fact("request /drop status=503 flags=UC" in lab.last.output,
                 "the request whose upstream closed first is logged with UC")
        lab.sh("cat connections.log")

    with lab.section("counters"):
        stats("^(http\\.front\\.downstream_cx_(total|destroy|destroy_local|destroy_remote)"
              "|listener\\.front\\.downstream_cx_(total|destroy))$")
        lab.fact(lab.stat(ADMIN, "http.front.downstream_cx_destroy", ns=ns) == 5
                 and lab.stat(ADMIN, "http.front.downstream_cx_destroy_local", ns=ns)
                 + lab.stat(ADMIN, "http.front.downstream_cx_destroy_remote", ns=ns) == 5,
                 "every downstream connection ended as either a local or a remote close")
