"""`make bench`: clean and incremental build times of each edition (not a test)."""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from conftest import LANGUAGES, ROOT, copy_book, sphinx_build  # noqa: E402


def timed(book: Path, out: Path, language: str) -> float:
    start = time.perf_counter()
    done = sphinx_build(book, out, language, doctrees=out.parent / f"doctrees-{language}")
    if done.returncode != 0:
        raise SystemExit(done.stderr)
    return time.perf_counter() - start


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        book = copy_book(Path(scratch) / "book")
        page = book / "ch0" / "index.md"
        print(f"{'edition':8} {'clean (s)':>10} {'no change (s)':>14} {'one page edited (s)':>20}")
        for language in LANGUAGES:
            out = Path(scratch) / "out" / language
            clean = timed(book, out, language)
            unchanged = timed(book, out, language)
            page.write_text(page.read_text(encoding="utf-8") + "\n", encoding="utf-8")
            edited = timed(book, out, language)
            print(f"{language:8} {clean:10.1f} {unchanged:14.1f} {edited:20.1f}")
        shutil.rmtree(Path(scratch) / "out")


if __name__ == "__main__":
    main()
