"""Istio 1.30.3's bootstrap, as pilot-agent renders it, in a real Envoy 1.39.0.

First `envoy --mode validate` on all 27 of Istio's bootstrap golden files (goldens/, see
goldens/PROVENANCE), one line each: OK or the error; then the default golden booted in a pod,
with the teaching control plane (labs/common/xds_server.py) standing in for pilot-agent's xDS
proxy on the golden's XDS unix socket, and a stand-in for pilot-agent's status server on 15020
(status_standin.py).

Sections: validate, removed-guard, xds-socket, edit, before-xds, live, prometheus, readiness.
"""

import time

from labs.kit import LabFailure

TITLE = "Istio's bootstrap in Envoy 1.39.0: validation, the XDS socket, LIVE, 15090 and 15021"
SUMMARY_ZH = "Istio 1.30.3 的引导配置在 Envoy 1.39.0 上：结构校验、XDS 套接字、进入 LIVE、15090 指标与 15021 就绪检查。"
NEEDS_ROOT = True
USES = ["xds_server.py"]
NORMALIZE = [
    # how many times Envoy has retried the missing XDS socket depends on how long it waited
    (r"(cluster_manager\.cds\.update_failure: )\d+", r"\1<n>"),
    (r"after \d+ ms", "after <n> ms"),  # curl's time to a refused connection
]
ADMIN = 15000
# The flags pilot-agent passes (pkg/envoy/proxy.go, envoy.args); drain time from the golden's
# PROXY_CONFIG (drainDuration 2s).
FLAGS = ("--drain-time-s 2 --drain-strategy immediate --local-address-ip-version v4 "
         "--file-flush-interval-msec 1000 --disable-hot-restart --allow-unknown-static-fields -l warning")  # fmt: skip
XDS_CLUSTER = '.static_resources.clusters[] | select(.name == "xds-grpc") | .load_assignment.endpoints[0].lb_endpoints[0].endpoint.address'


def wait_for(lab, what: str, check, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise LabFailure(f"lab {lab.name}: {what} did not happen within {timeout} s")
        time.sleep(0.05)




def run(lab):

    with lab.section("validate"):
        # Istio's bootstrap sets Envoy's log format (tab-separated; the message is field 4), so
        # --log-format cannot be used with it.
        lab.sh("for f in goldens/*_golden.json; do envoy --mode validate -c $f -l critical 2>&1 | tail -n 1 | cut -f 4; done")
        out = lab.last.output
        lines = out.splitlines()
        passed = [line for line in lines if line.startswith("configuration 'goldens/") and line.endswith("' OK")]
        rejected = sorted(line.split("'")[1] for line in lines if line.startswith("error initializing configuration"))
        lab.fact(len(lines) == 27 and len(passed) == 25, "one line for each of the 27 goldens; 25 pass")
        lab.fact(rejected == ["goldens/ambient_golden.json", "goldens/tracing_lightstep_golden.json"]
                 and "goldens/default_golden.json' OK" in out, "only ambient and tracing_lightstep are rejected")  # fmt: skip
        lab.fact("'goldens/ambient_golden.json': Didn't find a registered implementation for 'metadata_discovery' "
                 "with type URL: 'istio.workload.BootstrapExtension'" in out,
                 "ambient: Istio's workload discovery bootstrap extension is not in this build")  # fmt: skip
        lab.fact("'goldens/tracing_lightstep_golden.json': Didn't find a registered implementation for "
                 "'envoy.tracers.lightstep' with type URL: 'envoy.config.trace.v3.LightstepConfig'" in out,
                 "lightstep: the tracer is not in Envoy any more")  # fmt: skip

    with lab.section("removed-guard"):
        lab.sh("envoy --mode validate -c goldens/explicit_internal_address_golden.json -l error 2>&1 | cut -f 4 "
               "| grep -E '^(envoy bug failure|configuration)' | uniq -c")  # fmt: skip
        lab.fact("Using a removed guard envoy.reloadable_features.explicit_internal_address_config" in lab.last.output
                 and "explicit_internal_address_golden.json' OK" in lab.last.output,
                 "a removed runtime guard is reported as an Envoy bug, and the file still passes")  # fmt: skip

    with lab.section("xds-socket"):
        lab.sh(f"jq -c '{XDS_CLUSTER}' goldens/default_golden.json")
        lab.fact('"path":"/tmp/XDS"' in lab.last.output, "the golden's ADS cluster points at the unix socket /tmp/XDS")
        lab.sh("jq -c '.dynamic_resources.ads_config | {api_type, grpc_services}' goldens/default_golden.json")
        lab.fact('"api_type":"DELTA_GRPC"' in lab.last.output and '"cluster_name":"xds-grpc"' in lab.last.output,
                 "ADS is delta over the xds-grpc cluster")  # fmt: skip

    with lab.section("edit"):
        # The one edit: the socket where a Pod's bootstrap has it (ConfigPath ./etc/istio/proxy,
        # relative to Envoy's working directory), instead of the test's host-wide /tmp/XDS.
        lab.sh("mkdir -p etc/istio/proxy")
        lab.sh(f"jq '({XDS_CLUSTER}).pipe.path = \"./etc/istio/proxy/XDS\"' goldens/default_golden.json "
               "> etc/istio/proxy/envoy-rev.json")  # fmt: skip
        lab.sh("diff <(jq -S . goldens/default_golden.json) <(jq -S . etc/istio/proxy/envoy-rev.json)", check=False)
        lab.fact(lab.last.code == 1 and lab.last.output.count("\n---\n") == 1
                 and '"path": "./etc/istio/proxy/XDS"' in lab.last.output, "exactly one line differs: the socket path")  # fmt: skip

    with lab.section("before-xds"):
        lab.pod("proxy")
        lab.start(f"envoy -c etc/istio/proxy/envoy-rev.json {FLAGS}", name="envoy", ns="proxy",
                  ready=lambda: lab.stat(ADMIN, "cluster_manager.cds.update_failure", ns="proxy") >= 1)  # fmt: skip
        lab.sh(f"curl -s 127.0.0.1:{ADMIN}/server_info | jq -r .state", ns="proxy")
        lab.fact(lab.last.output.strip() == "PRE_INITIALIZING", "without xDS the server stays PRE_INITIALIZING")
        # No server.state here: that gauge is written only when stats are flushed (every 5 s) and
        # when the workers start, so before the first flush it is unset (and reads 0).
        lab.sh(f"curl -s '127.0.0.1:{ADMIN}/stats?usedonly&filter=^(listener_manager\\.workers_started|"
               "cluster_manager\\.cds\\.update_(success|failure))$'", ns="proxy")  # fmt: skip
        out = lab.last.output
        lab.fact("cluster_manager.cds.update_failure" in out and "workers_started" not in out and "update_success" not in out,
                 "CDS fails to connect and never succeeds; the workers have not started")  # fmt: skip
        lab.sh("curl -sS 127.0.0.1:15021/healthz/ready", ns="proxy", check=False)
        lab.fact(lab.last.code == 7, "15021 refuses connections: the static listeners do not listen before LIVE")

    with lab.section("live"):
        lab.start("python3 common/xds_server.py --snapshot snapshot.json --unix etc/istio/proxy/XDS --log wire.log",
                  name="xds", ns="proxy", ready=lab.envoy_ready(ADMIN, ns="proxy"))  # fmt: skip
        wait_for(lab, "the LDS ACK", lambda: "<- LDS" in (lab.workdir / "wire.log").read_text().split("-> LDS")[-1]
                 if "-> LDS" in (lab.workdir / "wire.log").read_text() else False)  # fmt: skip
        lab.sh("cat wire.log")
        log = lab.last.output
        lab.fact('node="sidecar~1.2.3.4~foo~bar"' in log and "<- CDS DeltaDiscoveryRequest" in log
                 and "-> LDS DeltaDiscoveryResponse" in log, "delta ADS from the golden's node; CDS and LDS answered")  # fmt: skip
        lab.sh(f"curl -s 127.0.0.1:{ADMIN}/ready", ns="proxy")
        lab.fact(lab.last.output.strip() == "LIVE", "two empty answers (CDS, LDS) are enough for LIVE")
        # LIVE comes a moment before the workers have started (the gap pilot-agent's probe covers).
        wait_for(lab, "workers_started", lambda: lab.stat(ADMIN, "listener_manager.workers_started", ns="proxy") == 1)
        lab.sh(f"curl -s '127.0.0.1:{ADMIN}/stats?filter=^(server\\.state|listener_manager\\.workers_started|"
               "(cluster_manager\\.cds|listener_manager\\.lds)\\.update_success)$'", ns="proxy")  # fmt: skip
        lab.fact("server.state: 0" in lab.last.output and "listener_manager.workers_started: 1" in lab.last.output,
                 "state 0 and workers started")  # fmt: skip
        lab.sh(f"curl -s 127.0.0.1:{ADMIN}/listeners", ns="proxy")

    with lab.section("prometheus"):
        # `head` closes the pipe early, so curl may exit with a write error (23): the output is what counts.
        lab.sh("curl -s 127.0.0.1:15090/stats/prometheus | head", ns="proxy", check=False)
        lab.fact("# TYPE envoy_" in lab.last.output, "15090 serves Prometheus text (through the admin port)")

    with lab.section("readiness"):
        lab.sh("curl -s -w '\\n%{http_code}\\n' 127.0.0.1:15021/healthz/ready", ns="proxy")
        lab.fact(lab.last.output.strip().endswith("503") and "reset reason: remote connection failure" in lab.last.output,
                 "nothing on 15020: Envoy answers 503 itself")  # fmt: skip
        lab.start("python3 status_standin.py --port 15020 --admin 15000", name="status", ns="proxy",
                  ready=lab.port_open(15020, ns="proxy"))  # fmt: skip
        lab.sh("curl -s -w '%{http_code}\\n' 127.0.0.1:15021/healthz/ready", ns="proxy")
        lab.fact(lab.last.output.strip() == "200", "with the status server answering, 15021 says 200")
        wait_for(lab, "the status log line", lambda: "GET /healthz/ready" in lab.log("status"))
        lab.sh("cat status.log")
