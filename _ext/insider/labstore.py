"""The labs' transcript store, shared by the runner (labs/run.py) and the page directive.

A transcript is stored as ``labs/transcripts/<lab>.<key>.txt``: ``key`` is a hash of
everything that decides what the lab does (its folder, the lab kit and runner, the pinned Envoy
and Python packages), so a change to any of them leaves the lab without a current transcript
until it is recorded again, exactly like a diagram without a render. The text is the run as
recorded, in named sections (``## name`` lines): real output, shown in the pages as it came.

Comparing a fresh run with the stored one normalizes both first, with the kit's rules and the
lab's own (times, ports, process ids: what differs between two honest runs), and nothing else.
"""

from __future__ import annotations

import difflib
import hashlib
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LABS = ROOT / "labs"
STORE = LABS / "transcripts"
# Shared inputs of every lab: the kit, the runner and the package pins; plus the helpers in
# labs/common/ that the lab names in its USES list (only those are copied into its work folder).
SHARED = ("kit.py", "run.py", "requirements.txt")
USES = re.compile(r"^USES\s*=\s*\[([^\]]*)\]", re.M)
SECTION = re.compile(r"^## ([a-z0-9][a-z0-9-]*)$", re.M)


def lab_names() -> list[str]:
    return sorted(p.parent.name for p in LABS.glob("*/lab.py") if p.parent.name != "common")


def _files(path: Path):
    if path.is_file():
        yield path
    elif path.is_dir():
        for child in sorted(path.rglob("*")):
            if child.is_file() and "__pycache__" not in child.parts:
                yield child


def uses(name: str) -> list[str]:
    """The helpers of labs/common/ a lab declares (``USES = ["upstream.py", ...]`` in lab.py)."""
    match = USES.search((LABS / name / "lab.py").read_text(encoding="utf-8"))
    return re.findall(r"[\"']([^\"']+)[\"']", match.group(1)) if match else []


def inputs(name: str) -> list[Path]:
    """Every file that decides what a lab does."""
    common = [LABS / "common" / used for used in uses(name)]
    return [*_files(LABS / name), *(f for s in SHARED for f in _files(LABS / s)), *(f for c in common for f in _files(c))]


def lab_key(name: str) -> str:
    digest = hashlib.sha256()
    for path in inputs(name):
        digest.update(path.relative_to(LABS).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


META = re.compile(r'^(TITLE|SUMMARY_ZH)\s*=\s*(?:\(\s*)?((?:"[^"\n]*"\s*)+)\)?', re.M)


def lab_meta(name: str) -> dict[str, str]:
    """TITLE (English) and SUMMARY_ZH (Chinese) of a lab, read from its lab.py without running it."""
    text = (LABS / name / "lab.py").read_text(encoding="utf-8")
    return {key: "".join(re.findall(r'"([^"\n]*)"', value)) for key, value in META.findall(text)}


def transcript_path(name: str, key: str | None = None) -> Path:
    return STORE / f"{name}.{key or lab_key(name)}.txt"


def recorded_keys(name: str) -> list[str]:
    return sorted(p.name.split(".")[1] for p in STORE.glob(f"{name}.*.txt"))


def sections(text: str) -> dict[str, str]:
    """Section name -> its lines (without the ``## name`` line)."""
    out = {}
    matches = list(SECTION.finditer(text))
    for i, match in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        out[match.group(1)] = text[match.end() + 1 : end].rstrip("\n")
    return out


def normalize(text: str, rules) -> str:
    for pattern, replacement in rules:
        text = re.sub(pattern, replacement, text, flags=re.M)
    return text


def differences(stored: str, fresh: str, rules) -> list[str]:
    """The unified diff of two transcripts after normalizing both; empty when they agree."""
    a = normalize(stored, rules).splitlines()
    b = normalize(fresh, rules).splitlines()
    return list(difflib.unified_diff(a, b, "stored transcript", "this run", lineterm="", n=2))
