"""The xDS client when the control plane goes away, comes back, or never answers.

One pod (network namespace) holds an upstream on 127.0.0.1:8080, the teaching control plane
(labs/common/xds_server.py) on the unix socket ./xds.sock and one Envoy (admin on
127.0.0.1:15000) that gets everything but the control plane's address over one ADS stream,
state of the world. Sections: start, cp-down, cp-back, init-timeout.

- cp-down: the control plane is stopped; Envoy's stream closes, control_plane.connected_state
  drops to 0, every subscription counts update_failure, and traffic is still served from the
  configuration Envoy holds;
- cp-back: a new control plane process on the same socket; Envoy reconnects after its back-off
  and subscribes again to every type, each request carrying the version it last accepted;
- init-timeout: a new cluster whose EDS resource never comes (initial_fetch_timeout 3s): the
  cluster warms, the CDS ACK waits, and when the timer fires warming ends with no endpoints.
"""

import time

from labs.kit import LabFailure

TITLE = "xDS client: control plane gone and back, and an initial fetch that times out"
SUMMARY_ZH = "控制面消失时 Envoy 的 xDS 客户端：connected_state 归零、沿用旧配置、退避重连并重新订阅；EDS 迟迟不来时 initial_fetch_timeout 结束预热。"
NEEDS_ROOT = True
USES = ["xds_server.py", "upstream.py"]
NORMALIZE = [
    # How many reconnect attempts fail while the control plane is away depends on the jittered
    # back-off (a random delay below 0.5 s, 1 s, 2 s, ...); each failed attempt counts once per
    # subscription. That the counters moved at all is a fact below.
    (r"(\.update_failure: )\d+", r"\1<n>"),
    (r"^\$ kill \d+$", "$ kill <pid>"),
]

ADMIN = 15000


def wait_for(lab, what: str, check, timeout: float = 10) -> None:
    """Poll until check() holds (an Envoy stat moved, a line reached the wire log)."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise LabFailure(f"lab {lab.name}: {what} did not happen within {timeout} s\n"
                             f"wire log:\n{wire(lab)[-3000:]}\nwire-2 log:\n{wire(lab, 'wire-2.log')[-3000:]}")  # fmt: skip
        time.sleep(0.05)


def wire(lab, name: str = "wire.log") -> str:
    path = lab.workdir / name
    return path.read_text() if path.exists() else ""


def after(text: str, marker: str) -> str:
    return text.split(marker, 1)[1] if marker in text else ""


def run(lab):
    ns = lab.pod("xds-client")

    def stats(regex: str):
        return lab.sh(f"curl -s '127.0.0.1:{ADMIN}/stats?filter={regex}'", ns=ns)

    with lab.section("start"):
        lab.start("python3 common/upstream.py --port 8080 --name backend", name="upstream", ns=ns,
                  ready=lab.port_open(8080, ns=ns))  # fmt: skip
        lab.sh("cp v1.json snapshot.json")
        xds = lab.start("python3 common/xds_server.py --snapshot snapshot.json --unix xds.sock --log wire.log",
                        name="xds", ns=ns, ready=lambda: (lab.workdir / "xds.sock").exists())  # fmt: skip
        lab.start("envoy -c envoy.yaml --disable-hot-restart --log-level warn --component-log-level config:debug "
                  "--log-format '[%l][%n] %v'", name="envoy", ns=ns, ready=lab.envoy_ready(ADMIN, ns=ns))  # fmt: skip
        wait_for(lab, "the RDS ACK", lambda: '<- RDS DiscoveryRequest version_info="v1"' in wire(lab))
        stats("^(control_plane\\.connected_state|cluster_manager\\.cds\\.version_text)$")
        lab.fact("control_plane.connected_state: 1" in lab.last.output, "connected_state is 1 while the stream is up")
        lab.sh("curl -s 127.0.0.1:8000/hello", ns=ns)
        lab.fact(lab.last.output.strip() == "backend: GET /hello", "the listener from LDS routes to the EDS endpoint")

    with lab.section("cp-down"):
        lab.sh(f"kill {xds.pid}")
        lab.wait("xds")
        wait_for(lab, "connected_state 0", lambda: lab.stat(ADMIN, "control_plane.connected_state", ns=ns) == 0)
        # Two failed attempts: the stream that was cut, and the first reconnect (refused).
        wait_for(lab, "a second failed attempt",
                 lambda: lab.stat(ADMIN, "cluster_manager.cds.update_failure", ns=ns) >= 2
                 and lab.log("envoy").count("gRPC config stream to xds closed") >= 2)  # fmt: skip
        stats("^(control_plane\\.connected_state|(cluster_manager\\.cds|listener_manager\\.lds)\\.(update_failure|version_text))$")
        out = lab.last.output
        lab.fact("control_plane.connected_state: 0" in out, "connected_state drops to 0")
        lab.fact('cluster_manager.cds.version_text: "v1"' in out and 'listener_manager.lds.version_text: "v1"' in out,
                 "CDS and LDS stay at v1")  # fmt: skip
        lab.fact(lab.stat(ADMIN, "cluster_manager.cds.update_failure", ns=ns) >= 2
                 and lab.stat(ADMIN, "listener_manager.lds.update_failure", ns=ns) >= 2,
                 "every failed attempt counts update_failure on each subscription")  # fmt: skip
        lab.sh("grep 'gRPC config stream to xds closed' envoy.log | head -n 2")
        closes = lab.last.output.splitlines()
        lab.fact(closes[0].startswith("[warning][config]") and "closed: 13," in closes[0],
                 "the cut stream closes with status 13, logged as a warning")  # fmt: skip
        lab.fact(closes[1].startswith("[debug][config]") and "closed: 14," in closes[1],
                 "the refused reconnect closes with 14 (UNAVAILABLE), logged at debug only")  # fmt: skip
        lab.sh("curl -s 127.0.0.1:8000/hello", ns=ns)
        lab.fact(lab.last.output.strip() == "backend: GET /hello", "traffic is served without a control plane")
        lab.sh(f"curl -s 127.0.0.1:{ADMIN}/config_dump | jq -r '.configs[] | "
               "(.dynamic_active_clusters[]? | \"cluster \\(.cluster.name) \\(.version_info)\"), "
               "(.dynamic_listeners[]? | \"listener \\(.name) \\(.active_state.version_info)\")'", ns=ns)  # fmt: skip
        lab.fact("cluster backend v1" in lab.last.output and "listener http v1" in lab.last.output,
                 "config_dump still holds the v1 cluster and listener")  # fmt: skip

    with lab.section("cp-back"):
        lab.start("python3 common/xds_server.py --snapshot snapshot.json --unix xds.sock --log wire-2.log",
                  name="xds-2", ns=ns, ready=lambda: (lab.workdir / "xds.sock").exists())  # fmt: skip
        wait_for(lab, "the RDS ACK on the new stream",
                 lambda: '<- RDS DiscoveryRequest version_info="v1" response_nonce="' in wire(lab, "wire-2.log"),
                 timeout=15)  # fmt: skip
        lab.sh("cat wire-2.log")
        log = lab.last.output
        firsts = [line.split()[2] for line in log.splitlines() if "=> new subscription" in line]
        lab.fact(firsts == ["CDS", "EDS", "LDS", "RDS"], "Envoy subscribes again to CDS, EDS, LDS, RDS, in that order")
        lab.fact('<- CDS DiscoveryRequest version_info="v1" response_nonce="" resource_names=[] node="insider-xds-client"'
                 in log and log.count('response_nonce=""') == 4 and log.count("node=") == 1,
                 "each first request carries the version it holds, no nonce; the node only on the first")  # fmt: skip
        stats("^(control_plane\\.connected_state|cluster_manager\\.cds\\.(update_success|version_text))$")
        lab.fact("control_plane.connected_state: 1" in lab.last.output, "connected_state is back to 1")

    with lab.section("init-timeout"):
        lab.sh("diff v1.json v2.json", check=False)
        lab.sh("cp v2.json snapshot.json")
        wait_for(lab, "the EDS ACK after v2",
                 lambda: "=> ACK" in after(after(wire(lab, "wire-2.log"), "snapshot v2"), "-> EDS"))
        lab.sh("sed -n '/snapshot v2/,$p' wire-2.log")
        lab.fact("<- CDS" not in lab.last.output, "while late warms, the CDS response is not acknowledged")
        stats("^(cluster_manager\\.warming_clusters|cluster\\.late\\.(init_fetch_timeout|membership_total))$")
        lab.fact("cluster_manager.warming_clusters: 1" in lab.last.output
                 and "cluster.late.init_fetch_timeout: 0" in lab.last.output, "late is warming")  # fmt: skip
        lab.sh(f"curl -s '127.0.0.1:{ADMIN}/config_dump?resource=dynamic_warming_clusters' | jq -r '.configs[].cluster.name'",
               ns=ns)  # fmt: skip
        lab.fact(lab.last.output.strip() == "late", "config_dump lists late among the warming clusters")
        lab.sh(f"curl -s 127.0.0.1:{ADMIN}/clusters | cut -d: -f1 | sort -u", ns=ns)
        lab.fact("late" not in lab.last.output.split(), "/clusters shows active clusters only")
        wait_for(lab, "init_fetch_timeout", lambda: lab.stat(ADMIN, "cluster.late.init_fetch_timeout", ns=ns) == 1)
        wait_for(lab, "the CDS ACK", lambda: '<- CDS DiscoveryRequest version_info="v2"' in wire(lab, "wire-2.log"))
        lab.sh("sed -n '/snapshot v2/,$p' wire-2.log | tail -n 1")
        lab.fact('<- CDS DiscoveryRequest version_info="v2" response_nonce="5" resource_names=[] => ACK' in lab.last.output,
                 "the CDS ACK goes out once warming ends")  # fmt: skip
        stats("^(cluster_manager\\.warming_clusters|cluster\\.late\\.(init_fetch_timeout|membership_total))$")
        lab.fact("cluster_manager.warming_clusters: 0" in lab.last.output
                 and "cluster.late.init_fetch_timeout: 1" in lab.last.output
                 and "cluster.late.membership_total: 0" in lab.last.output,
                 "the timeout ends warming; late is active with no endpoints")  # fmt: skip
        lab.sh(f"curl -s 127.0.0.1:{ADMIN}/clusters | cut -d: -f1 | sort -u", ns=ns)
        lab.fact("late" in lab.last.output.split(), "late is now an active cluster")
        lab.sh("grep 'initial fetch timed out' envoy.log")
