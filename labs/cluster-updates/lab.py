"""Cluster updates reach every worker: CDS and EDS from files, with two workers.

One Envoy (--concurrency 2) in a namespace, two upstreams (upstream-a on 8080, upstream-b on
8081). Its clusters come from cds/clusters.yaml, and the endpoints of backend-eds from
eds/endpoints.yaml; each step moves a new file in with `mv`. The lab reads the cluster manager's
counters, the per-thread cluster gauges, and which upstream answers twenty new connections
right after each update. Sections: start, add, modify, eds-update.
"""

import time

TITLE = "Cluster updates: CDS and EDS from files, and every worker using the new cluster at once"
SUMMARY_ZH = "从文件下发的 CDS 与 EDS 更新如何到达每个线程：cluster_modified 与 cluster_updated 的区别，两个 worker 立即使用新集群。"
NEEDS_ROOT = True
USES = ["upstream.py"]
NORMALIZE = [
    # The kernel spreads the twenty connections over the two workers (SO_REUSEPORT hashes each
    # connection's addresses): how many each worker gets varies. That both get some is a fact below.
    (r"(\.worker_[01]\.downstream_cx_total: )\d+", r"\1<n>"),
]
ADMIN = 15000
CM = r"^cluster_manager\.(cluster_(added|modified|updated|removed)|active_clusters|warming_clusters)$"
TLS = r"^thread_local_cluster_manager\."
WORKERS = r"^listener\.0\.0\.0\.0_8000\.worker_.\.downstream_cx_total$"


def until(lab, what: str, holds, timeout: float = 10) -> None:
    """Wait (without recording) for the state the next step shows; fail with `what` if it never comes."""
    deadline = time.monotonic() + timeout
    while not holds():
        if time.monotonic() > deadline:
            lab.fact(False, what)
        time.sleep(0.05)


def run(lab):
    ns = lab.pod("clusters")

    def stat(name):
        return lab.stat(ADMIN, name, ns=ns)

    def show(pattern):
        return lab.sh(f"curl -s '127.0.0.1:{ADMIN}/stats?filter={pattern}'", ns=ns)

    def twenty(path="/"):
        """Twenty requests, each on a new connection (one curl each); who answered, counted."""
        return lab.sh(f"for i in $(seq 20); do curl -s 127.0.0.1:8000{path}; done | sort | uniq -c", ns=ns)

    with lab.section("start"):
        lab.start("python3 common/upstream.py --port 8080 --name upstream-a", name="upstream-a", ns=ns,
                  ready=lab.port_open(8080, ns=ns))
        lab.start("python3 common/upstream.py --port 8081 --name upstream-b", name="upstream-b", ns=ns,
                  ready=lab.port_open(8081, ns=ns))
        lab.start("envoy -c envoy.yaml --concurrency 2 --disable-hot-restart --log-level warn",
                  name="envoy", ns=ns, ready=lab.envoy_ready(ADMIN, ns=ns))
        show(CM)
        lab.fact(stat("cluster_manager.cluster_added") == 2 and stat("cluster_manager.active_clusters") == 2,
                 "the two clusters of the file are added and active")
        show(TLS)
        lab.fact(all(stat(f"thread_local_cluster_manager.{t}.clusters_inflated") == 2
                     for t in ("main_thread", "worker_0", "worker_1")),
                 "the main thread and each worker hold their own copy of both clusters")

    with lab.section("add"):
        lab.sh("mv steps/clusters-add.yaml cds/clusters.yaml")
        until(lab, "Envoy adds the cluster extra",
              lambda: stat("cluster_manager.cluster_added") == 3 and stat("cluster_manager.active_clusters") == 3)
        show(CM)
        lab.fact(stat("cluster_manager.cluster_modified") == 0, "the unchanged clusters are not modified")
        until(lab, "every thread builds its copy of extra",
              lambda: all(stat(f"thread_local_cluster_manager.{t}.clusters_inflated") == 3
                          for t in ("main_thread", "worker_0", "worker_1")))
        show(TLS)

    with lab.section("modify"):
        twenty()
        lab.fact("20 upstream-a: GET /" in lab.last.output, "before the update, backend is upstream-a")
        lab.sh("mv steps/clusters-modify.yaml cds/clusters.yaml")
        until(lab, "Envoy replaces backend", lambda: stat("cluster_manager.cluster_modified") == 1)
        show(CM)
        lab.fact(stat("cluster_manager.cluster_updated") == 0 and stat("cluster_manager.active_clusters") == 3,
                 "a changed cluster counts as modified (a new cluster object), not as updated")
        show(WORKERS)
        before = {w: stat(f"listener.0.0.0.0_8000.{w}.downstream_cx_total") for w in ("worker_0", "worker_1")}
        twenty()
        lab.fact("20 upstream-b: GET /" in lab.last.output,
                 "right after the update, all twenty connections reach the new endpoint")
        show(WORKERS)
        lab.fact(all(stat(f"listener.0.0.0.0_8000.{w}.downstream_cx_total") > before[w] for w in before),
                 "both workers took some of the twenty connections")
        lab.sh(f"curl -s 127.0.0.1:{ADMIN}/clusters | grep -E '^backend::127\\.0\\.0\\.1:[0-9]+::rq_total'", ns=ns)
        lab.fact("backend::127.0.0.1:8081::rq_total::20" in lab.last.output and "8080" not in lab.last.output,
                 "the new cluster has only the new host, which served all twenty")

    with lab.section("eds-update"):
        twenty("/eds")
        lab.fact("20 upstream-a: GET /eds" in lab.last.output, "before the update, backend-eds is upstream-a")
        lab.sh("mv steps/endpoints-update.yaml eds/endpoints.yaml")
        until(lab, "Envoy updates the hosts of backend-eds", lambda: stat("cluster_manager.cluster_updated") == 1)
        show(CM)
        lab.fact(stat("cluster_manager.cluster_modified") == 1,
                 "new endpoints update the existing cluster: cluster_updated moves, cluster_modified does not")
        twenty("/eds")
        lab.fact("20 upstream-b: GET /eds" in lab.last.output, "right after the EDS update, all twenty reach the new endpoint")
        lab.sh(f"curl -s 127.0.0.1:{ADMIN}/clusters | grep -E '^backend-eds::127\\.0\\.0\\.1:[0-9]+::rq_total'", ns=ns)
