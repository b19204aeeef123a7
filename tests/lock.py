"""`make lock`: pin every package the book's environment resolves, into constraints.txt.

The pins must install on the oldest Python the README supports, Debian 12's 3.11.2, so the
resolution asks pip for that interpreter (a package whose newest release needs 3.11.5 gets the
newest release that does not). pip resolves for another interpreter only from wheels; jieba
ships only a source distribution and has no dependencies, so it is resolved as pinned.
Only PyPI is consulted (no local wheel folders), since that is all a new machine has.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OLDEST_PYTHON = "3.11.2"
SOURCE_ONLY = {"jieba"}


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        build, kept = [], []
        for line in (ROOT / "requirements.txt").read_text().splitlines():
            name = re.split(r"[=<>\s]", line.strip(), maxsplit=1)[0].lower()
            if line.startswith("-c "):
                continue  # resolve afresh, not within the current pins
            (kept if name in SOURCE_ONLY else build).append(line)
        (scratch / "requirements.txt").write_text("\n".join(build) + "\n")
        dev = (ROOT / "requirements-dev.txt").read_text().replace("-r requirements.txt", f"-r {scratch / 'requirements.txt'}")
        (scratch / "requirements-dev.txt").write_text(dev)
        env = {k: v for k, v in os.environ.items() if k not in ("PIP_FIND_LINKS", "PIP_EXTRA_INDEX_URL", "PIP_CONSTRAINT")}
        env["PIP_CONFIG_FILE"] = os.devnull
        cmd = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
               "--report", str(scratch / "report.json"), "--python-version", OLDEST_PYTHON,
               "--only-binary=:all:", "--target", str(scratch / "target"),
               "-r", str(scratch / "requirements-dev.txt")]  # fmt: skip
        subprocess.run(cmd, check=True, env=env)
        report = json.loads((scratch / "report.json").read_text())
    pins = {i["metadata"]["name"]: i["metadata"]["version"] for i in report["install"]}
    for line in kept:
        name, _, version = line.split("#")[0].strip().partition("==")
        pins[name] = version
    lines = [f"{name}=={version}" for name, version in sorted(pins.items(), key=lambda p: p[0].lower())]
    header = (f"# Every package the book's environment resolves, pinned (make lock: tests/lock.py), resolved\n"
              f"# for Python {OLDEST_PYTHON} (Debian 12), the oldest the README supports.\n")  # fmt: skip
    (ROOT / "constraints.txt").write_text(header + "\n".join(lines) + "\n")
    print(f"constraints.txt: {len(lines)} packages")
    return 0


if __name__ == "__main__":
    sys.exit(main())
