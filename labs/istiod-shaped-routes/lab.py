"""istiod-shaped configuration on a real Envoy: the listeners, route configurations, clusters and
endpoints istiod 1.30.3 would send productpage's sidecar for a small mesh and one VirtualService,
served over ADS, and what each knob does to real requests.

Two pods (network namespaces joined by a veth pair):
  client  10.48.0.1  productpage's sidecar: Envoy 1.39.0 as uid 1337 with envoy.yaml (admin and
                     xds-grpc only), the lab's control plane on 127.0.0.1:15010 (serve.py, which runs
                     labs/common/xds_server.py) and Istio 1.30.3's own nat rules; the "application"
                     is curl as uid 1000. Route 10.96.0.0/16 (the ClusterIP stand-ins) via the backend.
  backend 10.48.0.2-7 the Pods behind the services: reviews-v1 .2, reviews-v2 .3, ratings .4
                     (labs/common/upstream.py), mail .5 (banner.py, a server-first service); nothing
                     listens on details' .6; reviews-v3 .7 starts in the section mirror. One DNAT rule stands in for kube-proxy: 10.96.0.20:9080
                     (reviews' ClusterIP) -> reviews-v1, used only when a connection bypasses Envoy's
                     routing and leaves through PassthroughCluster.

snapshot.py writes what istiod would generate (each field's istiod function in a comment there):
v1 the mesh as is; v2 the same with reviews v3 and four more VirtualService rules (mirror, fault,
rewrite, redirect); v3 the mesh with MeshConfig protocolDetectionTimeout 1s; v4 with a Sidecar whose
egress imports only ./ratings.default.svc.cluster.local.

Sections: start, listeners, route-config, vs-routes, default-route, split, timeout, retries,
default-retries, no-route, mirror, fault, rewrite, redirect, pod-ip, sniff-hang, sniff-timeout,
sidecar-scope.
"""

import re
import time

from labs.kit import LabFailure

TITLE = ("istiod-shaped xDS on a real Envoy: per-port listeners, route names, a VirtualService's split, timeout, "
         "retries, mirror, fault, rewrite, redirect, NR, sniffing")  # fmt: skip
SUMMARY_ZH = ("把 istiod 为一个 Sidecar 生成的监听器、路由、集群和端点经 ADS 下发给真实的 Envoy：按端口的监听器与路由命名、"
              "VirtualService 的分流、超时、重试、镜像、故障注入、重写、重定向、NR、PassthroughCluster、协议探测与 Sidecar 资源的裁剪。")  # fmt: skip
NEEDS_ROOT = True
USES = ["xds_server.py", "upstream.py"]

RULES = "istio-1.30.3-basic.rules"
RULES_SHA256 = "28a2d3dcd491a79d6c9642bb55c411e9271125b635219efec87616ea8e2e8050"
APP_UID = 1000  # the application: any uid but Envoy's
PROXY_UID = 1337  # Envoy: the uid the rules exempt
ADMIN = 15000
PY = "/usr/bin/python3"  # the client runs as uid 1000, which may not read the labs' virtual environment
ENVOY = ("envoy -c envoy.yaml --concurrency 1 --disable-hot-restart --file-flush-interval-msec 100 "
         "--log-level warn")  # fmt: skip
REVIEWS = "reviews.default.svc.cluster.local"
V1, V2, V3 = (f"outbound|9080|{v}|{REVIEWS}" for v in ("v1", "v2", "v3"))
REVIEWS_V3_IP = "10.48.0.7"  # snapshot.REVIEWS_V3
RATINGS = "outbound|9080||ratings.default.svc.cluster.local"
DETAILS = "outbound|9080||details.default.svc.cluster.local"
MAIL_LISTENER = "10.96.0.40_2525"
# The application's requests: curl as uid 1000 in the client pod; --resolve plays kube-dns.
CURL = ("curl -s -o /dev/null -w '%{{http_code}}\\n' --resolve {host}:9080:{vip} {extra}"
        "'http://{host}:9080{path}'")  # fmt: skip
NORMALIZE = [
    # The 80/20 split draws from each stream's random id (istiod sets no header_name): how many of the
    # 200 requests each subset got differs from run to run. The lab asserts the sum is 200 and v1's
    # share lies between 60 % and 95 % (the binomial spread is about 3 %).
    (r"^(cluster\.outbound\|9080\|v[12]\|reviews\.default\.svc\.cluster\.local\.upstream_rq_200): \d+$", r"\1: <n>"),
]


def wait_for(lab, what: str, check, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise LabFailure(f"lab {lab.name}: {what} did not happen within {timeout} s\nwire log tail:\n"
                             f"{wire(lab)[-2000:]}")  # fmt: skip
        time.sleep(0.05)


def wire(lab) -> str:
    path = lab.workdir / "wire.log"
    return path.read_text() if path.exists() else ""


def log_lines(lab) -> list[str]:
    path = lab.workdir / "access.log"
    return path.read_text().splitlines() if path.exists() else []


def stats(lab) -> dict[str, int]:
    out = lab.query(f"curl -s -m 2 127.0.0.1:{ADMIN}/stats", ns="client").output
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\S+): (\d+)$", out, re.M)}


def show_stats(lab, pattern: str):
    return lab.sh(f"curl -sG 127.0.0.1:{ADMIN}/stats --data-urlencode 'filter={pattern}'", ns="client")


def request(lab, host: str, vip: str, path: str, extra: str = "") -> str:
    result = lab.sh(CURL.format(host=host, vip=vip, path=path, extra=f"{extra} " if extra else ""),
                    ns="client", user=APP_UID)  # fmt: skip
    return result.output.strip()


class AccessLog:
    """Counts the requests the lab sent through the HTTP listeners. The access log flushes every
    100 ms (--file-flush-interval-msec): wait until it holds a line for each, then show the new ones."""

    def __init__(self, lab):
        self.lab, self.shown = lab, 0

    def expect(self, count: int) -> None:
        self.shown += count
        wait_for(self.lab, f"{self.shown} access log lines", lambda: len(log_lines(self.lab)) >= self.shown, timeout=5)

    def show(self, count: int = 1) -> str:
        first = self.shown + 1
        self.expect(count)
        self.lab.sh(f"sed -n '{first},{self.shown}p' access.log")
        return self.lab.last.output


def show_route(lab, name: str, fields: str):
    """One route of reviews' virtual host in Envoy's config_dump, with the fields jq picks."""
    return lab.sh(f"curl -s '127.0.0.1:{ADMIN}/config_dump?resource=dynamic_route_configs' | jq '.configs[].route_config "
                  f".virtual_hosts[] | select(.name == \"{REVIEWS}:9080\") | .routes[] | select(.name == \"{name}\") "
                  f"| {fields}'", ns="client")  # fmt: skip


def push(lab, version: str, args: str = "") -> None:
    """Write the next snapshot beside the served one and move it over it (the control plane polls
    the file's mtime); wait until Envoy has ACKed every type the new version changed."""
    lab.sh(f"python3 snapshot.py --version {version} {args}> next.json && mv next.json snapshot.json".replace("  ", " "))
    marker = f"== snapshot {version} loaded"
    wait_for(lab, f"snapshot {version} loaded", lambda: marker in wire(lab))
    changed = wire(lab).split(marker, 1)[1].split("(changed: ", 1)[1].split(")", 1)[0].split(", ")

    def acked() -> bool:
        text = wire(lab).split(marker, 1)[1]
        return all(re.search(rf"<- {t} DeltaDiscoveryRequest .* => ACK", text) for t in changed)

    wait_for(lab, f"the ACKs of {version} ({', '.join(changed)})", acked)
    wait_for(lab, "no listener warming", lambda: stats(lab).get("listener_manager.total_listeners_warming", 0) == 0)
    wait_for(lab, "no cluster warming", lambda: stats(lab).get("cluster_manager.warming_clusters", 0) == 0)


def run(lab):
    client, backend = lab.pod("client"), lab.pod("backend")
    log = AccessLog(lab)
    lab.link(client, "10.48.0.1/24", backend, "10.48.0.2/24")

    with lab.section("start"):
        for ip in ("10.48.0.3", "10.48.0.4", "10.48.0.5", "10.48.0.6"):
            lab.sh(f"ip addr add {ip}/24 dev insbackend", ns=backend, record=False)
        lab.sh("ip route add 10.96.0.0/16 via 10.48.0.2", ns=client)
        lab.sh("iptables -t nat -A PREROUTING -d 10.96.0.20/32 -p tcp --dport 9080 -j DNAT --to-destination 10.48.0.2:9080",
               ns=backend)  # fmt: skip
        lab.sh(f"sha256sum {RULES}")
        lab.fact(lab.last.output.split()[0] == RULES_SHA256, "the rules file is Istio 1.30.3's golden, unchanged")
        lab.sh(f"iptables-restore {RULES}", ns=client)
        for name, ip in (("reviews-v1", "10.48.0.2"), ("reviews-v2", "10.48.0.3"), ("ratings", "10.48.0.4")):
            lab.start(f"python3 common/upstream.py --host {ip} --port 9080 --name {name}", name=name, ns=backend,
                      ready=lab.port_open(9080, ns=backend, host=ip))  # fmt: skip
        lab.start("python3 banner.py serve --host 10.48.0.5 --port 2525", name="mail", ns=backend,
                  ready=lab.port_open(2525, ns=backend, host="10.48.0.5"))  # fmt: skip
        lab.sh("python3 snapshot.py --version v1 > snapshot.json")
        lab.start("python3 serve.py --snapshot snapshot.json --log wire.log --port 15010", name="xds", ns=client,
                  ready=lab.port_open(15010, ns=client))  # fmt: skip
        lab.start(ENVOY, name="envoy", ns=client, user=PROXY_UID, ready=lab.envoy_ready(ADMIN, ns=client))
        wait_for(lab, "the RDS ACK", lambda: re.search(r"<- RDS DeltaDiscoveryRequest .* => ACK", wire(lab)) is not None)
        # What the control plane sent, by type: the resource names (their content hashes cut off).
        lab.sh("grep -E -- '-> (CDS|LDS|RDS) ' wire.log | sed -E 's/.*-> ([A-Z]+) .* resources=\\[([^]]*)\\].*/\\1 \\2/; "
               "s/@[0-9a-f]{8}//g; s/,/ /g'")
        sent = lab.last.output.splitlines()
        lab.fact(sent[0].split() == ["CDS", f"outbound|9080||details.default.svc.cluster.local",
                                     "outbound|2525||mail.default.svc.cluster.local", RATINGS,
                                     f"outbound|9080||{REVIEWS}", V1, V2, "BlackHoleCluster", "PassthroughCluster"],
                 "CDS: one cluster per service port and subset, named outbound|port|subset|FQDN, and two catch-alls")  # fmt: skip
        lab.fact(sent[1].split() == ["LDS", "0.0.0.0_9080", MAIL_LISTENER, "virtualOutbound"],
                 "LDS carries 0.0.0.0_9080, 10.96.0.40_2525 and virtualOutbound")  # fmt: skip
        lab.fact(sent[2].split() == ["RDS", "9080", "mail.default.svc.cluster.local:2525"],
                 "RDS carries the route configurations 9080 and mail.default.svc.cluster.local:2525")  # fmt: skip

    with lab.section("listeners"):
        lab.sh(f"curl -s 127.0.0.1:{ADMIN}/listeners | sort", ns=client)
        lab.fact("0.0.0.0_9080::0.0.0.0:9080" in lab.last.output and f"{MAIL_LISTENER}::10.96.0.40:2525" in lab.last.output,
                 "Envoy has the per-port listeners 0.0.0.0_9080 and 10.96.0.40_2525")  # fmt: skip
        lab.sh("ss -ltnH | awk '{print $4}' | sort", ns=client)
        lab.fact(":9080" not in lab.last.output and ":2525" not in lab.last.output and "0.0.0.0:15001" in lab.last.output,
                 "only 15001 (and the admin and xDS ports) are sockets: the per-port listeners do not bind")  # fmt: skip
        lab.sh(f"curl -s '127.0.0.1:{ADMIN}/config_dump?resource=dynamic_listeners' | jq -c '[.configs[].active_state.listener "
               "| select(.name != \"virtualOutbound\")] | sort_by(.name)[] | {name, bind_to_port, "
               "listener_filters: [.listener_filters[].name], listener_filters_timeout, chains: [.filter_chains[] | "
               "{match: .filter_chain_match, rds: .filters[0].typed_config.rds.route_config_name}], "
               "default: (.default_filter_chain | {name, cluster: .filters[0].typed_config.cluster})}'", ns=client)  # fmt: skip
        out = lab.last.output
        lab.fact('"name":"0.0.0.0_9080","bind_to_port":false' in out and '"rds":"9080"' in out
                 and '"default":{"name":"PassthroughFilterChain","cluster":"PassthroughCluster"}' in out,
                 "0.0.0.0_9080: no bind, HTTP chain by RDS 9080, default chain to PassthroughCluster")  # fmt: skip
        lab.fact('"rds":"mail.default.svc.cluster.local:2525"' in out
                 and '"cluster":"outbound|2525||mail.default.svc.cluster.local"' in out,
                 "10.96.0.40_2525: HTTP chain by its own route configuration, default chain a TCP proxy to mail")  # fmt: skip
        lab.fact(out.count('"listener_filters_timeout":"0s"') == 2 and out.count("envoy.filters.listener.http_inspector") == 2,
                 "both have the HTTP inspector and a listener filter timeout of 0s")  # fmt: skip

    with lab.section("route-config"):
        lab.sh(f"curl -s '127.0.0.1:{ADMIN}/config_dump?resource=dynamic_route_configs' | jq -c '[.configs[].route_config] | sort_by(.name)[] "
               "| {name, ignore_port_in_host_matching, virtual_hosts: [.virtual_hosts[] | {name, domains}]}'", ns=client)  # fmt: skip
        out = lab.last.output
        lab.fact('{"name":"reviews.default.svc.cluster.local:9080","domains":["reviews.default.svc.cluster.local",'
                 '"reviews.default.svc.cluster.local.","reviews","reviews.default.svc","reviews.default","10.96.0.20"]}' in out,
                 "reviews' virtual host: FQDN, FQDN with the dot, short names, ClusterIP; no ports")  # fmt: skip
        lab.fact('{"name":"allow_any","domains":["*"]}]}' in out, "route configuration 9080 ends with allow_any")
        lab.fact('"virtual_hosts":[{"name":"mail.default.svc.cluster.local:2525","domains":["*"]}]' in out,
                 "the sniffed service's route configuration: one virtual host, domain *, no allow_any")  # fmt: skip

    with lab.section("vs-routes"):
        lab.sh(f"curl -s '127.0.0.1:{ADMIN}/config_dump?resource=dynamic_route_configs' | jq '.configs[].route_config "
               f".virtual_hosts[] | select(.name == \"{REVIEWS}:9080\") | .routes[] | {{name, match, "
               "cluster: (.route.cluster // .route.weighted_clusters), timeout: .route.timeout, "
               "retry_on: .route.retry_policy.retry_on, num_retries: .route.retry_policy.num_retries, "
               "vs: .metadata.filter_metadata.istio.config}'", ns=client)  # fmt: skip
        out = lab.last.output
        lab.fact('"name": "jason"' in out and '"exact": "jason"' in out and '"timeout": "0.500s"' in out
                 and '"retry_on": "5xx"' in out, "route jason: header match, timeout 0.500s, retry_on 5xx")  # fmt: skip
        lab.fact('"name": "split"' in out and '"weight": 80' in out and '"weight": 20' in out
                 and '"timeout": "0s"' in out, "route split: weighted clusters 80/20, timeout 0s")  # fmt: skip
        lab.fact(out.count('"vs": "/apis/networking.istio.io/v1/namespaces/default/virtual-service/reviews"') == 2,
                 "each route's metadata names the VirtualService it came from")  # fmt: skip

    with lab.section("default-route"):
        lab.sh(f"curl -s '127.0.0.1:{ADMIN}/config_dump?resource=dynamic_route_configs' | jq -c '.configs[].route_config "
               ".virtual_hosts[] | select(.name == \"ratings.default.svc.cluster.local:9080\") | .routes[] | "
               "{name, match, route}'", ns=client)  # fmt: skip
        out = lab.last.output
        lab.fact('"name":"default","match":{"prefix":"/"}' in out and '"timeout":"0s"' in out
                 and '"retry_on":"connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes"' in out
                 and '"num_retries":2' in out and "retriable_status_codes" not in out,
                 "no VirtualService: route default, timeout 0s, 2 retries on connect-failure..., no status codes")  # fmt: skip

    with lab.section("split"):
        out = lab.sh(f"curl -s -o /dev/null -w '%{{http_code}}\\n' --resolve reviews:9080:10.96.0.20 "
                     f"'http://reviews:9080/reviews/[1-200]' | sort | uniq -c", ns=client, user=APP_UID).output  # fmt: skip
        lab.fact(out.split() == ["200", "200"], "200 requests, 200 answers with status 200")
        log.expect(200)
        show_stats(lab, r"^cluster\.outbound\|9080\|v[12]\|reviews\.default\.svc\.cluster\.local\.upstream_rq_200$")
        s = stats(lab)
        v1, v2 = s.get(f"cluster.{V1}.upstream_rq_200", 0), s.get(f"cluster.{V2}.upstream_rq_200", 0)
        lab.fact(v1 + v2 == 200 and 120 <= v1 <= 190, f"the split: v1 got {v1} of 200 (between 60 % and 95 %), v2 the rest")

    with lab.section("timeout"):
        got = request(lab, "reviews", "10.96.0.20", "/delay/1000", "-H 'end-user: jason'")
        lab.fact(got == "504", "the 1 s answer is cut at 500 ms: 504")
        line = log.show()
        lab.fact("504 flags=UT details=response_timeout route=jason" in line and f"cluster={V2}" in line,
                 "access log: UT, response_timeout, route jason, subset v2")  # fmt: skip
        show_stats(lab, r"^cluster\.outbound\|9080\|v2\|reviews\.default\.svc\.cluster\.local\.upstream_rq_timeout$")
        lab.fact(stats(lab)[f"cluster.{V2}.upstream_rq_timeout"] == 1, "upstream_rq_timeout 1")

    with lab.section("retries"):
        got = request(lab, "reviews", "10.96.0.20", "/status/503", "-H 'end-user: jason'")
        lab.fact(got == "503", "the client gets the upstream's own 503")
        line = log.show()
        lab.fact("503 flags=URX details=via_upstream route=jason" in line and "attempts=3" in line,
                 "access log: URX, three attempts")  # fmt: skip
        show_stats(lab, r"^cluster\.outbound\|9080\|v2\|reviews\.default\.svc\.cluster\.local\."
                        r"(upstream_rq_retry|retry\.upstream_rq_503|upstream_rq_retry_limit_exceeded)$")  # fmt: skip
        s = stats(lab)
        lab.fact(s[f"cluster.{V2}.upstream_rq_retry"] == 2 and s[f"cluster.{V2}.retry.upstream_rq_503"] == 2
                 and s[f"cluster.{V2}.upstream_rq_retry_limit_exceeded"] == 1,
                 "two retries of a 503, then the limit")  # fmt: skip
        lab.sh("grep -c 'GET /status/503 -> 503' reviews-v2.log")
        lab.fact(lab.last.output.strip() == "3", "reviews-v2 saw the request three times")

    with lab.section("default-retries"):
        got = request(lab, "ratings", "10.96.0.30", "/status/503")
        lab.fact(got == "503", "ratings answers 503")
        got = request(lab, "details", "10.96.0.10", "/")
        lab.fact(got == "503", "details' Pod refuses the connection: 503")
        out = log.show(2)
        lab.fact("503 flags=- details=via_upstream route=default" in out and f"cluster={RATINGS}" in out
                 and "attempts=1" in out, "ratings' 503 is not retried: one attempt")  # fmt: skip
        lab.fact("503 flags=URX,UF" in out and "route=default cluster=" + DETAILS in out and "attempts=3" in out,
                 "details' refused connection is retried twice: URX,UF, three attempts")  # fmt: skip
        show_stats(lab, r"^cluster\.outbound\|9080\|\|(ratings|details)\.default\.svc\.cluster\.local\."
                        r"(upstream_rq_retry|upstream_cx_connect_fail)$")  # fmt: skip
        s = stats(lab)
        lab.fact(s[f"cluster.{RATINGS}.upstream_rq_retry"] == 0 and s[f"cluster.{DETAILS}.upstream_rq_retry"] == 2
                 and s[f"cluster.{DETAILS}.upstream_cx_connect_fail"] == 3,
                 "retries: ratings 0, details 2 (three failed connections)")  # fmt: skip

    with lab.section("no-route"):
        got = request(lab, "reviews", "10.96.0.20", "/health")
        lab.fact(got == "404", "a reviews request that neither route matches: 404")
        line = log.show()
        lab.fact("authority=reviews:9080 404 flags=NR details=route_not_found route=- cluster=-" in line,
                 "access log: NR, route_not_found, no route, no cluster")  # fmt: skip
        show_stats(lab, r"^http\.outbound_0\.0\.0\.0_9080\.(no_route|rq_total)$")
        lab.fact(stats(lab)["http.outbound_0.0.0.0_9080.no_route"] == 1, "http.outbound_0.0.0.0_9080.no_route 1")

    with lab.section("mirror"):
        # A new version, reviews v3, joins the mesh; v2 of the snapshot adds it and the four rules.
        lab.sh(f"ip addr add {REVIEWS_V3_IP}/24 dev insbackend", ns=backend, record=False)
        lab.start(f"python3 common/upstream.py --host {REVIEWS_V3_IP} --port 9080 --name reviews-v3", name="reviews-v3",
                  ns=backend, ready=lab.port_open(9080, ns=backend, host=REVIEWS_V3_IP))  # fmt: skip
        push(lab, "v2", "--knob-rules ")
        show_route(lab, "mirror", "{name, match, cluster: .route.cluster, request_mirror_policies: .route.request_mirror_policies}")
        out = lab.last.output
        lab.fact(f'"cluster": "{V1}"' in out and f'"cluster": "{V3}"' in out and '"numerator": 100' in out
                 and '"trace_sampled": false' in out and '"disable_shadow_host_suffix_append": true' in out,
                 "route mirror: cluster v1, one request_mirror_policies entry to v3 at 100 %, trace_sampled false, "
                 "no -shadow suffix")  # fmt: skip
        got = request(lab, "reviews", "10.96.0.20", "/mirror/1")
        lab.fact(got == "200", "the client gets v1's answer: 200")
        line = log.show()
        lab.fact("200 flags=- details=via_upstream route=mirror" in line and f"cluster={V1}" in line,
                 "access log: route mirror, cluster v1 (the copy has no line of its own)")  # fmt: skip
        # The copy is sent beside the request and its answer thrown away: wait until it has arrived.
        wait_for(lab, "the mirrored request", lambda: stats(lab).get(f"cluster.{V3}.upstream_rq_total", 0) == 1)
        show_stats(lab, r"^cluster\.outbound\|9080\|v3\|reviews\.default\.svc\.cluster\.local\.upstream_rq_(total|200)$")
        s = stats(lab)
        lab.fact(s[f"cluster.{V3}.upstream_rq_total"] == 1 and s[f"cluster.{V3}.upstream_rq_200"] == 1,
                 "the shadow cluster v3: upstream_rq_total 1, upstream_rq_200 1")  # fmt: skip
        lab.sh("grep -o 'GET .*' reviews-v3.log")
        lab.fact(lab.last.output.strip() == "GET /mirror/1 -> 200", "reviews-v3 saw the copy, same path")

    with lab.section("fault"):
        show_route(lab, "fault", "{name, match, cluster: .route.cluster, typed_per_filter_config}")
        out = lab.last.output
        lab.fact('"envoy.filters.http.fault"' in out and '"fixed_delay": "0.100s"' in out and '"http_status": 503' in out
                 and out.count('"numerator": 1000000') == 2 and out.count('"denominator": "MILLION"') == 2,
                 "route fault: typed_per_filter_config envoy.filters.http.fault, delay 0.100s and abort 503, "
                 "each at 1000000 per MILLION")  # fmt: skip
        got = request(lab, "reviews", "10.96.0.20", "/fault/1")
        lab.fact(got == "503", "the client gets 503")
        line = log.show()
        # The delay is timing: the lab asserts only that it was injected (the flag DI and a counter), not how long.
        lab.fact("503 flags=DI,FI details=fault_filter_abort route=fault" in line and "upstream=- attempts=0" in line,
                 "access log: DI,FI, fault_filter_abort, route fault, no upstream attempt")  # fmt: skip
        show_stats(lab, r"^http\.outbound_0\.0\.0\.0_9080\.fault\.(aborts_injected|delays_injected)$")
        s = stats(lab)
        lab.fact(s["http.outbound_0.0.0.0_9080.fault.aborts_injected"] == 1
                 and s["http.outbound_0.0.0.0_9080.fault.delays_injected"] == 1,
                 "fault.delays_injected 1, fault.aborts_injected 1")  # fmt: skip
        lab.sh("grep -c 'GET /fault' reviews-v1.log || true")
        lab.fact(lab.last.output.strip() == "0", "reviews-v1 never saw the request: the abort comes before the router")

    with lab.section("rewrite"):
        show_route(lab, "rewrite", "{name, match, cluster: .route.cluster, prefix_rewrite: .route.prefix_rewrite}")
        out = lab.last.output
        lab.fact('"prefix": "/v1/reviews"' in out and '"prefix_rewrite": "/reviews"' in out,
                 "route rewrite: prefix /v1/reviews, prefix_rewrite /reviews")  # fmt: skip
        lab.sh("curl -s --resolve reviews:9080:10.96.0.20 http://reviews:9080/v1/reviews/7", ns=client, user=APP_UID)
        lab.fact(lab.last.output.strip() == "reviews-v1: GET /reviews/7",
                 "the upstream sees /reviews/7: only the matched prefix was replaced")  # fmt: skip
        line = log.show()
        lab.fact('"GET /reviews/7"' in line and "route=rewrite" in line and f"cluster={V1}" in line,
                 "access log: route rewrite, cluster v1, and %REQ(:PATH)% is already the rewritten path")  # fmt: skip

    with lab.section("redirect"):
        show_route(lab, "redirect", "{name, match, redirect, route}")
        out = lab.last.output
        lab.fact('"path_redirect": "/reviews"' in out and '"route": null' in out and "response_code" not in out,
                 "route redirect: path_redirect /reviews, no route action; response_code is the enum's zero, 301")  # fmt: skip
        lab.sh("curl -s -o /dev/null -w '%{http_code} %header{location}\\n' --resolve reviews:9080:10.96.0.20 "
               "http://reviews:9080/old/reviews/7", ns=client, user=APP_UID)  # fmt: skip
        lab.fact(lab.last.output.strip() == "301 http://reviews:9080/reviews",
                 "301, Location http://reviews:9080/reviews: the whole path replaced, scheme and host kept")  # fmt: skip
        line = log.show()
        lab.fact("301 flags=- details=direct_response route=redirect cluster=-" in line,
                 "access log: 301 from the route itself, no cluster")  # fmt: skip

    with lab.section("pod-ip"):
        lab.sh("curl -s http://10.48.0.4:9080/", ns=client, user=APP_UID)
        lab.fact(lab.last.output.strip() == "ratings: GET /", "a request to ratings' Pod IP is answered by ratings")
        line = log.show()
        lab.fact("authority=10.48.0.4:9080 200" in line and "route=allow_any cluster=PassthroughCluster upstream=10.48.0.4:9080" in line,
                 "but through allow_any and PassthroughCluster: no virtual host has 10.48.0.4")  # fmt: skip

    with lab.section("sniff-hang"):
        lab.start(f"{PY} banner.py dial --host 10.96.0.40 --port 2525 --wait 1.5", name="dial-1", ns=client,
                  user=APP_UID)  # fmt: skip
        wait_for(lab, "the pending connection",
                 lambda: stats(lab).get(f"listener.{MAIL_LISTENER}.downstream_pre_cx_active", 0) == 1)  # fmt: skip
        show_stats(lab, rf"^listener\.{re.escape(MAIL_LISTENER)}\.downstream_(pre_cx_active|pre_cx_timeout|cx_total)$")
        s = stats(lab)
        lab.fact(s[f"listener.{MAIL_LISTENER}.downstream_pre_cx_active"] == 1 and s[f"listener.{MAIL_LISTENER}.downstream_cx_total"] == 0,
                 "the connection waits in the listener filters: pre_cx_active 1, no connection yet")  # fmt: skip
        lab.fact(lab.wait("dial-1", timeout=5) == 0, "the client gives up after 1.5 s")
        lab.sh("cat dial-1.log")
        lab.fact(lab.last.output.strip() == "no greeting within 1.5 s", "no greeting: Envoy never connected upstream")
        # (The one connection the mail server may have logged is the lab's own readiness probe, from 10.48.0.2.)
        lab.sh("grep -c 'from 10.48.0.1 ' mail.log || true")
        lab.fact(lab.last.output.strip() == "0", "the mail server saw no connection from the client pod")

    with lab.section("sniff-timeout"):
        push(lab, "v3", "--protocol-detection-timeout 1s ")
        lab.sh(f"curl -s '127.0.0.1:{ADMIN}/config_dump?resource=dynamic_listeners' | jq -c '[.configs[].active_state.listener "
               "| select(.name != \"virtualOutbound\")] | sort_by(.name)[] | {name, listener_filters_timeout}'", ns=client)  # fmt: skip
        lab.fact(lab.last.output.count('"listener_filters_timeout":"1s"') == 2, "the listeners now carry a 1s timeout")
        lab.sh(f"{PY} banner.py dial --host 10.96.0.40 --port 2525 --wait 3", ns=client, user=APP_UID)
        lab.fact(lab.last.output.strip() == "greeting: 220 mail.insider ready",
                 "after the timeout Envoy takes the default (TCP) chain and the greeting arrives")  # fmt: skip
        show_stats(lab, rf"^(listener\.{re.escape(MAIL_LISTENER)}\.downstream_pre_cx_timeout"
                        r"|tcp\.outbound\|2525\|\|mail\.default\.svc\.cluster\.local\.downstream_cx_total)$")  # fmt: skip
        s = stats(lab)
        lab.fact(s[f"listener.{MAIL_LISTENER}.downstream_pre_cx_timeout"] == 1
                 and s["tcp.outbound|2525||mail.default.svc.cluster.local.downstream_cx_total"] == 1,
                 "one listener filter timeout, one TCP proxy session to mail")  # fmt: skip

    with lab.section("sidecar-scope"):
        push(lab, "v4", "--egress ./ratings.default.svc.cluster.local ")
        lab.sh(f"curl -s '127.0.0.1:{ADMIN}/config_dump?resource=dynamic_route_configs' | jq -c '.configs[].route_config "
               "| select(.name == \"9080\") | {name, virtual_hosts: [.virtual_hosts[].name]}'", ns=client)  # fmt: skip
        lab.fact(lab.last.output.strip() == '{"name":"9080","virtual_hosts":["ratings.default.svc.cluster.local:9080","allow_any"]}',
                 "route configuration 9080 keeps ratings and allow_any only")  # fmt: skip
        lab.sh(f"curl -s 127.0.0.1:{ADMIN}/clusters | cut -d: -f1 | sort -u", ns=client)
        lab.fact(lab.last.output.split() == ["BlackHoleCluster", "PassthroughCluster", RATINGS, "xds-grpc"],
                 "CDS keeps ratings and the two catch-alls: every reviews, details and mail cluster is gone")  # fmt: skip
        lab.sh("curl -s --resolve reviews:9080:10.96.0.20 -H 'end-user: jason' http://reviews:9080/reviews/1",
               ns=client, user=APP_UID)  # fmt: skip
        lab.fact(lab.last.output.strip() == "reviews-v1: GET /reviews/1",
                 "jason's request now lands wherever the ClusterIP sends it (here reviews-v1)")  # fmt: skip
        line = log.show()
        lab.fact("authority=reviews:9080 200" in line and "route=allow_any cluster=PassthroughCluster upstream=10.96.0.20:9080" in line,
                 "the VirtualService no longer applies: allow_any, PassthroughCluster, the ClusterIP as upstream")  # fmt: skip
