"""mTLS filter chains: an Istio-shaped virtualInbound with a STRICT port (8080) and a PERMISSIVE
port (9080), a plaintext client, and a client sidecar whose clusters pick mTLS per endpoint the
way auto mTLS does.

Namespaces (one veth between them):
  client  10.48.9.1   "curl": the application (curl) and its sidecar Envoy with client.yaml
  server  10.48.9.2   "httpbin": the application on 8080 and 9080 (common/upstream.py) and its
                      sidecar Envoy with server.yaml

What stands in for what (say it wherever a page quotes the lab):
- Both proxies are Envoy 1.39.0 with configuration written by us in the shape istiod 1.30.3
  generates (each piece's producer is named in server.yaml and client.yaml); no istiod.
- In the server Pod, one nat PREROUTING rule sends inbound connections to 8080 and 9080 to
  Envoy's 15006, as istio-iptables' ISTIO_INBOUND/ISTIO_IN_REDIRECT chains do.
- The client's sidecar is reached directly on 127.0.0.1:18080 and :19080 (its "outbound
  listeners"); interception on the client side is not what this lab is about.
- Certificates are fixed test files (labs/common/certs/, see its README) loaded as static secrets named
  "default" and "ROOTCA", the names pilot-agent's SDS server answers.

Sections: chains, plaintext-permissive, mtls-permissive, mtls-strict, plaintext-strict,
tls-disabled, inbound-log, stats.
"""

import time

TITLE = "mTLS filter chains: STRICT and PERMISSIVE inbound chains, auto-mTLS transport socket matches, and what a plaintext client gets"
SUMMARY_ZH = "按 istiod 的形状生成的 virtualInbound：STRICT 端口只有要求 tls 的链，PERMISSIVE 端口另有明文链；明文客户端在 STRICT 端口上被重置并记为 NR/filter_chain_not_found，客户端 Sidecar 按端点元数据选择 mTLS。"
NEEDS_ROOT = True
USES = ["upstream.py", "certs"]

CLIENT, SERVER = "client", "server"
CLIENT_IP, SERVER_IP = "10.48.9.1", "10.48.9.2"  # inside the lab's namespaces only
ADMIN = 15000
NORMALIZE = []

C8080 = "outbound|8080||httpbin.lab.svc.cluster.local"
C9080 = "outbound|9080||httpbin.lab.svc.cluster.local"
PLAIN = "outbound|8080|plain|httpbin.lab.svc.cluster.local"


def lines(lab, name: str) -> list[str]:
    path = lab.workdir / name
    return path.read_text().splitlines() if path.exists() else []


def wait_for(lab, what: str, check, timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            lab.fact(False, f"{what} (waited {timeout} s)")
        time.sleep(0.05)


def run(lab):
    lab.pod(CLIENT)
    lab.pod(SERVER)
    lab.link(CLIENT, f"{CLIENT_IP}/24", SERVER, f"{SERVER_IP}/24")

    def inbound_logged(n: int) -> None:
        """The listener's access log is written when a connection ends and flushed on a timer."""
        wait_for(lab, f"{n} lines in inbound.log", lambda: len(lines(lab, "inbound.log")) >= n)

    with lab.section("chains"):
        for port in (8080, 9080):
            lab.start(f"python3 common/upstream.py --port {port} --name httpbin-{port}", name=f"app-{port}", ns=SERVER,
                      ready=lab.port_open(port, ns=SERVER), record=False)  # fmt: skip
        lab.sh("iptables -t nat -A PREROUTING -p tcp -m multiport --dports 8080,9080 -j REDIRECT --to-ports 15006",
               ns=SERVER)  # fmt: skip
        flags = "--concurrency 1 --disable-hot-restart --log-level warn --file-flush-interval-msec 100"
        lab.start(f"envoy -c server.yaml {flags}", name="envoy-server", ns=SERVER, ready=lab.envoy_ready(ADMIN, ns=SERVER))
        lab.start(f"envoy -c client.yaml {flags}", name="envoy-client", ns=CLIENT, ready=lab.envoy_ready(ADMIN, ns=CLIENT))
        lab.sh(f"curl -s '127.0.0.1:{ADMIN}/config_dump?resource=static_listeners' "
               "| jq -c '.configs[0].listener.filter_chains[] | {name, match: .filter_chain_match, "
               "tls: (.transport_socket != null)}'", ns=SERVER)  # fmt: skip
        out = lab.last.output.splitlines()
        lab.fact(len(out) == 4 and out[0] == '{"name":"0.0.0.0_8080","match":{"destination_port":8080,'
                 '"transport_protocol":"tls"},"tls":true}',
                 "STRICT 8080: one chain, transport_protocol tls, no ALPN condition")  # fmt: skip
        lab.fact('"destination_port":9080,"transport_protocol":"raw_buffer"' in out[2],
                 "PERMISSIVE 9080: a second chain for raw_buffer")

    with lab.section("plaintext-permissive"):
        lab.sh(f"curl -sS -m 3 http://{SERVER_IP}:9080/get", ns=CLIENT)
        lab.fact(lab.last.output.strip() == "httpbin-9080: GET /get", "plaintext to the PERMISSIVE port is served")
        inbound_logged(1)

    with lab.section("mtls-permissive"):
        lab.sh("curl -sS -m 3 http://127.0.0.1:19080/get", ns=CLIENT)
        lab.fact(lab.last.output.strip() == "httpbin-9080: GET /get", "the client sidecar's mTLS to 9080 is served")
        inbound_logged(2)

    with lab.section("mtls-strict"):
        lab.sh("curl -sS -m 3 http://127.0.0.1:18080/get", ns=CLIENT)
        lab.fact(lab.last.output.strip() == "httpbin-8080: GET /get", "the client sidecar's mTLS to the STRICT port is served")
        inbound_logged(3)

    with lab.section("plaintext-strict"):
        lab.sh(f"curl -sS -m 3 http://{SERVER_IP}:8080/get", ns=CLIENT, check=False)
        lab.fact(lab.last.code == 56 and "Connection reset by peer" in lab.last.output,
                 "plaintext to the STRICT port: the connection is reset, no HTTP response")
        inbound_logged(4)

    with lab.section("tls-disabled"):
        lab.sh("curl -sS -m 3 -w '\\nHTTP %{http_code}\\n' http://127.0.0.1:18080/plain/get", ns=CLIENT, check=False)
        lab.fact(lab.last.output.splitlines()[-1] == "HTTP 503",
                 "a client sidecar that sends plaintext (subset with tls DISABLE) gets a 503 from its own sidecar")
        inbound_logged(5)
        wait_for(lab, "three lines in outbound.log", lambda: len(lines(lab, "outbound.log")) >= 3)
        lab.sh("cat outbound.log", ns=CLIENT)
        log = lines(lab, "outbound.log")
        lab.fact(log[-1].startswith("503 flags=UC cluster=" + PLAIN),
                 "the client side logs 503 UC on the plaintext cluster")

    with lab.section("inbound-log"):
        lab.sh("cat inbound.log", ns=SERVER)
        log = lines(lab, "inbound.log")
        lab.fact(log[0].startswith(f"dst={SERVER_IP}:9080 chain=0.0.0.0_9080 tls=- sni=- peer=-"),
                 "plaintext to 9080: the raw_buffer chain of 0.0.0.0_9080")
        lab.fact(log[1].startswith(f"dst={SERVER_IP}:9080 chain=0.0.0.0_9080 tls=TLSv1.3 "
                                   "sni=outbound_.9080_._.httpbin.lab.svc.cluster.local "
                                   "peer=spiffe://cluster.local/ns/lab/sa/client"),
                 "mTLS to 9080: same chain name, TLS 1.3, the SNI is the cluster name in DNS SRV form")  # fmt: skip
        lab.fact(log[2].startswith(f"dst={SERVER_IP}:8080 chain=0.0.0.0_8080 tls=TLSv1.3 "
                                   "sni=outbound_.8080_._.httpbin.lab.svc.cluster.local"),
                 "mTLS to 8080: the STRICT chain")  # fmt: skip
        lab.fact(all(line.startswith(f"dst={SERVER_IP}:8080 chain=- tls=- sni=- peer=- flags=NR "
                                     "details=filter_chain_not_found") for line in log[3:5]),
                 "both plaintext connections to 8080: no chain, NR, filter_chain_not_found")  # fmt: skip

    with lab.section("stats"):
        lab.sh(f"curl -s '127.0.0.1:{ADMIN}/stats?filter=^listener\\.0\\.0\\.0\\.0_15006\\.(downstream_cx_total|no_filter_chain_match)$'",
               ns=SERVER)  # fmt: skip
        lab.fact(lab.stat(ADMIN, "listener.0.0.0.0_15006.no_filter_chain_match", ns=SERVER) == 2
                 and lab.stat(ADMIN, "listener.0.0.0.0_15006.downstream_cx_total", ns=SERVER) == 3,
                 "two connections found no chain; the three that did are the only ones counted as connections")  # fmt: skip
        lab.sh(f"curl -s '127.0.0.1:{ADMIN}/stats?filter=tlsMode|ssl.handshake$|upstream_cx_total$'", ns=CLIENT)
        lab.fact(lab.stat(ADMIN, f"cluster.{C8080}.tlsMode-istio.total_match_count", ns=CLIENT) == 1
                 and lab.stat(ADMIN, f"cluster.{C8080}.tlsMode-disabled.total_match_count", ns=CLIENT) == 0,
                 "the endpoint with tlsMode=istio metadata got the TLS transport socket")  # fmt: skip
        lab.fact(lab.stat(ADMIN, f"cluster.{C8080}.ssl.handshake", ns=CLIENT) == 1
                 and lab.stat(ADMIN, f"cluster.{PLAIN}.ssl.handshake", ns=CLIENT) == 0
                 and lab.stat(ADMIN, f"cluster.{PLAIN}.upstream_cx_total", ns=CLIENT) == 1,
                 "one TLS handshake on the auto-mTLS cluster, none on the plaintext subset")  # fmt: skip
