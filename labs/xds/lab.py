"""xDS on the wire: a real Envoy 1.39.0 fed over ADS by the teaching control plane
(labs/common/xds_server.py), first with the state-of-the-world protocol, then with delta.

One pod (network namespace) holds an upstream on 127.0.0.1:8080, the control plane on the unix
socket ./xds.sock and Envoy (admin on 127.0.0.1:15000). Envoy's bootstrap (envoy.yaml) names
only the control plane; the cluster, its endpoints, the listener and its routes come from the
snapshot files v1.json … v5.json, copied over snapshot.json to change the configuration.

Sections: start, sotw-first, sotw-traffic, sotw-nack, sotw-recover (state of the world);
delta-first, delta-nack, delta-reconnect, delta-recover (a second Envoy with DELTA_GRPC).
"""

import time

from labs.kit import LabFailure

TITLE = "xDS over ADS: the first exchange, ACK and NACK, state of the world and delta"
SUMMARY_ZH = "教学控制面与真实 Envoy 之间的 ADS 交换：首次交换的顺序、ACK 与 NACK、版本号与 nonce，全量与增量两种协议。"
NEEDS_ROOT = True
USES = ["xds_server.py", "upstream.py"]
NORMALIZE = [
    # Envoy's validation errors start with the rejected message's protobuf DebugString, which this
    # protobuf build prefixes with a marker that varies from run to run (goo.gle/debugstr, ...).
    (r"goo\.gle/debug\w+", "goo.gle/debug<marker>"),
    (r"^\$ kill \d+$", "$ kill <pid>"),
]

ADMIN = 15000
STATS = "cluster_manager\\.cds|listener_manager\\.lds"


def wait_for(lab, what: str, check, timeout: float = 10) -> None:
    """Poll until check() holds (an Envoy stat moved, a line reached the wire log)."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise LabFailure(f"lab {lab.name}: {what} did not happen within {timeout} s\n"
                             f"wire log:\n{wire(lab)[-3000:]}")  # fmt: skip
        time.sleep(0.05)


def wire(lab, name: str = "wire.log") -> str:
    path = lab.workdir / name
    return path.read_text() if path.exists() else ""


def after(text: str, marker: str) -> str:
    """What follows the first ``marker`` in a wire log ("" while it is not there)."""
    return text.split(marker, 1)[1] if marker in text else ""




def run(lab):
    ns = lab.pod("xds")

    with lab.section("start"):
        lab.start("python3 common/upstream.py --port 8080 --name backend", name="upstream", ns=ns,
                  ready=lab.port_open(8080, ns=ns))  # fmt: skip
        lab.sh("cp v1.json snapshot.json")
        xds = lab.start("python3 common/xds_server.py --snapshot snapshot.json --unix xds.sock --log wire.log",
                        name="xds", ns=ns, ready=lambda: (lab.workdir / "xds.sock").exists())  # fmt: skip
        sotw = lab.start("envoy -c envoy.yaml --disable-hot-restart --log-level warn", name="envoy-sotw", ns=ns,
                         ready=lab.envoy_ready(ADMIN, ns=ns))  # fmt: skip
        lab.sh(f"curl -s 127.0.0.1:{ADMIN}/ready", ns=ns)
        lab.fact(lab.last.output.strip() == "LIVE", "Envoy becomes LIVE on configuration it got only over ADS")

    with lab.section("sotw-first"):
        # Envoy is LIVE once the RDS response is applied; its ACK may still be on the way.
        wait_for(lab, "the RDS ACK", lambda: '<- RDS DiscoveryRequest version_info="v1"' in wire(lab))
        lab.sh("cat wire.log")
        log = lab.last.output
        flow = [(line.split()[1], line.split()[2], line.split("=> ")[-1] if "=> " in line else "")
                for line in log.splitlines() if line.startswith("s1 <-") or line.startswith("s1 ->")]  # fmt: skip
        lab.fact(flow == [
            ("<-", "CDS", "new subscription"), ("->", "CDS", ""),
            ("<-", "EDS", "new subscription"), ("->", "EDS", ""),
            ("<-", "CDS", "ACK"),
            ("<-", "LDS", "new subscription"), ("->", "LDS", ""),
            ("<-", "EDS", "ACK"),
            ("<-", "RDS", "new subscription"), ("->", "RDS", ""),
            ("<-", "LDS", "ACK"), ("<-", "RDS", "ACK"),
        ], "SotW order: CDS, EDS (before the CDS ACK), LDS (before the EDS ACK), RDS (before the LDS ACK)")  # fmt: skip
        lab.fact('<- CDS DiscoveryRequest version_info="v1" response_nonce="1" resource_names=[] => ACK' in log,
                 "the CDS ACK echoes version_info v1 and nonce 1")  # fmt: skip
        lab.fact(log.count('node="insider-xds"') == 1, "the node is sent on the stream's first request only")

    with lab.section("sotw-traffic"):
        lab.sh("curl -s 127.0.0.1:8000/hello", ns=ns)
        lab.fact(lab.last.output.strip() == "backend: GET /hello", "the listener from LDS routes to the EDS endpoint")
        lab.sh(f"curl -s '127.0.0.1:{ADMIN}/stats?filter=^({STATS})\\.(update_success|update_rejected|version_text)$'",
               ns=ns)  # fmt: skip
        lab.fact('cluster_manager.cds.version_text: "v1"' in lab.last.output
                 and 'listener_manager.lds.version_text: "v1"' in lab.last.output, "CDS and LDS are at v1")  # fmt: skip

    with lab.section("sotw-nack"):
        lab.sh("diff v1.json v2-bad.json", check=False)
        lab.sh("cp v2-bad.json snapshot.json")
        wait_for(lab, "the CDS NACK", lambda: "=> NACK" in wire(lab))
        lab.sh("sed -n '/snapshot v2/,$p' wire.log")
        nack = next(line for line in lab.last.output.splitlines() if "=> NACK" in line)
        lab.fact('<- CDS DiscoveryRequest version_info="v1" response_nonce="5"' in nack,
                 "the NACK carries the new nonce and the old version_info")  # fmt: skip
        lab.fact("code=13" in nack and "ConnectTimeout: value must be greater than 0s" in nack,
                 "error_detail: code 13 (INTERNAL) and the validation error")  # fmt: skip
        wait_for(lab, "update_rejected", lambda: lab.stat(ADMIN, "cluster_manager.cds.update_rejected", ns=ns) == 1)
        lab.sh(f"curl -s '127.0.0.1:{ADMIN}/stats?filter=^cluster_manager\\.cds\\.(update_success|update_rejected|version_text)$'",
               ns=ns)  # fmt: skip
        lab.fact("cluster_manager.cds.update_rejected: 1" in lab.last.output
                 and 'cluster_manager.cds.version_text: "v1"' in lab.last.output,
                 "update_rejected is 1 and version_text stays v1")  # fmt: skip
        lab.sh(f"curl -s '127.0.0.1:{ADMIN}/config_dump?resource=dynamic_active_clusters' | "
               "jq '.configs[] | {version_info, name: .cluster.name, connect_timeout: .cluster.connect_timeout}'",
               ns=ns)  # fmt: skip
        lab.fact('"version_info": "v1"' in lab.last.output and '"connect_timeout": "1s"' in lab.last.output,
                 "Envoy still holds the v1 cluster (connect_timeout 1s)")  # fmt: skip
        lab.sh("curl -s 127.0.0.1:8000/hello", ns=ns)
        lab.fact(lab.last.output.strip() == "backend: GET /hello", "traffic is still served by the v1 configuration")

    with lab.section("sotw-recover"):
        lab.sh("cp v3.json snapshot.json")
        wait_for(lab, "the v3 ACKs", lambda: '<- CDS DiscoveryRequest version_info="v3"' in wire(lab)
                 and '<- EDS DiscoveryRequest version_info="v3"' in wire(lab))  # fmt: skip
        lab.sh("sed -n '/snapshot v3/,$p' wire.log")
        log = lab.last.output
        lab.fact('<- CDS DiscoveryRequest version_info="v3" response_nonce="6" resource_names=[] => ACK'
                 in log, "the ACK of v3 echoes version v3 and nonce 6")  # fmt: skip
        lab.fact('<- EDS DiscoveryRequest version_info="v1" response_nonce="2" resource_names=[backend] => request for'
                 in log and '-> EDS DiscoveryResponse version_info="v3" nonce="7"' in log,
                 "the updated cluster asks for its endpoints again (same nonce, old version) and gets them")  # fmt: skip
        lab.sh(f"curl -s '127.0.0.1:{ADMIN}/stats?filter=^cluster_manager\\.cds\\.(update_success|update_rejected|version_text)$'",
               ns=ns)  # fmt: skip
        lab.fact('cluster_manager.cds.version_text: "v3"' in lab.last.output
                 and "cluster_manager.cds.update_rejected: 1" in lab.last.output,
                 "version_text moves to v3; the rejection stays counted")  # fmt: skip
        lab.sh(f"curl -s '127.0.0.1:{ADMIN}/config_dump?resource=dynamic_active_clusters' | "
               "jq '.configs[] | {version_info, connect_timeout: .cluster.connect_timeout}'", ns=ns)  # fmt: skip
        lab.fact('"connect_timeout": "2s"' in lab.last.output, "the v3 cluster is in place")

    with lab.section("delta-first"):
        lab.sh(f"kill {sotw.pid}")  # the first Envoy (its pid; `ip netns exec` and bash exec into it)
        lab.fact(lab.wait("envoy-sotw") == 0, "the SotW Envoy exits on SIGTERM")
        # The same bootstrap with one field changed: what ISTIO_DELTA_XDS changes in Istio's.
        lab.start("envoy -c envoy.yaml --config-yaml '{dynamic_resources: {ads_config: {api_type: DELTA_GRPC}}}' "
                  "--disable-hot-restart --log-level warn", name="envoy-delta", ns=ns,
                  ready=lab.envoy_ready(ADMIN, ns=ns))  # fmt: skip
        wait_for(lab, "the delta RDS ACK",
                 lambda: "=> ACK" in after(after(wire(lab), "s2 opened"), "<- RDS DeltaDiscoveryRequest"))
        lab.sh("sed -n '/s2 opened/,$p' wire.log")
        log = lab.last.output
        lab.fact("s2 opened: DeltaAggregatedResources" in log, "the second Envoy opens a delta stream")
        lab.fact('<- CDS DeltaDiscoveryRequest resource_names_subscribe=[] initial_resource_versions={} response_nonce=""'
                 in log and "=> new subscription (wildcard)" in log, "CDS: an empty first subscribe list is the wildcard")  # fmt: skip
        lab.fact("<- EDS DeltaDiscoveryRequest resource_names_subscribe=[backend]" in log
                 and "<- RDS DeltaDiscoveryRequest resource_names_subscribe=[local_route]" in log,
                 "EDS and RDS subscribe by name")  # fmt: skip
        lab.fact(log.count('DeltaDiscoveryResponse system_version_info="v3"') == 4,
                 "every response carries the snapshot version v3 as system_version_info")  # fmt: skip

    with lab.section("delta-nack"):
        lab.sh("jq -c '.listeners[] | {name, address: .address.socket_address}' v4-bad.json")
        lab.sh("cp v4-bad.json snapshot.json")
        wait_for(lab, "the LDS NACK", lambda: "=> NACK" in after(wire(lab), "snapshot v4"))
        lab.sh("sed -n '/snapshot v4/,$p' wire.log")
        log = lab.last.output
        lab.fact("-> LDS DeltaDiscoveryResponse" in log and "resources=[http-9000@" in log and "-> CDS" not in log,
                 "delta sends only the new listener")  # fmt: skip
        lab.fact("cannot bind '192.0.2.1:9000'" in log and "code=13" in log, "the NACK names the bind failure")
        wait_for(lab, "lds update_rejected", lambda: lab.stat(ADMIN, "listener_manager.lds.update_rejected", ns=ns) == 1)
        lab.sh(f"curl -s '127.0.0.1:{ADMIN}/stats?filter=^listener_manager\\.lds\\.(update_success|update_rejected|version_text)$'",
               ns=ns)  # fmt: skip
        lab.fact("listener_manager.lds.update_rejected: 1" in lab.last.output
                 and 'listener_manager.lds.version_text: "v3"' in lab.last.output,
                 "LDS: update_rejected 1, version_text stays v3")  # fmt: skip
        lab.sh(f"curl -s 127.0.0.1:{ADMIN}/listeners", ns=ns)
        lab.fact(lab.last.output.strip() == "http::0.0.0.0:8000", "only the v3 listener exists")
        lab.sh("curl -s 127.0.0.1:8000/hello", ns=ns)
        lab.fact(lab.last.output.strip() == "backend: GET /hello", "traffic is still served")

    with lab.section("delta-reconnect"):
        # The control plane restarts (a new process, a new wire log); Envoy reconnects and tells
        # it what it holds.
        lab.sh(f"kill {xds.pid}")
        lab.wait("xds")
        lab.start("python3 common/xds_server.py --snapshot snapshot.json --unix xds.sock --log wire-2.log",
                  name="xds-2", ns=ns, ready=lambda: (lab.workdir / "xds.sock").exists())  # fmt: skip
        wait_for(lab, "the repeated LDS NACK", lambda: "<- RDS DeltaDiscoveryRequest"
                 in after(wire(lab, "wire-2.log"), "=> NACK"), timeout=15)  # fmt: skip
        lab.sh("cat wire-2.log")
        log = lab.last.output
        lds = next(line for line in log.splitlines() if "<- LDS DeltaDiscoveryRequest" in line)
        lab.fact("initial_resource_versions={http:" in lds and "http-9000" not in lds,
                 "Envoy reports the versions it accepted: http, not the rejected http-9000")  # fmt: skip
        lab.fact('-> CDS DeltaDiscoveryResponse system_version_info="v4" nonce="1" resources=[] removed_resources=[]'
                 in log, "nothing to resend for CDS: the versions match")  # fmt: skip
        lab.fact("resources=[http-9000@" in log and log.count("=> NACK") == 1,
                 "the server resends only the listener Envoy lacks; Envoy rejects it again")  # fmt: skip

    with lab.section("delta-recover"):
        lab.sh("cp v5.json snapshot.json")
        wait_for(lab, "the LDS ACK", lambda: "=> ACK" in after(wire(lab, "wire-2.log"), "snapshot v5"))
        lab.sh("sed -n '/snapshot v5/,$p' wire-2.log")
        lab.fact("-> LDS DeltaDiscoveryResponse system_version_info=\"v5\"" in lab.last.output
                 and "=> ACK" in lab.last.output, "the fixed listener is acknowledged")  # fmt: skip
        wait_for(lab, "the 9000 listener", lab.port_open(9000, ns=ns))
        lab.sh("curl -s 127.0.0.1:9000/hello", ns=ns)
        lab.fact(lab.last.output.strip() == "backend: GET /hello", "the new listener serves traffic")
        lab.sh(f"curl -s '127.0.0.1:{ADMIN}/stats?filter=^listener_manager\\.lds\\.(update_success|update_rejected|version_text)$'",
               ns=ns)  # fmt: skip
        lab.fact('listener_manager.lds.version_text: "v5"' in lab.last.output, "LDS is at v5")
