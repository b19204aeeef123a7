"""The event loop seen from outside: dispatcher histograms per thread, and one slow callback
holding a worker's loop while the main thread's loop carries on.

One Envoy (one worker, so that every connection lands on worker_0) with enable_dispatcher_stats,
in front of one upstream. A Lua filter busy-loops for one second on requests for /spin.
Sections: start, dispatchers, slow-callback.
"""

import time

TITLE = "Event loop: dispatcher histograms, and a slow callback seen by the watchdog"
SUMMARY_ZH = "主线程和 worker 各自的事件循环直方图；一个卡住 worker 一秒的回调被看门狗记下，管理接口照常响应。"
NEEDS_ROOT = True
USES = ["upstream.py"]
ADMIN = 15000
WATCHDOG = r"^server\.(main_thread|worker_0)\.watchdog_miss$"
HISTOGRAM = r"^listener_manager\.worker_0\.dispatcher\.loop_duration_us$"
# Loop iterations of worker_0 that took longer than 0.6 s: all samples minus those in the
# buckets up to 600000 us (the admin's cumulative bucket counts).
LONG = ("jq -r '.stats[0].histograms[0] | (.buckets[-1].cumulative - "
        "(.buckets[] | select(.upper_bound == 600000) | .cumulative)) as $n | "
        "\"\\(.name): \\($n) iteration(s) longer than 0.6 s\"'")


def long_iterations(lab, ns) -> int:
    out = lab.query(f"curl -s '127.0.0.1:{ADMIN}/stats?format=json&filter={HISTOGRAM}&histogram_buckets=cumulative' "
                    f"| {LONG}", ns=ns, check=False).output
    return int(out.split(": ")[1].split()[0]) if ": " in out else -1


def run(lab):
    ns = lab.pod("loop")

    with lab.section("start"):
        lab.start("python3 common/upstream.py --port 8080 --name backend", name="upstream", ns=ns,
                  ready=lab.port_open(8080, ns=ns))
        lab.start("envoy -c envoy.yaml --concurrency 1 --disable-hot-restart --log-level warn",
                  name="envoy", ns=ns, ready=lab.envoy_ready(ADMIN, ns=ns))

    with lab.section("dispatchers"):
        # Histograms show up once a stats flush has merged them (every second in this bootstrap).
        deadline = time.monotonic() + 10
        while long_iterations(lab, ns) < 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        lab.sh(f"curl -s '127.0.0.1:{ADMIN}/stats?type=Histograms&filter=dispatcher' | cut -d: -f1", ns=ns)
        lab.fact(lab.last.output.split() == [
            "listener_manager.worker_0.dispatcher.loop_duration_us", "listener_manager.worker_0.dispatcher.poll_delay_us",
            "server.dispatcher.loop_duration_us", "server.dispatcher.poll_delay_us"],
            "two histograms per loop: server.dispatcher.* for the main thread, listener_manager.worker_0.dispatcher.* for the worker")

    with lab.section("slow-callback"):
        lab.sh(f"curl -s '127.0.0.1:{ADMIN}/stats?filter={WATCHDOG}'", ns=ns)
        lab.fact(lab.stat(ADMIN, "server.worker_0.watchdog_miss", ns=ns) == 0, "no watchdog miss before")
        lab.sh(f"curl -s 127.0.0.1:8000/spin & sleep 0.3; curl -s 127.0.0.1:{ADMIN}/ready; wait", ns=ns)
        lab.fact(lab.last.output.split("\n")[0] == "LIVE",
                 "the admin interface (main thread) answers while the worker's loop is held")
        # The guard dog checks every 200 ms; histograms are merged at the next flush (1 s). On a
        # busy machine the spin (1 s of CPU time) takes longer in wall time: wait generously.
        deadline = time.monotonic() + 30
        while long_iterations(lab, ns) < 1 and time.monotonic() < deadline:
            time.sleep(0.1)
        lab.sh(f"curl -s '127.0.0.1:{ADMIN}/stats?filter={WATCHDOG}'", ns=ns)
        lab.fact(lab.stat(ADMIN, "server.worker_0.watchdog_miss", ns=ns) == 1
                 and lab.stat(ADMIN, "server.main_thread.watchdog_miss", ns=ns) == 0,
                 "the worker's watchdog missed once; the main thread's did not")
        lab.sh(f"curl -s '127.0.0.1:{ADMIN}/stats?format=json&filter={HISTOGRAM}&histogram_buckets=cumulative' | {LONG}", ns=ns)
        lab.fact(long_iterations(lab, ns) == 1, "exactly one loop iteration of worker_0 took longer than 0.6 s")
