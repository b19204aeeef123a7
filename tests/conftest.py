"""Shared fixtures: one clean build of both editions, served on 127.0.0.1, for all tests."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from served import serve

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "_ext"))
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

LANGUAGES = ("zh_CN", "en")
# The files a copy of the book needs to build; _build, .venv and node_modules stay behind.
COPY_IGNORE = shutil.ignore_patterns("_build", ".venv", "node_modules", ".git", "__pycache__", ".pytest_cache")


def sphinx_build(src: Path, out: Path, language: str, builder: str = "html", extra_env=None, doctrees=None):
    """Run sphinx-build as the Makefile does (warnings are errors); return the finished process."""
    env = dict(os.environ, BOOK_LANGUAGE=language, **(extra_env or {}))
    env.pop("INSIDER_DIAGRAMS_PENDING", None)
    cmd = [
        sys.executable, "-m", "sphinx", "-b", builder, "-W", "--keep-going", "-n", "-q", "-j", "auto",
        "-d", str(doctrees or out.parent / f".doctrees-{builder}-{language}"),
        "-D", f"language={language}", str(src), str(out),
    ]  # fmt: skip
    return subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=src)


# `make test` runs the checks in two pytest-xdist workers (-n 2 --dist loadgroup): the site's
# browser checks in one, labs, print and planted-fault builds in the other, so that the labs'
# waiting and one worker's browsers overlap the other worker's builds. Tests that share a build
# must share a worker, or each worker would build it again: every module with a test of the built
# site is one group ("site"), every other module is a group of its own (its module-scoped builds),
# and the lab runs float one by one. xdist's own loadgroup cannot be used for this: it tags each
# test's node id with its group, and pytest 9.2's node ids can no longer be changed, so it
# silently schedules test by test. The scheduler below groups by node id instead.
SITE_FIXTURES = ("site", "site_url", "visits")
FLOATING = ("test_lab_runs_and_matches_its_stored_transcript",)
USES_SITE = re.compile(rf"^def test_\w+\([^)]*\b({'|'.join(SITE_FIXTURES)})\b", re.M)


def work_group(nodeid: str, site_modules: set[str]) -> str:
    """The group a test runs in: "site", its module, or (a lab run) itself."""
    module, _, name = nodeid.partition("::")
    if name.split("[")[0] in FLOATING:
        return nodeid
    return "site" if module in site_modules else module


def site_modules(tests: Path) -> set[str]:
    """Test modules (as node ids spell them) with a test that takes the built site."""
    root = tests.parent
    return {p.relative_to(root).as_posix() for p in tests.glob("test_*.py") if USES_SITE.search(p.read_text(encoding="utf-8"))}


def pytest_configure(config):
    if config.pluginmanager.hasplugin("xdist") and config.getvalue("dist") == "loadgroup":
        config.pluginmanager.register(SharedBuilds(), "insider-shared-builds")


class SharedBuilds:
    @pytest.hookimpl(tryfirst=True)
    def pytest_xdist_make_scheduler(self, config, log):
        from xdist.scheduler import LoadScopeScheduling

        modules = site_modules(Path(__file__).parent)

        class SharedBuildScheduling(LoadScopeScheduling):
            def _split_scope(self, nodeid: str) -> str:
                return work_group(nodeid, modules)

        return SharedBuildScheduling(config, log)


def copy_book(dest: Path) -> Path:
    """A scratch copy of the book, for tests that plant faults."""
    shutil.copytree(ROOT, dest, ignore=COPY_IGNORE)
    return dest


@pytest.fixture(scope="session")
def site(tmp_path_factory) -> Path:
    """Both editions built from scratch, with warnings as errors, laid out as the real site."""
    out = tmp_path_factory.mktemp("site")
    for language in LANGUAGES:
        done = sphinx_build(ROOT, out / language, language)
        assert done.returncode == 0, f"{language} edition failed:\n{done.stderr}\n{done.stdout}"
    shutil.copyfile(ROOT / "_templates" / "site-root.html", out / "index.html")
    return out


@pytest.fixture(scope="session")
def site_url(site):
    """The built site served over HTTP on 127.0.0.1 with gzip, as a CDN serves it."""
    with serve(site) as base:
        yield base


@pytest.fixture(scope="session")
def visits(site, site_url):
    """Every page of both editions visited once in Chromium and measured at both widths
    (tests/survey.py); shared by the page-wide browser checks."""
    from survey import survey

    return survey(site_url, {language: pages(site, language) for language in LANGUAGES})


def book_pages() -> list[Path]:
    """The book's source pages (not the README, CONTRIBUTING or anything under _ or . folders)."""
    return sorted(
        p
        for p in ROOT.rglob("*.md")
        if not any(part.startswith((".", "_")) or part in ("tests", "node_modules") for part in p.relative_to(ROOT).parts)
        and p.relative_to(ROOT).as_posix() not in ("README.md", "CONTRIBUTING.md")
    )


def pages(site: Path, language: str) -> list[str]:
    """Every page of an edition, as a path relative to the edition's root."""
    root = site / language
    return sorted(
        str(p.relative_to(root))
        for p in root.rglob("*.html")
        if not p.relative_to(root).parts[0].startswith("_")
    )
