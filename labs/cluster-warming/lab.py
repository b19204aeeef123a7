"""Cluster warming: a cluster added over CDS whose endpoints (EDS) come late.

One Envoy fed over ADS (state of the world) by the teaching control plane
(labs/common/xds_server.py), which serves snapshot.json (summary.jq prints what a version holds); two upstreams (upstream-a on 8080 for
the cluster backend, upstream-b on 8081 for the cluster late). Snapshot v1 has backend only; v2
adds the cluster late and a route /late to it, but no endpoints for it, so late stays warming; v3
adds late's ClusterLoadAssignment with no endpoint in it; v4 puts upstream-b in it. The lab reads
the cluster manager's gauges, the control plane's wire log (when Envoy ACKs CDS) and what a
request to /late gets at each step. Sections: start, warming, warming-wire, warmed, warmed-wire,
endpoints.
"""

import time

TITLE = "Cluster warming: a CDS cluster waits for its first EDS answer, and CDS is ACKed only then"
SUMMARY_ZH = "集群预热：经 CDS 新增、端点迟迟不来的集群停在预热状态，CDS 的 ACK 也随之推迟；预热期间请求得到 NC，端点为空时得到 UH。"
NEEDS_ROOT = True
USES = ["xds_server.py", "upstream.py"]
NORMALIZE = []
ADMIN = 15000
CM = r"^cluster_manager\.(active_clusters|warming_clusters|cluster_added|cluster_modified|cluster_updated)$"


def until(lab, what: str, holds, timeout: float = 10) -> None:
    """Wait (without recording) for the state the next step shows; fail with `what` if it never comes."""
    deadline = time.monotonic() + timeout
    while not holds():
        if time.monotonic() > deadline:
            lab.fact(False, what)
        time.sleep(0.05)


def wire(lab) -> str:
    path = lab.workdir / "wire.log"
    return path.read_text() if path.exists() else ""


def after(text: str, marker: str) -> str:
    return text.split(marker, 1)[1] if marker in text else ""


def run(lab):
    ns = lab.pod("warming")

    def stat(name):
        return lab.stat(ADMIN, name, ns=ns)

    def show(pattern):
        return lab.sh(f"curl -s '127.0.0.1:{ADMIN}/stats?filter={pattern}'", ns=ns)

    def late():
        return lab.sh("curl -s -w '\\nstatus=%{http_code}\\n' 127.0.0.1:8000/late", ns=ns)

    with lab.section("start"):
        lab.start("python3 common/upstream.py --host 127.0.0.1 --port 8080 --name upstream-a", name="upstream-a",
                  ns=ns, ready=lab.port_open(8080, ns=ns))
        lab.start("python3 common/upstream.py --host 127.0.0.1 --port 8081 --name upstream-b", name="upstream-b",
                  ns=ns, ready=lab.port_open(8081, ns=ns))
        lab.sh("jq -c -f summary.jq v1.json")
        lab.sh("cp v1.json snapshot.json")
        lab.start("python3 common/xds_server.py --snapshot snapshot.json --unix xds.sock --log wire.log",
                  name="xds", ns=ns, ready=lambda: (lab.workdir / "xds.sock").exists())
        lab.start("envoy -c envoy.yaml --concurrency 1 --disable-hot-restart --log-level warn", name="envoy", ns=ns,
                  ready=lab.envoy_ready(ADMIN, ns=ns))
        until(lab, "the RDS ACK of v1", lambda: '<- RDS DiscoveryRequest version_info="v1"' in wire(lab))
        show(CM)
        lab.fact(stat("cluster_manager.active_clusters") == 2 and stat("cluster_manager.warming_clusters") == 0,
                 "xds and backend are active, nothing is warming")

    with lab.section("warming"):
        lab.sh("jq -c -f summary.jq v2.json")
        lab.sh("cp v2.json snapshot.json")
        until(lab, "late is warming and the v2 routes are ACKed",
              lambda: stat("cluster_manager.warming_clusters") == 1
              and '<- RDS DiscoveryRequest version_info="v2"' in wire(lab))
        show(CM)
        lab.fact(stat("cluster_manager.cluster_added") == 3 and stat("cluster_manager.active_clusters") == 2,
                 "late is added but not active: warming_clusters 1")
        lab.sh(f"curl -s '127.0.0.1:{ADMIN}/config_dump?resource=dynamic_warming_clusters' "
               "| jq -r '.configs[] | [.version_info, .cluster.name] | join(\"  \")'", ns=ns)
        lab.fact(lab.last.output.split() == ["v2", "late"], "config_dump lists late among the warming clusters")
        late()
        lab.fact(lab.last.output.strip() == "status=503",
                 "a request routed to the warming cluster gets a bare 503")
        show(r"^http\.http\.no_cluster$")
        lab.fact(stat("http.http.no_cluster") == 1, "the router did not find late on the worker: no_cluster (NC)")

    with lab.section("warming-wire"):
        lab.sh("sed -n '/snapshot v2/,$p' wire.log")
        text = after(lab.last.output, "snapshot v2")
        lab.fact('-> CDS DiscoveryResponse version_info="v2"' in text, "the control plane sent CDS v2")
        lab.fact('<- RDS DiscoveryRequest version_info="v2"' in text, "Envoy ACKed the v2 routes")
        lab.fact('<- CDS DiscoveryRequest version_info="v2"' not in text, "but not CDS v2: late is still warming")

    with lab.section("warmed"):
        lab.sh("jq -c -f summary.jq v3.json")
        lab.sh("cp v3.json snapshot.json")
        until(lab, "late leaves warming", lambda: stat("cluster_manager.warming_clusters") == 0)
        until(lab, "the CDS ACK of v2", lambda: '<- CDS DiscoveryRequest version_info="v2"' in wire(lab))
        show(CM)
        lab.fact(stat("cluster_manager.active_clusters") == 3, "late is active now: active_clusters 3, warming_clusters 0")
        late()
        lab.fact("no healthy upstream\nstatus=503" in lab.last.output, "late has no endpoint: 503 no healthy upstream")
        show(r"^cluster\.late\.(membership_total|upstream_cx_none_healthy)$")
        lab.fact(stat("cluster.late.upstream_cx_none_healthy") == 1 and stat("cluster.late.membership_total") == 0,
                 "an active cluster with no hosts: upstream_cx_none_healthy (UH)")

    with lab.section("warmed-wire"):
        lab.sh("sed -n '/snapshot v3/,$p' wire.log")
        text = after(lab.last.output, "snapshot v3")
        eds, ack = text.find("-> EDS DiscoveryResponse"), text.find('<- CDS DiscoveryRequest version_info="v2"')
        lab.fact(0 <= eds < ack, "the CDS v2 ACK goes out only after the EDS answer that carries late")

    with lab.section("endpoints"):
        lab.sh("jq -c -f summary.jq v4.json")
        lab.sh("cp v4.json snapshot.json")
        until(lab, "late gets its endpoint", lambda: stat("cluster.late.membership_total") == 1)
        late()
        lab.fact("upstream-b: GET /late" in lab.last.output and "status=200" in lab.last.output, "late now answers through upstream-b")
        show(CM)
        lab.fact(stat("cluster_manager.cluster_updated") == 1 and stat("cluster_manager.cluster_modified") == 0,
                 "a new endpoint updates the active cluster (cluster_updated 1): no new warming")
