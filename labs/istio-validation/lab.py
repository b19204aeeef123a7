"""istio-validation: what the validation init container checks, in a Pod whose rules the CNI
plugin wrote and in a Pod it missed; then the same rules applied late, as the repair controller does.

Two network namespaces stand for two Pods of the same sidecar workload:
  ok     the istio-cni plugin ran: Istio 1.30.3's rules for a default sidecar are loaded
         (istio-1.30.3-basic.rules, the golden of cni/pkg/plugin/testdata/basic.txt.golden; see
         labs/sidecar-interception/PROVENANCE, the same file)
  race   the Pod was created before istio-cni was ready on its node: no rules

validator.py stands in for `istio-iptables --run-validation` (ours; same addresses, ports, 5 s
timeout and exit code 126 as Istio's, see its docstring). It runs as uid and gid 1337, as the
injection template runs istio-validation when istio-cni is enabled. The repair controller's
default action (repairPods) programs the Pod's namespace with the same plugin code; the lab's
`repair` section loads the same file into `race` and validates again.

Sections: passed, failed, repair.
"""

import re

TITLE = "istio-validation: the 127.0.0.6:15002 probe, a Pod without rules (exit 126), and the repair"
SUMMARY_ZH = "用与 istio-validation 相同的地址和端口做校验：有 CNI 规则的 Pod 通过（uid 1337 经回环口的连接被改道到 15006），没有规则的 Pod 5 秒后以 126 退出，补写规则后再次校验通过。"
NEEDS_ROOT = True

RULES = "istio-1.30.3-basic.rules"
RULES_SHA256 = "28a2d3dcd491a79d6c9642bb55c411e9271125b635219efec87616ea8e2e8050"
PROXY_UID = 1337  # istio-validation's runAsUser and runAsGroup with istio-cni (injection-template.yaml)
# The system interpreter: uid 1337 may not read the labs' virtual environment; the stand-in uses the
# standard library only.
PY = "/usr/bin/python3"
IN_REDIRECT = "-A ISTIO_OUTPUT ! -d 127.0.0.1/32 -o lo -p tcp -m tcp ! --dport 15008 -m owner --uid-owner 1337 -j ISTIO_IN_REDIRECT"
NORMALIZE = [
    # The client's ephemeral source port.
    (r"from 127\.0\.0\.1:\d+", "from 127.0.0.1:<port>"),
]


def counters(output: str) -> dict[str, int]:
    out = {}
    for line in output.splitlines():
        match = re.match(r"^\[(\d+):\d+\] (-A .*)$", line)
        if match:
            out[match.group(2)] = int(match.group(1))
    return out


def validate(lab, pod: str):
    return lab.sh(f"{PY} validator.py; echo exit=$?", ns=pod, user=PROXY_UID, timeout=15)


def run(lab):
    ok, race = lab.pod("ok"), lab.pod("race")

    with lab.section("passed"):
        lab.sh(f"sha256sum {RULES}")
        lab.fact(lab.last.output.split()[0] == RULES_SHA256, "the rules file is Istio 1.30.3's golden, unchanged")
        lab.sh(f"iptables-restore {RULES}", ns=ok)
        validate(lab, ok)
        out = lab.last.output
        lab.fact("accepted on 127.0.0.1:15006 from 127.0.0.1, SO_ORIGINAL_DST 127.0.0.6:15002" in out,
                 "the probe arrives on 15006 and still knows it dialed 127.0.0.6:15002")  # fmt: skip
        lab.fact(out.rstrip().endswith("validation passed\nexit=0"), "validation passes: exit 0")
        lab.sh("iptables-save -t nat -c | grep -E -- '-A ISTIO_OUTPUT (-s 127.0.0.6|.*ISTIO_IN_REDIRECT)|-A ISTIO_IN_REDIRECT'", ns=ok)
        c = counters(lab.last.output)
        lab.fact(c[IN_REDIRECT] == 1, "the probe took the uid-1337 loopback rule into ISTIO_IN_REDIRECT")
        lab.fact(c["-A ISTIO_OUTPUT -s 127.0.0.6/32 -o lo -j RETURN"] == 0, "it did not leave through the 127.0.0.6 source exemption")

    with lab.section("failed"):
        lab.sh("iptables-save -t nat | grep -c ISTIO || true", ns=race)
        lab.fact(lab.last.output.strip() == "0", "the race Pod has no Istio rules")
        validate(lab, race)
        out = lab.last.output
        lab.fact("connect to 127.0.0.6:15002: Connection refused" in out, "the probe is refused: nothing listens on 15002")
        lab.fact("accepted" not in out, "nothing ever reaches 15001 or 15006")
        lab.fact(out.rstrip().endswith("validation timeout after 5 s, exit 126\nexit=126"), "after 5 s the check fails with exit 126")

    with lab.section("repair"):
        lab.sh(f"iptables-restore {RULES}", ns=race)
        validate(lab, race)
        lab.fact(lab.last.output.rstrip().endswith("validation passed\nexit=0"), "with the rules in place, the next run passes")
