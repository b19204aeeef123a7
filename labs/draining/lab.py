"""Draining: the two drain strategies side by side, HTTP/2's two GOAWAYs, an inbound-only drain
next to an outbound listener and a TCP proxy connection, and what a hot restart leaves in
shared memory and in the namespace's abstract Unix sockets.

Four Envoys in one namespace, each with its own admin port:
- defaults.yaml (admin 15009), started with no drain flag, to read the defaults;
- gradual.yaml (admin 15000, :8000), --drain-strategy gradual --drain-time-s 3, drained with
  ``graceful&skip_exit`` so that its listener keeps accepting after the drain time;
- immediate.yaml (admin 15001), --drain-strategy immediate --drain-time-s 3, with an INBOUND
  HTTP listener (:8001), an OUTBOUND one (:8002) and an INBOUND TCP proxy (:8003) in front of
  labs/common/upstream.py (:8080), drained with ``inboundonly&graceful`` as pilot-agent does;
- hot.yaml (admin 15002, :8004), hot restarted from epoch 0 to epoch 1 with base id 72.

Sections: defaults, start, gradual-early, inboundonly, gradual-late, http2-goaway,
inbound-stopped, hot-restart, hot-restart-after.
"""

import re
import time

TITLE = "Draining: gradual and immediate strategies, HTTP/2 GOAWAY, inbound-only drain, hot restart's shared memory and sockets"
SUMMARY_ZH = "两种排空策略的对比、HTTP/2 的两次 GOAWAY、只排空入站时出站与 TCP 代理连接的去留，以及热重启窗口里的共享内存与域套接字。"
NEEDS_ROOT = True
USES = ["upstream.py"]
BASE_ID = 72  # hot restart: shared memory /dev/shm/envoy_shared_memory_720 (base id x 10)
GRADUAL, IMMEDIATE, HOT, DEFAULTS = 15000, 15001, 15002, 15009
DRAIN_TIME = 3  # --drain-time-s of the gradual and the immediate Envoy
NORMALIZE = [
    # Under the gradual strategy each response closes its connection with a probability that grows
    # with the time since the drain began: how many of the early 40 do varies from run to run (the
    # lab asserts that not all of them do).
    (r"early: responses=40 connection_close=\d+ connections=\d+", "early: responses=40 connection_close=<n> connections=<n>"),
    (r"conn=\d+ req=(\d+) 127\.0\.0\.1:\d+ GET", r"conn=<n> req=\1 127.0.0.1:<port> GET"),  # the upstream's
    # connection number counts the lab's readiness probe too; the client port is the kernel's choice
    (r"after \d+ ms", "after <n> ms"),  # curl's time to a refused connection
]
# How many processes map the region (some /proc/<pid>/maps, such as pid 1's in a container, are not
# readable even by root: grep's complaints are dropped, and so is its exit status).
MAPPERS = f"grep -l envoy_shared_memory_{BASE_ID}0 /proc/[0-9]*/maps 2>/dev/null | wc -l"
SOCKETS = "ss -xl | grep -o '@envoy_domain_socket[a-z_]*[0-9]*' | sort"


def until(lab, what: str, holds, timeout: float = 10) -> None:
    """Wait (without recording) for the state the next step shows; fail with `what` if it never comes."""
    deadline = time.monotonic() + timeout
    while not holds():
        if time.monotonic() > deadline:
            lab.fact(False, what)
        time.sleep(0.05)


def counts(output: str) -> dict:
    """The numbers keepalive.py prints: {'responses': 40, 'connection_close': 12, ...}."""
    words = output.strip().split(":", 1)[-1].split()
    return {k: int(v) for k, v in (w.split("=") for w in words)}


def run(lab):
    ns = lab.pod("drain")

    with lab.section("defaults"):
        lab.start("envoy -c defaults.yaml --disable-hot-restart --log-level warn", name="envoy-defaults", ns=ns,
                  ready=lab.envoy_ready(DEFAULTS, ns=ns))
        lab.sh(f"curl -s 127.0.0.1:{DEFAULTS}/server_info | jq '.command_line_options | "
               "{drain_strategy, drain_time, parent_shutdown_time, restart_epoch, base_id}'", ns=ns)
        out = lab.last.output
        lab.fact('"drain_strategy": "Gradual"' in out and '"drain_time": "600s"' in out
                 and '"parent_shutdown_time": "900s"' in out,
                 "without flags: gradual strategy, 600 s drain time, 900 s parent shutdown time")
        lab.stop("envoy-defaults")

    with lab.section("start"):
        lab.start("python3 common/upstream.py --port 8080 --name backend", name="upstream", ns=ns,
                  ready=lab.port_open(8080, ns=ns))
        lab.start(f"envoy -c gradual.yaml --concurrency 1 --disable-hot-restart --drain-strategy gradual "
                  f"--drain-time-s {DRAIN_TIME} --log-level warn", name="envoy-gradual", ns=ns,
                  ready=lab.envoy_ready(GRADUAL, ns=ns))
        lab.start(f"envoy -c immediate.yaml --concurrency 1 --disable-hot-restart --drain-strategy immediate "
                  f"--drain-time-s {DRAIN_TIME} --log-level warn", name="envoy-immediate", ns=ns,
                  ready=lab.envoy_ready(IMMEDIATE, ns=ns))
        # A connection through the inbound TCP proxy, opened before any drain; it sends a second
        # request on the same connection when the lab creates the file `go` (section inbound-stopped).
        lab.start("python3 hold.py --port 8003 --again-when go", name="hold-tcp", ns=ns,
                  ready=lambda: "GET /hold" in lab.log("hold-tcp"))
        lab.sh("python3 keepalive.py --port 8000 --count 40 --label before", ns=ns)
        lab.fact(counts(lab.last.output) == {"responses": 40, "connection_close": 0, "connections": 1},
                 "before any drain, 40 requests share one keep-alive connection")

    with lab.section("gradual-early"):
        lab.sh(f"curl -s -X POST '127.0.0.1:{GRADUAL}/drain_listeners?graceful&skip_exit'", ns=ns)
        drain_started = time.monotonic()
        lab.sh("python3 keepalive.py --port 8000 --count 40 --label early", ns=ns)
        early = counts(lab.last.output)
        lab.fact(early["responses"] == 40 and early["connection_close"] < 40,
                 "early in a gradual drain, fewer than all responses carry connection: close")

    with lab.section("inboundonly"):
        lab.sh(f"curl -s -X POST '127.0.0.1:{IMMEDIATE}/drain_listeners?inboundonly&graceful'", ns=ns)
        lab.sh("python3 keepalive.py --port 8001 --count 40 --label inbound", ns=ns)
        lab.fact(counts(lab.last.output) == {"responses": 40, "connection_close": 40, "connections": 40},
                 "immediate strategy: every response on the inbound listener closes its connection")
        lab.sh("python3 keepalive.py --port 8002 --count 40 --label outbound", ns=ns)
        lab.fact(counts(lab.last.output) == {"responses": 40, "connection_close": 0, "connections": 1},
                 "the outbound listener is not drained by an inbound-only drain")
        lab.sh(f"curl -s '127.0.0.1:{IMMEDIATE}/stats?filter=downstream_cx_drain_close$'", ns=ns)
        lab.fact(lab.stat(IMMEDIATE, "http.inbound_http.downstream_cx_drain_close", ns=ns) == 40
                 and lab.stat(IMMEDIATE, "http.outbound_http.downstream_cx_drain_close", ns=ns) == 0,
                 "downstream_cx_drain_close counts 40 inbound connections and no outbound one")

    with lab.section("gradual-late"):
        # Past the gradual Envoy's drain deadline (--drain-time-s after the POST): a bounded wait on
        # Envoy's own timer; what the lab asserts is the count below.
        time.sleep(max(0.0, drain_started + DRAIN_TIME + 0.3 - time.monotonic()))
        lab.sh("python3 keepalive.py --port 8000 --count 40 --label late", ns=ns)
        lab.fact(counts(lab.last.output) == {"responses": 40, "connection_close": 40, "connections": 40},
                 "after the drain time, every response carries connection: close")

    with lab.section("http2-goaway"):
        lab.sh("python3 h2probe.py --port 8000", ns=ns)
        frames = [line for line in lab.last.output.splitlines() if line.startswith("< ")]
        lab.fact(frames[:1] == ["< GOAWAY last_stream_id=2147483647 error=NO_ERROR"]
                 and "< GOAWAY last_stream_id=1 error=NO_ERROR" in frames
                 and frames.index("< GOAWAY last_stream_id=1 error=NO_ERROR") > frames.index("< DATA stream=1 3 bytes end_stream")
                 and frames[-1] == "< EOF: the proxy closed the connection",
                 "HTTP/2: a GOAWAY with the highest stream id first, the response, then a final GOAWAY and the close")
        lab.sh(f"curl -s '127.0.0.1:{GRADUAL}/stats?filter=^http2\\.goaway_sent$'", ns=ns)
        lab.fact(lab.stat(GRADUAL, "http2.goaway_sent", ns=ns) == 1,
                 "http2.goaway_sent counts only the final GOAWAY")

    with lab.section("inbound-stopped"):
        until(lab, "the inbound listeners stop when the drain time ends",
              lambda: lab.stat(IMMEDIATE, "listener_manager.listener_stopped", ns=ns) == 2)
        lab.sh(f"curl -s '127.0.0.1:{IMMEDIATE}/stats?filter=^listener_manager\\.listener_stopped$"
               "|^listener\\.127\\.0\\.0\\.1_800(1|2|3)\\.downstream_cx_active$'", ns=ns)
        lab.fact(lab.stat(IMMEDIATE, "listener.127.0.0.1_8003.downstream_cx_active", ns=ns) == 1,
                 "the TCP proxy connection opened before the drain is still there")
        lab.sh("curl -sS 127.0.0.1:8001/", ns=ns, check=False)
        lab.fact(lab.last.code == 7, "the stopped inbound listener refuses new connections")
        lab.sh("curl -s 127.0.0.1:8002/", ns=ns)
        lab.fact(lab.last.output.strip() == "outbound", "the outbound listener still answers")
        lab.sh("touch go")
        lab.wait("hold-tcp", timeout=10)
        lab.sh("cat hold-tcp.log")
        lab.fact("GET /again on the same connection -> HTTP/1.1 200 OK" in lab.last.output,
                 "the TCP proxy connection still carries requests after its listener stopped")
        lab.sh("grep -E 'GET /(hold|again)' upstream.log")
        conns = re.findall(r"conn=(\d+) req=(\d+)", lab.last.output)
        lab.fact(len(conns) == 2 and conns[0][0] == conns[1][0] and conns[1][1] == "2",
                 "both requests used the same upstream connection")

    with lab.section("hot-restart"):
        lab.claim_base_id(BASE_ID)
        hot = (f"envoy -c hot.yaml --concurrency 1 --base-id {BASE_ID} --drain-strategy immediate "
               "--drain-time-s 1 --parent-shutdown-time-s 3 --log-level warn")
        lab.start(f"{hot} --restart-epoch 0", name="hot-epoch0", ns=ns, ready=lab.envoy_ready(HOT, ns=ns))
        lab.sh(f"stat -c '%n %s bytes %A' /dev/shm/envoy_shared_memory_{BASE_ID}0")
        lab.fact(lab.last.output.split()[1] == "104", "the shared memory region is 104 bytes")
        lab.sh(SOCKETS, ns=ns)
        lab.sh("for i in 1 2 3; do curl -s 127.0.0.1:8004/; done", ns=ns)
        # An idle keep-alive connection to epoch 0, held open through the restart.
        lab.start("python3 hold.py --port 8004 --until-closed", name="hold-hot", ns=ns,
                  ready=lambda: "GET /hold" in lab.log("hold-hot"))
        lab.start(f"{hot} --restart-epoch 1", name="hot-epoch1", ns=ns,
                  ready=lambda: lab.stat(HOT, "server.hot_restart_generation", ns=ns) == 2)
        lab.sh(SOCKETS, ns=ns)
        lab.fact("@envoy_domain_socket_parent_720" in lab.last.output
                 and "@envoy_domain_socket_child_721" in lab.last.output,
                 "during the restart window both epochs' domain sockets exist")
        lab.sh(MAPPERS, check=False)
        lab.fact(lab.last.output.strip() == "2", "two processes map the shared memory region")
        lab.sh(f"curl -s '127.0.0.1:{HOT}/stats?filter=^server\\.(hot_restart_epoch|hot_restart_generation|"
               "parent_connections|total_connections)$|^http\\.hot\\.downstream_rq_total$'", ns=ns)
        lab.fact(lab.stat(HOT, "http.hot.downstream_rq_total", ns=ns) == 4
                 and lab.stat(HOT, "server.parent_connections", ns=ns) == 1,
                 "the child's counters include the parent's four requests; the parent still holds one connection")

    with lab.section("hot-restart-after"):
        lab.fact(lab.wait("hot-epoch0", timeout=10) == 0, "the parent exits by itself after --parent-shutdown-time-s")
        lab.wait("hold-hot", timeout=10)
        lab.sh("cat hold-hot.log")
        lab.fact("the proxy closed it (EOF)" in lab.last.output,
                 "the parent's connection is not handed over: it ends when the parent exits")
        lab.sh(SOCKETS, ns=ns)
        lab.fact("_720" not in lab.last.output and "@envoy_domain_socket_child_721" in lab.last.output,
                 "only epoch 1's sockets remain")
        lab.sh(MAPPERS, check=False)
        lab.fact(lab.last.output.strip() == "1", "one process maps the region")
