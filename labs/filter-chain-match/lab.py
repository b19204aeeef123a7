"""Filter chain matching: one listener, six chains, and connections that land on each of them
or on none.

One Envoy (one worker) in a namespace, listening on :10000 and :10001, with tls_inspector and
http_inspector; six upstreams, one per cluster, each answering with its own name. The chains
match on destination port, destination IP, SNI, transport protocol, application protocol and
source IP; there is no default chain. cert.pem/key.pem are a self-signed test certificate for
api.example.com, *.api.example.com and 127.0.0.1 (never used outside this lab).

Sections: chains, port, destination-ip, sni, application-protocol, source-ip, no-match,
access-log, stats.
"""

import time

TITLE = "Filter chain matching: destination port and IP, SNI, transport and application protocol, source IP"
SUMMARY_ZH = "按目的端口、目的 IP、SNI、传输协议、ALPN、源 IP 选择过滤器链；找不到链的连接被重置并记为 NR。"
NEEDS_ROOT = True
USES = ["upstream.py"]
ADMIN = 15000
UPSTREAMS = {"secure": 8081, "alt": 8082, "api": 8083, "web": 8084, "trusted": 8085, "opaque": 8086}
NORMALIZE = []


def run(lab):
    ns = lab.pod("fcm")

    def connections_logged(n):
        """The access log flushes on a timer: wait until it holds n lines."""
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            path = lab.workdir / "connections.log"
            if path.exists() and len(path.read_text().splitlines()) >= n:
                return
            time.sleep(0.05)
        raise AssertionError("access log incomplete")

    def quiet():
        """Wait until the last connection is gone, so that the log keeps the order of the steps."""
        deadline = time.monotonic() + 5
        while lab.stat(ADMIN, "listener.edge.downstream_cx_active", ns=ns) and time.monotonic() < deadline:
            time.sleep(0.05)

    with lab.section("chains"):
        for name, port in UPSTREAMS.items():
            lab.start(f"python3 common/upstream.py --port {port} --name {name}", name=f"upstream-{name}", ns=ns,
                      ready=lab.port_open(port, ns=ns), record=False)
        lab.start("envoy -c envoy.yaml --concurrency 1 --disable-hot-restart --file-flush-interval-msec 100 "
                  "--log-level warn", name="envoy", ns=ns, ready=lab.envoy_ready(ADMIN, ns=ns))
        lab.sh(f"curl -s '127.0.0.1:{ADMIN}/config_dump?resource=static_listeners' "
               "| jq -c '.configs[0].listener.filter_chains[] | {name, match: .filter_chain_match}'", ns=ns)
        lab.fact(lab.last.output.count('"name"') == 6 and "default_filter_chain" not in lab.last.output,
                 "six chains, no default chain")

    with lab.section("port"):
        lab.sh("curl -sS --cacert cert.pem https://127.0.0.1:10001/", ns=ns)
        lab.fact(lab.last.output.strip() == "secure: GET /", "TLS to :10001 lands on port-10001-tls")
        quiet()

    with lab.section("destination-ip"):
        lab.sh("curl -sS http://127.0.0.2:10000/", ns=ns)
        lab.fact(lab.last.output.strip() == "alt: GET /", "plaintext HTTP to 127.0.0.2 lands on dst-127.0.0.2")
        quiet()

    with lab.section("sni"):
        lab.sh("curl -sS --cacert cert.pem --resolve v2.api.example.com:10000:127.0.0.1 https://v2.api.example.com:10000/",
               ns=ns)
        lab.fact(lab.last.output.strip() == "api: GET /", "SNI v2.api.example.com matches *.api.example.com")
        quiet()

    with lab.section("application-protocol"):
        lab.sh("curl -sS http://127.0.0.1:10000/", ns=ns)
        lab.fact(lab.last.output.strip() == "web: GET /", "HTTP/1.1 lands on http1")
        quiet()
        lab.sh("curl -sS --http1.0 http://127.0.0.1:10000/", ns=ns)
        lab.fact(lab.last.output.strip() == "opaque: GET /",
                 "HTTP/1.0 is detected as http/1.0, which no chain names: opaque-tcp")
        quiet()

    with lab.section("source-ip"):
        lab.sh("curl -sS --interface 127.0.0.3 http://127.0.0.1:10000/", ns=ns)
        lab.fact(lab.last.output.strip() == "trusted: GET /", "HTTP/1.1 from 127.0.0.3 lands on http1-from-127.0.0.3")
        quiet()

    with lab.section("no-match"):
        lab.sh("curl -sS http://127.0.0.1:10001/", ns=ns, check=False)
        lab.fact(lab.last.code != 0 and "GET /" not in lab.last.output,
                 "plaintext to :10001 is closed: the port has its own subtree and no fallback to port 0")
        quiet()
        lab.sh("curl -sS --cacert cert.pem --resolve shop.example.com:10000:127.0.0.1 https://shop.example.com:10000/",
               ns=ns, check=False)
        lab.fact(lab.last.code != 0 and "GET /" not in lab.last.output,
                 "TLS with SNI shop.example.com is closed: the empty-SNI branch has no tls chain")
        quiet()

    with lab.section("access-log"):
        connections_logged(8)
        lab.sh("cat connections.log")
        log = lab.last.output.splitlines()
        chains = [line.split(" chain=")[1].split(" ")[0] for line in log]
        lab.fact(chains == ["port-10001-tls", "dst-127.0.0.2", "api-tls", "http1", "opaque-tcp",
                            "http1-from-127.0.0.3", "-", "-"],
                 "each connection's chain, in order, and none for the last two")
        lab.fact(all("flags=NR details=filter_chain_not_found" in line for line in log[-2:]),
                 "no chain: response flag NR, details filter_chain_not_found")

    with lab.section("stats"):
        lab.sh(f"curl -s '127.0.0.1:{ADMIN}/stats?filter=^listener\\.edge\\.(downstream_cx_total|no_filter_chain_match)$'",
               ns=ns)
        lab.fact(lab.stat(ADMIN, "listener.edge.no_filter_chain_match", ns=ns) == 2
                 and lab.stat(ADMIN, "listener.edge.downstream_cx_total", ns=ns) == 6,
                 "two connections without a chain; downstream_cx_total counts only the six that got one")
        lab.sh(f"curl -s '127.0.0.1:{ADMIN}/stats?filter=^cluster\\.(secure|alt|api|web|trusted|opaque)\\.upstream_cx_total$'", ns=ns)
        lab.fact(all(lab.stat(ADMIN, f"cluster.{name}.upstream_cx_total", ns=ns) == 1
                     for name in UPSTREAMS), "each chain used its own cluster")
