"""Outlier ejection: one of three hosts answers 503, consecutive_5xx ejects it, traffic avoids it,
and it comes back after base_ejection_time.

One Envoy (one worker) in front of three hosts a, b and c (backend.py; on /fail-on/b only b
answers 503). The ROUND_ROBIN cluster "app" (:8000) ejects a host after 3 consecutive 5xx; the
detector runs every 0.5 s, an ejection lasts 3 s (long enough for the steps that look at the
ejected state, even on a busy machine), and max_ejection_percent 50 allows one host of three. Outlier events are written to outlier.log. Sections: start, eject, eject-stats, eject-updates,
eject-host, avoid, avoid-host, uneject, uneject-stats, uneject-updates, events, back.

The lab waits on Envoy's own state, never on time: ejections_active, and the cluster manager's
count of host-set updates delivered to the worker (cluster_updated plus cluster_updated_via_merge:
a health change that comes within update_merge_window, 1 s by default, of the previous one is
delivered when the window ends).
"""

import time

from labs.kit import LabFailure

TITLE = "Outlier ejection: consecutive 5xx ejects one host of three, and it returns"
SUMMARY_ZH = "异常检测逐出：三台主机中的一台连续返回 5xx 被逐出，流量绕开它，逐出时间到后它回到轮转。"
NEEDS_ROOT = True
ADMIN = 15000
ENVOY = "envoy -c envoy.yaml --disable-hot-restart --concurrency 1 --file-flush-interval-msec 100 --log-level warn"
HOSTS = {"a": 8081, "b": 8082, "c": 8083}
OUTLIER = ["ejections_active", "ejections_detected_consecutive_5xx", "ejections_enforced_consecutive_5xx",
           "ejections_enforced_total", "ejections_overflow"]
UPDATES = ["cluster_updated", "cluster_updated_via_merge", "update_merge_cancelled", "update_out_of_merge_window"]


def wait_for(lab, what: str, check, timeout: float = 5.0) -> None:
    """Wait, bounded, until Envoy reports the state the next step needs."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise LabFailure(f"lab {lab.name}: {what} not reached in {timeout} s")
        time.sleep(0.02)


def updates_delivered(lab, ns) -> int:
    """Host-set updates the main thread has posted to the worker, at once or after the merge window."""
    return (lab.stat(ADMIN, "cluster_manager.cluster_updated", ns=ns)
            + lab.stat(ADMIN, "cluster_manager.cluster_updated_via_merge", ns=ns))  # fmt: skip


def counts(output: str) -> dict[str, int]:
    """`uniq -c` output as {value: count}."""
    result = {}
    for line in output.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0].isdigit():
            result[parts[1]] = int(parts[0])
    return result


def host_b(lab, ns, stats: str) -> dict[str, str]:
    pattern = f"({stats})" if "|" in stats else stats
    lab.sh(f"curl -s 127.0.0.1:{ADMIN}/clusters | grep -E '^app::127.0.0.1:8082::{pattern}::'", ns=ns)
    return {line.split("::")[2]: line.split("::")[3] for line in lab.last.output.splitlines() if line.count("::") >= 3}


def outlier_stats(lab, ns) -> dict[str, int]:
    lab.sh(f"curl -s '127.0.0.1:{ADMIN}/stats?filter=^cluster\\.app\\.outlier_detection\\.({'|'.join(OUTLIER)})$'", ns=ns)
    return {n: lab.stat(ADMIN, f"cluster.app.outlier_detection.{n}", ns=ns) for n in OUTLIER}


def update_stats(lab, ns) -> dict[str, int]:
    lab.sh(f"curl -s '127.0.0.1:{ADMIN}/stats?filter=^cluster_manager\\.({'|'.join(UPDATES)})$'", ns=ns)
    return {n: lab.stat(ADMIN, f"cluster_manager.{n}", ns=ns) for n in UPDATES}


def run(lab):
    ns = lab.pod("outlier")

    with lab.section("start"):
        lab.start("python3 backend.py " + " ".join(f"{n}={p}" for n, p in HOSTS.items()), name="backend", ns=ns,
                  ready=lambda: all(lab.port_open(p, ns=ns)() for p in HOSTS.values()))
        lab.start(ENVOY, name="envoy", ns=ns, ready=lab.envoy_ready(ADMIN, ns=ns))

    # -- b answers 503 three times in a row --------------------------------------------------------
    with lab.section("eject"):
        before = updates_delivered(lab, ns)
        # Nine requests, one curl (URL globbing: /fail-on/b/1 ... /9): round robin gives b every
        # third one, so b answers 503 three times, whatever host the rotation starts on.
        lab.sh("curl -s -o /dev/null -w '%{http_code}\\n' '127.0.0.1:8000/fail-on/b/[1-9]' | sort | uniq -c", ns=ns)
        lab.fact(counts(lab.last.output) == {"200": 6, "503": 3}, "b answers its three requests with 503")
        # The worker counted the third 5xx and posted it to the main thread, which ejects b and
        # posts the new host set back to the worker.
        wait_for(lab, "b ejected", lambda: lab.stat(ADMIN, "cluster.app.outlier_detection.ejections_active", ns=ns) == 1)
        wait_for(lab, "the ejection delivered to the worker", lambda: updates_delivered(lab, ns) == before + 1)

    with lab.section("eject-stats"):
        s = outlier_stats(lab, ns)
        lab.fact(s["ejections_active"] == 1, "ejections_active 1 while b is out")
        lab.fact(s["ejections_detected_consecutive_5xx"] == 1 and s["ejections_enforced_consecutive_5xx"] == 1
                 and s["ejections_enforced_total"] == 1 and s["ejections_overflow"] == 0,
                 "one consecutive-5xx ejection detected and enforced, no overflow")

    with lab.section("eject-updates"):
        u = update_stats(lab, ns)
        # The first health change of the cluster is outside any merge window: delivered at once.
        lab.fact(u["cluster_updated"] == 1 and u["cluster_updated_via_merge"] == 0
                 and u["update_out_of_merge_window"] == 1,
                 "the ejection reached the worker at once: cluster_updated 1, nothing merged")

    with lab.section("eject-host"):
        b = host_b(lab, ns, "health_flags|rq_total")
        lab.fact(b == {"health_flags": "/failed_outlier_check", "rq_total": "3"},
                 "b is marked failed_outlier_check after its 3 requests")

    # -- traffic avoids b ------------------------------------------------------------------------
    with lab.section("avoid"):
        lab.sh("curl -s '127.0.0.1:8000/[1-10]' | cut -d: -f1 | sort | uniq -c", ns=ns)
        lab.fact(counts(lab.last.output) == {"a": 5, "c": 5}, "ten requests: 5 to a, 5 to c, none to b")

    with lab.section("avoid-host"):
        lab.fact(host_b(lab, ns, "rq_total") == {"rq_total": "3"}, "b's rq_total is still 3")

    # -- after base_ejection_time -------------------------------------------------------------------
    with lab.section("uneject"):
        before = updates_delivered(lab, ns)
        # The main thread's interval timer (every 0.5 s) returns b once 3 s have passed.
        wait_for(lab, "b returned", lambda: lab.stat(ADMIN, "cluster.app.outlier_detection.ejections_active", ns=ns) == 0,
                 timeout=10)
        wait_for(lab, "the return delivered to the worker", lambda: updates_delivered(lab, ns) == before + 1)
        b = host_b(lab, ns, "health_flags")
        lab.fact(b == {"health_flags": "healthy"}, "b is healthy again")

    with lab.section("uneject-stats"):
        s = outlier_stats(lab, ns)
        lab.fact(s["ejections_active"] == 0 and s["ejections_enforced_total"] == 1,
                 "ejections_active back to 0; ejections_enforced_total stays 1")

    with lab.section("uneject-updates"):
        u = update_stats(lab, ns)
        # The return comes 3 s after the ejection, more than update_merge_window (1 s): at once too.
        lab.fact(u["cluster_updated"] == 2 and u["cluster_updated_via_merge"] == 0
                 and u["update_out_of_merge_window"] == 2,
                 "the return, 3 s after the ejection, is also outside the 1 s merge window: cluster_updated 2")

    with lab.section("events"):
        log = lab.workdir / "outlier.log"
        # The event log is written through the access log machinery: flushed every 100 ms.
        wait_for(lab, "two outlier events in outlier.log",
                 lambda: log.exists() and log.read_text().count("\n") >= 2)
        lab.sh("jq -c '{action, type, enforced, num_ejections, upstream_url}' outlier.log")
        lines = lab.last.output.splitlines()
        lab.fact(len(lines) == 2 and '"action":"EJECT","type":"CONSECUTIVE_5XX","enforced":true' in lines[0]
                 and '"action":"UNEJECT"' in lines[1] and '"num_ejections":1' in lines[1],
                 "outlier.log: EJECT (CONSECUTIVE_5XX, enforced) then UNEJECT, num_ejections 1")

    with lab.section("back"):
        lab.sh("curl -s '127.0.0.1:8000/[1-9]' | cut -d: -f1 | sort | uniq -c", ns=ns)
        lab.fact(counts(lab.last.output) == {"a": 3, "b": 3, "c": 3}, "nine requests: 3 to each host, b included")
        lab.fact(host_b(lab, ns, "rq_total") == {"rq_total": "6"}, "b's rq_total moves from 3 to 6")
