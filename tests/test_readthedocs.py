"""The build Read the Docs runs: its command, its environment, no Node or Chromium."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
import yaml
from conftest import ROOT, copy_book


def test_readthedocs_config():
    config = yaml.safe_load((ROOT / ".readthedocs.yaml").read_text())
    assert config["version"] == 2
    assert re.fullmatch(r"ubuntu-2[4-9]\.04", config["build"]["os"])
    assert config["sphinx"]["fail_on_warning"] is True
    assert config["sphinx"]["configuration"] == "conf.py"
    assert set(config["formats"]) == {"pdf", "epub"}
    assert "jobs" not in config["build"] and "apt_packages" not in config["build"], "RTD needs only Python"


PIN = re.compile(r"([A-Za-z0-9_.-]+)==([0-9][0-9A-Za-z.]*)")


def pins(path) -> dict[str, str]:
    found = {}
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line and not line.startswith(("-c ", "-r ")):
            match = PIN.fullmatch(line)
            assert match, f"{path.name}: not an exact pin: {line}"
            found[match.group(1).lower().replace("_", "-")] = match.group(2)
    return found


def test_requirements_are_exact_pins_and_the_whole_set_is_pinned():
    """Direct requirements are exact pins; constraints.txt pins everything the environment holds
    (what Read the Docs and `make html` install is the same a year from now)."""
    assert "-c constraints.txt" in (ROOT / "requirements.txt").read_text().splitlines()
    constraints = pins(ROOT / "constraints.txt")
    for name in ("requirements.txt", "requirements-dev.txt"):
        for package, version in pins(ROOT / name).items():
            assert constraints.get(package) == version, f"{name}: {package}=={version} is not what constraints.txt pins"
    freeze = subprocess.run(
        [sys.executable, "-m", "pip", "freeze", "--all", "--exclude", "pip", "--exclude", "setuptools"],
        capture_output=True, text=True, check=True,
    ).stdout  # pip and setuptools come with the virtual environment, not from the pins
    installed = {m.group(1).lower().replace("_", "-"): m.group(2) for m in PIN.finditer(freeze)}
    unpinned = {p: v for p, v in installed.items() if constraints.get(p) != v}
    assert not unpinned, f"installed but not pinned in constraints.txt (run `make lock`): {unpinned}"


def test_the_labs_environment_is_pinned_whole():
    labs_python = ROOT / ".venv-labs" / "bin" / "python"
    if not labs_python.is_file():
        pytest.skip("no .venv-labs (make labs or make test makes it)")
    pinned = pins(ROOT / "labs" / "requirements.txt")
    freeze = subprocess.run([str(labs_python), "-m", "pip", "freeze", "--all", "--exclude", "pip", "--exclude", "setuptools"],
                            capture_output=True, text=True, check=True).stdout  # fmt: skip
    installed = {m.group(1).lower().replace("_", "-"): m.group(2) for m in PIN.finditer(freeze)}
    assert installed == pinned, f"labs/requirements.txt must pin the labs' whole environment: {installed} vs {pinned}"


EDITIONS = {
    # language: (Read the Docs language slug, the other edition's slug, the edition's title)
    "zh_CN": ("zh-cn", "en", "《Istio &amp; Envoy 内幕》"),
    "en": ("en", "zh-cn", "Istio &amp; Envoy Insider"),
}


@pytest.mark.parametrize("language", sorted(EDITIONS))
def test_readthedocs_command_builds_with_python_only(tmp_path, language):
    slug, other, title = EDITIONS[language]
    canonical = f"https://insider.example.org/{slug}/latest/"
    book = copy_book(tmp_path / "book")
    out = tmp_path / "html"
    env = {
        # Only the virtual environment's tools: no node, no chromium, no mmdc.
        "PATH": os.path.dirname(sys.executable),
        "HOME": str(tmp_path),
        "READTHEDOCS": "True",
        "READTHEDOCS_VERSION": "latest",
        "READTHEDOCS_LANGUAGE": slug,
        "READTHEDOCS_CANONICAL_URL": canonical,
        "READTHEDOCS_OUTPUT": str(tmp_path),
    }
    cmd = [sys.executable, "-m", "sphinx", "-T", "-W", "--keep-going", "-b", "html",
           "-d", "_build/doctrees", "-D", f"language={language}", ".", str(out)]  # fmt: skip
    done = subprocess.run(cmd, cwd=book, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr

    page = (out / "ch0" / "index.html").read_text(encoding="utf-8")
    assert f"{title}</title>" in page
    assert f'<link rel="canonical" href="{canonical}ch0/index.html"' in page
    other_page = f"https://insider.example.org/{other}/latest/ch0/index.html"
    assert f'<link rel="alternate" hreflang="{"en" if other == "en" else "zh-Hans"}" href="{other_page}"' in page
    # The switcher climbs out of /<slug>/latest/ch0/ into /<other>/latest/ch0/.
    assert f'class="btn insider-switcher" href="../../../{other}/latest/ch0/index.html"' in page

    sitemap = (out / "sitemap.xml").read_text(encoding="utf-8")
    assert f"<loc>{canonical}ch0/index.html</loc>" in sitemap
    assert f'href="https://insider.example.org/{other}/latest/glossary.html"' in sitemap
    assert "insider.example.org" not in (ROOT / "conf.py").read_text()


def test_local_build_has_no_canonical_host(site):
    page = (site / "zh_CN" / "ch0" / "index.html").read_text(encoding="utf-8")
    assert 'rel="canonical"' not in page
    assert 'class="btn insider-switcher" href="../../en/ch0/index.html"' in page
    assert not (site / "zh_CN" / "sitemap.xml").exists()
