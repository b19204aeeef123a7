"""HBONE model: HTTP/2 CONNECT over mTLS to port 15008 between two real Envoys in two namespace
"Pods" -- the authority of the CONNECT, several TCP connections sharing one HTTP/2 connection
(a cap on streams per connection), the idle release of a pooled connection, a half-open tunnel
found by HTTP/2 PING, and a NetworkPolicy-like DROP of new connections to 15008.

Namespaces (one veth between them):
  client  10.48.8.1   an application (curl, hold.py) and Envoy with client.yaml
  server  10.48.8.2   an application on 8080 (common/upstream.py) and Envoy with server.yaml

What stands in for what (say it wherever a page quotes the lab):
- Both proxies are Envoy, not ztunnel. client.yaml does what ztunnel's outbound path puts on the
  wire (and what Istio's waypoints do: tcp_proxy tunneling_config to an ORIGINAL_DST cluster on
  port 15008); server.yaml terminates CONNECT as Istio's waypoint listener connect_terminate does.
  ztunnel's own HTTP/2 client, pool and server are Rust code (src/proxy/pool.rs, h2/, inbound.rs).
- A nat OUTPUT rule in the client Pod sends the application's connections to 10.48.8.2:8080 to
  Envoy's 15001, as the in-pod rules send them to ztunnel's.
- The certificates are fixed test files (labs/common/certs/, see its README), not issued by istiod.
- The "NetworkPolicy" is an iptables DROP in the server Pod's INPUT chain.
- Limits are scaled down so that the lab is fast: 2 streams per connection (ztunnel 100), idle
  release after 1 s (Istio's waypoint 1 h, ztunnel's pool 5 min), PING every 1 s with a 1 s
  timeout (ztunnel 10 s / 20 s), TCP connect timeout 0.5 s (ztunnel 10 s).

Sections: identities, tunnel, idle, multiplex, half-open, netpol, allow.
"""

import re
import time

TITLE = "HBONE model: HTTP/2 CONNECT over mTLS on 15008 between two Envoys, pooling, half-open tunnels and a DROP on 15008"
SUMMARY_ZH = "两个真实 Envoy 在两个命名空间“Pod”之间用 mTLS 上的 HTTP/2 CONNECT 连到 15008：CONNECT 的 authority、多条 TCP 连接共享一条 HTTP/2 连接（每连接流数上限）、空闲释放、靠 HTTP/2 PING 发现半开隧道，以及丢弃 15008 新连接时客户端看到的错误。"
NEEDS_ROOT = True
USES = ["upstream.py", "certs"]

CLIENT, SERVER = "client", "server"
CLIENT_IP, SERVER_IP = "10.48.8.1", "10.48.8.2"  # inside the lab's namespaces only
ADMIN = 15000
NORMALIZE = [
    # The client's ephemeral port on the tunnel's TCP connection.
    (r"10\.48\.8\.1:\d{4,5}\b", "10.48.8.1:<port>"),
    # Send-Q of the client's closed socket: the unacknowledged bytes (PINGs, GOAWAY) its FIN waits
    # behind, which depends on timing; the state and the addresses are what the page reads.
    (r"^FIN-WAIT-1\s+\d+\s+\d+\s+", "FIN-WAIT-1 <recv-q> <send-q> "),
    # Queues of the server's established end (ss prints no state column there): whether a last
    # PING answer or GOAWAY was still queued when the DROP went in depends on timing.
    (r"^\d+\s+\d+\s+(10\.48\.8\.2:15008)", r"<recv-q> <send-q> \1"),
]


def stats(lab, ns: str) -> dict[str, int]:
    out = lab.query(f"curl -s -m 2 127.0.0.1:{ADMIN}/stats", ns=ns).output
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\S+): (\d+)$", out, re.M)}


def show_stats(lab, ns: str, pattern: str) -> dict[str, int]:
    lab.sh(f"curl -sG 127.0.0.1:{ADMIN}/stats --data-urlencode 'filter={pattern}'", ns=ns)
    return stats(lab, ns)


def wait_for(lab, what: str, check, timeout: float = 8) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            lab.fact(False, f"{what} (waited {timeout} s)")
        time.sleep(0.05)


def lines(lab, name: str) -> list[str]:
    path = lab.workdir / name
    return path.read_text().splitlines() if path.exists() else []


def get(lab, check: bool = True):
    return lab.sh(f"curl -sS -m 3 -w 'HTTP %{{http_code}}\\n' http://{SERVER_IP}:8080/", ns=CLIENT, check=check)


def run(lab):
    lab.pod(CLIENT)
    lab.pod(SERVER)
    lab.link(CLIENT, f"{CLIENT_IP}/24", SERVER, f"{SERVER_IP}/24")
    # The application's connections to the server's 8080 go to the client Envoy (ztunnel: 15001).
    lab.query(f"iptables -t nat -A OUTPUT -p tcp -d {SERVER_IP} --dport 8080 -j REDIRECT --to-ports 15001", ns=CLIENT)
    lab.start("python3 common/upstream.py --port 8080 --name server-app", name="app", ns=SERVER,
              ready=lab.port_open(8080, ns=SERVER))  # fmt: skip
    flags = "--concurrency 1 --disable-hot-restart --log-level warn --file-flush-interval-msec 100"
    lab.start(f"envoy -c server.yaml {flags}", name="envoy-server", ns=SERVER, ready=lab.envoy_ready(ADMIN, ns=SERVER))
    lab.start(f"envoy -c client.yaml {flags}", name="envoy-client", ns=CLIENT, ready=lab.envoy_ready(ADMIN, ns=CLIENT))

    with lab.section("identities"):
        for pod in (CLIENT, SERVER):
            lab.sh(f"curl -s 127.0.0.1:{ADMIN}/certs | jq -c '[.certificates[].cert_chain[].subject_alt_names[].uri]'", ns=pod)
        lab.fact("spiffe://cluster.local/ns/lab/sa/client" in lab.sections[-1].lines[1], "the client Envoy holds the client identity")
        lab.fact("spiffe://cluster.local/ns/lab/sa/server" in lab.last.output, "the server Envoy holds the server identity")

    with lab.section("tunnel"):
        get(lab)
        lab.fact(lab.last.output.splitlines() == ["server-app: GET /", "HTTP 200"], "curl reaches the server's application through the tunnel")
        lab.sh("iptables-save -t nat -c | grep -- '--to-ports 15001'", ns=CLIENT)
        lab.fact(lab.last.output.startswith("[1:60]"), "the application's connection was redirected to the client Envoy")
        wait_for(lab, "the server logged the CONNECT", lambda: len(lines(lab, "server-access.log")) == 1)
        wait_for(lab, "the client logged the tunnelled connection", lambda: len(lines(lab, "client-access.log")) == 1)
        lab.sh("cat server-access.log", ns=SERVER)
        lab.fact(lab.last.output.strip() == "CONNECT 10.48.8.2:8080 HTTP/2 200 peer=spiffe://cluster.local/ns/lab/sa/client upstream=10.48.8.2:8080",
                 "the server saw CONNECT with :authority 10.48.8.2:8080 over HTTP/2, from the client identity")  # fmt: skip
        lab.sh("cat client-access.log", ns=CLIENT)
        lab.fact("upstream=10.48.8.2:15008" in lab.last.output and "peer=spiffe://cluster.local/ns/lab/sa/server" in lab.last.output,
                 "the client dialed 10.48.8.2:15008 and verified the server identity")  # fmt: skip
        s = show_stats(lab, CLIENT, r"^cluster\.hbone\.upstream_(cx_total|cx_http2_total|rq_total)$")
        lab.fact(s["cluster.hbone.upstream_cx_total"] == 1 and s["cluster.hbone.upstream_cx_http2_total"] == 1
                 and s["cluster.hbone.upstream_rq_total"] == 1, "one HTTP/2 connection carried one CONNECT stream")  # fmt: skip

    with lab.section("idle"):
        wait_for(lab, "the idle HTTP/2 connection was closed", lambda: stats(lab, CLIENT).get("cluster.hbone.upstream_cx_idle_timeout") == 1)
        s = show_stats(lab, CLIENT, r"^cluster\.hbone\.upstream_cx_(active|idle_timeout)$")
        lab.fact(s["cluster.hbone.upstream_cx_active"] == 0 and s["cluster.hbone.upstream_cx_idle_timeout"] == 1,
                 "1 s after its last stream ended, the pooled connection was closed")  # fmt: skip

    with lab.section("multiplex"):
        lab.start(f"python3 hold.py --to {SERVER_IP}:8080 --conns 4", name="hold4", ns=CLIENT,
                  ready=lambda: "all 4 open" in lab.log("hold4"))  # fmt: skip
        lab.sh("cat hold4.log")
        lab.fact(lab.log("hold4").splitlines()[:4] == [f"conn {i}: server-app: GET /conn/{i}" for i in range(1, 5)],
                 "four TCP connections, each answered by the application")  # fmt: skip
        s = show_stats(lab, CLIENT, r"^cluster\.hbone\.upstream_(cx_total|cx_active|rq_total|rq_active)$")
        lab.fact(s["cluster.hbone.upstream_cx_active"] == 2 and s["cluster.hbone.upstream_cx_total"] == 3,
                 "four tunnelled connections need two HTTP/2 connections at two streams each (one more since the start)")  # fmt: skip
        lab.fact(s["cluster.hbone.upstream_rq_active"] == 4 and s["cluster.hbone.upstream_rq_total"] == 5,
                 "each TCP connection is one CONNECT stream")  # fmt: skip
        s = show_stats(lab, SERVER, r"^(listener\.0\.0\.0\.0_15008\.downstream_cx_active|http\.connect_terminate\.downstream_rq_active)$")
        lab.fact(s["listener.0.0.0.0_15008.downstream_cx_active"] == 2 and s["http.connect_terminate.downstream_rq_active"] == 4,
                 "the server sees two TLS connections on 15008 and four streams")  # fmt: skip
        lab.stop("hold4")

    with lab.section("half-open"):
        wait_for(lab, "the previous connections were released", lambda: stats(lab, CLIENT).get("cluster.hbone.upstream_cx_active") == 0)
        lab.start(f"python3 hold.py --to {SERVER_IP}:8080 --conns 1", name="hold1", ns=CLIENT,
                  ready=lambda: "all 1 open" in lab.log("hold1"))  # fmt: skip
        # The server Pod stops answering on 15008 at all, as if its end had vanished.
        lab.sh("iptables -I INPUT -p tcp --dport 15008 -j DROP", ns=SERVER)
        wait_for(lab, "the client found the dead tunnel", lambda: stats(lab, CLIENT).get("cluster.hbone.http2.keepalive_timeout") == 1)
        wait_for(lab, "the application saw its connection closed", lambda: "conn 1:" in lab.log("hold1").splitlines()[-1]
                 and "open" not in lab.log("hold1").splitlines()[-1])  # fmt: skip
        lab.sh("cat hold1.log")
        s = show_stats(lab, CLIENT, r"^cluster\.hbone\.(http2\.keepalive_timeout|upstream_cx_active)$")
        lab.fact(s["cluster.hbone.http2.keepalive_timeout"] == 1 and s["cluster.hbone.upstream_cx_active"] == 0,
                 "an unanswered PING closed the client's HTTP/2 connection")  # fmt: skip
        lab.sh("ss -tnH state established '( sport = :15008 )'", ns=SERVER)
        lab.fact(len(lab.last.output.splitlines()) == 1, "the server still holds its end as established: the tunnel is half-open")
        lab.sh("ss -tnH '( dport = :15008 )' | grep -v TIME-WAIT", ns=CLIENT)
        lab.fact(lab.last.output.startswith("FIN-WAIT-1") and len(lab.last.output.splitlines()) == 1,
                 "the client closed its end; its FIN is dropped and waits unacknowledged")  # fmt: skip
        lab.wait("hold1")

    with lab.section("netpol"):
        lab.sh("iptables -D INPUT -p tcp --dport 15008 -j DROP", ns=SERVER)
        # Now only new connections to 15008 are dropped, as a NetworkPolicy that forgot 15008.
        lab.sh("iptables -A INPUT -p tcp --dport 15008 --syn -j DROP", ns=SERVER)
        get(lab, check=False)
        lab.fact(lab.last.code == 56 and "Connection reset by peer" in lab.last.output, "the application's connection is reset")
        lab.sh("iptables-save -t filter -c | grep -- '--dport 15008'", ns=SERVER)
        lab.fact(lab.last.output.startswith("[1:60]"), "one SYN to 15008 was dropped")
        wait_for(lab, "the client logged the failure", lambda: len(lines(lab, "client-access.log")) == 7)
        lab.sh("tail -n 1 client-access.log", ns=CLIENT)
        lab.fact("flags=UF,URX" in lab.last.output, "the client Envoy logs an upstream connection failure (UF, URX)")
        s = show_stats(lab, CLIENT, r"^cluster\.hbone\.upstream_cx_(connect_timeout|connect_fail)$")
        lab.fact(s["cluster.hbone.upstream_cx_connect_timeout"] == 1, "the client's connect to 15008 timed out")

    with lab.section("allow"):
        lab.sh("iptables -D INPUT -p tcp --dport 15008 --syn -j DROP", ns=SERVER)
        get(lab)
        lab.fact(lab.last.output.splitlines() == ["server-app: GET /", "HTTP 200"], "with 15008 allowed again, the tunnel works")
