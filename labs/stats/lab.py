"""Stats: a cluster's counters before and after traffic, Istio's inclusion list hiding most
stats, tag extraction turning names into Prometheus labels, and a histogram merged on the main
thread.

Three Envoys (two workers each) in one namespace, in front of labs/common/upstream.py:
- plain.yaml (admin 15000): Envoy's default stats configuration; cluster "backend" (:8000) and a
  cluster named the way istiod names one, with Istio's ";"-terminated alt_stat_name (:8100);
- istio.yaml (admin 15001, :8001): the stats part of Istio 1.30.3's sidecar bootstrap (its tag
  regexes, its default inclusion list, deferred creation of cluster traffic stats);
- istio-annotated.yaml (admin 15002, :8002): the same with the prefix "cluster.outbound" added
  to the inclusion list, which is what the annotation sidecar.istio.io/statsInclusionPrefixes
  does.
All three set stats_flush_on_admin: histograms are merged when /stats is asked for, not on a timer.

Sections: annotation, start, before, traffic, histogram, after, matcher, tags.
"""

import time

from labs.kit import LabFailure

TITLE = "Stats: before and after traffic, Istio's inclusion list, tags as labels, merged histograms"
SUMMARY_ZH = "统计：一个集群流量前后的计数，Istio 的包含列表隐藏大部分统计，标签提取把名字变成 Prometheus 标签，直方图在主线程合并。"
NEEDS_ROOT = True
USES = ["upstream.py"]
NORMALIZE = []
ENVOY = "envoy --disable-hot-restart --concurrency 2 --log-level warn -c"
LONG = "/" + "x" * 45  # the upstream answers "backend: GET <path>\n": 60 bytes for this path
ADMINS = {"plain": 15000, "istio": 15001, "istio-annotated": 15002}


def wait_for(lab, what: str, check, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise LabFailure(f"lab {lab.name}: {what} did not happen within {timeout} s")
        time.sleep(0.05)


def count(lab, port: int, ns: str, pattern: str) -> int:
    out = lab.query(f"curl -s 127.0.0.1:{port}/stats", ns=ns).output
    return sum(1 for line in out.splitlines() if line.startswith(pattern))


def run(lab):
    ns = lab.pod("stats")

    with lab.section("annotation"):
        # The annotation's prefixes go in front of the required ones (pkg/bootstrap/config.go).
        lab.sh("sed 's/^\\( *\\)- prefix: cluster_manager$/\\1- prefix: cluster.outbound\\n&/' istio.yaml > istio-annotated.yaml")
        lab.sh("sed -i 's/15001/15002/; s/8001/8002/g' istio-annotated.yaml")
        lab.sh("diff istio.yaml istio-annotated.yaml", check=False)
        lab.fact(lab.last.code == 1 and "> " in lab.last.output and "- prefix: cluster.outbound" in lab.last.output,
                 "the annotated copy differs by one inclusion prefix (and its ports)")

    with lab.section("start"):
        lab.start("python3 common/upstream.py --host 127.0.0.1 --port 8080 --name backend", name="upstream", ns=ns,
                  ready=lab.port_open(8080, ns=ns))
        for name in ADMINS:
            lab.start(f"{ENVOY} {name}.yaml", name=f"envoy-{name}", ns=ns)
        for name, port in ADMINS.items():  # the three start side by side; wait for each to be LIVE
            wait_for(lab, f"envoy-{name} LIVE", lab.envoy_ready(port, ns=ns))

    with lab.section("before"):
        lab.sh("curl -s '127.0.0.1:15000/stats?filter=^cluster\\.backend\\.upstream_rq_(total|completed|2xx|200)$'", ns=ns)
        out = lab.last.output
        lab.fact("cluster.backend.upstream_rq_total: 0" in out and "upstream_rq_200" not in out,
                 "before traffic the counter exists at 0; the per-code counter does not exist yet")
        lab.sh("curl -s '127.0.0.1:15000/stats/prometheus?filter=^cluster\\.backend\\.upstream_rq_(total|completed|2xx|200)$'",
               ns=ns)
        out = lab.last.output
        lab.fact('envoy_cluster_upstream_rq_total{envoy_cluster_name="backend"} 0' in out and "upstream_rq_200" not in out,
                 "the Prometheus view before traffic: the same counter at 0, with its label, and no per-code metric")
        lab.sh("curl -s 127.0.0.1:15000/stats | grep -c '^cluster\\.backend\\.'", ns=ns)
        before_backend = int(lab.last.output.strip())
        lab.sh("curl -s '127.0.0.1:15002/stats?filter=upstream_rq_total'", ns=ns, check=False)
        lab.fact(lab.last.output.strip() == "", "deferred creation: no traffic stats for the Istio-style cluster yet")

    with lab.section("traffic"):
        lab.sh(f"for p in /a /hello {LONG}; do curl -s 127.0.0.1:8000$p; done", ns=ns)
        lab.fact(lab.last.output.count("backend: GET") == 3, "three requests through the plain Envoy")
        lab.sh("curl -s 127.0.0.1:8100/a; curl -s 127.0.0.1:8001/a; for i in 1 2 3; do curl -s 127.0.0.1:8002/a; done",
               ns=ns)
        lab.fact(lab.last.output.count("backend: GET /a") == 5, "one, one and three requests through the other listeners")

    with lab.section("histogram"):
        # No /stats call has happened since the traffic: the first one finds the histogram not yet
        # merged (and starts the merge on every worker); the next one shows the merged values.
        query = "stats?filter=^cluster\\.backend\\.upstream_rs_body_size$&histogram_buckets=cumulative"
        lab.sh(f"curl -s '127.0.0.1:15000/{query}'", ns=ns)
        lab.fact("No recorded values" in lab.last.output, "before the main thread merges, /stats has no values")
        time.sleep(0.5)  # the merge posts to both workers and back to the main thread: milliseconds
        lab.sh(f"curl -s '127.0.0.1:15000/{query}'", ns=ns)
        out = lab.last.output
        lab.fact("B10(0,0) B25(2,2) B50(2,2) B100(3,3)" in out, "16 and 20 bytes fall at or below 25, 60 at or below 100")
        lab.sh("curl -s '127.0.0.1:15000/stats/prometheus?filter=^cluster\\.backend\\.upstream_rs_body_size$' "
               "| grep -E 'le=\"(25|100)\"|_count'", ns=ns)
        lab.fact('envoy_cluster_upstream_rs_body_size_count{envoy_cluster_name="backend"} 3' in lab.last.output,
                 "the Prometheus view has the same three values")

    with lab.section("after"):
        lab.sh("curl -s '127.0.0.1:15000/stats?filter=^cluster\\.backend\\.upstream_rq_(total|completed|2xx|200)$'", ns=ns)
        out = lab.last.output
        lab.fact("cluster.backend.upstream_rq_total: 3" in out and "cluster.backend.upstream_rq_200: 3" in out,
                 "three requests: total 3, and the per-code counters now exist")
        lab.sh("curl -s 127.0.0.1:15000/stats | grep -c '^cluster\\.backend\\.'", ns=ns)
        after_backend = int(lab.last.output.strip())
        lab.fact(after_backend > before_backend, "traffic creates new stats in the cluster's scope")
        lab.sh("curl -s '127.0.0.1:15002/stats?filter=upstream_rq_total'", ns=ns)
        lab.fact("cluster.outbound|8080||backend.insider.test;.upstream_rq_total: 3" in lab.last.output,
                 "the first request created the deferred traffic stats")

    with lab.section("matcher"):
        lab.sh("for p in 15000 15001 15002; do echo \"$p $(curl -s 127.0.0.1:$p/stats | wc -l)\"; done", ns=ns)
        counts = dict(line.split() for line in lab.last.output.strip().splitlines())
        plain, istio, annotated = (int(counts[str(p)]) for p in ADMINS.values())
        lab.fact(istio * 5 < plain, "Istio's inclusion list keeps a small fraction of the stats")
        lab.fact(istio < annotated < plain, "the annotation's prefix brings the outbound cluster's stats back")
        lab.sh("curl -s 127.0.0.1:15001/stats | cut -d. -f1 | sort | uniq -c", ns=ns)
        families = {line.split()[1] for line in lab.last.output.strip().splitlines()}
        lab.fact(families == {"cluster_manager", "listener_manager", "server"},
                 "with the inclusion list, only cluster_manager, listener_manager and server stats remain")
        lab.fact(count(lab, 15001, ns, "cluster.") == 0, "no stat of the outbound cluster on the Istio-style Envoy")

    with lab.section("tags"):
        lab.sh("curl -s '127.0.0.1:15000/stats/prometheus?filter=upstream_rq_total'", ns=ns)
        out = lab.last.output
        lab.fact('envoy_cluster_upstream_rq_total{envoy_cluster_name="backend"} 3' in out,
                 "Envoy's default extractor: cluster_name becomes the label envoy_cluster_name")
        lab.fact('envoy_cluster_name="outbound|8080||backend"' in out,
                 "the default extractor stops at the first dot of an Istio cluster name")
        lab.sh("curl -s '127.0.0.1:15002/stats?filter=upstream_rq_(200|2xx|total)$'", ns=ns)
        lab.sh("curl -s '127.0.0.1:15002/stats/prometheus?filter=upstream_rq_(200|2xx|total)$'", ns=ns)
        out = lab.last.output
        lab.fact('envoy_cluster_upstream_rq_total{cluster_name="outbound|8080||backend.insider.test"} 3' in out,
                 "Istio's regex takes the whole name up to the ';'")
        lab.fact('response_code="200"' in out and 'response_code_class="2xx"' in out,
                 "upstream_rq_200 and upstream_rq_2xx become one metric with two labels")
