"""`make bench`: build times of each edition, per page and per 1,000 characters (not a test).

For each edition, on a scratch copy of the book, median of RUNS runs (default 3):
- clean: a build from nothing, as `make html` / `make html-en` run it (parallel, -j auto);
- no change: the same build again;
- edit (new process): one page changed, rebuilt by a new sphinx-build, as `make html` does;
- edit (warm): one page changed, rebuilt inside a process that has built once, as `make serve`
  does (insider.autobuild).
Pages are the edition's HTML pages without search.html and genindex.html; characters are the
text of their article bodies. DOUBLE=1 measures a synthetic book twice this size (tests/double.py).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from conftest import LANGUAGES, copy_book, sphinx_build  # noqa: E402
from double import double  # noqa: E402

RUNS = int(os.environ.get("RUNS", "3"))
EDITED = Path("ch2-envoy") / "event-loop.md"
ARTICLE = re.compile(r"<article\b.*?</article>", re.S)
TAG = re.compile(r"<[^>]+>")

WARM = r"""
import json, sys, time
from pathlib import Path
from sphinx.cmd.build import build_main
book, out, doctrees, language, page, runs = sys.argv[1:7]
args = ["-b", "html", "-q", "-j", "auto", "-d", doctrees, "-D", f"language={language}", book, out]
assert build_main(args) == 0
times = []
for _ in range(int(runs)):
    p = Path(book, page)
    p.write_text(p.read_text(encoding="utf-8") + "\n", encoding="utf-8")
    start = time.perf_counter()
    assert build_main(args) == 0
    times.append(time.perf_counter() - start)
print(json.dumps(times))
"""


def timed(book: Path, out: Path, language: str) -> float:
    start = time.perf_counter()
    done = sphinx_build(book, out, language, doctrees=out.parent / f"doctrees-{language}")
    if done.returncode != 0:
        raise SystemExit(done.stderr)
    return time.perf_counter() - start


def edit(book: Path) -> None:
    page = book / EDITED
    page.write_text(page.read_text(encoding="utf-8") + "\n", encoding="utf-8")


def measure(out: Path) -> tuple[int, int]:
    """(pages, characters of article text) of a built edition."""
    pages = [p for p in out.rglob("*.html") if not p.relative_to(out).parts[0].startswith("_")
             and p.name not in ("search.html", "genindex.html")]  # fmt: skip
    chars = 0
    for page in pages:
        article = ARTICLE.search(page.read_text(encoding="utf-8"))
        chars += len(" ".join(TAG.sub(" ", article.group(0)).split())) if article else 0
    return len(pages), chars


def warm_edits(book: Path, scratch: Path, language: str) -> list[float]:
    env = dict(os.environ, BOOK_LANGUAGE=language, PYTHONPATH=str(book / "_ext"))
    done = subprocess.run(
        [sys.executable, "-c", WARM, str(book), str(scratch / f"warm-{language}"), str(scratch / f"warm-dt-{language}"),
         language, str(EDITED), str(RUNS)],
        capture_output=True, text=True, env=env, cwd=book,
    )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(done.stderr)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        book = copy_book(scratch / "book")
        if os.environ.get("DOUBLE"):
            double(book)
        print(f"median of {RUNS} runs; {os.cpu_count()} cores{'; the book doubled' if os.environ.get('DOUBLE') else ''}")
        header = ("edition", "pages", "kchars", "clean s", "ms/page", "ms/kchar", "no change s", "edit s", "edit warm s")
        print("  ".join(f"{h:>11}" for h in header))
        for language in LANGUAGES:
            clean, unchanged, edited = [], [], []
            for _ in range(RUNS):
                out = scratch / "out" / language
                shutil.rmtree(out.parent, ignore_errors=True)
                clean.append(timed(book, out, language))
                unchanged.append(timed(book, out, language))
                edit(book)
                edited.append(timed(book, out, language))
            pages, chars = measure(out)
            warm = warm_edits(book, scratch, language)
            c = statistics.median(clean)
            row = (language, pages, f"{chars / 1000:.0f}", f"{c:.1f}", f"{1000 * c / pages:.0f}",
                   f"{c / (chars / 1000) * 1000:.0f}", f"{statistics.median(unchanged):.1f}",
                   f"{statistics.median(edited):.1f}", f"{statistics.median(warm):.2f}")  # fmt: skip
            print("  ".join(f"{str(v):>11}" for v in row), flush=True)


if __name__ == "__main__":
    main()
