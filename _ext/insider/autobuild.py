"""``make serve``: sphinx-autobuild, rebuilding inside one warm Python process.

sphinx-autobuild starts a new ``python -m sphinx`` for every change, so each one-page edit pays
again for importing Sphinx, MyST and the themes, loading the extension's source indexes and
jieba's dictionary: about two seconds of a three-second rebuild. Here the same server runs each
rebuild with ``sphinx.cmd.build.build_main`` in its own process, which keeps all of that loaded;
a fresh Sphinx application still reads the configuration and the saved environment each time,
so the result is the one a separate process would write.

A change to the extension's own code (``_ext/``) restarts the process, so new code is never
served by old modules.

    python -m insider.autobuild [sphinx-autobuild arguments]
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import sphinx_autobuild.__main__ as autobuild_main
import sphinx_autobuild.build as autobuild_build
from sphinx.cmd.build import build_main

EXTENSION = Path(__file__).resolve().parent


def _code_stamp() -> tuple:
    return tuple(sorted((p.name, p.stat().st_mtime_ns) for p in EXTENSION.glob("*.py")))


STARTED_WITH = _code_stamp()


def sphinx_args(cmd) -> list[str] | None:
    """The sphinx-build arguments of a ``python -m sphinx [build] ...`` command, else None."""
    cmd = [str(c) for c in cmd]
    if cmd[:3] != [sys.executable, "-m", "sphinx"]:
        return None
    args = cmd[3:]
    return args[1:] if args[:1] == ["build"] else args


class InProcess:
    """Stands in for the ``subprocess`` module inside sphinx_autobuild.build."""

    CalledProcessError = subprocess.CalledProcessError

    @staticmethod
    def run(cmd, check=False, **kwargs):
        args = sphinx_args(cmd)
        if args is None:
            return subprocess.run(cmd, check=check, **kwargs)
        if _code_stamp() != STARTED_WITH:
            print("The extension's code changed: restarting the server.", flush=True)
            os.execv(sys.executable, [sys.executable, "-m", "insider.autobuild", *sys.argv[1:]])
        from . import diagrams

        diagrams._key_inputs.cache_clear()  # the Mermaid config or the mermaid-cli pin may change
        code = build_main(args)
        if check and code:
            raise subprocess.CalledProcessError(code, cmd)
        return subprocess.CompletedProcess(cmd, code)


def main(argv: list[str]) -> None:
    autobuild_build.subprocess = InProcess
    autobuild_main.main(argv)


if __name__ == "__main__":
    main(sys.argv[1:])
