"""What every lab is made of: namespaces as pods, processes, steps, facts and a transcript.

A lab is a folder ``labs/<name>/`` with a ``lab.py`` that defines ``run(lab)`` (and optionally
``NORMALIZE``, ``NEEDS_ROOT``, ``TITLE``, ``SUMMARY_ZH``); its other files are its inputs (Envoy
configs, rule files, helper programs). ``run`` drives the lab through :class:`Lab`:

- ``lab.section(name)`` starts a named part of the transcript, which a page can quote;
- ``lab.sh(command)`` runs a shell command in the lab's work folder, records ``$ command`` and
  its output; ``lab.start(command)`` starts one in the background; ``lab.pod(name)`` makes a
  network namespace standing for a Pod;
- ``lab.fact(condition, text)`` states what the pages rely on (a counter moved, a flag was
  set, a rule matched); when it does not hold, the lab fails with the step, the command and
  its output.

Everything a lab creates carries the book's prefix (``insider-``); a lab clears what a crashed
run of its own left behind before it starts, refuses to start when something else holds a
resource it needs, and removes what it made (namespaces, processes by PID, files in its work
folder) even when it fails. Labs run one at a time on a host (a lock in /run).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

LABS = Path(__file__).resolve().parent
ROOT = LABS.parent
PREFIX = "insider-"
LOCK = Path("/run/insider-labs.lock") if os.access("/run", os.W_OK) else Path("/tmp/insider-labs.lock")
# What legitimately differs between two runs of any lab; each lab adds its own.
NORMALIZE = [
    (r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z?", "<time>"),  # ISO times (access logs, admin)
    (r"\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+\]", "[<time>]"),  # Envoy's log prefix
    (r"(\"?uptime_(current|all)_epoch\"?:\s*\"?)\d+s?", r"\1<n>"),
    (r"(\"?(hot_restart_version|start_time)\"?:\s*)\S+", r"\1<n>"),
    (r"\b(duration|upstream_service_time|request_duration|response_duration)=\d+", r"\1=<ms>"),
]


class LabFailure(Exception):
    """A lab step that did not do what the lab (and the pages) say it does."""


class LabSkipped(Exception):
    """The lab cannot run here (no root, a tool missing); the message says what to do."""


@dataclass
class Result:
    command: str
    output: str
    code: int

    def __str__(self) -> str:
        return self.output


@dataclass
class Section:
    name: str
    lines: list[str] = field(default_factory=list)


class Lab:
    def __init__(self, name: str, workdir: Path, envoy_bin: Path | None = None):
        self.name = name
        self.folder = LABS / name
        self.workdir = workdir
        self.sections: list[Section] = [Section("preamble")]
        self.pods: list[str] = []
        self.veths: list[str] = []
        self.processes: list[tuple[str, subprocess.Popen]] = []
        self.last: Result | None = None
        self.envoy_bin = envoy_bin
        self.cleanups: list = []

    # -- transcript -----------------------------------------------------------------

    @contextlib.contextmanager
    def section(self, name: str):
        if not re.fullmatch(r"[a-z0-9][a-z0-9-]*", name):
            raise ValueError(f"section names are kebab-case: {name!r}")
        if any(s.name == name for s in self.sections):
            raise ValueError(f"section {name!r} twice in lab {self.name}")
        self.sections.append(Section(name))
        yield self.sections[-1]

    def _record(self, shown: str, output: str) -> None:
        lines = self.sections[-1].lines
        lines.append(shown)
        lines.extend(output.rstrip("\n").splitlines())

    def transcript(self) -> str:
        out = []
        for section in self.sections:
            if section.name == "preamble" and not section.lines:
                continue
            out.append(f"## {section.name}")
            out.extend(section.lines)
        return "\n".join(out) + "\n"

    # -- running things ------------------------------------------------------------------

    def _wrap(self, command: str, ns: str | None, user: int | None, exec_: bool = False) -> tuple[list[str], str]:
        """The argv that runs a command (in a pod, as a user) and the line the transcript shows:
        ``$ command`` on the host, ``[insider-<pod>]$ command`` inside a pod, which a reader runs
        as ``ip netns exec insider-<pod> command``."""
        argv = ["bash", "-o", "pipefail", "-c", f"exec {command}" if exec_ else command]
        shown = command
        if user is not None:
            argv = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", "--", *argv]
            shown = f"setpriv --reuid={user} --regid={user} --clear-groups -- {command}"
        if ns is not None:
            argv = [*in_pod(ns), *argv]
            return argv, f"[{PREFIX}{ns}]$ {shown}"
        return argv, f"$ {shown}"

    def env(self) -> dict[str, str]:
        path = [str(self.workdir / ".bin")] + os.environ.get("PATH", "").split(":")
        return {"PATH": ":".join(path), "LC_ALL": "C.UTF-8", "HOME": str(self.workdir), "PYTHONDONTWRITEBYTECODE": "1"}

    def sh(self, command: str, *, ns: str | None = None, user: int | None = None, check: bool = True,
           timeout: float = 30, show: str | None = None, record: bool = True, input: str | None = None) -> Result:  # fmt: skip
        """Run a shell command in the work folder; record it and its output in the transcript."""
        argv, full = self._wrap(command, ns, user)
        try:
            done = subprocess.run(
                argv, cwd=self.workdir, env=self.env(), input=input,
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout,
            )  # fmt: skip
            result = Result(full, done.stdout, done.returncode)
        except subprocess.TimeoutExpired as exc:
            out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
            raise LabFailure(self._where(full, out, f"timed out after {timeout} s")) from None
        self.last = result
        if record:
            self._record(show or full, result.output)
        if check and result.code != 0:
            raise LabFailure(self._where(full, result.output, f"exit status {result.code}"))
        return result

    def query(self, command: str, **kwargs) -> Result:
        """Run a command for the lab's own checks, without recording it."""
        return self.sh(command, record=False, **kwargs)

    def start(self, command: str, *, name: str, ns: str | None = None, user: int | None = None,
              ready=None, timeout: float = 20, record: bool = True) -> subprocess.Popen:  # fmt: skip
        """Start a background process (output in <work>/<name>.log); wait until ``ready()``."""
        argv, full = self._wrap(command, ns, user, exec_=True)
        log = open(self.workdir / f"{name}.log", "wb")  # noqa: SIM115 - closed with the lab
        process = subprocess.Popen(
            argv, cwd=self.workdir, env=self.env(),
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        self.processes.append((name, process))
        if record:
            self._record(f"{full} &", "")
        if ready is not None:
            deadline = time.monotonic() + timeout
            while not ready():
                if process.poll() is not None:
                    raise LabFailure(self._where(full, self.log(name), f"{name} exited with {process.returncode}"))
                if time.monotonic() > deadline:
                    raise LabFailure(self._where(full, self.log(name), f"{name} not ready after {timeout} s"))
                time.sleep(0.05)
        return process

    def stop(self, name: str, sig: int = signal.SIGTERM, timeout: float = 10) -> int:
        for entry in list(self.processes):
            if entry[0] == name:
                process = entry[1]
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, sig)
                try:
                    process.wait(timeout)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(process.pid, signal.SIGKILL)
                    process.wait(5)
                self.processes.remove(entry)
                return process.returncode
        raise KeyError(name)

    def wait(self, name: str, timeout: float = 20) -> int:
        """Wait for a background process to end by itself; its exit status."""
        for entry in list(self.processes):
            if entry[0] == name:
                try:
                    code = entry[1].wait(timeout)
                except subprocess.TimeoutExpired:
                    raise LabFailure(self._where(name, self.log(name), f"{name} still running after {timeout} s")) from None
                self.processes.remove(entry)
                return code
        raise KeyError(name)

    def claim_base_id(self, base_id: int) -> None:
        """Hot restart's shared memory is host-wide (/dev/shm/envoy_shared_memory_<base id x 10>), and
        an Envoy with restart epoch 0 unlinks whatever holds its name: refuse when a process that is
        not this lab's maps it; remove it when it is left over from a crashed run."""
        shm = Path(f"/dev/shm/envoy_shared_memory_{base_id * 10}")
        if shm.exists():
            users = []
            for maps in Path("/proc").glob("[0-9]*/maps"):
                with contextlib.suppress(OSError):
                    if str(shm) in maps.read_text(errors="replace"):
                        users.append(maps.parent.name)
            if users:
                raise LabSkipped(f"{shm} is in use by process {', '.join(users)} (an Envoy with --base-id {base_id} "
                                 "that is not this lab's): stop it first")  # fmt: skip
            shm.unlink()
        self.cleanups.append(lambda: shm.unlink(missing_ok=True))

    def log(self, name: str) -> str:
        path = self.workdir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def fact(self, holds: bool, text: str) -> None:
        """What the pages say about this step's output; the lab fails when it does not hold."""
        if not holds:
            last = self.last
            raise LabFailure(self._where(last.command if last else "-", last.output if last else "", f"fact does not hold: {text}"))

    def _where(self, command: str, output: str, what: str) -> str:
        tail = "\n".join(output.rstrip().splitlines()[-25:])
        return f"lab {self.name}, step {self.sections[-1].name}: {what}\n  command: {command}\n  output:\n{tail}"

    # -- pods and addresses ----------------------------------------------------------------

    def pod(self, name: str) -> str:
        """A network namespace standing for a Pod (loopback up); returns its name without prefix."""
        netns = PREFIX + name
        subprocess.run(["ip", "netns", "add", netns], check=True, capture_output=True)
        self.pods.append(netns)
        subprocess.run([*in_pod(name), "ip", "link", "set", "lo", "up"], check=True)
        return name

    def link(self, a: str, a_addr: str, b: str, b_addr: str) -> None:
        """A veth pair between two pods, with an address (CIDR) on each end."""
        ea, eb = f"{PREFIX[:3]}{a}"[:15], f"{PREFIX[:3]}{b}"[:15]
        subprocess.run(["ip", "link", "add", ea, "netns", PREFIX + a, "type", "veth", "peer", eb, "netns", PREFIX + b],
                       check=True, capture_output=True)  # fmt: skip
        for ns, dev, addr in ((a, ea, a_addr), (b, eb, b_addr)):
            subprocess.run([*in_pod(ns), "ip", "addr", "add", addr, "dev", dev], check=True)
            subprocess.run([*in_pod(ns), "ip", "link", "set", dev, "up"], check=True)

    # -- Envoy ---------------------------------------------------------------------------------

    def admin(self, port: int, path: str, ns: str | None = None, record: bool = True, show_path: str | None = None) -> Result:
        """GET an admin endpoint with curl, as a reader would."""
        url = f"http://127.0.0.1:{port}/{path.lstrip('/')}"
        return self.sh(f"curl -s '{url}'", ns=ns, record=record)

    def stat(self, port: int, name: str, ns: str | None = None) -> int:
        """One counter or gauge from /stats (0 when Envoy has not created it), not recorded."""
        out = self.query(f"curl -s -m 2 'http://127.0.0.1:{port}/stats?filter=^{re.escape(name)}$'", ns=ns, check=False).output
        match = re.search(rf"^{re.escape(name)}: (\d+)$", out, re.M)
        return int(match.group(1)) if match else 0

    def envoy_ready(self, port: int, ns: str | None = None):
        """A readiness probe for lab.start: the admin /ready endpoint answers LIVE."""

        def ready() -> bool:
            out = self.query(f"curl -s -m 1 http://127.0.0.1:{port}/ready", ns=ns, check=False).output
            return out.strip() == "LIVE"

        return ready

    def port_open(self, port: int, ns: str | None = None, host: str = "127.0.0.1"):
        def ready() -> bool:
            if ns is None:
                with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
                    return True
                return False
            code = f"import socket; socket.create_connection(({host!r}, {port}), timeout=0.5)"
            return self.query(f"python3 -c {shlex.quote(code)}", ns=ns, check=False).code == 0

        return ready

    # -- cleaning up -------------------------------------------------------------------------------

    def close(self) -> None:
        for name, _ in list(reversed(self.processes)):
            with contextlib.suppress(Exception):
                self.stop(name, timeout=5)
        for cleanup in reversed(self.cleanups):
            with contextlib.suppress(Exception):
                cleanup()
        for netns in reversed(self.pods):
            remove_namespace(netns)


def in_pod(pod: str) -> list[str]:
    """The argv prefix that runs a command in a pod's network namespace.

    ``nsenter --net`` rather than ``ip netns exec`` (or ``ip -n``): those also make / a slave
    mount and remount /sys, which fails where / is not a mount point (a chroot, as on the
    fresh-machine check). Entering the network namespace is all a lab needs; a reader's
    ``ip netns exec insider-<pod> …`` does the same for the commands the transcripts show."""
    return ["nsenter", f"--net=/run/netns/{PREFIX}{pod}", "--"]


def remove_namespace(netns: str) -> None:
    """Kill what runs in a namespace of ours, then delete it (its veths go with it)."""
    pids = subprocess.run(["ip", "netns", "pids", netns], capture_output=True, text=True).stdout.split()
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid), signal.SIGKILL)
    subprocess.run(["ip", "netns", "del", netns], capture_output=True)


def clear_stale(prefix: str = PREFIX) -> list[str]:
    """Remove namespaces a crashed run of a lab left behind (ours by their prefix)."""
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split("\n")
    stale = [line.split()[0] for line in listed if line.startswith(prefix)]
    for netns in stale:
        remove_namespace(netns)
    return stale


@contextlib.contextmanager
def host_lock():
    """Labs run one at a time on a host: they share host-wide names (namespaces, shared memory)."""
    LOCK.parent.mkdir(parents=True, exist_ok=True)
    with open(LOCK, "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"another lab is running on this host (lock {LOCK}); waiting for it", file=sys.stderr)
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def http_get(url: str, timeout: float = 2) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - loopback only
        return response.read().decode()


def dump_json(value) -> str:
    return json.dumps(value, indent=2, sort_keys=True)
