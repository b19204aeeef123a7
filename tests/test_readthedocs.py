"""The build Read the Docs runs: its command, its environment, no Node or Chromium."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import yaml
from conftest import ROOT, copy_book

CANONICAL = "https://insider.example.org/zh-cn/latest/"


def test_readthedocs_config():
    config = yaml.safe_load((ROOT / ".readthedocs.yaml").read_text())
    assert config["version"] == 2
    assert re.fullmatch(r"ubuntu-2[4-9]\.04", config["build"]["os"])
    assert config["sphinx"]["fail_on_warning"] is True
    assert config["sphinx"]["configuration"] == "conf.py"
    assert set(config["formats"]) == {"pdf", "epub"}
    assert "jobs" not in config["build"] and "apt_packages" not in config["build"], "RTD needs only Python"


def test_requirements_are_exact_pins():
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            assert re.fullmatch(r"[A-Za-z0-9_.-]+==[0-9][0-9A-Za-z.]*", line), line


def test_readthedocs_command_builds_with_python_only(tmp_path):
    book = copy_book(tmp_path / "book")
    out = tmp_path / "html"
    env = {
        # Only the virtual environment's tools: no node, no chromium, no mmdc.
        "PATH": os.path.dirname(sys.executable),
        "HOME": str(tmp_path),
        "READTHEDOCS": "True",
        "READTHEDOCS_VERSION": "latest",
        "READTHEDOCS_LANGUAGE": "zh-cn",
        "READTHEDOCS_CANONICAL_URL": CANONICAL,
        "READTHEDOCS_OUTPUT": str(tmp_path),
    }
    cmd = [sys.executable, "-m", "sphinx", "-T", "-W", "--keep-going", "-b", "html",
           "-d", "_build/doctrees", "-D", "language=zh_CN", ".", str(out)]  # fmt: skip
    done = subprocess.run(cmd, cwd=book, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr

    page = (out / "ch0" / "index.html").read_text(encoding="utf-8")
    assert f'<link rel="canonical" href="{CANONICAL}ch0/index.html"' in page
    assert '<link rel="alternate" hreflang="en" href="https://insider.example.org/en/latest/ch0/index.html"' in page
    # The switcher climbs out of /zh-cn/latest/ch0/ into /en/latest/ch0/.
    assert 'class="btn insider-switcher" href="../../../en/latest/ch0/index.html"' in page

    sitemap = (out / "sitemap.xml").read_text(encoding="utf-8")
    assert f"<loc>{CANONICAL}ch0/index.html</loc>" in sitemap
    assert 'hreflang="en" href="https://insider.example.org/en/latest/glossary.html"' in sitemap
    assert "insider.example.org" not in (ROOT / "conf.py").read_text()


def test_local_build_has_no_canonical_host(site):
    page = (site / "zh_CN" / "ch0" / "index.html").read_text(encoding="utf-8")
    assert 'rel="canonical"' not in page
    assert 'class="btn insider-switcher" href="../../en/ch0/index.html"' in page
    assert not (site / "zh_CN" / "sitemap.xml").exists()
