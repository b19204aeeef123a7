"""Admin and lifecycle: what Envoy reports about itself, its threads, a hot restart under load,
and draining its listeners.

One Envoy (two workers) in a namespace, in front of one upstream. Sections: version, start,
server-info, threads, listeners, clusters, stats, prometheus, config-dump, hot-restart, drain.
"""

import time

TITLE = "Admin interface, worker threads, hot restart and listener drain"
SUMMARY_ZH = "管理接口上的 server_info、监听器、集群、统计与 config_dump；两个 worker 线程；负载下的热重启零失败；监听器排空。"
NEEDS_ROOT = True
USES = ["upstream.py", "load.py"]
BASE_ID = 71  # hot restart: shared memory /dev/shm/envoy_shared_memory_710 (base id x 10)
NORMALIZE = [
    (r"/proc/\d+/", "/proc/<pid>/"),
    (r"requests=\d+ ok=\d+", "requests=<n> ok=<n>"),  # how many fit in the window varies; failed= does not
    (r"after \d+ ms", "after <n> ms"),  # curl's time to a refused connection
]


def run(lab):
    ns = lab.pod("admin")
    admin = 15000

    with lab.section("version"):
        lab.sh("envoy --version")
        lab.fact("/1.39.0/" in lab.last.output, "the labs run Envoy 1.39.0")

    with lab.section("start"):
        lab.start("python3 common/upstream.py --port 8080 --name backend", name="upstream", ns=ns,
                  ready=lab.port_open(8080, ns=ns))
        lab.claim_base_id(BASE_ID)
        envoy = lab.start(
            f"envoy -c envoy.yaml --concurrency 2 --base-id {BASE_ID} --restart-epoch 0 "
            "--drain-time-s 2 --drain-strategy immediate --parent-shutdown-time-s 4 --log-level warn",
            name="envoy-epoch0", ns=ns, ready=lab.envoy_ready(admin, ns=ns),
        )
        lab.sh(f"curl -s 127.0.0.1:{admin}/ready", ns=ns)

    with lab.section("server-info"):
        lab.sh(f"curl -s 127.0.0.1:{admin}/server_info | jq '{{state, version, "
               "concurrency: .command_line_options.concurrency, base_id: .command_line_options.base_id, "
               "restart_epoch: .command_line_options.restart_epoch, hot_restart_version}'", ns=ns)
        lab.fact('"state": "LIVE"' in lab.last.output and '"concurrency": 2' in lab.last.output,
                 "server_info reports LIVE and --concurrency 2")

    with lab.section("threads"):
        lab.sh(f"cat /proc/{envoy.pid}/task/*/comm | sort | uniq -c", ns=ns)
        names = lab.last.output
        lab.fact("wrk:worker_0" in names and "wrk:worker_1" in names and "wrk:worker_2" not in names,
                 "two worker threads, named wrk:worker_0 and wrk:worker_1")

    with lab.section("listeners"):
        lab.sh(f"curl -s 127.0.0.1:{admin}/listeners", ns=ns)
        lab.fact("http-8000::0.0.0.0:8000" in lab.last.output, "/listeners shows name::address")

    with lab.section("clusters"):
        lab.sh(f"curl -s 127.0.0.1:{admin}/clusters | grep -E '^backend::(default_priority::max_connections|"
               "127.0.0.1:8080::(cx_total|rq_total|health_flags))'", ns=ns)

    with lab.section("stats"):
        # Only requests: how many upstream connections three requests open depends on which worker
        # the kernel hands each client connection to (each worker has its own pool).
        query = "stats?filter=^cluster\\.backend\\.upstream_rq_total$"
        lab.sh(f"curl -s '127.0.0.1:{admin}/{query}'", ns=ns)
        before = lab.stat(admin, "cluster.backend.upstream_rq_total", ns=ns)
        lab.sh("for i in 1 2 3; do curl -s 127.0.0.1:8000/hello; done", ns=ns)
        lab.sh(f"curl -s '127.0.0.1:{admin}/{query}'", ns=ns)
        after = lab.stat(admin, "cluster.backend.upstream_rq_total", ns=ns)
        lab.fact(after - before == 3, "three requests move upstream_rq_total by three")

    with lab.section("prometheus"):
        lab.sh(f"curl -s '127.0.0.1:{admin}/stats/prometheus?filter=^cluster\\.backend\\.upstream_rq_total$'", ns=ns)
        lab.fact('envoy_cluster_upstream_rq_total{envoy_cluster_name="backend"} 3' in lab.last.output,
                 "the Prometheus view names the cluster as a label")

    with lab.section("config-dump"):
        lab.sh(f"curl -s '127.0.0.1:{admin}/config_dump?resource=static_clusters&mask=cluster.name,cluster.connect_timeout'",
               ns=ns)
        lab.fact('"connect_timeout": "1s"' in lab.last.output, "config_dump with resource and mask")

    with lab.section("hot-restart"):
        lab.start("python3 common/load.py --url http://127.0.0.1:8000/ --seconds 4 --clients 4",
                  name="load", ns=ns)
        time.sleep(1)
        lab.start(
            f"envoy -c envoy.yaml --concurrency 2 --base-id {BASE_ID} --restart-epoch 1 "
            "--drain-time-s 2 --drain-strategy immediate --parent-shutdown-time-s 4 --log-level warn",
            name="envoy-epoch1", ns=ns, ready=lambda: lab.stat(admin, "server.hot_restart_epoch", ns=ns) == 1,
        )
        lab.sh(f"curl -s '127.0.0.1:{admin}/stats?filter=^server\\.(hot_restart_epoch|state)$'", ns=ns)
        lab.wait("load", timeout=10)
        lab.sh("cat load.log")
        lab.fact("failed=0" in lab.last.output and "ok=0" not in lab.last.output,
                 "no request fails while the new Envoy takes over")
        lab.fact(lab.wait("envoy-epoch0", timeout=10) == 0, "the old Envoy exits by itself after the handover")

    with lab.section("drain"):
        lab.sh(f"curl -s -X POST '127.0.0.1:{admin}/drain_listeners?graceful'", ns=ns)
        lab.sh("curl -si 127.0.0.1:8000/ | grep -iE '^(HTTP|connection)'", ns=ns)
        lab.fact("connection: close" in lab.last.output.lower(),
                 "while draining (strategy immediate) every HTTP/1 response closes its connection")
        time.sleep(2.5)  # --drain-time-s 2, then the listeners stop
        lab.sh(f"curl -s '127.0.0.1:{admin}/stats?filter=^listener_manager\\.listener_stopped$'", ns=ns)
        lab.sh("curl -sS 127.0.0.1:8000/", ns=ns, check=False)
        lab.fact(lab.last.code == 7 and lab.stat(admin, "listener_manager.listener_stopped", ns=ns) == 1,
                 "after the drain time the listener is stopped and refuses connections")
