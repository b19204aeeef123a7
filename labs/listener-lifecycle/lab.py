"""Listener lifecycle: listeners added, warming, modified (in place and in full), drained and
removed, through LDS from a file.

One Envoy (two workers, --drain-time-s 2) in a namespace reads its listeners from
lds/listeners.yaml and its cluster from cds/clusters.yaml; each step moves a new listeners file
into lds/ with `mv`, which is what Envoy's file subscription watches for. One listener takes
its routes by RDS from the lab's control plane (slow_control_plane.py), which holds them back
until the lab moves their file into served/. Sections: start, add, warming, warmed, modify, drained, remove.
"""

import time

TITLE = "Listener lifecycle: LDS from a file, warming, in-place and full updates, draining, removal"
SUMMARY_ZH = "从文件下发的监听器：新增、等待路由的预热、原地更新与整体替换、排空与删除。"
NEEDS_ROOT = True
USES = ["upstream.py"]
NORMALIZE = [
    (r"after \d+ ms", "after <n> ms"),  # curl's time to a refused connection
]
ADMIN = 15000
COUNTERS = (r"^listener_manager\.(listener_(added|modified|removed|in_place_updated)|"
            r"total_(listeners_(warming|active|draining)|filter_chains_draining))$")
DUMP = ("jq -r '.configs[] | [.name, (del(.name, .\"@type\") | keys | join(\" \"))] | join(\"  \")'")




def until(lab, what: str, holds, timeout: float = 10) -> None:
    """Wait (without recording) for the state the next step shows; fail with `what` if it never comes."""
    deadline = time.monotonic() + timeout
    while not holds():
        if time.monotonic() > deadline:
            lab.fact(False, what)
        time.sleep(0.05)


def run(lab):
    ns = lab.pod("listeners")

    def stat(name):
        return lab.stat(ADMIN, f"listener_manager.{name}", ns=ns)

    def counters():
        return lab.sh(f"curl -s '127.0.0.1:{ADMIN}/stats?filter={COUNTERS}'", ns=ns)

    def lds_updates():
        return lab.stat(ADMIN, "listener_manager.lds.update_success", ns=ns)

    def move(step):
        """Move a listeners file into lds/ and wait until Envoy has applied it."""
        before = lds_updates()
        lab.sh(f"mv steps/listeners-{step}.yaml lds/listeners.yaml")
        until(lab, f"Envoy reads the listeners file of step {step}", lambda: lds_updates() == before + 1)

    with lab.section("start"):
        lab.query("mkdir -p served/rds")
        lab.start("python3 common/upstream.py --port 8080 --name backend", name="upstream", ns=ns,
                  ready=lab.port_open(8080, ns=ns))
        lab.start("python3 slow_control_plane.py --port 18000 --dir served", name="cp", ns=ns,
                  ready=lab.port_open(18000, ns=ns))
        lab.start("envoy -c envoy.yaml --concurrency 2 --drain-time-s 2 --disable-hot-restart --log-level warn",
                  name="envoy", ns=ns, ready=lab.envoy_ready(ADMIN, ns=ns))
        counters()
        lab.fact(stat("listener_added") == 1 and stat("total_listeners_active") == 1 and stat("total_listeners_warming") == 0,
                 "the listener of the first file is added straight to the active list (workers not started yet)")

    with lab.section("add"):
        move("add")
        counters()
        lab.fact(stat("listener_added") == 2 and stat("listener_modified") == 0 and stat("total_listeners_active") == 2,
                 "the new file adds http-8001; the unchanged http-8000 is neither modified nor drained")
        until(lab, "http-8001 accepts connections", lab.port_open(8001, ns=ns))
        lab.sh("curl -s 127.0.0.1:8001/", ns=ns)

    with lab.section("warming"):
        move("warm")
        counters()
        lab.fact(stat("listener_added") == 3 and stat("total_listeners_warming") == 1 and stat("total_listeners_active") == 2,
                 "http-8002 is added but stays warming: its routes have not come")
        lab.sh(f"curl -s 127.0.0.1:{ADMIN}/listeners", ns=ns)
        lab.fact("http-8002" not in lab.last.output, "/listeners shows only active listeners")
        lab.sh(f"curl -s '127.0.0.1:{ADMIN}/config_dump?resource=dynamic_listeners' | {DUMP}", ns=ns)
        lab.fact("http-8002  warming_state" in lab.last.output, "config_dump shows http-8002 in warming_state")
        lab.sh(f"curl -s 127.0.0.1:{ADMIN}/init_dump", ns=ns)
        lab.fact("late-routes" in lab.last.output, "init_dump names the RDS target http-8002 waits for")
        lab.sh("curl -sS 127.0.0.1:8002/", ns=ns, check=False)
        lab.fact(lab.last.code == 7, "a warming listener does not accept connections yet")

    with lab.section("warmed"):
        lab.sh("mv held/late-routes.json served/rds/")
        until(lab, "http-8002 becomes active once its routes arrive, and Envoy ACKs them",
              lambda: stat("total_listeners_warming") == 0 and "RDS: Envoy ACKs" in lab.log("cp"))
        counters()
        lab.fact(stat("total_listeners_active") == 3 and stat("listener_added") == 3,
                 "http-8002 moved from warming to active; no counter besides the gauges changed")
        lab.sh("cat cp.log")
        until(lab, "http-8002 accepts connections", lab.port_open(8002, ns=ns))
        lab.sh("curl -s 127.0.0.1:8002/", ns=ns)
        lab.fact("backend: GET /" in lab.last.output, "http-8002 answers through late-routes")

    with lab.section("modify"):
        move("modify")
        counters()
        lab.fact(stat("listener_modified") == 2 and stat("listener_in_place_updated") == 1,
                 "both changed listeners count as modified; one of them took the in-place path")
        lab.fact(stat("total_listeners_draining") == 1 and stat("total_filter_chains_draining") == 1,
                 "the full update drains the old http-8001; the in-place update drains one filter chain of http-8000")
        lab.sh(f"curl -s '127.0.0.1:{ADMIN}/config_dump?resource=dynamic_listeners' | {DUMP}", ns=ns)
        lab.fact("http-8001  active_state draining_state" in lab.last.output
                 and "http-8000  active_state\n" in lab.last.output + "\n",
                 "config_dump shows the old http-8001 draining beside the new one; the drained chain of http-8000 does not show")
        lab.sh("curl -s 127.0.0.1:8001/", ns=ns)
        lab.fact("backend: GET /" in lab.last.output, "the new http-8001 already serves on the same port")

    with lab.section("drained"):
        until(lab, "the drain ends after --drain-time-s",
              lambda: stat("total_listeners_draining") == 0 and stat("total_filter_chains_draining") == 0)
        counters()

    with lab.section("remove"):
        move("remove")
        counters()
        lab.fact(stat("listener_removed") == 1 and stat("total_listeners_active") == 2 and stat("total_listeners_draining") == 1,
                 "a listener missing from the file is removed: it leaves the active list and drains")
        until(lab, "the removed listener's socket is closed", lambda: not lab.port_open(8001, ns=ns)())
        lab.sh("curl -sS 127.0.0.1:8001/", ns=ns, check=False)
        lab.fact(lab.last.code == 7, "the removed listener stops accepting at once, while it drains")
        lab.sh(f"curl -s 127.0.0.1:{ADMIN}/listeners", ns=ns)
