"""Ambient in-pod rules: Istio 1.30.3's own in-pod iptables rules (the istio-cni node agent's
golden, see PROVENANCE) in two namespace "Pods", a real Envoy standing in for ztunnel's in-pod
listeners 15001/15006/15008, the kubelet probe path through 169.254.7.127, a NetworkPolicy that
forgets 15008, and what a Pod does when nothing listens on its in-pod ports.

Namespaces (the node routes between the three Pods; each Pod's interface is eth0):
  node   10.48.1.1 / 10.48.2.1 / 10.48.3.1   the node: IP forwarding, the probe SNAT, the "NetworkPolicy"
  app    10.48.1.2   ambient: Istio's in-pod rules, a server on 8080, the stand-in Envoy (ztunnel-standin.yaml)
  peer   10.48.2.2   ambient: the same rules, a server on 8080, the same stand-in
  plain  10.48.3.2   not in the mesh: a server on 8080, and a client

What stands in for what (say it wherever a page quotes the lab):
- Envoy 1.39.0 with ztunnel-standin.yaml stands in for ztunnel's in-pod listeners. It speaks no
  HBONE (no mTLS, no CONNECT); it runs inside the Pod's namespace, where ztunnel creates its sockets
  in that namespace from its own Pod. Its sockets carry mark 1337 as ztunnel's do.
- The probe SNAT rule in node is ours: Istio's host rule (istio-1.30.3-hostprobe.golden) matches the
  destination with the ipset istio-inpod-probes-v4, which this machine cannot create (no ipset tool);
  ours matches the one Pod address with -d instead. Everything else in it is the same.
- The "NetworkPolicy" is two FORWARD rules in node, the way a CNI would enforce a policy that lets
  only TCP 8080 reach peer.

Sections: rules, listeners, outbound, mesh, inbound, probe, netpol, fail-closed, reopen.
"""

import re
import subprocess

from labs.kit import in_pod

TITLE = "Ambient in-pod rules: Istio's in-pod iptables rules, 15001/15006/15008, the probe SNAT, NetworkPolicy and fail-closed"
SUMMARY_ZH = "原样载入 istio-cni 节点代理写进 Pod 的 ambient 规则，用真实 Envoy 顶替 ztunnel 的 Pod 内监听器：出站到 15001、入站到 15006、网格内走 15008、kubelet 探针经 169.254.7.127 放行、NetworkPolicy 挡住 15008，以及无人监听时的拒绝连接。"
NEEDS_ROOT = True
USES = ["upstream.py"]

RULES = "istio-1.30.3-inpod-default.golden"
RULES_SHA256 = "c458ffdcdd4bb96df83ef97b000ad397629d2efe26bbaa1b39f50855450a0cc9"
HOSTPROBE = "istio-1.30.3-hostprobe.golden"
HOSTPROBE_SHA256 = "c0ace05a6ab0a3f2badceed9da5555fa31bc742388c95c745c91395997f8a1f2"
PODS = {"app": "10.48.1.2", "peer": "10.48.2.2", "plain": "10.48.3.2"}  # inside the lab's namespaces only
GATEWAYS = {"app": "10.48.1.1", "peer": "10.48.2.1", "plain": "10.48.3.1"}
PROBE_SNAT = "169.254.7.127"  # DefaultHostProbeSNATIP, cni/pkg/nodeagent/options.go
ADMIN = 15000
NORMALIZE = [
    # Ephemeral ports and packet/byte counts of TCP exchanges (ACKs and segments depend on timing)
    # are not what the lab shows; connection counts (one packet per NAT decision) are kept as they are.
    (r"\[\d+:\d+\] (-A ISTIO_OUTPUT -m connmark |-A FORWARD -d 10\.48\.2\.2/32 -p tcp -m tcp --dport 8080 )", r"[<packets>:<bytes>] \1"),
    # curl reports how long a refused connect took (0 or 1 ms); the exit status 7 is what counts.
    (r"after \d+ ms: Couldn't connect", "after <n> ms: Couldn't connect"),
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


def nat(lab, ns: str, pattern: str) -> dict[str, int]:
    """Show the nat counters of a Pod whose rule matches pattern; return all of them."""
    lab.sh(f"iptables-save -t nat -c | grep -E -- '{pattern}'", ns=ns)
    return counters(lab.last.output)


def get(lab, ns: str, url: str, check: bool = True, user: int | None = None, extra: str = ""):
    return lab.sh(f"curl -sS -m 3 {extra}-w 'HTTP %{{http_code}}\\n' {url}", ns=ns, user=user, check=check)


def zero(lab, *pods: str) -> None:
    for pod in pods:
        for table in ("nat", "mangle"):
            lab.query(f"iptables -t {table} -Z", ns=pod)


def wire(lab) -> None:
    """eth0 in each Pod, a veth end per Pod in node, default routes through node."""
    for pod, ip in PODS.items():
        subprocess.run(["ip", "link", "add", "eth0", "netns", f"insider-{pod}", "type", "veth",
                        "peer", f"v{pod}", "netns", "insider-node"], check=True, capture_output=True)  # fmt: skip
        for ns, dev, addr in ((pod, "eth0", f"{ip}/24"), ("node", f"v{pod}", f"{GATEWAYS[pod]}/24")):
            subprocess.run([*in_pod(ns), "ip", "addr", "add", addr, "dev", dev], check=True)
            subprocess.run([*in_pod(ns), "ip", "link", "set", dev, "up"], check=True)
        subprocess.run([*in_pod(pod), "ip", "route", "add", "default", "via", GATEWAYS[pod]], check=True)
    lab.query("sysctl -qw net.ipv4.ip_forward=1", ns="node")


def run(lab):
    for name in ("node", *PODS):
        lab.pod(name)
    wire(lab)
    app, peer, plain, node = "app", "peer", "plain", "node"

    with lab.section("rules"):
        lab.sh(f"sha256sum {RULES}")
        lab.fact(lab.last.output.split()[0] == RULES_SHA256, "the rules file is Istio 1.30.3's golden, unchanged")
        # The golden is what DependenciesStub recorded: the two state reads (iptables-save,
        # ip6tables-save) on its first two lines, then the input of iptables-restore. Istio runs that
        # input with `iptables-restore --noflush -v` inside the Pod's namespace
        # (IptablesConfigurator.executeIptablesRestoreCommand in cni/pkg/iptables/iptables.go).
        lab.sh(f"head -n 2 {RULES}")
        for pod in (app, peer):
            lab.sh(f"tail -n +3 {RULES} | iptables-restore --noflush", ns=pod)
            # CreateInpodRules also programs a policy route through netlink (cni/pkg/iptables/
            # iptables_linux.go: AddInpodMarkIPRule, AddLoopbackRoutes); these are the same two, as ip commands.
            lab.sh("ip rule add fwmark 0x111/0xfff pref 32764 lookup 100", ns=pod)
            lab.sh("ip route add local 0.0.0.0/0 dev lo table 100", ns=pod)
        lab.sh("iptables-save | grep -v '^#'", ns=app)
        saved = lab.last.output
        wanted = [line for line in (lab.workdir / RULES).read_text().splitlines() if line.startswith("-A ")]
        lab.fact(len(re.findall(r"^-A ", saved, re.M)) == len(wanted) == 18, "all 18 rules of the file are loaded")
        for rule in ("-A ISTIO_OUTPUT ! -d 127.0.0.1/32 -p tcp -m mark ! --mark 0x539/0xfff -j REDIRECT --to-ports 15001",
                     "-A ISTIO_PRERT ! -d 127.0.0.1/32 -p tcp -m tcp ! --dport 15008 -m mark ! --mark 0x539/0xfff -j REDIRECT --to-ports 15006",
                     "-A ISTIO_PRERT -s 169.254.7.127/32 -p tcp -m tcp -j ACCEPT",
                     "-A ISTIO_PRERT -m mark --mark 0x539/0xfff -j CONNMARK --set-xmark 0x111/0xfff"):  # fmt: skip
            lab.fact(rule in saved, f"the Pod has {rule}")
        lab.fact("owner" not in saved, "no rule matches a uid or gid")
        lab.sh("ip rule show pref 32764; ip route show table 100", ns=app)
        lab.fact("fwmark 0x111/0xfff lookup 100" in lab.last.output and "local default dev lo" in lab.last.output,
                 "marked packets are routed to the Pod's own loopback")  # fmt: skip

    with lab.section("listeners"):
        for pod in PODS:
            lab.start(f"python3 common/upstream.py --port 8080 --name {pod}", name=f"upstream-{pod}", ns=pod,
                      ready=lab.port_open(8080, ns=pod))  # fmt: skip
        for pod in (app, peer):
            lab.start(
                f"envoy -c ztunnel-standin.yaml --concurrency 1 --disable-hot-restart --log-level warn --service-node {pod}",
                name=f"envoy-{pod}", ns=pod, ready=lab.envoy_ready(ADMIN, ns=pod),
            )
        lab.sh("ss -ltnH | awk '{print $4}' | sort", ns=app)
        for address in ("0.0.0.0:15001", "0.0.0.0:15006", "0.0.0.0:15008", "0.0.0.0:8080"):
            lab.fact(address in lab.last.output, f"the app Pod has a listener on {address}")

    with lab.section("outbound"):
        zero(lab, app)
        # uid 1337, the sidecar's exempt uid: in-pod rules match marks, not owners.
        get(lab, app, f"http://{PODS['plain']}:8080/peer", user=1337)
        lab.fact(lab.last.output.splitlines() == [PODS["app"], "HTTP 200"],
                 "the request works, and plain sees the app Pod's own address")  # fmt: skip
        c = nat(lab, app, "-A (OUTPUT|ISTIO_OUTPUT) ")
        lab.fact(c["-A OUTPUT -j ISTIO_OUTPUT"] == 2, "two connections started in the app Pod: the app's and the stand-in's")
        lab.fact(c["-A ISTIO_OUTPUT ! -d 127.0.0.1/32 -p tcp -m mark ! --mark 0x539/0xfff -j REDIRECT --to-ports 15001"] == 1,
                 "only the app's connection is redirected to 15001 (uid 1337 included)")  # fmt: skip
        show_stats(lab, app, r"^(listener\.0\.0\.0\.0_15001\.downstream_cx_total|cluster\.passthrough\.upstream_cx_total)$")
        s = stats(lab, app)
        lab.fact(s["listener.0.0.0.0_15001.downstream_cx_total"] == 1 and s["cluster.passthrough.upstream_cx_total"] == 1,
                 "the stand-in took it on 15001 and opened one marked connection to 10.48.3.2:8080")  # fmt: skip

    with lab.section("mesh"):
        zero(lab, app, peer)
        get(lab, app, f"http://{PODS['peer']}:8080/peer")
        lab.fact(lab.last.output.splitlines() == [PODS["app"], "HTTP 200"],
                 "app to peer works; peer's server sees the app Pod's address")  # fmt: skip
        c = nat(lab, app, "--to-ports 15001")
        lab.fact(c["-A ISTIO_OUTPUT ! -d 127.0.0.1/32 -p tcp -m mark ! --mark 0x539/0xfff -j REDIRECT --to-ports 15001"] == 1,
                 "in app: redirected to 15001 once")  # fmt: skip
        c = nat(lab, peer, "-A (PREROUTING|ISTIO_PRERT) ")
        lab.fact(c["-A PREROUTING -j ISTIO_PRERT"] == 1, "in peer: one connection arrived from outside")
        lab.fact(c["-A ISTIO_PRERT ! -d 127.0.0.1/32 -p tcp -m tcp ! --dport 15008 -m mark ! --mark 0x539/0xfff -j REDIRECT --to-ports 15006"] == 0,
                 "in peer: it was not redirected (its port is 15008)")  # fmt: skip
        show_stats(lab, app, r"^cluster\.hbone_standin\.upstream_cx_total$")
        show_stats(lab, peer, r"^listener\.0\.0\.0\.0_(15006|15008)\.downstream_cx_total$")
        lab.fact(stats(lab, app)["cluster.hbone_standin.upstream_cx_total"] == 1, "app's stand-in dialed peer on 15008")
        s = stats(lab, peer)
        lab.fact(s["listener.0.0.0.0_15008.downstream_cx_total"] == 1 and s.get("listener.0.0.0.0_15006.downstream_cx_total", 0) == 0,
                 "peer's stand-in accepted it on 15008, nothing on 15006")  # fmt: skip

    with lab.section("inbound"):
        zero(lab, app)
        get(lab, plain, f"http://{PODS['app']}:8080/peer")
        lab.fact(lab.last.output.splitlines() == [PODS["plain"], "HTTP 200"],
                 "plain to app works, and app's server sees plain's own address (not 127.0.0.6)")  # fmt: skip
        c = nat(lab, app, "-A PREROUTING |--to-ports 15006|-o lo -j ACCEPT")
        lab.fact(c["-A PREROUTING -j ISTIO_PRERT"] == 1, "nat PREROUTING saw one new connection: plain's, not the stand-in's over lo")
        lab.fact(c["-A ISTIO_PRERT ! -d 127.0.0.1/32 -p tcp -m tcp ! --dport 15008 -m mark ! --mark 0x539/0xfff -j REDIRECT --to-ports 15006"] == 1,
                 "the connection from plain is redirected to 15006")  # fmt: skip
        lab.fact(c["-A ISTIO_OUTPUT ! -d 127.0.0.1/32 -o lo -j ACCEPT"] == 1,
                 "the stand-in's connection to the app (over lo) is accepted in nat OUTPUT")  # fmt: skip
        lab.sh("iptables-save -t mangle -c | grep CONNMARK", ns=app)
        c = counters(lab.last.output)
        lab.fact(c["-A ISTIO_PRERT -m mark --mark 0x539/0xfff -j CONNMARK --set-xmark 0x111/0xfff"] == 1,
                 "one packet carried mark 0x539 into PREROUTING: the stand-in's SYN, which sets the connmark")  # fmt: skip
        lab.fact(c["-A ISTIO_OUTPUT -m connmark --mark 0x111/0xfff -j CONNMARK --restore-mark --nfmask 0xffffffff --ctmask 0xffffffff"] > 1,
                 "every later packet of that connection leaving a socket gets the mark 0x111 back")  # fmt: skip
        show_stats(lab, app, r"^listener\.0\.0\.0\.0_15006\.downstream_cx_total$")
        lab.fact(stats(lab, app)["listener.0.0.0.0_15006.downstream_cx_total"] == 1, "the stand-in took one connection on 15006")

    with lab.section("probe"):
        lab.sh(f"sha256sum {HOSTPROBE}; tail -n +3 {HOSTPROBE}")
        lab.fact(lab.last.output.split()[0] == HOSTPROBE_SHA256, "the host rule file is Istio 1.30.3's golden, unchanged")
        # Ours: Istio's chain and rule, with -d <the Pod's address> for the ipset match (see the docstring).
        lab.sh("iptables -t nat -N ISTIO_POSTRT", ns=node)
        lab.sh("iptables -t nat -I POSTROUTING 1 -j ISTIO_POSTRT", ns=node)
        lab.sh(f"iptables -t nat -A ISTIO_POSTRT -m owner --socket-exists -p tcp -d {PODS['app']}/32 -j SNAT --to-source {PROBE_SNAT}", ns=node)
        zero(lab, app)
        # From the node's own socket, as kubelet probes: SNAT, then accepted in the Pod.
        get(lab, node, f"http://{PODS['app']}:8080/peer")
        lab.fact(lab.last.output.splitlines() == [PROBE_SNAT, "HTTP 200"], "the app's server sees the probe from 169.254.7.127")
        # Forwarded through the node (a client elsewhere, as kube-proxy forwards): no SNAT, captured.
        get(lab, plain, f"http://{PODS['app']}:8080/peer")
        lab.fact(lab.last.output.splitlines() == [PODS["plain"], "HTTP 200"], "a forwarded connection keeps its source")
        lab.sh("iptables-save -t nat -c | grep -- '-j SNAT'", ns=node)
        lab.fact(list(counters(lab.last.output).values()) == [1], "the node SNATed only its own connection")
        c = nat(lab, app, "169.254.7.127|--to-ports 15006")
        lab.fact(c["-A ISTIO_PRERT -s 169.254.7.127/32 -p tcp -m tcp -j ACCEPT"] == 1, "in app: the probe is accepted before the redirect")
        lab.fact(c["-A ISTIO_PRERT ! -d 127.0.0.1/32 -p tcp -m tcp ! --dport 15008 -m mark ! --mark 0x539/0xfff -j REDIRECT --to-ports 15006"] == 1,
                 "in app: only the forwarded connection went to 15006")  # fmt: skip
        lab.fact(c["-A ISTIO_OUTPUT -d 169.254.7.127/32 -p tcp -m tcp -j ACCEPT"] == 0,
                 "replies to the probe never reach nat OUTPUT (nat sees a connection's first packet only)")  # fmt: skip

    with lab.section("netpol"):
        # A policy that lets only TCP 8080 reach peer, enforced on the node.
        lab.sh(f"iptables -A FORWARD -d {PODS['peer']}/32 -p tcp --dport 8080 -j ACCEPT", ns=node)
        lab.sh(f"iptables -A FORWARD -d {PODS['peer']}/32 -p tcp -j DROP", ns=node)
        lab.sh("curl -s -X POST 127.0.0.1:15000/reset_counters", ns=app)
        get(lab, plain, f"http://{PODS['peer']}:8080/peer")
        lab.fact(lab.last.output.splitlines() == [PODS["plain"], "HTTP 200"], "plain (not in the mesh) still reaches peer on 8080")
        get(lab, app, f"http://{PODS['peer']}:8080/peer", check=False)
        lab.fact(lab.last.code != 0 and "HTTP 200" not in lab.last.output, "app (in the mesh) cannot reach peer on 8080")
        lab.sh("iptables-save -t filter -c | grep -- '-A FORWARD'", ns=node)
        c = counters(lab.last.output)
        lab.fact(c[f"-A FORWARD -d {PODS['peer']}/32 -p tcp -j DROP"] == 1,
                 "one packet dropped: the stand-in's SYN to peer:15008")  # fmt: skip
        show_stats(lab, app, r"^cluster\.hbone_standin\.upstream_cx_(total|connect_timeout)$")
        s = stats(lab, app)
        lab.fact(s["cluster.hbone_standin.upstream_cx_connect_timeout"] == 1, "the stand-in's dial to 15008 timed out")
        lab.sh(f"iptables -I FORWARD 2 -d {PODS['peer']}/32 -p tcp --dport 15008 -j ACCEPT", ns=node)
        get(lab, app, f"http://{PODS['peer']}:8080/peer")
        lab.fact(lab.last.output.splitlines() == [PODS["app"], "HTTP 200"], "with 15008 allowed, app reaches peer again")

    with lab.section("fail-closed"):
        lab.stop("envoy-app")
        lab.sh("ss -ltnH | awk '{print $4}' | sort", ns=app)
        lab.fact("15001" not in lab.last.output and "15006" not in lab.last.output, "nothing listens on 15001 or 15006 in app")
        zero(lab, app)
        get(lab, app, f"http://{PODS['plain']}:8080/peer", check=False)
        lab.fact(lab.last.code == 7 and "Couldn't connect to server" in lab.last.output, "app's outbound connection is refused")
        get(lab, plain, f"http://{PODS['app']}:8080/peer", check=False)
        lab.fact(lab.last.code == 7 and "Couldn't connect to server" in lab.last.output, "inbound to app's port 8080 is refused")
        lab.sh(f"curl -sS -m 3 -o /dev/null http://{PODS['app']}:15008/", ns=plain, check=False)
        lab.fact(lab.last.code == 7, "a connection to 15008 is refused too")
        get(lab, node, f"http://{PODS['app']}:8080/peer")
        lab.fact(lab.last.output.splitlines() == [PROBE_SNAT, "HTTP 200"], "the node's probe still succeeds")
        c = nat(lab, app, "--to-ports 1500[16]|169.254.7.127/32 -p")
        lab.fact(c["-A ISTIO_OUTPUT ! -d 127.0.0.1/32 -p tcp -m mark ! --mark 0x539/0xfff -j REDIRECT --to-ports 15001"] == 1
                 and c["-A ISTIO_PRERT ! -d 127.0.0.1/32 -p tcp -m tcp ! --dport 15008 -m mark ! --mark 0x539/0xfff -j REDIRECT --to-ports 15006"] == 1,
                 "the refused connections were redirected (one each); 15008 was not")  # fmt: skip
        lab.fact(c["-A ISTIO_PRERT -s 169.254.7.127/32 -p tcp -m tcp -j ACCEPT"] == 1, "the probe bypassed the redirect")

    with lab.section("reopen"):
        # A new ztunnel gets the Pod again (ZDS snapshot) and opens its in-pod listeners again; the
        # rules were never touched. Here: the same stand-in, started again.
        lab.start("envoy -c ztunnel-standin.yaml --concurrency 1 --disable-hot-restart --log-level warn --service-node app",
                  name="envoy-app-again", ns=app, ready=lab.envoy_ready(ADMIN, ns=app))  # fmt: skip
        get(lab, app, f"http://{PODS['plain']}:8080/peer")
        lab.fact(lab.last.output.splitlines() == [PODS["app"], "HTTP 200"], "with listeners on 15001 again, the same rules work again")
