"""Waypoint chain: a real Envoy laid out like an Istio waypoint terminates a CONNECT, passes the
stream through the internal listener main_internal (where an HTTP policy runs) and re-originates
a CONNECT to the destination Pod's 15008 through the internal listener connect_originate.

Namespaces (two veth pairs):
  client    10.48.11.1  an application (curl) and Envoy with client.yaml
  waypoint  10.48.11.2 / 10.48.12.1  Envoy with waypoint.yaml
  server    10.48.12.2  an application on 8080 (common/upstream.py) and Envoy with server.yaml

What stands in for what (say it wherever a page quotes the lab):
- waypoint.yaml is written by us with the names and the shape istiod gives a waypoint
  (pilot/pkg/networking/core/listener_waypoint.go, cluster_waypoint.go), but static, without TLS,
  with a filter_chain_match instead of a matcher tree, and one RBAC rule standing in for an
  AuthorizationPolicy attached to the waypoint.
- client.yaml stands in for the source ztunnel: it sends the application's connection to the
  Service VIP 10.96.0.20:8080 as a CONNECT to the waypoint's 15008 (ztunnel does this in Rust).
- server.yaml stands in for the destination ztunnel: it terminates CONNECT on 15008 and forwards
  to the application; it logs the :authority and the sender's address.
- 10.96.0.20 is a made-up Service VIP; nothing answers on it. The waypoint maps it to the Pod
  10.48.12.2:8080, as istiod's EDS endpoints do.

Sections: chain, policy.
"""

import re
import subprocess
import time

from labs.kit import PREFIX, in_pod

TITLE = "Waypoint chain: connect_terminate, the internal listeners main_internal and connect_originate, and a new CONNECT to the Pod"
SUMMARY_ZH = "按航点的形状手写的真实 Envoy：在 connect_terminate 终结 CONNECT，经内部监听器 main_internal（HTTP 策略在这里执行）和 connect_originate，向目标 Pod 的 15008 重新发起 CONNECT。"
NEEDS_ROOT = True
USES = ["upstream.py"]

CLIENT, WAYPOINT, SERVER = "client", "waypoint", "server"
VIP = "10.96.0.20"  # made up, inside the lab's namespaces only
ADMIN = 15000
NORMALIZE = []


def stats(lab, ns: str, pattern: str, show: bool = True) -> dict[str, int]:
    cmd = f"curl -sG 127.0.0.1:{ADMIN}/stats --data-urlencode 'filter={pattern}'"
    out = (lab.sh(cmd, ns=ns) if show else lab.query(cmd, ns=ns)).output
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\S+): (\d+)$", out, re.M)}


def wait_lines(lab, name: str, n: int, timeout: float = 5) -> None:
    path = lab.workdir / name
    deadline = time.monotonic() + timeout
    while not (path.exists() and len(path.read_text().splitlines()) >= n):
        if time.monotonic() > deadline:
            lab.fact(False, f"{name} has {n} lines (waited {timeout} s)")
        time.sleep(0.05)


def run(lab):
    for pod in (CLIENT, WAYPOINT, SERVER):
        lab.pod(pod)
    lab.link(CLIENT, "10.48.11.1/24", WAYPOINT, "10.48.11.2/24")
    # The kit names a veth after its pod, so the second pair of the waypoint gets its own names.
    a, b = "insw2s", "inss2w"
    subprocess.run(["ip", "link", "add", a, "netns", PREFIX + WAYPOINT, "type", "veth", "peer", b, "netns", PREFIX + SERVER],
                   check=True, capture_output=True)  # fmt: skip
    for ns, dev, addr in ((WAYPOINT, a, "10.48.12.1/24"), (SERVER, b, "10.48.12.2/24")):
        subprocess.run([*in_pod(ns), "ip", "addr", "add", addr, "dev", dev], check=True)
        subprocess.run([*in_pod(ns), "ip", "link", "set", dev, "up"], check=True)
    # The client knows a route to the VIP, and its connections to VIP:8080 go to its "ztunnel".
    lab.query("ip route add 10.96.0.0/16 via 10.48.11.2", ns=CLIENT)
    lab.query(f"iptables -t nat -A OUTPUT -p tcp -d {VIP} --dport 8080 -j REDIRECT --to-ports 15001", ns=CLIENT)

    lab.start("python3 common/upstream.py --port 8080 --name server-app", name="app", ns=SERVER,
              ready=lab.port_open(8080, ns=SERVER))  # fmt: skip
    flags = "--concurrency 1 --disable-hot-restart --log-level warn --file-flush-interval-msec 100"
    lab.start(f"envoy -c server.yaml {flags}", name="envoy-server", ns=SERVER, ready=lab.envoy_ready(ADMIN, ns=SERVER))
    lab.start(f"envoy -c waypoint.yaml {flags}", name="envoy-waypoint", ns=WAYPOINT, ready=lab.envoy_ready(ADMIN, ns=WAYPOINT))
    lab.start(f"envoy -c client.yaml {flags}", name="envoy-client", ns=CLIENT, ready=lab.envoy_ready(ADMIN, ns=CLIENT))

    with lab.section("chain"):
        lab.sh(f"curl -sS -m 3 -w 'HTTP %{{http_code}}\\n' http://{VIP}:8080/", ns=CLIENT)
        lab.fact(lab.last.output.splitlines() == ["server-app: GET /", "HTTP 200"], "the request to the VIP reached the Pod's application")
        s = stats(lab, WAYPOINT, r"^(http\.connect_terminate\.downstream_rq_total|cluster\.main_internal\.upstream_cx_total"
                  r"|http\.inbound_vip_8080_http\.downstream_rq_total|cluster\.inbound-vip\|8080\|http\|httpbin\.lab\.svc\.cluster\.local\.upstream_cx_total"
                  r"|cluster\.connect_originate\.upstream_(cx|rq)_total)$")  # fmt: skip
        lab.fact(s["http.connect_terminate.downstream_rq_total"] == 1, "connect_terminate accepted one CONNECT")
        lab.fact(s["cluster.main_internal.upstream_cx_total"] == 1, "the CONNECT became one connection to the internal listener main_internal")
        lab.fact(s["http.inbound_vip_8080_http.downstream_rq_total"] == 1, "main_internal's HTTP chain for VIP:8080 saw the GET")
        lab.fact(s["cluster.inbound-vip|8080|http|httpbin.lab.svc.cluster.local.upstream_cx_total"] == 1,
                 "the inbound-vip cluster opened one connection, to the internal listener connect_originate")  # fmt: skip
        lab.fact(s["cluster.connect_originate.upstream_cx_total"] == 1 and s["cluster.connect_originate.upstream_rq_total"] == 1,
                 "connect_originate sent one CONNECT over one HTTP/2 connection")  # fmt: skip
        wait_lines(lab, "server-access.log", 1)
        lab.sh("cat server-access.log", ns=SERVER)
        lab.fact(lab.last.output.strip() == "CONNECT 10.48.12.2:8080 HTTP/2 from=10.48.12.1",
                 "the destination saw a new CONNECT to the Pod address (not the VIP), sent by the waypoint")  # fmt: skip
        # curl is done, yet the new tunnel stays: main_internal keeps its HTTP/1.1 connection to
        # connect_originate in the inbound-vip cluster's pool, and that connection is the CONNECT stream.
        s = stats(lab, WAYPOINT, r"^cluster\.inbound-vip\|8080\|http\|httpbin\.lab\.svc\.cluster\.local\.upstream_cx_active$")
        lab.fact(s["cluster.inbound-vip|8080|http|httpbin.lab.svc.cluster.local.upstream_cx_active"] == 1,
                 "the inbound-vip cluster keeps its pooled connection to connect_originate")  # fmt: skip
        s = stats(lab, SERVER, r"^http\.hbone_inbound\.downstream_rq_active$")
        lab.fact(s["http.hbone_inbound.downstream_rq_active"] == 1, "so the CONNECT stream to the destination stays open")

    with lab.section("policy"):
        lab.sh(f"curl -sS -m 3 -w '\\nHTTP %{{http_code}}\\n' http://{VIP}:8080/admin", ns=CLIENT)
        lab.fact(lab.last.output.splitlines() == ["RBAC: access denied", "HTTP 403"], "the waypoint denied /admin with 403")
        s = stats(lab, WAYPOINT, r"^(http\.inbound_vip_8080_http\.rbac\.denied|http\.connect_terminate\.downstream_rq_total"
                  r"|cluster\.connect_originate\.upstream_rq_total)$")  # fmt: skip
        lab.fact(s["http.inbound_vip_8080_http.rbac.denied"] == 1, "the denial was counted in main_internal's HTTP chain")
        lab.fact(s["http.connect_terminate.downstream_rq_total"] == 2, "the second connection was still one CONNECT into the waypoint")
        lab.fact(s["cluster.connect_originate.upstream_rq_total"] == 1, "no new CONNECT left the waypoint for the denied request")
        time.sleep(0.3)  # the access log flushes every 100 ms; nothing new may appear
        lab.sh("wc -l < server-access.log", ns=SERVER)
        lab.fact(lab.last.output.strip() == "1", "the destination saw nothing of the denied request")
