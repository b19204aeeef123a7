"""Sidecar interception: Istio 1.30.3's own nat rules in two pods, one request through both
sidecars, and the loop that follows when Envoy's own connections are captured again.

Two network namespaces joined by a veth pair stand for two Pods: `app` (10.44.0.1) runs the
client as uid 1000, `srv` (10.44.0.2) runs labs/common/upstream.py on port 8080. Both get the
rules istio-cni writes for a default sidecar (istio-1.30.3-basic.rules, see PROVENANCE) and a
sidecar Envoy 1.39.0 running as uid 1337 with sidecar.yaml (virtualOutbound on 15001,
virtualInbound on 15006, admin on 127.0.0.1:15000).

Sections: rules, listeners, request, outbound-counters, inbound-counters, no-recapture,
peer-address, envoy-stats, access-log, break-it.
"""

import re
import time

TITLE = "Sidecar interception: Istio's iptables rules, 15001/15006, uid 1337 and 127.0.0.6"
SUMMARY_ZH = "两个命名空间充当 Pod，原样载入 Istio 的 iptables 规则：15001/15006、UID 1337、127.0.0.6，以及删掉放行规则后的自我捕获循环。"
NEEDS_ROOT = True
USES = ["upstream.py"]

RULES = "istio-1.30.3-basic.rules"
RULES_SHA256 = "28a2d3dcd491a79d6c9642bb55c411e9271125b635219efec87616ea8e2e8050"
APP_IP, SRV_IP = "10.44.0.1", "10.44.0.2"  # inside the lab's namespaces only
APP_UID = 1000  # the application: any uid but Envoy's
PROXY_UID = 1337  # Envoy: the uid (and gid) the rules exempt
ADMIN = 15000
LOOP_LIMIT = 8  # max_connections of the connection_limit filter in sidecar.yaml
NORMALIZE = [
    # Ephemeral source ports the kernel picks for each connection; the addresses and the
    # service/proxy ports stay as they are.
    (r"\b((?:10\.44\.0\.[12]|127\.0\.0\.6):)(?!8080\b|1500[016]\b)\d+\b", r"\1<port>"),
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
    """Every counter and gauge of the pod's Envoy, not recorded."""
    out = lab.query(f"curl -s -m 2 127.0.0.1:{ADMIN}/stats", ns=ns).output
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\S+): (\d+)$", out, re.M)}


def show_stats(lab, ns: str, pattern: str):
    """GET /stats?filter=<regex> as a reader would (curl url-encodes the regex)."""
    return lab.sh(f"curl -sG 127.0.0.1:{ADMIN}/stats --data-urlencode 'filter={pattern}'", ns=ns)


def wait_lines(lab, name: str, count: int, timeout: float = 5) -> None:
    """Access logs flush every 100 ms (--file-flush-interval-msec): wait until a log has its lines."""
    path = lab.workdir / name
    deadline = time.monotonic() + timeout
    while not (path.exists() and path.read_text().count("\n") >= count):
        if time.monotonic() > deadline:
            lab.fact(False, f"{name} has {count} lines within {timeout} s")
        time.sleep(0.05)


def app_request(lab, check: bool = True, timeout: float = 10):
    """The application's request: uid 1000 in the app pod, to the server pod's IP and port."""
    return lab.sh(f"curl -sS -m 3 -A app -w 'HTTP %{{http_code}}\\n' http://{SRV_IP}:8080/peer",
                  ns="app", user=APP_UID, check=check, timeout=timeout)  # fmt: skip


def run(lab):
    app, srv = lab.pod("app"), lab.pod("srv")
    lab.link(app, f"{APP_IP}/24", srv, f"{SRV_IP}/24")

    with lab.section("rules"):
        lab.sh(f"sha256sum {RULES}")
        lab.fact(lab.last.output.split()[0] == RULES_SHA256, "the rules file is Istio 1.30.3's golden, unchanged")
        # The file is exactly the input istio-cni gives iptables-restore. Istio adds --noflush
        # (capture.IptablesConfigurator.executeIptablesRestoreCommand) to keep what other tools put
        # in the table; a new namespace has an empty nat table, so both load the same rules. We load
        # without it so that break-it can load the file again over the changed table ("--noflush"
        # would stop at "-N ISTIO_INBOUND: Chain already exists"). Nothing else is needed: the
        # "* nat" header with a space and the final COMMIT are accepted as they are.
        for pod in (app, srv):
            lab.sh(f"iptables-restore {RULES}", ns=pod)
        lab.sh("iptables-save -t nat | grep -v '^#'", ns=app)
        saved = lab.last.output
        wanted = [line for line in (lab.workdir / RULES).read_text().splitlines() if line.startswith("-A ")]
        lab.fact(len(re.findall(r"^-A ", saved, re.M)) == len(wanted) == 20, "all 20 rules of the file are loaded")
        for rule in ("-A ISTIO_OUTPUT -m owner --uid-owner 1337 -j RETURN",
                     "-A ISTIO_OUTPUT -m owner --gid-owner 1337 -j RETURN",
                     "-A ISTIO_OUTPUT -s 127.0.0.6/32 -o lo -j RETURN",
                     "-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001",
                     "-A ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006"):  # fmt: skip
            lab.fact(rule in saved, f"the pod's nat table has {rule}")
        other = lab.query("iptables-save -t nat | grep -v '^#'", ns=srv).output
        lab.fact(other == saved, "both pods have the same rules")

    with lab.section("listeners"):
        lab.start("python3 common/upstream.py --port 8080 --name srv", name="upstream", ns=srv,
                  ready=lab.port_open(8080, ns=srv))  # fmt: skip
        for pod in (app, srv):
            lab.start(
                "envoy -c sidecar.yaml --concurrency 1 --disable-hot-restart --file-flush-interval-msec 100 "
                f"--log-level warn --service-node {pod}",
                name=f"envoy-{pod}", ns=pod, user=PROXY_UID, ready=lab.envoy_ready(ADMIN, ns=pod),
            )
        # ss -e prints uid:N for sockets not owned by root; its cgroup lookup complains on stderr here.
        lab.sh("ss -ltnHe 2>/dev/null | awk '{print $4, ($6 ~ /^uid:/ ? $6 : \"uid:0\")}' | sort", ns=srv)
        sockets = lab.last.output
        for address in ("127.0.0.1:15000 uid:1337", "0.0.0.0:15001 uid:1337", "0.0.0.0:15006 uid:1337"):
            lab.fact(address in sockets, f"the sidecar Envoy listens on {address}")
        lab.fact("0.0.0.0:8080 uid:0" in sockets,
                 "the server listens on 8080 under another uid")  # fmt: skip

    with lab.section("request"):
        for pod in (app, srv):
            lab.sh("iptables -t nat -Z", ns=pod)  # count from here: one request
        app_request(lab)
        lab.fact(lab.last.output.splitlines() == ["127.0.0.6", "HTTP 200"],
                 "the request succeeds, and the server saw it come from 127.0.0.6")  # fmt: skip

    # Read right after the request: nothing else opened a connection in either pod since the zeroing.
    with lab.section("outbound-counters"):
        lab.sh("iptables-save -t nat -c | grep -E -- '-A (OUTPUT|ISTIO_OUTPUT|ISTIO_REDIRECT) '", ns=app)
        c = counters(lab.last.output)
        lab.fact(c["-A OUTPUT -j ISTIO_OUTPUT"] == 2, "two connections started in the app pod: the app's and Envoy's")
        lab.fact(c["-A ISTIO_OUTPUT -j ISTIO_REDIRECT"] == 1 and c["-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001"] == 1,
                 "the app's connection falls through ISTIO_OUTPUT to ISTIO_REDIRECT, once")  # fmt: skip
        lab.fact(c["-A ISTIO_OUTPUT -m owner --uid-owner 1337 -j RETURN"] == 1,
                 "Envoy's upstream connection leaves through the uid 1337 RETURN")  # fmt: skip
        lab.fact(c["-A ISTIO_OUTPUT -m owner --gid-owner 1337 -j RETURN"] == 0, "the gid rule is never reached")

    with lab.section("inbound-counters"):
        lab.sh("iptables-save -t nat -c | grep -E -- '-A (PREROUTING|ISTIO_INBOUND|ISTIO_IN_REDIRECT) |127.0.0.6'", ns=srv)
        c = counters(lab.last.output)
        lab.fact(c["-A PREROUTING -p tcp -j ISTIO_INBOUND"] == 1, "one connection entered the server pod")
        lab.fact(c["-A ISTIO_INBOUND -p tcp -j ISTIO_IN_REDIRECT"] == 1
                 and c["-A ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006"] == 1,
                 "it is redirected to 15006")  # fmt: skip
        lab.fact(all(n == 0 for rule, n in c.items() if "--dport 150" in rule), "no excluded port was hit")
        lab.fact(c["-A ISTIO_OUTPUT -s 127.0.0.6/32 -o lo -j RETURN"] == 1,
                 "the server Envoy's connection to the app leaves through the 127.0.0.6 RETURN")  # fmt: skip

    with lab.section("no-recapture"):
        lab.sh("iptables-save -t nat -c | grep -E -- '--(uid|gid)-owner 1337 -j RETURN|--to-ports 15001'", ns=app)
        show_stats(lab, app, r"^(listener\.0\.0\.0\.0_15001\.downstream_cx_total|cluster\.PassthroughCluster\.upstream_cx_total)$")
        s = stats(lab, app)
        lab.fact(s["listener.0.0.0.0_15001.downstream_cx_total"] == 1 and s["cluster.PassthroughCluster.upstream_cx_total"] == 1,
                 "the client Envoy accepted one connection on 15001 and opened one upstream; the upstream one did not come back")  # fmt: skip

    with lab.section("peer-address"):
        lab.sh("grep ' GET ' upstream.log")
        lab.fact(re.search(r"^conn=\d+ req=1 127\.0\.0\.6:\d+ GET /peer -> 200$", lab.last.output, re.M) is not None,
                 "the server's accept() sees 127.0.0.6 as the peer")  # fmt: skip

    with lab.section("envoy-stats"):
        show_stats(lab, app, r"^(listener\.0\.0\.0\.0_15001|tcp\.PassthroughCluster|cluster\.PassthroughCluster)\."
                             r"(downstream_cx_total|upstream_cx_total|upstream_cx_connect_fail)$")  # fmt: skip
        show_stats(lab, srv, r"^(listener\.0\.0\.0\.0_15006\.downstream_cx_total|http\.inbound_0\.0\.0\.0_8080\.downstream_rq_2xx"
                             r"|cluster\.inbound\|8080\|\|\.(upstream_cx_total|upstream_rq_200))$")  # fmt: skip
        s = stats(lab, srv)
        lab.fact(s["listener.0.0.0.0_15006.downstream_cx_total"] == 1 and s["http.inbound_0.0.0.0_8080.downstream_rq_2xx"] == 1
                 and s["cluster.inbound|8080||.upstream_cx_total"] == 1 and s["cluster.inbound|8080||.upstream_rq_200"] == 1,
                 "the server Envoy took one connection on 15006 and sent one request to inbound|8080||")  # fmt: skip
        lab.fact(stats(lab, app)["tcp.PassthroughCluster.downstream_cx_total"] == 1, "the client side is one TCP proxy session")

    with lab.section("access-log"):
        wait_lines(lab, "access-outbound.log", 1)
        wait_lines(lab, "access-inbound.log", 1)
        lab.sh("cat access-outbound.log access-inbound.log")
        out = lab.last.output
        lab.fact(f"cluster=PassthroughCluster upstream={SRV_IP}:8080" in out and f"downstream_local={SRV_IP}:8080" in out,
                 "the client Envoy restored 10.44.0.2:8080 and connected to it")  # fmt: skip
        lab.fact('"GET /peer HTTP/1.1" 200 flags=- route=default cluster=inbound|8080||' in out
                 and "upstream_local=127.0.0.6:" in out, "the server Envoy connected to the app from 127.0.0.6")  # fmt: skip

    with lab.section("break-it"):
        # Remove both exemptions of Envoy's own traffic: Envoy runs with uid 1337 and gid 1337, and
        # either RETURN alone would still let its connection out.
        for owner in ("uid", "gid"):
            lab.sh(f"iptables -t nat -D ISTIO_OUTPUT -m owner --{owner}-owner {PROXY_UID} -j RETURN", ns=app)
        for pod in (app, srv):
            lab.sh("iptables -t nat -Z", ns=pod)
        lab.sh(f"curl -s -X POST 127.0.0.1:{ADMIN}/reset_counters", ns=app)
        # Bounded three ways: the connection_limit filter (max_connections 8) closes the ninth
        # connection, curl gives up after 3 s, and the lab's own step timeout is 10 s.
        app_request(lab, check=False)
        lab.fact(lab.last.code != 0 and "HTTP 200" not in lab.last.output, "the request fails")
        lab.sh("iptables-save -t nat -c | grep -E -- '-j ISTIO_REDIRECT|--to-ports 15001'", ns=app)
        c = counters(lab.last.output)
        lab.fact(c["-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001"] == LOOP_LIMIT + 1,
                 "the app's connection and each of Envoy's eight are redirected to 15001")  # fmt: skip
        show_stats(lab, app, r"^(listener\.0\.0\.0\.0_15001\.downstream_cx_total|cluster\.PassthroughCluster\.upstream_cx_total"
                             r"|connection_limit\.outbound_loop_guard\.(limited_connections|active_connections))$")  # fmt: skip
        s = stats(lab, app)
        lab.fact(s["listener.0.0.0.0_15001.downstream_cx_total"] == LOOP_LIMIT + 1
                 and s["cluster.PassthroughCluster.upstream_cx_total"] == LOOP_LIMIT
                 and s["connection_limit.outbound_loop_guard.limited_connections"] == 1,
                 "nine connections on 15001, eight upstream connections back into it, the ninth closed by the limit")  # fmt: skip
        lab.fact(s["connection_limit.outbound_loop_guard.active_connections"] == 0, "the loop unwound: no connection left open")
        # Each connection is logged when it closes; sorted by start time they show the chain: every
        # line's upstream_local is the next line's downstream_remote, and the last one was refused.
        wait_lines(lab, "access-outbound.log", 1 + LOOP_LIMIT + 1)
        lab.sh(f"sort access-outbound.log | tail -n {LOOP_LIMIT + 1}")
        lines = lab.last.output.splitlines()
        local = [re.search(r"upstream_local=(\S+)", line).group(1) for line in lines]
        remote = [re.search(r"downstream_remote=(\S+)", line).group(1) for line in lines]
        lab.fact(len(lines) == LOOP_LIMIT + 1 and all(local[i] == remote[i + 1] for i in range(LOOP_LIMIT))
                 and "cluster=-" in lines[-1] and all("cluster=PassthroughCluster" in line for line in lines[:-1]),
                 "each upstream connection of Envoy comes back as its next downstream connection; the ninth is closed")  # fmt: skip
        lab.sh("iptables-save -t nat -c | grep -- '--to-ports 15006'", ns=srv)
        lab.fact(counters(lab.last.output)["-A ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006"] == 0,
                 "nothing reached the server pod")  # fmt: skip
        # Restore: load the file again (it replaces the nat table), then the same request works.
        lab.sh(f"iptables-restore {RULES}", ns=app)
        lab.sh("iptables -t nat -S ISTIO_OUTPUT | grep -- '-owner 1337 -j RETURN'", ns=app)
        app_request(lab)
        lab.fact(lab.last.output.splitlines() == ["127.0.0.6", "HTTP 200"], "with the rules restored the request works again")
