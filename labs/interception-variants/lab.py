"""Interception variants: Istio 1.30.3's own rule files for other settings, loaded into namespace
pods, and what each changes for a connection; then where a redirected connection ends up in Envoy.

istio-iptables' dry run cannot run here (no Go), so the rules are the goldens istio-cni's tests
record for those settings (cni/pkg/plugin/testdata/*.txt.golden, copied unchanged, see PROVENANCE):
the exact input the plugin gives iptables-restore. probe.py stands in for Envoy where only the
kernel's side matters: it listens on 15001/15006 as uid 1337 and reports the address accept()
returned and the one SO_ORIGINAL_DST recovers. Real Envoys 1.39.0 run where Envoy's side matters.

Pods (network namespaces joined in pairs by veth):
  app 10.44.0.1 / srv 10.44.0.2   sections ports, cidrs, dns
  tpc 10.45.0.1 / tps 10.45.0.2   section tproxy (an Envoy as uid 0, gid 1337: tproxy.yaml)
  cli 10.46.0.1 / web 10.46.0.2   section bind (an Envoy as uid 1337: inbound.yaml)
  out 10.47.0.1 / dst 10.47.0.2   section handoff (an Envoy as uid 1337: outbound.yaml)

Sections: rules, ports, cidrs, dns, dns-zones, tproxy, bind, handoff.
"""

import re

TITLE = "Interception variants: excluded ports and CIDRs, DNS capture, TPROXY, localhost vs Pod IP, listener hand-off"
SUMMARY_ZH = "原样载入 Istio 为其他设置生成的规则：排除端口与网段、DNS 捕获与 conntrack 分区、TPROXY；应用绑定 localhost 与 Pod IP 时入站 Envoy 的连接；virtualOutbound 把连接交给原始目的地址的监听器。"
NEEDS_ROOT = True
USES = ["upstream.py"]

GOLDENS = {  # file: sha256 of cni/pkg/plugin/testdata/<case>.txt.golden at Istio 1.30.3 (PROVENANCE)
    "istio-1.30.3-basic.rules": "28a2d3dcd491a79d6c9642bb55c411e9271125b635219efec87616ea8e2e8050",
    "istio-1.30.3-include-exclude-ports.rules": "b7ff71b9f26c00a655b15a95ff501dda13757463fea1ccb641e83b8940d6ac70",
    "istio-1.30.3-include-exclude-ip.rules": "332b971e617492c7a9835958bfb4d205071caef3afe2c98f1ab3be60060c5be9",
    "istio-1.30.3-dns.rules": "17a7827839fdc298e7613a17ec9bbd60f8901f2308eafb9ea4ee4a5ee3ac53da",
    "istio-1.30.3-tproxy.rules": "e06d5f28bb0c5bc1a8cbab534b1b048b99f3e0e4eadbd3f04c28072b4802f9dc",
}
APP_UID = 1000  # an application: any uid but Envoy's
PROXY_UID = 1337  # Envoy's uid and gid in REDIRECT mode
ADMIN = 15000
# The system interpreter: the probes run as uid 1337 and 1000, which may not read the labs' own
# virtual environment (its interpreter can live under /root); they use the standard library only.
PY = "/usr/bin/python3"
NORMALIZE = [
    # Ephemeral source ports the kernel picks for each connection or query; addresses and the
    # service/proxy ports (53, 8080-8083, 9090, 1111, 3333, 5555, 7777, 1500x) stay as they are.
    (r"\b(from (?:10\.4[4-7]\.0\.\d+|127\.0\.0\.\d+|192\.0\.2\.1):)\d+", r"\1<port>"),
    (r"\b((?:10\.4[4-7]\.0\.[12]|127\.0\.0\.[16]):)(?!53\b|808[0-3]\b|9090\b|1500[016]\b)\d{4,5}\b", r"\1<port>"),
    (r"\b(sport|dport)=(?!53\b|15053\b)\d+", r"\1=<port>"),
    # ss -p: process ids and file descriptors.
    (r"pid=\d+,fd=\d+", "pid=<pid>,fd=<fd>"),
    # TPROXY: packet and byte counts of the rules that see every later packet of a connection (and the
    # upstream side's packets) depend on ACK timing; the TPROXY rule itself sees only the SYN and stays.
    (r"^\[\d+:\d+\](?= -A (?:ISTIO_DIVERT|PREROUTING -p tcp -m mark|OUTPUT -o lo -p tcp -m mark|OUTPUT -p tcp -m connmark|"
     r"ISTIO_INBOUND -p tcp -m conntrack|ISTIO_INBOUND -p tcp -m mark))", "[<n>:<bytes>]"),
]


def counters(output: str) -> dict[str, int]:
    """`iptables-save -c` lines -> {rule as saved: packets}."""
    out = {}
    for line in output.splitlines():
        match = re.match(r"^\[(\d+):\d+\] (-A .*)$", line)
        if match:
            out[match.group(2)] = int(match.group(1))
    return out


def stats(lab, ns: str) -> dict[str, int]:
    out = lab.query(f"curl -s -m 2 127.0.0.1:{ADMIN}/stats", ns=ns).output
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\S+): (\d+)$", out, re.M)}


def show_stats(lab, ns: str, pattern: str):
    return lab.sh(f"curl -sG 127.0.0.1:{ADMIN}/stats --data-urlencode 'filter={pattern}'", ns=ns)


def logged(lab, name: str, word: str):
    """Readiness for processes that print a line when they listen (UDP servers have no port to probe)."""
    return lambda: word in lab.log(name)


def dial(lab, ns: str, host: str, port: int, user: int = APP_UID):
    return lab.sh(f"{PY} probe.py dial {host} {port}", ns=ns, user=user)


def run(lab):
    with lab.section("rules"):
        lab.sh("sha256sum " + " ".join(GOLDENS))
        for name, digest in GOLDENS.items():
            lab.fact(f"{digest}  {name}" in lab.last.output, f"{name} is Istio 1.30.3's golden, unchanged")

    app, srv = lab.pod("app"), lab.pod("srv")
    lab.link(app, "10.44.0.1/24", srv, "10.44.0.2/24")

    # -- excluded and included ports ------------------------------------------------------------
    with lab.section("ports"):
        # Stand-ins start before the rules are loaded, so that their readiness probes leave no counts.
        lab.start(f"{PY} probe.py listen envoy@app 0.0.0.0:15001 0.0.0.0:15006", name="envoy-app", ns=app,
                  user=PROXY_UID, ready=lab.port_open(15006, ns=app))  # fmt: skip
        lab.start(f"{PY} probe.py listen envoy@srv 0.0.0.0:15001 0.0.0.0:15006", name="envoy-srv", ns=srv,
                  user=PROXY_UID, ready=lab.port_open(15006, ns=srv))  # fmt: skip
        lab.start(f"{PY} probe.py listen srv 0.0.0.0:1111 0.0.0.0:3333 0.0.0.0:5555 0.0.0.0:7777 0.0.0.0:8080",
                  name="srv", ns=srv, ready=lab.port_open(8080, ns=srv))  # fmt: skip
        # Annotations of this golden: includeInboundPorts 1111,2222; excludeInboundPorts 3333,4444;
        # excludeOutboundPorts 5555,6666 (cni/pkg/plugin/plugin_dryrun_test.go).
        for pod in (app, srv):
            lab.sh("iptables-restore istio-1.30.3-include-exclude-ports.rules", ns=pod)
        dial(lab, app, "10.44.0.2", 5555)
        lab.fact(lab.last.output.startswith("srv: accepted on 10.44.0.2:5555 from 10.44.0.1:"),
                 "an excluded outbound port goes straight to the server")  # fmt: skip
        dial(lab, app, "10.44.0.2", 7777)
        lab.fact(lab.last.output.startswith("envoy@app: accepted on 127.0.0.1:15001 from 10.44.0.1:")
                 and lab.last.output.rstrip().endswith("SO_ORIGINAL_DST 10.44.0.2:7777"),
                 "any other outbound port is redirected to 15001, and SO_ORIGINAL_DST gives back 10.44.0.2:7777")  # fmt: skip
        # Envoy's own upstream connections leave the client pod by the uid 1337 RETURN: dial as 1337.
        dial(lab, app, "10.44.0.2", 1111, user=PROXY_UID)
        lab.fact(lab.last.output.startswith("envoy@srv: accepted on 10.44.0.2:15006 from 10.44.0.1:")
                 and lab.last.output.rstrip().endswith("SO_ORIGINAL_DST 10.44.0.2:1111"),
                 "an included inbound port is redirected to 15006")  # fmt: skip
        dial(lab, app, "10.44.0.2", 3333, user=PROXY_UID)
        lab.fact(lab.last.output.startswith("srv: accepted on 10.44.0.2:3333"),
                 "3333 reaches the server: with an include list, the exclude list is not used")  # fmt: skip
        lab.sh("iptables-save -t nat -c | grep -E -- '--dport (5555|6666) |-j ISTIO_REDIRECT$|--to-ports 15001'", ns=app)
        c = counters(lab.last.output)
        lab.fact(c["-A ISTIO_OUTPUT -p tcp -m tcp --dport 5555 -j RETURN"] == 1
                 and c["-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001"] == 1,
                 "one connection returned at the 5555 exclusion, one redirected to 15001")  # fmt: skip
        lab.sh("iptables-save -t nat -c | grep -E -- '-A (PREROUTING|ISTIO_INBOUND|ISTIO_IN_REDIRECT) '", ns=srv)
        c = counters(lab.last.output)
        lab.fact(c["-A PREROUTING -p tcp -j ISTIO_INBOUND"] == 3
                 and c["-A ISTIO_INBOUND -p tcp -m tcp --dport 1111 -j ISTIO_IN_REDIRECT"] == 1
                 and c["-A ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006"] == 1
                 and not any("3333" in rule for rule in c),
                 "three connections entered the server pod, only the one to 1111 was redirected; no rule names 3333")  # fmt: skip

    # -- excluded and included CIDRs ----------------------------------------------------------------
    with lab.section("cidrs"):
        # Annotations of this golden: includeOutboundIPRanges 127.0.0.0/8, excludeOutboundIPRanges 10.0.0.0/8.
        # iptables-restore without --noflush replaces the nat table of the app pod.
        lab.sh("iptables-restore istio-1.30.3-include-exclude-ip.rules", ns=app)
        lab.sh("iptables-save -t nat | grep -- '-A ISTIO_OUTPUT'", ns=app)
        lab.fact("-o lo -m owner ! --uid-owner 1337 -j RETURN" not in lab.last.output,
                 "with a loopback range included, the 'app to itself over lo' RETURN rules are not written")  # fmt: skip
        # A second subnet on the same link: a destination outside both lists (TEST-NET-1, our namespaces only).
        lab.sh("ip addr add 192.0.2.1/24 dev insapp", ns=app)
        lab.sh("ip addr add 192.0.2.2/24 dev inssrv", ns=srv)
        dial(lab, app, "10.44.0.2", 8080)
        lab.fact(lab.last.output.startswith("srv: accepted on 10.44.0.2:8080"), "10.0.0.0/8 is excluded: straight to the server")
        dial(lab, app, "192.0.2.2", 8080)
        lab.fact(lab.last.output.startswith("srv: accepted on 192.0.2.2:8080"),
                 "a destination in neither list is not captured either")  # fmt: skip
        dial(lab, app, "127.0.0.5", 8080)
        lab.fact(lab.last.output.startswith("envoy@app: accepted on 127.0.0.1:15001")
                 and lab.last.output.rstrip().endswith("SO_ORIGINAL_DST 127.0.0.5:8080"),
                 "a destination in the include list (127.0.0.0/8) is redirected to 15001")  # fmt: skip
        lab.sh("iptables-save -t nat -c | grep -E -- '-d (10.0.0.0/8|127.0.0.0/8) |--to-ports 15001'", ns=app)
        c = counters(lab.last.output)
        lab.fact(c["-A ISTIO_OUTPUT -d 10.0.0.0/8 -j RETURN"] == 1 and c["-A ISTIO_OUTPUT -d 127.0.0.0/8 -j ISTIO_REDIRECT"] == 1
                 and c["-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001"] == 1,
                 "one connection returned at 10.0.0.0/8, one redirected at 127.0.0.0/8")  # fmt: skip

    # -- DNS capture ---------------------------------------------------------------------------------
    with lab.section("dns"):
        lab.start(f"{PY} dnsprobe.py serve kube-dns 10.44.0.2:53 --answer example.org=192.0.2.10",
                  name="kube-dns", ns=srv, ready=logged(lab, "kube-dns", "listening"))  # fmt: skip
        lab.start(f"{PY} dnsprobe.py serve agent 127.0.0.1:15053 --answer echo.lab.svc.cluster.local=10.47.0.99 "
                  "--upstream 10.44.0.2:53", name="agent", ns=app, user=PROXY_UID, ready=logged(lab, "agent", "listening"))  # fmt: skip
        # The golden of ISTIO_META_DNS_CAPTURE=true with istio-cni, which captures port 53 to any address.
        lab.sh("iptables-restore istio-1.30.3-dns.rules", ns=app)
        lab.sh(f"{PY} dnsprobe.py query 10.44.0.2 echo.lab.svc.cluster.local", ns=app, user=APP_UID)
        lab.fact(lab.last.output.strip() == "echo.lab.svc.cluster.local: A 10.47.0.99, reply from 10.44.0.2:53",
                 "the agent answered a name it knows, and the reply seems to come from 10.44.0.2:53")  # fmt: skip
        lab.sh(f"{PY} dnsprobe.py query 10.44.0.2 example.org", ns=app, user=APP_UID)
        lab.fact(lab.last.output.strip() == "example.org: A 192.0.2.10, reply from 10.44.0.2:53",
                 "a name it does not know is answered by the upstream server")  # fmt: skip
        lab.sh("cat agent.log kube-dns.log | grep -v listening")
        out = lab.last.output
        lab.fact("agent: echo.lab.svc.cluster.local from 10.44.0.1:" in out and "agent: example.org from 10.44.0.1:" in out
                 and "-> forwarded to 10.44.0.2:53" in out and "kube-dns: example.org from 10.44.0.1:" in out
                 and "kube-dns: echo" not in out,
                 "both queries reached the agent; only the unknown one reached kube-dns, from the pod's own IP")  # fmt: skip
        lab.sh("iptables-save -t nat -c | grep -E -- 'ISTIO_OUTPUT_DNS'", ns=app)
        c = counters(lab.last.output)
        lab.fact(c["-A ISTIO_OUTPUT_DNS -p udp -m udp --dport 53 -j REDIRECT --to-ports 15053"] == 2
                 and c["-A ISTIO_OUTPUT -j ISTIO_OUTPUT_DNS"] == 2,
                 "both UDP queries of the app were redirected to 15053; the agent's own query was not")  # fmt: skip

    with lab.section("dns-zones"):
        lab.sh("iptables-save -t raw -c | grep -- '^\\['", ns=app)
        c = counters(lab.last.output)
        lab.fact(c["-A ISTIO_OUTPUT_DNS -p udp -m udp --dport 53 -m owner --uid-owner 1337 -j CT --zone 1"] == 1
                 and c["-A ISTIO_OUTPUT_DNS -p udp -m udp --sport 15053 -m owner --uid-owner 1337 -j CT --zone 2"] == 2
                 and c["-A ISTIO_OUTPUT_DNS -p udp -m udp --dport 53 -j CT --zone 2"] == 3,
                 "zone 1 for the agent's query upstream, zone 2 for its two answers; the generic zone-2 rule also sees the agent's query")  # fmt: skip
        lab.fact(c["-A ISTIO_INBOUND -p udp -m udp --sport 53 -j CT --zone 1"] == 3 and c["-A PREROUTING -j ISTIO_INBOUND"] == 5,
                 "three packets with source port 53 came in: the upstream's answer and the agent's two answers, looped back")  # fmt: skip
        # /proc/net/nf_conntrack of the pod's namespace: each UDP flow with its zone (0 when none is set).
        lab.sh("grep -E '^ipv4 +2 udp' /proc/net/nf_conntrack | "
               "awk '{z=\"zone=0\"; t=\"\"; for (i=6; i<=NF; i++) { if ($i ~ /^zone=/) z=$i; "
               "else if ($i ~ /^(src|dst|sport|dport)=/) t=t\" \"$i }; print z t}' | sort", ns=app)  # fmt: skip
        flows = lab.last.output.splitlines()
        lab.fact(sum(f.startswith("zone=2 src=10.44.0.1 dst=10.44.0.2 ") and "src=127.0.0.1 dst=10.44.0.1 sport=15053" in f
                     for f in flows) == 2,
                 "zone 2: the app's two queries, NATed to 127.0.0.1:15053")  # fmt: skip
        lab.fact(sum(f.startswith("zone=1 src=10.44.0.1 dst=10.44.0.2 ") and "src=10.44.0.2 dst=10.44.0.1 sport=53" in f
                     for f in flows) == 1 and len(flows) == 3,
                 "zone 1: the agent's one query upstream, answered; no other UDP flow")  # fmt: skip

    # -- TPROXY ----------------------------------------------------------------------------------------
    with lab.section("tproxy"):
        tpc, tps = lab.pod("tpc"), lab.pod("tps")
        lab.link(tpc, "10.45.0.1/24", tps, "10.45.0.2/24")
        lab.start(f"{PY} common/upstream.py --port 8080 --name app", name="upstream-tps", ns=tps,
                  ready=lab.port_open(8080, ns=tps))  # fmt: skip
        # uid 0, gid 1337: the injection template's istio-proxy in TPROXY mode (IP_TRANSPARENT needs privilege).
        lab.start("setpriv --regid=1337 --clear-groups -- envoy -c tproxy.yaml --concurrency 1 --disable-hot-restart "
                  "--log-level warn", name="envoy-tps", ns=tps, ready=lab.envoy_ready(ADMIN, ns=tps))  # fmt: skip
        lab.sh("iptables-restore istio-1.30.3-tproxy.rules", ns=tps)
        # What tools/common/tproxy (configureTProxyRoutes) adds through netlink after the rules.
        lab.sh("ip rule add fwmark 1337 lookup 133", ns=tps)
        lab.sh("ip route add local default dev lo table 133", ns=tps)
        lab.sh("ip rule show fwmark 1337; ip route show table 133", ns=tps)
        lab.sh("curl -sS -m 3 -w 'HTTP %{http_code}\\n' http://10.45.0.2:8080/peer", ns=tpc, user=APP_UID)
        lab.fact(lab.last.output.splitlines() == ["10.45.0.1", "HTTP 200"],
                 "through a TPROXY sidecar, the application sees the client's own address")  # fmt: skip
        lab.sh("iptables-save -t mangle -c | grep -E -- '^\\[.*-j (TPROXY|ISTIO_TPROXY|ISTIO_DIVERT|MARK|CONNMARK)'", ns=tps)
        c = counters(lab.last.output)
        tproxy_rule = next(r for r in c if "-j TPROXY" in r)
        lab.fact(c[tproxy_rule] == 1 and c["-A ISTIO_INBOUND -p tcp -j ISTIO_TPROXY"] == 1,
                 "the SYN went through ISTIO_TPROXY once")  # fmt: skip
        lab.fact(c["-A ISTIO_INBOUND -p tcp -m conntrack --ctstate RELATED,ESTABLISHED -j ISTIO_DIVERT"] > 0
                 and any(n > 0 for r, n in c.items() if "CONNMARK --restore-mark" in r),
                 "later packets went through ISTIO_DIVERT, and the app's replies had their mark restored")  # fmt: skip
        lab.fact(all(n == 0 for r, n in c.items() if "0x53a" in r), "the 1338 marks were never set")
        show_stats(lab, tps, r"^(listener\.0\.0\.0\.0_15006\.downstream_cx_total|cluster\.inbound\|8080\|\|\.upstream_cx_total)$")
        s = stats(lab, tps)
        lab.fact(s["listener.0.0.0.0_15006.downstream_cx_total"] == 1 and s["cluster.inbound|8080||.upstream_cx_total"] == 1,
                 "Envoy accepted the connection on 15006 and opened one to the app")  # fmt: skip
        # Envoy keeps its upstream connection in the pool: both ends of it are sockets of this pod.
        lab.sh("ss -tnHp state established '( sport = :8080 or dport = :8080 )' | awk '{print $3, $4, $5}' | sort", ns=tps)
        lab.fact(re.search(r"^10\.45\.0\.1:\d+ 10\.45\.0\.2:8080 users:\(\(\"envoy\"", lab.last.output, re.M) is not None,
                 "Envoy's upstream socket in the server pod has the client's address as its local address")  # fmt: skip
        lab.sh("grep ' GET ' upstream-tps.log")
        lab.fact(re.search(r"^conn=\d+ req=1 10\.45\.0\.1:\d+ GET /peer -> 200$", lab.last.output, re.M) is not None,
                 "the app's accept() saw 10.45.0.1")  # fmt: skip

    # -- an application bound to localhost or to the pod IP -------------------------------------------
    with lab.section("bind"):
        cli, web = lab.pod("cli"), lab.pod("web")
        lab.link(cli, "10.46.0.1/24", web, "10.46.0.2/24")
        for host, port in (("127.0.0.1", 8080), ("127.0.0.1", 8081), ("10.46.0.2", 8082), ("10.46.0.2", 8083)):
            lab.start(f"{PY} common/upstream.py --host {host} --port {port} --name app-{port}", name=f"app-{port}",
                      ns=web, ready=lab.port_open(port, ns=web, host=host))  # fmt: skip
        lab.start("envoy -c inbound.yaml --concurrency 1 --disable-hot-restart --log-level warn",
                  name="envoy-web", ns=web, user=PROXY_UID, ready=lab.envoy_ready(ADMIN, ns=web))  # fmt: skip
        lab.sh("iptables-restore istio-1.30.3-basic.rules", ns=web)
        lab.sh("ss -ltnH | awk '{print $4}' | sort", ns=web)
        for port in (8080, 8081, 8082, 8083):
            lab.sh(f"curl -sS -m 3 -w '\\nHTTP %{{http_code}}\\n' http://10.46.0.2:{port}/peer", ns=cli, user=APP_UID)
            out = lab.last.output
            if port == 8081:
                lab.fact(out.split() == ["127.0.0.1", "HTTP", "200"], "8081: localhost endpoint, app on 127.0.0.1: peer 127.0.0.1")
            elif port == 8082:
                lab.fact(out.split() == ["127.0.0.6", "HTTP", "200"], "8082: pod IP endpoint, app on the pod IP: peer 127.0.0.6")
            else:
                lab.fact("HTTP 503" in out and "reset reason: remote connection failure" in out, f"{port}: the app does not listen where Envoy dials: 503")
        show_stats(lab, web, r"^cluster\.inbound\|808[0-3]\|\|\.(upstream_cx_total|upstream_cx_connect_fail)$")
        s = stats(lab, web)
        lab.fact(s["cluster.inbound|8080||.upstream_cx_connect_fail"] == 1 and s["cluster.inbound|8083||.upstream_cx_connect_fail"] == 1
                 and s["cluster.inbound|8081||.upstream_cx_connect_fail"] == 0 and s["cluster.inbound|8082||.upstream_cx_connect_fail"] == 0,
                 "the two mismatched ports failed to connect, the two matched ones did not")  # fmt: skip
        lab.sh("grep -h ' GET ' app-8081.log app-8082.log")

    # -- the hand-off between listeners -------------------------------------------------------------------
    with lab.section("handoff"):
        out, dst = lab.pod("out"), lab.pod("dst")
        lab.link(out, "10.47.0.1/24", dst, "10.47.0.2/24")
        lab.start(f"{PY} probe.py listen dst 0.0.0.0:8080 0.0.0.0:9090", name="dst", ns=dst,
                  ready=lab.port_open(9090, ns=dst))  # fmt: skip
        lab.start("envoy -c outbound.yaml --concurrency 1 --disable-hot-restart --log-level warn",
                  name="envoy-out", ns=out, user=PROXY_UID, ready=lab.envoy_ready(ADMIN, ns=out))  # fmt: skip
        lab.sh("iptables-restore istio-1.30.3-basic.rules", ns=out)
        lab.sh(f"curl -s 127.0.0.1:{ADMIN}/listeners", ns=out)
        lab.sh("ss -ltnH | awk '{print $4}' | sort", ns=out)
        lab.fact(":9090" not in lab.last.output, "no socket listens on 9090: those listeners do not bind")
        dial(lab, out, "10.47.0.99", 9090)
        lab.fact(lab.last.output.startswith("dst: accepted on 10.47.0.2:9090 from 10.47.0.1:"),
                 "a connection to the ClusterIP stand-in 10.47.0.99:9090 reached the pod behind it")  # fmt: skip
        dial(lab, out, "10.47.0.2", 9090)
        lab.fact(lab.last.output.startswith("dst: accepted on 10.47.0.2:9090"), "a connection to 10.47.0.2:9090 got through")
        dial(lab, out, "10.47.0.2", 8080)
        lab.fact(lab.last.output.startswith("dst: accepted on 10.47.0.2:8080"), "a connection to 10.47.0.2:8080 got through")
        dial(lab, out, "127.0.0.1", 15001)
        lab.fact("accepted" not in lab.last.output, "a connection straight to 15001 gets nothing")
        show_stats(lab, out, r"^(listener\.(10\.47\.0\.99_9090|0\.0\.0\.0_9090|0\.0\.0\.0_15001)\.downstream_cx_total"
                             r"|cluster\.(outbound\|9090\|\|echo\.lab\.svc\.cluster\.local|PassthroughCluster)\.upstream_cx_total"
                             r"|cluster\.BlackHoleCluster\.upstream_cx_none_healthy)$")  # fmt: skip
        s = stats(lab, out)
        lab.fact(s["listener.10.47.0.99_9090.downstream_cx_total"] == 1, "the exact-address listener took the ClusterIP connection")
        lab.fact(s["listener.0.0.0.0_9090.downstream_cx_total"] == 1, "the wildcard listener took the connection to 10.47.0.2:9090")
        lab.fact(s["listener.0.0.0.0_15001.downstream_cx_total"] == 2,
                 "virtualOutbound kept only the two with no listener of their own: 8080 and 15001")  # fmt: skip
        lab.fact(s["cluster.outbound|9090||echo.lab.svc.cluster.local.upstream_cx_total"] == 1
                 and s["cluster.PassthroughCluster.upstream_cx_total"] == 2
                 and s["cluster.BlackHoleCluster.upstream_cx_none_healthy"] == 1,
                 "one connection to the service's cluster, two through PassthroughCluster, one into BlackHoleCluster")  # fmt: skip
