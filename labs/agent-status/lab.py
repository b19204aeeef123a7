"""What pilot-agent's local services decide, shown against a real Envoy 1.39.0 booted from Istio's
own bootstrap: the readiness verdicts of the status port along the startup, an SDS socket that is
not there yet, a rejected LDS update, what readiness remembers, and the connection count a draining
sidecar waits on.

There is no pilot-agent here (no Go toolchain), so three small Python programs stand in for parts
of it, each saying in its docstring which Istio function it repeats and what it leaves out:
status_standin.py (the readiness decision on 15020), sds_standin.py (the SDS server on the Unix
socket) and active_connections.py (the count behind EXIT_ON_ZERO_ACTIVE_CONNECTIONS). The control
plane on the XDS socket is the book's teaching one (labs/common/xds_server.py, through xds_tls.py).
Envoy, its bootstrap and every counter are real.

Sections: bootstrap, before-xds, sds-missing, sds-up, lds-fixed, cached, exit-on-zero.
"""

import time

from labs.kit import LabFailure

TITLE = "pilot-agent's local services against a real Envoy: readiness verdicts, SDS, LDS NACK, drain count"
SUMMARY_ZH = "用 Istio 的引导配置启动真实 Envoy，替身程序重现 pilot-agent 的就绪判断、SDS 与连接计数：每个启动阶段 15020 的判断、SDS 套接字缺席、LDS 被拒、就绪结果的缓存，以及排空时等待的连接数。"
NEEDS_ROOT = True
USES = ["xds_server.py"]
ADMIN = 15000
NS = "agent"
# The arguments pilot-agent gives Envoy for a default sidecar (pkg/envoy/proxy.go, envoy.args and
# NewProxy): drainDuration 45s, proxyLogLevel warning, proxyComponentLogLevel misc:error,
# ENVOY_SKIP_DEPRECATED_LOGS true, and --concurrency 2 as for a CPU limit of 2.
FLAGS = ("--drain-time-s 45 --drain-strategy immediate --local-address-ip-version v4 "
         "--file-flush-interval-msec 1000 --disable-hot-restart --allow-unknown-static-fields "
         "-l warning --component-log-level misc:error --skip-deprecated-logs --concurrency 2")  # fmt: skip
NORMALIZE = [
    (r"after \d+ ms", "after <n> ms"),  # curl's time to a refused connection
    (r"connected from 127\.0\.0\.1:\d+", "connected from 127.0.0.1:<port>"),  # an ephemeral port
]
XDS_PATH = '(.static_resources.clusters[] | select(.name == "xds-grpc") | .load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.pipe.path)'
SDS_PATH = '(.static_resources.clusters[] | select(.name == "sds-grpc") | .load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.pipe.path)'
# What EXIT_ON_ZERO_ACTIVE_CONNECTIONS=true adds to the stats matcher (pkg/bootstrap/config.go,
# getStatsOptions: requiredEnvoyStatsMatcherInclusionSuffixes), after the rbac suffixes.
ADD_SUFFIX = ('.stats_config.stats_matcher.inclusion_list.patterns |= '
              '(index({"suffix": "shadow_denied"}) as $i | .[:$i + 1] + [{"suffix": "downstream_cx_active"}] + .[$i + 1:])')  # fmt: skip


def wait_for(lab, what: str, check, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise LabFailure(f"lab {lab.name}: {what} did not happen within {timeout} s")
        time.sleep(0.05)


def probe_line(lab) -> str:
    """The last line the status stand-in logged."""
    lines = lab.log("status").strip().splitlines()
    return lines[-1] if lines else ""


def run(lab):
    with lab.section("bootstrap"):
        # Istio's default bootstrap golden, with three edits: the sockets where a Pod has them (the
        # test writes /tmp/XDS and the socket file name test.sock), and the suffix that
        # EXIT_ON_ZERO_ACTIVE_CONNECTIONS=true adds.
        lab.sh("mkdir -p etc/istio/proxy var/run/secrets/workload-spiffe-uds")
        lab.sh(f"jq '{XDS_PATH} = \"./etc/istio/proxy/XDS\" | {SDS_PATH} = \"./var/run/secrets/workload-spiffe-uds/socket\" "
               f"| {ADD_SUFFIX}' istio-1.30.3-default_golden.json > etc/istio/proxy/envoy-rev.json")  # fmt: skip
        lab.sh("diff <(jq -S . istio-1.30.3-default_golden.json) <(jq -S . etc/istio/proxy/envoy-rev.json)", check=False)
        out = lab.last.output
        lab.fact(lab.last.code == 1 and '"path": "./etc/istio/proxy/XDS"' in out
                 and '"path": "./var/run/secrets/workload-spiffe-uds/socket"' in out
                 and '"suffix": "downstream_cx_active"' in out
                 and sum(line.startswith("<") for line in out.splitlines()) == 2,
                 "three edits: the XDS socket, the SDS socket, one stats suffix")  # fmt: skip

    with lab.section("before-xds"):
        lab.pod(NS)
        lab.start(f"envoy -c etc/istio/proxy/envoy-rev.json {FLAGS}", name="envoy", ns=NS,
                  ready=lambda: lab.stat(ADMIN, "cluster_manager.cds.update_failure", ns=NS) >= 1)  # fmt: skip
        lab.start("python3 status_standin.py --port 15020 --admin 15000", name="status", ns=NS,
                  ready=lab.port_open(15020, ns=NS))  # fmt: skip
        lab.sh("curl -sS 127.0.0.1:15021/healthz/ready", ns=NS, check=False)
        lab.fact(lab.last.code == 7, "what kubelet sees before LIVE: nothing listens on 15021")
        lab.sh("curl -s -o /dev/null -w '%{http_code}\\n' 127.0.0.1:15020/healthz/ready", ns=NS)
        lab.fact(lab.last.output.strip() == "503", "asked directly, the status port answers 503")
        lab.sh("tail -n 1 status.log")
        lab.fact("Envoy proxy is NOT ready: config not received from XDS server (is Istiod running?): "
                 "cds updates: 0 successful, 0 rejected; lds updates: 0 successful, 0 rejected" in lab.last.output,
                 "no CDS and no LDS yet")  # fmt: skip

    with lab.section("sds-missing"):
        lab.sh("cp snapshot-v1.json snapshot.json")
        lab.start("python3 xds_tls.py --snapshot snapshot.json --unix etc/istio/proxy/XDS --log wire.log",
                  name="xds", ns=NS, ready=lambda: lab.stat(ADMIN, "cluster_manager.cds.update_success", ns=NS) == 1)  # fmt: skip
        wait_for(lab, "the CDS ACK", lambda: "=> ACK" in lab.log("wire"))
        lab.sh("cat wire.log")
        wire = lab.last.output
        lab.fact("-> CDS" in wire and "LDS" not in wire, "CDS answered; LDS not even asked for")
        lab.sh(f"curl -s '127.0.0.1:{ADMIN}/stats?filter=^cluster_manager\\.(warming_clusters|active_clusters)$'", ns=NS)
        lab.fact("cluster_manager.warming_clusters: 1" in lab.last.output, "the mTLS cluster is warming")
        lab.sh(f"curl -s '127.0.0.1:{ADMIN}/config_dump?resource=dynamic_warming_clusters' | jq -r '.configs[].cluster.name'", ns=NS)
        lab.fact("outbound|80||web.lab.svc.cluster.local" in lab.last.output, "the warming cluster is the mTLS one")
        lab.sh(f"curl -s 127.0.0.1:{ADMIN}/server_info | jq -r .state", ns=NS)
        lab.fact(lab.last.output.strip() == "PRE_INITIALIZING", "the server is still PRE_INITIALIZING")
        lab.sh("curl -s -o /dev/null -w '%{http_code}\\n' 127.0.0.1:15020/healthz/ready", ns=NS)
        lab.sh("tail -n 1 status.log")
        lab.fact("Envoy proxy is NOT ready: config not fully received from XDS server: "
                 "cds updates: 1 successful, 0 rejected; lds updates: 0 successful, 0 rejected" in lab.last.output,
                 "CDS arrived, LDS did not: 'not fully received'")  # fmt: skip

    with lab.section("sds-up"):
        lab.start("python3 sds_standin.py --unix ./var/run/secrets/workload-spiffe-uds/socket "
                  "--cert cert.pem --key key.pem --log secrets.log", name="sds", ns=NS,
                  ready=lambda: lab.stat(ADMIN, "listener_manager.lds.update_rejected", ns=NS) == 1,
                  timeout=30)  # fmt: skip
        lab.sh("grep -v ACK secrets.log | sort")
        lab.fact("<- [default] new request" in lab.last.output and "<- [ROOTCA] new request" in lab.last.output,
                 "Envoy asks the SDS socket for default and ROOTCA")  # fmt: skip
        lab.sh("grep -E 'LDS' wire.log | sed -E 's/(initial_resource_versions|system_version_info)=[^ ]* //'")
        lab.fact("NACK" in lab.last.output and "has the same matching rules defined as" in lab.last.output,
                 "the LDS update is rejected")  # fmt: skip
        lab.sh(f"curl -s 127.0.0.1:{ADMIN}/ready", ns=NS)
        lab.fact(lab.last.output.strip() == "LIVE", "a rejected first LDS update still lets the server go LIVE")
        lab.sh("curl -s -o /dev/null -w '%{http_code}\\n' 127.0.0.1:15021/healthz/ready", ns=NS)
        lab.fact(lab.last.output.strip() == "503", "15021 now listens and answers 503")
        lab.sh("tail -n 1 status.log")
        lab.fact("Envoy proxy is NOT ready: config received from XDS server, but was rejected: "
                 "cds updates: 1 successful, 0 rejected; lds updates: 0 successful, 1 rejected" in lab.last.output,
                 "'rejected' is what a probe through 15021 logs")  # fmt: skip

    with lab.section("lds-fixed"):
        lab.sh("cp snapshot-v2.json snapshot.json")
        wait_for(lab, "the LDS ACK", lambda: lab.stat(ADMIN, "listener_manager.lds.update_success", ns=NS) == 1)
        lab.sh("curl -s -o /dev/null -w '%{http_code}\\n' 127.0.0.1:15021/healthz/ready", ns=NS)
        lab.fact(lab.last.output.strip() == "200", "with LDS accepted, readiness passes")
        lab.sh("tail -n 1 status.log")
        lab.fact(lab.last.output.strip().endswith("Envoy proxy is ready"), "the agent logs the transition once")
        lab.sh(f"curl -s 127.0.0.1:{ADMIN}/listeners", ns=NS)

    with lab.section("cached"):
        lab.stop("xds")
        lab.stop("sds")
        before = lab.stat(ADMIN, "cluster_manager.cds.update_failure", ns=NS)
        wait_for(lab, "a failed CDS reconnect",
                 lambda: lab.stat(ADMIN, "cluster_manager.cds.update_failure", ns=NS) > before)  # fmt: skip
        lab.sh("curl -s -o /dev/null -w '%{http_code}\\n' 127.0.0.1:15021/healthz/ready", ns=NS)
        lab.fact(lab.last.output.strip() == "200", "the control plane gone, readiness still passes")
        lab.sh(f"curl -s -X POST 127.0.0.1:{ADMIN}/healthcheck/fail && curl -s 127.0.0.1:{ADMIN}/ready", ns=NS,
               check=False)  # /ready answers 503 while failing  # fmt: skip
        lab.fact("DRAINING" in lab.last.output, "Envoy itself now reports DRAINING")
        lab.sh("curl -s -o /dev/null -w '%{http_code}\\n' 127.0.0.1:15021/healthz/ready", ns=NS)
        lab.fact(lab.last.output.strip() == "200", "the agent's cached verdict does not look again")
        lab.sh(f"curl -s -X POST 127.0.0.1:{ADMIN}/healthcheck/ok", ns=NS)

    with lab.section("exit-on-zero"):
        lab.start("python3 hold.py 127.0.0.1 15006", name="hold", ns=NS,
                  ready=lambda: "connected" in lab.log("hold"))  # fmt: skip
        wait_for(lab, "the held connection",
                 lambda: lab.stat(ADMIN, "listener.0.0.0.0_15006.downstream_cx_active", ns=NS) == 1)  # fmt: skip
        lab.sh("cat hold.log")
        # Per-worker lines (listener.<addr>.worker_<n>.downstream_cx_active) are skipped as well; which
        # workers appear depends on how the kernel spread the connections, so they are left out here.
        lab.sh("python3 active_connections.py --admin 15000 | grep -v worker_", ns=NS)
        lab.fact("listener.0.0.0.0_15006.downstream_cx_active: 1" in lab.last.output
                 and lab.last.output.strip().endswith("active connections: 1"), "one inbound connection counts")  # fmt: skip
        lab.sh(f"curl -s -X POST '127.0.0.1:{ADMIN}/drain_listeners?inboundonly&graceful'", ns=NS)
        time.sleep(1.5)  # an idle connection gets no drain signal however long the agent waits
        lab.sh("python3 active_connections.py --admin 15000 | tail -n 1", ns=NS)
        lab.fact(lab.last.output.strip() == "active connections: 1", "draining does not close an idle connection")
        lab.stop("hold")
        wait_for(lab, "the connection to close",
                 lambda: lab.stat(ADMIN, "listener.0.0.0.0_15006.downstream_cx_active", ns=NS) == 0)  # fmt: skip
        lab.sh("python3 active_connections.py --admin 15000 | tail -n 1", ns=NS)
        lab.fact(lab.last.output.strip() == "active connections: 0", "the peer closed it: zero, the agent would stop Envoy")
