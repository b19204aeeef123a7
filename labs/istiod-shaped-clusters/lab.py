"""istiod-shaped clusters: a DestinationRule's connectionPool, outlierDetection and locality
settings as istiod writes them into a Cluster and its ClusterLoadAssignment, served to a real
Envoy 1.39.0, and what each knob does to traffic.

One pod (network namespace) holds three upstream Pods of backend.lab.svc.cluster.local (pods.py:
a1 on 127.0.1.1 and a2 on 127.0.1.2 in region-a/zone-1, b1 on 127.0.2.1 in region-a/zone-2, all on
port 8080), the teaching control plane (control_plane.py, serving snapshot.json over delta ADS on ./xds.sock)
and Envoy (envoy.yaml: a client sidecar in region-a/zone-1, one worker, outbound listener on
127.0.0.1:8080, admin on 15000). This file builds the snapshots the way istiod would for two
versions of the same DestinationRule (see DR_V1 and DR_V2), naming in comments the istiod function
that writes each field:

- v1: connectionPool (tcp.maxConnections 1, http.http1MaxPendingRequests 1, http.idleTimeout 1s),
  loadBalancer ROUND_ROBIN and localityLbSetting enabled, but no outlierDetection: istiod gives
  every endpoint priority 0, so locality plays no part;
- v2: the same plus outlierDetection: istiod fills in enforcing_success_rate 0 and
  healthy_panic_threshold 0, and the endpoints get priorities by locality (zone-1 0, zone-2 1).

- v3: the same snapshot plus four more Services on the same three Pods, each with a
  DestinationRule that sets one more knob: capped (connectionPool.http.http2MaxRequests 2),
  hashed (loadBalancer.consistentHash.httpHeaderName x-user), weighted (localityLbSetting.distribute
  50/50 between the zones) and sessions (labeled istio.io/persistent-session; Pod a2 is
  terminating but still serving, so istiod sends it as DRAINING).

Sections: v1-cluster, v1-endpoints, spread, idle, overflow, overflow-stats, overflow-log,
v2-cluster, v2-endpoints, local, eject, eject-hosts, failover, failover-log,
max-requests, max-requests-stats, hash-cluster, hash, distribute-weights, distribute,
draining-hosts, draining.
"""

import json
import math
import time

from labs.kit import LabFailure

TITLE = ("istiod-shaped clusters: connectionPool, outlierDetection, locality priorities and weights, "
         "consistent hashing and DRAINING endpoints in a real Envoy")
SUMMARY_ZH = ("按 istiod 的生成方式下发 DestinationRule 对应的集群与端点：连接池阈值造成的 UO、空闲超时、"
              "异常检测逐出，本地可用区端点全被逐出后流量转到下一优先级；"
              "再加 http2MaxRequests 的并发上限、按请求头的一致性哈希、distribute 权重与 DRAINING 端点。")
NEEDS_ROOT = True
USES = ["xds_server.py"]
NORMALIZE = []

ADMIN = 15000
HOST = "backend.lab.svc.cluster.local"
# model.BuildSubsetKey(outbound, subset "", hostname, port): outbound|<port>|<subset>|<hostname>
CLUSTER = f"outbound|8080||{HOST}"
PODS = {"a1": ("127.0.1.1", "region-a/zone-1"), "a2": ("127.0.1.2", "region-a/zone-1"),
        "b1": ("127.0.2.1", "region-a/zone-2")}  # fmt: skip
PROXY_LOCALITY = "region-a/zone-1"  # the client's node.locality in envoy.yaml
MAX = 4294967295  # math.MaxUint32

# The DestinationRules the snapshots stand for (the pages show these, checked against the CRD).
DR_V1 = {"connectionPool": {"tcp": {"maxConnections": 1},
                            "http": {"http1MaxPendingRequests": 1, "idleTimeout": "1s"}},
         "loadBalancer": {"simple": "ROUND_ROBIN", "localityLbSetting": {"enabled": True}}}  # fmt: skip
DR_V2 = {**DR_V1, "outlierDetection": {"consecutive5xxErrors": 2, "interval": "1s", "baseEjectionTime": "30s",
                                       "maxEjectionPercent": 100}}  # fmt: skip

# v3: four more Services selecting the same Pods, each with its own DestinationRule (host: DR).
PERSISTENT_SESSION = "istio.io/persistent-session"  # features.PersistentSessionLabel (the default name)
DR_V3 = {
    "capped": {"connectionPool": {"http": {"http2MaxRequests": 2}}},
    "hashed": {"loadBalancer": {"consistentHash": {"httpHeaderName": "x-user"}}},
    "weighted": {"loadBalancer": {"simple": "ROUND_ROBIN", "localityLbSetting": {"distribute": [
        {"from": "region-a/zone-1/*", "to": {"region-a/zone-1/*": 50, "region-a/zone-2/*": 50}}]}}},
    "sessions": {"loadBalancer": {"simple": "ROUND_ROBIN"}},
}  # fmt: skip
SERVICE_LABELS = {"sessions": {PERSISTENT_SESSION: "session"}}  # the Service's labels (the cookie name)
# endpointHealthStatus: a Pod not ready but serving and terminating, of a persistent-session Service.
DRAINING = {"sessions": {"a2"}}


def svc_cluster(name: str) -> str:
    return f"outbound|8080||{name}.lab.svc.cluster.local"


def cluster(dr: dict, name: str = CLUSTER, labels: dict | None = None) -> dict:
    """The outbound Cluster istiod builds for the Service's port 8080 under this DestinationRule."""
    pool, outlier, lb = dr.get("connectionPool", {}), dr.get("outlierDetection"), dr.get("loadBalancer", {})
    tcp, http = pool.get("tcp", {}), pool.get("http", {})
    c = {
        "name": name,
        # ClusterBuilder.buildCluster: a Kubernetes Service resolves to an EDS cluster;
        # maybeApplyEdsConfig: endpoints over ADS, named like the cluster, no initial fetch timeout.
        "type": "EDS",
        "eds_cluster_config": {"service_name": name,
                               "eds_config": {"ads": {}, "initial_fetch_timeout": "0s", "resource_api_version": "V3"}},
        # ClusterBuilder.applyDefaultConnectionPool: MeshConfig connectTimeout (10 s) unless tcp.connectTimeout.
        "connect_timeout": "10s",
        # applyLoadBalancer: applyRoundRobinLoadBalancer for simple ROUND_ROBIN; with no simple,
        # applySimpleDefaultLoadBalancer (LEAST_REQUEST), which ApplyRingHashLoadBalancer then
        # replaces for a consistentHash (set below).
        "lb_policy": "ROUND_ROBIN" if lb.get("simple") == "ROUND_ROBIN" else "LEAST_REQUEST",
        # ClusterBuilder.applyConnectionPool over getDefaultCircuitBreakerThresholds: what the DR sets
        # (> 0), MaxUint32 for the rest; track_remaining is !DISABLE_TRACK_REMAINING_CB_METRICS = false.
        "circuit_breakers": {"thresholds": [{
            "max_connections": tcp.get("maxConnections", MAX),
            "max_pending_requests": http.get("http1MaxPendingRequests", MAX),
            "max_requests": http.get("http2MaxRequests", MAX),
            "max_retries": MAX,
        }]},
        # ClusterBuilder.buildCluster always creates common_lb_config; applyOutlierDetection fills it below.
        "common_lb_config": {},
        # ClusterBuilder.applyConnectionPool: http.idleTimeout into common_http_protocol_options;
        # clusterWrapper.build adds the default explicit HTTP/1.1 config.
        "typed_extension_protocol_options": {"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
            "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
            "explicit_http_config": {"http_protocol_options": {}},
        }},
        # Left out, as they need Istio's proxy or certificates and do not change what this lab shows:
        # alt_stat_name (the name plus ";", which Istio's stats tags strip), the istio.metadata_exchange
        # filter, the ISTIO_MUTUAL transport socket matches (applyUpstreamTLSSettings), metadata.
    }
    if "idleTimeout" in http:
        c["typed_extension_protocol_options"]["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"][
            "common_http_protocol_options"] = {"idle_timeout": http["idleTimeout"]}
    if "consistentHash" in lb:
        # ApplyRingHashLoadBalancer: neither ringHash nor maglev given, so RING_HASH with Envoy's
        # default ring size written out.
        c["lb_policy"] = "RING_HASH"
        c["ring_hash_lb_config"] = {"minimum_ring_size": 1024}
    if outlier:
        # applyOutlierDetection: success-rate ejection always off; consecutive5xxErrors with its
        # enforcement at 100 %; interval, baseEjectionTime, maxEjectionPercent (> 0) copied.
        c["outlier_detection"] = {
            "enforcing_success_rate": 0,
            "consecutive_5xx": outlier["consecutive5xxErrors"],
            "enforcing_consecutive_5xx": 100,
            "interval": outlier["interval"],
            "base_ejection_time": outlier["baseEjectionTime"],
            "max_ejection_percent": outlier["maxEjectionPercent"],
        }
        # applyOutlierDetection: healthy_panic_threshold = minHealthPercent, 0 when unset.
        c["common_lb_config"] = {"healthy_panic_threshold": {"value": 0}}
    # applyLocalityLoadBalancer: locality_weighted_lb_config only with failover, failoverPriority or
    # distribute set; enabled: true alone adds nothing to the cluster.
    if lb.get("localityLbSetting", {}).get("distribute"):
        c["common_lb_config"]["locality_weighted_lb_config"] = {}
    if (labels or {}).get(PERSISTENT_SESSION):
        # buildOutboundClusters: a Service that SupportsDrainingEndpoints keeps DRAINING hosts for
        # an explicit override (a session cookie or header) only.
        c["common_lb_config"]["override_host_status"] = {"statuses": ["HEALTHY", "DRAINING", "UNKNOWN", "DEGRADED"]}
    return c


def lb_priority(proxy: str, endpoint: str) -> int:
    """util.LbPriority: 0 same region/zone/subzone, 1 same region/zone, 2 same region, 3 none."""
    p, e = (proxy.split("/") + ["", "", ""])[:3], (endpoint.split("/") + ["", "", ""])[:3]
    if p[0] != e[0]:
        return 3
    if p[1] != e[1]:
        return 2
    return 0 if p[2] == e[2] else 1


def endpoints(dr: dict, name: str = CLUSTER, draining: set | None = None) -> dict:
    """The ClusterLoadAssignment EndpointBuilder.BuildClusterLoadAssignment builds for this proxy."""
    groups, draining = [], draining or set()
    # EndpointBuilder.generate: one LocalityLbEndpoints per locality label, sorted by label; each
    # endpoint HEALTHY with weight 1 (buildEnvoyLbEndpoint), the group's weight their sum.
    for label in sorted({loc for _, loc in PODS.values()}):
        region, zone = label.split("/")
        # buildEnvoyLbEndpoint: health_status is the endpoint's model.HealthStatus (Draining = DRAINING).
        eps = [{"endpoint": {"address": {"socket_address": {"address": addr, "port_value": 8080}}},
                "health_status": "DRAINING" if pod in draining else "HEALTHY", "load_balancing_weight": 1}
               for pod, (addr, loc) in PODS.items() if loc == label]  # fmt: skip
        groups.append({"locality": {"region": region, "zone": zone}, "lb_endpoints": eps,
                       "load_balancing_weight": len(eps)})  # fmt: skip
    # getOutlierDetectionAndLoadBalancerSettings: failover only with outlierDetection in the DR.
    # loadbalancer.ApplyLocalityLoadBalancer -> applyLocalityFailover: priority by locality match,
    # then renumbered 0..N without gaps.
    if dr.get("outlierDetection") and dr["loadBalancer"]["localityLbSetting"].get("enabled", True):
        raw = [lb_priority(PROXY_LOCALITY, f"{g['locality']['region']}/{g['locality']['zone']}") for g in groups]
        order = sorted(set(raw))
        for g, p in zip(groups, raw):
            if order.index(p):
                g["priority"] = order.index(p)
    # applyLocalityWeights (distribute, which excludes failover): each group whose locality matches a
    # "to" key gets ceil(group weight * that weight / sum of the matched groups' weights).
    for rule in dr.get("loadBalancer", {}).get("localityLbSetting", {}).get("distribute", []):
        if not PROXY_LOCALITY.startswith(rule["from"].rstrip("*").rstrip("/")):
            continue
        for to, weight in rule["to"].items():
            matched = [g for g in groups
                       if f"{g['locality']['region']}/{g['locality']['zone']}".startswith(to.rstrip("*").rstrip("/"))]
            total = sum(g["load_balancing_weight"] for g in matched)
            for g in matched:
                g["load_balancing_weight"] = math.ceil(g["load_balancing_weight"] * weight / total)
        break
    # Endpoint metadata (istio workload, tlsMode) is left out: it feeds telemetry and mTLS matching.
    return {"cluster_name": name, "endpoints": groups}


def snapshot(version: str, dr: dict, more: dict | None = None) -> str:
    """The backend Service under this DR, plus (v3) the Services in ``more`` (host: DR)."""
    clusters, loads = [cluster(dr)], [endpoints(dr)]
    for name, svc_dr in (more or {}).items():
        clusters.append(cluster(svc_dr, svc_cluster(name), SERVICE_LABELS.get(name)))
        loads.append(endpoints(svc_dr, svc_cluster(name), DRAINING.get(name)))
    return json.dumps({"version": version, "clusters": clusters, "endpoints": loads}, indent=1)


def wait_for(lab, what: str, check, timeout: float = 10.0) -> None:
    """Wait, bounded and unrecorded, for the state the next step relies on."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise LabFailure(f"lab {lab.name}: {what} not reached in {timeout} s")
        time.sleep(0.03)


def counts(output: str) -> dict[str, int]:
    """`uniq -c` output as {value: count}."""
    out = {}
    for line in output.splitlines():
        parts = line.split(None, 1)
        if len(parts) == 2 and parts[0].isdigit():
            out[parts[1]] = int(parts[0])
    return out


def run(lab):
    ns = lab.pod("client")

    def stat(name: str, svc: str = "backend") -> int:
        return lab.stat(ADMIN, f"cluster.{svc_cluster(svc)}.{name}", ns=ns)

    def stats(names: str, svc: str = "backend"):
        # The cluster's name has five dots: cut keeps what follows it.
        return lab.sh(f"curl -s '127.0.0.1:{ADMIN}/stats?filter={svc}.*\\.({names})$' | cut -d. -f7-", ns=ns)

    def hosts(fields: str, svc: str = ""):
        return lab.sh(f"curl -s 127.0.0.1:{ADMIN}/clusters | grep -E '^outbound.*{svc}.*::({fields})::' | cut -d: -f3-",
                      ns=ns)

    def show_cluster(svc: str, fields: str):
        return lab.sh(f"curl -s '127.0.0.1:{ADMIN}/config_dump?resource=dynamic_active_clusters' | jq -c "
                      f"'.configs[].cluster | select(.name | contains(\"{svc}\")) | {{{fields}}}'", ns=ns)

    def dumped_cluster():
        path = "config_dump?resource=dynamic_active_clusters"
        return lab.query(f"curl -s '127.0.0.1:{ADMIN}/{path}'", ns=ns).output

    def log_lines() -> list[str]:
        path = lab.workdir / "access.log"
        return path.read_text().splitlines() if path.exists() else []

    def publish(version: str, dr: dict, more: dict | None = None) -> None:
        (lab.workdir / "next.json").write_text(snapshot(version, dr, more))
        (lab.workdir / "next.json").rename(lab.workdir / "snapshot.json")  # atomic for the server's poll

    lab.start("python3 pods.py " + " ".join(f"{n}={a}" for n, (a, _) in PODS.items()), name="pods", ns=ns,
              ready=lambda: all(lab.port_open(8080, ns=ns, host=a)() for a, _ in PODS.values()), record=False)
    publish("v1", DR_V1)
    lab.start("python3 control_plane.py --snapshot snapshot.json --log wire.log --unix xds.sock", name="xds", ns=ns,
              ready=lambda: (lab.workdir / "xds.sock").exists(), record=False)
    lab.start("envoy -c envoy.yaml --concurrency 1 --disable-hot-restart --file-flush-interval-msec 100 "
              "--log-level warn", name="envoy", ns=ns, ready=lab.envoy_ready(ADMIN, ns=ns), record=False)
    wait_for(lab, "the v1 cluster with its 3 endpoints", lambda: stat("membership_healthy") == 3)

    # -- v1: connectionPool, no outlierDetection ------------------------------------------------
    with lab.section("v1-cluster"):
        lab.sh(f"curl -s '127.0.0.1:{ADMIN}/config_dump?resource=dynamic_active_clusters' | jq -c '.configs[].cluster | "
               "{lb_policy, connect_timeout, circuit_breakers, common_lb_config, outlier_detection, "
               "idle: .typed_extension_protocol_options[].common_http_protocol_options.idle_timeout}'", ns=ns)
        out = json.loads(lab.last.output)
        lab.fact(out["circuit_breakers"]["thresholds"][0] == {"max_connections": 1, "max_pending_requests": 1,
                                                               "max_requests": MAX, "max_retries": MAX},
                 "v1 thresholds: 1 connection, 1 pending request, MaxUint32 for the two the DR leaves unset")
        lab.fact(out["outlier_detection"] is None and out["common_lb_config"] == {} and out["idle"] == "1s",
                 "v1: no outlier_detection, an empty common_lb_config, idle_timeout 1s")

    with lab.section("v1-endpoints"):
        hosts("zone|priority")
        lab.fact(lab.last.output.count("::priority::0") == 3, "v1: all three endpoints in priority 0, zone-2 included")

    with lab.section("spread"):
        lab.sh("curl -s '127.0.0.1:8080/spread/[1-9]' | cut -d: -f1 | sort | uniq -c", ns=ns)
        lab.fact(counts(lab.last.output) == {"a1": 3, "a2": 3, "b1": 3},
                 "v1: round robin over all three Pods, the other zone's b1 included: 3 each")

    with lab.section("idle"):
        # http.idleTimeout 1s: the three pool connections close 1 s after their last request.
        wait_for(lab, "the idle pool connections closed", lambda: stat("upstream_cx_total") == 3
                 and stat("upstream_cx_active") == 0)
        stats("upstream_cx_total|upstream_cx_active|upstream_cx_idle_timeout|upstream_cx_destroy_local")
        lab.fact(stat("upstream_cx_idle_timeout") == 3 and stat("upstream_cx_destroy_local") == 3,
                 "all 3 connections were closed by Envoy's idle timer: upstream_cx_idle_timeout 3")

    # -- v1: the connection pool overflows -------------------------------------------------------
    with lab.section("overflow"):
        # Three slow requests, one per Pod (round robin): each Pod's pool opens its first connection
        # even over max_connections 1, because a pool with no connection always gets one.
        for i in (1, 2, 3):
            lab.start("curl -s -o /dev/null 127.0.0.1:8080/delay/1500", name=f"slow{i}", ns=ns)
            wait_for(lab, f"slow request {i} active", lambda i=i: stat("upstream_rq_active") == i)
        # The fourth finds its Pod's only connection busy and max_connections reached: it waits.
        lab.start("curl -s -o /dev/null 127.0.0.1:8080/queued", name="queued", ns=ns)
        wait_for(lab, "one request pending", lambda: stat("upstream_rq_pending_active") == 1)
        # The fifth finds the pending queue full (http1MaxPendingRequests 1).
        lab.sh("curl -s -i 127.0.0.1:8080/overflow | tr -d '\\r' | grep -E '^HTTP|^x-envoy-overloaded|reset reason'",
               ns=ns)
        lab.fact("HTTP/1.1 503" in lab.last.output and "x-envoy-overloaded: true" in lab.last.output
                 and "reset reason: overflow" in lab.last.output, "the fifth request: 503, overloaded, reset reason overflow")

    with lab.section("overflow-stats"):
        stats("upstream_cx_total|upstream_rq_pending_active|upstream_rq_pending_overflow|"
              "circuit_breakers\\.default\\.(cx_open|rq_pending_open)")
        lab.fact(stat("upstream_cx_total") == 6 and stat("upstream_rq_pending_overflow") == 1
                 and stat("circuit_breakers.default.cx_open") == 1 and stat("circuit_breakers.default.rq_pending_open") == 1,
                 "3 new connections (6 in all), one pending overflow, both gauges open")

    with lab.section("overflow-log"):
        for name in ("slow1", "slow2", "slow3", "queued"):
            lab.wait(name, timeout=10)
        wait_for(lab, "the overflow phase logged", lambda: len(log_lines()) >= 14)
        # Which Pod served which request depends on where round robin started: left out.
        lab.sh("tail -n 5 access.log | cut -d' ' -f1,2,4,5 | sort | uniq -c")
        lab.fact(counts(lab.last.output) == {
            "status=200 flags=- path=/delay/1500 details=via_upstream": 3,
            "status=200 flags=- path=/queued details=via_upstream": 1,
            "status=503 flags=UO path=/overflow details=upstream_reset_before_response_started{overflow}": 1},
            "access log: the queued request got 200 once a connection was free; the overflow has flag UO")

    # -- v2: outlierDetection added -----------------------------------------------------------------
    with lab.section("v2-cluster"):
        publish("v2", DR_V2)
        wait_for(lab, "the v2 cluster active", lambda: '"outlier_detection"' in dumped_cluster()
                 and stat("membership_healthy") == 3)
        lab.sh(f"curl -s '127.0.0.1:{ADMIN}/config_dump?resource=dynamic_active_clusters' | jq -c '.configs[].cluster | "
               "{outlier_detection, common_lb_config}'", ns=ns)
        out = json.loads(lab.last.output)
        lab.fact(out["outlier_detection"]["enforcing_success_rate"] == 0
                 and out["common_lb_config"] == {"healthy_panic_threshold": {}},
                 "v2: enforcing_success_rate 0 and healthy_panic_threshold 0 (an empty Percent), filled in by istiod")

    with lab.section("v2-endpoints"):
        hosts("zone|priority")
        lines = lab.last.output
        lab.fact("127.0.1.1:8080::priority::0" in lines and "127.0.1.2:8080::priority::0" in lines
                 and "127.0.2.1:8080::priority::1" in lines, "v2: zone-1 Pods in priority 0, zone-2's b1 in priority 1")

    with lab.section("local"):
        lab.sh("curl -s '127.0.0.1:8080/local/[1-10]' | cut -d: -f1 | sort | uniq -c", ns=ns)
        lab.fact(counts(lab.last.output) == {"a1": 5, "a2": 5},
                 "v2: ten requests stay in zone-1 (5 a1, 5 a2); b1 in priority 1 gets none")

    # -- both zone-1 Pods fail -------------------------------------------------------------------------
    with lab.section("eject"):
        # A health change re-partitions every priority, so each ejection makes two host-set
        # updates (priorities 0 and 1). Keeping the first ejection outside update_merge_window (1 s)
        # of the last update makes the count exact: each ejection's two updates reach the worker
        # at once, or merged at the end of the window; four in all.
        time.sleep(1.1)
        cm = "cluster_manager.cluster_updated", "cluster_manager.cluster_updated_via_merge"
        before = sum(lab.stat(ADMIN, n, ns=ns) for n in cm)
        sent = 0
        # One request at a time until both a1 and a2 are ejected; after a1 is out, priority 0 is
        # half healthy and some requests already go to b1, so the number sent varies.
        while stat("outlier_detection.ejections_active") < 2:
            if sent == 40:
                raise LabFailure(f"lab {lab.name}: a1 and a2 not both ejected after {sent} requests")
            lab.query("curl -s -o /dev/null 127.0.0.1:8080/fail-on/a1,a2", ns=ns)
            sent += 1
        wait_for(lab, "both ejections delivered to the worker",
                 lambda: sum(lab.stat(ADMIN, n, ns=ns) for n in cm) == before + 4)
        stats("outlier_detection\\.(ejections_active|ejections_enforced_consecutive_5xx|ejections_overflow)|lb_healthy_panic")
        lab.fact(stat("outlier_detection.ejections_active") == 2
                 and stat("outlier_detection.ejections_enforced_consecutive_5xx") == 2
                 and stat("outlier_detection.ejections_overflow") == 0,
                 "both zone-1 Pods ejected for consecutive 5xx; maxEjectionPercent 100 lets both go")

    with lab.section("eject-hosts"):
        hosts("health_flags|priority")
        lines = lab.last.output
        lab.fact(lines.count("::health_flags::/failed_outlier_check") == 2 and "127.0.2.1:8080::health_flags::healthy" in lines,
                 "a1 and a2 failed_outlier_check, b1 healthy")

    with lab.section("failover"):
        lab.sh("curl -s '127.0.0.1:8080/failover/[1-10]' | cut -d: -f1 | sort | uniq -c", ns=ns)
        lab.fact(counts(lab.last.output) == {"b1": 10}, "priority 0 has no healthy host: all ten go to b1 in priority 1")

    with lab.section("failover-log"):
        wait_for(lab, "the failover requests logged", lambda: sum("path=/failover/" in x for x in log_lines()) == 10)
        lab.sh("grep 'path=/failover/' access.log | cut -d' ' -f1-3 | sort | uniq -c")
        lab.fact(counts(lab.last.output) == {"status=200 flags=- upstream=127.0.2.1:8080": 10},
                 "access log: ten 200s from upstream 127.0.2.1:8080, no flag")
        stats("lb_healthy_panic|upstream_cx_none_healthy")
        lab.fact(stat("lb_healthy_panic") == 0 and stat("upstream_cx_none_healthy") == 0,
                 "no panic and no UH: the failover is the priority mechanism, not panic mode")

    # -- v3: four more Services, one more knob each ------------------------------------------------------
    publish("v3", DR_V2, DR_V3)
    wait_for(lab, "the four v3 clusters with their endpoints",
             lambda: all(stat("membership_total", svc) == 3 for svc in DR_V3) and stat("membership_healthy", "sessions") == 2)

    with lab.section("max-requests"):
        # http2MaxRequests 2 -> max_requests 2, for HTTP/1.1 upstreams too: it caps active requests.
        show_cluster("capped", "lb_policy, thresholds: .circuit_breakers.thresholds[0]")
        out = json.loads(lab.last.output)
        lab.fact(out == {"lb_policy": "LEAST_REQUEST", "thresholds": {
            "max_connections": MAX, "max_pending_requests": MAX, "max_requests": 2, "max_retries": MAX}},
            "capped: max_requests 2, the three other thresholds MaxUint32, LEAST_REQUEST (no simple set)")
        for i in (1, 2):
            lab.start("curl -s -o /dev/null -H 'host: capped' 127.0.0.1:8080/delay/1000", name=f"held{i}", ns=ns)
            wait_for(lab, f"held request {i} active", lambda i=i: stat("upstream_rq_active", "capped") == i)
        # The third gets a new connection (max_connections is MaxUint32); attaching the request to
        # it finds two requests active, and the pool fails it with overflow.
        lab.sh("curl -s -i -H 'host: capped' 127.0.0.1:8080/third | tr -d '\\r' "
               "| grep -E '^HTTP|^x-envoy-overloaded|reset reason'", ns=ns)
        lab.fact("HTTP/1.1 503" in lab.last.output and "x-envoy-overloaded: true" in lab.last.output
                 and "reset reason: overflow" in lab.last.output, "the third request: 503, overloaded, reset reason overflow")

    with lab.section("max-requests-stats"):
        stats("upstream_cx_total|upstream_rq_active_overflow|upstream_rq_pending_overflow|"
              "circuit_breakers\\.default\\.rq_open", "capped")
        lab.fact(stat("upstream_rq_active_overflow", "capped") == 1 and stat("upstream_rq_pending_overflow", "capped") == 0
                 and stat("circuit_breakers.default.rq_open", "capped") == 1 and stat("upstream_cx_total", "capped") == 3,
                 "upstream_rq_active_overflow 1, upstream_rq_pending_overflow 0, rq_open 1, 3 connections")
        for name in ("held1", "held2"):
            lab.wait(name, timeout=10)
        wait_for(lab, "the capped requests logged",
                 lambda: sum(x.split()[3] in ("path=/delay/1000", "path=/third") for x in log_lines()) == 3)
        # Which Pod served which request is left to LEAST_REQUEST's random choice: left out.
        lab.sh("grep -E 'path=/(delay/1000|third) ' access.log | cut -d' ' -f1,2,4,5 | sort | uniq -c")
        lab.fact(counts(lab.last.output) == {
            "status=200 flags=- path=/delay/1000 details=via_upstream": 2,
            "status=503 flags=UO path=/third details=upstream_reset_before_response_started{overflow}": 1},
            "access log: the two held requests 200; the third 503 with flag UO")

    with lab.section("hash-cluster"):
        show_cluster("hashed", "lb_policy, ring_hash_lb_config")
        out = json.loads(lab.last.output)
        lab.fact(out == {"lb_policy": "RING_HASH", "ring_hash_lb_config": {"minimum_ring_size": "1024"}},
                 "hashed: RING_HASH with minimum_ring_size 1024 written out")

    with lab.section("hash"):
        # Four requests for each of six users; the body names the Pod and the path (/<user>/<n>).
        lab.sh("for u in alice bob carol dave erin frank; do curl -s -H 'host: hashed' -H \"x-user: $u\" "
               "\"127.0.0.1:8080/$u/[1-4]\"; done | cut -d/ -f1,2 | sort -k3 | uniq -c", ns=ns)
        got = counts(lab.last.output)
        users = sorted(line.split("/")[-1] for line in got)
        lab.fact(len(got) == 6 and set(got.values()) == {4}
                 and users == ["alice", "bob", "carol", "dave", "erin", "frank"],
                 "each user's four requests all reached one Pod: six (Pod, user) pairs, 4 each")

    with lab.section("distribute-weights"):
        show_cluster("weighted", "lb_policy, common_lb_config")
        out = json.loads(lab.last.output)
        # ROUND_ROBIN is the enum's zero value, which the JSON dump leaves out: null.
        lab.fact(out == {"lb_policy": None, "common_lb_config": {"locality_weighted_lb_config": {}}},
                 "weighted: ROUND_ROBIN (null), locality_weighted_lb_config set because distribute is")
        lab.sh(f"curl -s '127.0.0.1:{ADMIN}/config_dump?resource=dynamic_endpoint_configs&include_eds' | jq -c '.configs[].endpoint_config "
               "| select(.cluster_name | contains(\"weighted\")) | .endpoints[] "
               "| {zone: .locality.zone, load_balancing_weight, pods: (.lb_endpoints | length)}'", ns=ns)
        lab.fact(lab.last.output.split() == ['{"zone":"zone-1","load_balancing_weight":50,"pods":2}',
                                             '{"zone":"zone-2","load_balancing_weight":50,"pods":1}'],
                 "zone-1 (2 Pods) and zone-2 (1 Pod) each get locality weight 50")

    with lab.section("distribute"):
        # Locality first (50/50, strictly alternating for equal weights), then round robin inside it.
        lab.sh("curl -s -H 'host: weighted' '127.0.0.1:8080/weighted/[1-20]' | cut -d: -f1 | sort | uniq -c", ns=ns)
        lab.fact(counts(lab.last.output) == {"a1": 5, "a2": 5, "b1": 10},
                 "twenty requests: zone-2's only Pod b1 gets 10, as many as a1 and a2 together")

    with lab.section("draining-hosts"):
        hosts("health_flags", "sessions")
        lab.fact("127.0.1.2:8080::health_flags::/eds_status_draining" in lab.last.output
                 and lab.last.output.count("::health_flags::healthy") == 2, "a2 carries eds_status_draining; a1, b1 healthy")
        show_cluster("sessions", "override_host_status: .common_lb_config.override_host_status.statuses")
        lab.fact(json.loads(lab.last.output)["override_host_status"] == ["HEALTHY", "DRAINING", "UNKNOWN", "DEGRADED"],
                 "sessions: override_host_status admits DRAINING, for an explicit override only")
        stats("membership_total|membership_healthy|membership_excluded", "sessions")
        lab.fact(stat("membership_total", "sessions") == 3 and stat("membership_healthy", "sessions") == 2
                 and stat("membership_excluded", "sessions") == 1, "3 members: 2 healthy, the draining one excluded")

    with lab.section("draining"):
        lab.sh("curl -s -H 'host: sessions' '127.0.0.1:8080/sessions/[1-10]' | cut -d: -f1 | sort | uniq -c", ns=ns)
        lab.fact(counts(lab.last.output) == {"a1": 5, "b1": 5},
                 "ten new requests: round robin over a1 and b1; the draining a2 gets none")
