"""Render pending diagrams into the cache: ``python -m insider.render PENDING KEYS...``.

Each diagram is drawn twice: SVG for the web and EPUB editions, vector PDF for the LaTeX one.

``make diagrams`` builds both editions with ``INSIDER_DIAGRAMS_PENDING=PENDING``; every diagram
without a render is written there as ``<key>.mmd``. This draws each one with the pinned
mermaid-cli (``_diagrams/node_modules``) in Debian's Chromium, checks that the SVG carries real
text, and then removes renders that no page of either edition uses (the KEYS files list them).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .diagrams import DIAGRAMS_DIR, PDF_RENDERS_DIR, RENDERS_DIR, render_path

MMDC = DIAGRAMS_DIR / "node_modules" / ".bin" / "mmdc"
# Debian's Chromium (`make system-deps`), or the one $CHROMIUM names.
CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or "chromium"


def render(source: Path) -> str:
    key = source.stem
    for fmt in ("svg", "pdf"):
        if not render_path(key, fmt).is_file():
            render_one(source, fmt)
    return key


def render_one(source: Path, fmt: str) -> None:
    key = source.stem
    out = render_path(key, fmt)
    tmp = out.with_suffix(f".tmp.{fmt}")
    cmd = [
        str(MMDC), "--quiet",
        "--input", str(source), "--output", str(tmp),
        "--configFile", str(DIAGRAMS_DIR / "mermaid.json"),
        "--puppeteerConfigFile", str(DIAGRAMS_DIR / "puppeteer.json"),
        "--svgId", f"d-{key[:12]}",
        "--backgroundColor", "transparent",
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, PUPPETEER_EXECUTABLE_PATH=CHROMIUM))
    if done.returncode != 0 or not tmp.is_file():
        raise RuntimeError(f"mermaid-cli failed on {source}:\n{done.stderr or done.stdout}")
    if fmt == "svg" and "<foreignObject" in tmp.read_text(encoding="utf-8"):
        tmp.unlink()
        raise RuntimeError(f"{source}: the render has HTML labels; keep htmlLabels false")
    tmp.replace(out)


def main(pending_dir: str, *key_files: str) -> int:
    RENDERS_DIR.mkdir(parents=True, exist_ok=True)
    PDF_RENDERS_DIR.mkdir(parents=True, exist_ok=True)
    sources = sorted(Path(pending_dir).glob("*.mmd")) if Path(pending_dir).is_dir() else []
    with ThreadPoolExecutor(max_workers=2) as pool:
        for key in pool.map(render, sources):
            print(f"rendered {key}.svg")
    lists = [Path(f) for f in key_files]
    if lists and all(f.is_file() for f in lists):
        used = {k for f in lists for k in f.read_text().split()}
        for render_file in sorted([*RENDERS_DIR.glob("*.svg"), *PDF_RENDERS_DIR.glob("*.pdf")]):
            if render_file.stem not in used:
                render_file.unlink()
                print(f"removed unused {render_file.name}")
    print(f"{len(sources)} rendered; {len(list(RENDERS_DIR.glob('*.svg')))} renders in the cache")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
