"""Accepting connections: which worker got each connection, exact_balance against the kernel's
reuse_port hashing, and the per-listener and global connection limits.

One Envoy with two workers in a namespace, three listeners that answer every request
themselves (see envoy.yaml), and hold.py, a client that opens connections one after another
and keeps them open while the lab reads the stats.

Sections: sockets, exact-balance, kernel-balance, listener-limit, global-limit.
"""

import time

TITLE = "Accepting connections: per-worker listener stats, exact_balance, connection limits"
SUMMARY_ZH = "每个地址上每个 worker 一个监听套接字；exact_balance 与内核分配的差别；单个监听器和全局的连接数上限。"
NEEDS_ROOT = True
USES = []
ADMIN = 15000
NORMALIZE = [
    # Without exact_balance the kernel hashes each connection (its 4-tuple, random source
    # ports) to one worker's socket: the split between the two workers varies, the total does not.
    (r"^(listener\.kernel\.worker_[01]\.downstream_cx_(total|active): )\d+$", r"\1<n>"),
]


def run(lab):
    ns = lab.pod("accept")

    def settle(listener, active):
        deadline = time.monotonic() + 5
        while lab.stat(ADMIN, f"listener.{listener}.downstream_cx_active", ns=ns) != active:
            if time.monotonic() > deadline:
                raise AssertionError(f"listener {listener} never reached {active} active connections")
            time.sleep(0.05)

    def hold(name, port, count, each=False):
        lab.start(f"python3 hold.py --port {port} --count {count}{' --each' if each else ''}", name=name, ns=ns,
                  ready=lambda: "holding" in lab.log(name))
        lab.sh(f"cat {name}.log")

    with lab.section("sockets"):
        lab.start("envoy -c envoy.yaml --concurrency 2 --disable-hot-restart --log-level warn", name="envoy", ns=ns,
                  ready=lab.envoy_ready(ADMIN, ns=ns))
        lab.sh("ss -Hltn 'sport >= :10000 and sport <= :10002' | awk '{print $1, $4}' | sort", ns=ns)
        lines = lab.last.output.splitlines()
        lab.fact(len(lines) == 6 and all(lines.count(f"LISTEN 0.0.0.0:{p}") == 2 for p in (10000, 10001, 10002)),
                 "reuse_port: two listening sockets per address, one per worker")

    with lab.section("exact-balance"):
        hold("hold-exact", 10001, 8)
        lab.fact("answered=8" in lab.last.output, "all eight connections answered and held")
        settle("exact", 8)
        lab.sh(f"curl -s '127.0.0.1:{ADMIN}/stats?filter=^listener\\.exact\\.(worker_.\\.)?downstream_cx_total$'",
               ns=ns)
        lab.fact(lab.stat(ADMIN, "listener.exact.worker_0.downstream_cx_total", ns=ns) == 4
                 and lab.stat(ADMIN, "listener.exact.worker_1.downstream_cx_total", ns=ns) == 4,
                 "exact_balance: eight held connections split four and four")
        lab.stop("hold-exact")
        settle("exact", 0)

    with lab.section("kernel-balance"):
        hold("hold-kernel", 10000, 8)
        settle("kernel", 8)
        lab.sh(f"curl -s '127.0.0.1:{ADMIN}/stats?filter=^listener\\.kernel\\.(worker_.\\.)?downstream_cx_total$'",
               ns=ns)
        lab.fact(lab.stat(ADMIN, "listener.kernel.downstream_cx_total", ns=ns) == 8
                 and lab.stat(ADMIN, "listener.kernel.worker_0.downstream_cx_total", ns=ns)
                 + lab.stat(ADMIN, "listener.kernel.worker_1.downstream_cx_total", ns=ns) == 8,
                 "default balancing: eight connections in total, split as the kernel hashed them")
        lab.stop("hold-kernel")
        settle("kernel", 0)

    with lab.section("listener-limit"):
        hold("hold-limited", 10002, 3, each=True)
        lab.fact(lab.last.output.count("answered") == 2 and "connection 3: closed by the peer" in lab.last.output,
                 "the third connection to a listener limited to two is closed")
        lab.sh(f"curl -s '127.0.0.1:{ADMIN}/stats?filter=^listener\\.limited\\.downstream_cx_(total|active|overflow)$'",
               ns=ns)
        lab.fact(lab.stat(ADMIN, "listener.limited.downstream_cx_overflow", ns=ns) == 1
                 and lab.stat(ADMIN, "listener.limited.downstream_cx_total", ns=ns) == 2,
                 "downstream_cx_overflow counts it; it never became a connection")
        lab.stop("hold-limited")
        settle("limited", 0)

    with lab.section("global-limit"):
        hold("hold-global", 10000, 11)
        lab.fact("connections=11 answered=10 closed=1" in lab.last.output,
                 "with a global limit of ten, the eleventh connection is closed")
        lab.sh(f"curl -s '127.0.0.1:{ADMIN}/stats?filter=^listener\\.kernel\\.downstream_(global_cx_overflow|cx_active)$'",
               ns=ns)
        lab.fact(lab.stat(ADMIN, "listener.kernel.downstream_global_cx_overflow", ns=ns) == 1,
                 "downstream_global_cx_overflow counts it on the listener that accepted it")
        lab.stop("hold-global")
