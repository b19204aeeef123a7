"""Where the system tools the checks use are, found rather than assumed.

Supported for `make test`: Debian 12 (bookworm) or newer, where `make system-deps` installs
them (Chromium as the Debian package `chromium`, epubcheck as a jar). Elsewhere, point the
checks at your own copies with CHROMIUM=/path/to/chromium and EPUBCHECK_JAR=/path/to/epubcheck.jar;
a Chromium that runs in a sandbox of its own (Ubuntu's snap) cannot be driven by the tests.
"""

from __future__ import annotations

import os
import shutil
from functools import cache
from pathlib import Path


class MissingTool(RuntimeError):
    pass


@cache
def chromium() -> str:
    """The Chromium binary: $CHROMIUM, or `chromium` on PATH (Debian's package)."""
    found = os.environ.get("CHROMIUM") or shutil.which("chromium")
    if not found or not Path(found).is_file():
        raise MissingTool(
            "Chromium not found: run `make system-deps` (Debian package chromium), "
            "or set CHROMIUM=/path/to/chromium"
        )
    return str(Path(found).resolve())


@cache
def epubcheck_jar() -> str:
    """epubcheck's jar: $EPUBCHECK_JAR, or where `epubcheck` on PATH leads (Debian ships the jar
    itself as /usr/bin/epubcheck, runnable only with binfmt support)."""
    found = os.environ.get("EPUBCHECK_JAR") or shutil.which("epubcheck")
    if not found:
        raise MissingTool("epubcheck not found: run `make system-deps` (Debian package epubcheck), or set EPUBCHECK_JAR")
    jar = Path(found).resolve()
    if jar.suffix != ".jar":
        raise MissingTool(f"epubcheck at {found} is not a jar ({jar}); set EPUBCHECK_JAR=/path/to/epubcheck.jar")
    return str(jar)
