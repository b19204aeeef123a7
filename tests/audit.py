"""Audits of the built site with tools from the npm registry (tests/site-audit/package.json):
axe-core in Chromium, the W3C Nu HTML checker (vnu-jar, on Java) and Lighthouse.

Used by `make bench-site` (all three) and by the tests (axe and vnu).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
from pathlib import Path

from served import load
from system import chromium

AUDIT = Path(__file__).resolve().parent / "site-audit"
MODULES = AUDIT / "node_modules"
AXE_JS = MODULES / "axe-core" / "axe.min.js"
VNU_JAR = MODULES / "vnu-jar" / "build" / "dist" / "vnu.jar"
LIGHTHOUSE_CATEGORIES = ("performance", "accessibility", "best-practices", "seo")


def tools_missing() -> str | None:
    for path in (AXE_JS, VNU_JAR, MODULES / "lighthouse"):
        if not path.exists():
            return f"{path} is missing: run `make site-audit-tools` (npm ci in tests/site-audit)"
    return None


def axe(browser, url: str, color_scheme: str) -> list[dict]:
    """axe-core's violations on a page in one colour scheme (the book follows the system's)."""
    result, page = load(browser, url, color_scheme=color_scheme, keep_open=True)
    try:
        theme = page.evaluate("document.documentElement.dataset.theme")
        if theme != color_scheme:
            raise AssertionError(f"{url}: asked for {color_scheme}, page shows {theme}")
        page.add_script_tag(path=str(AXE_JS))
        return page.evaluate(
            """async () => (await axe.run(document, {resultTypes: ['violations']})).violations
                 .map(v => ({id: v.id, impact: v.impact, nodes: v.nodes.map(n => n.target.join(' '))}))"""
        )
    finally:
        page.context.close()


def vnu(files: list[Path]) -> dict[str, list[str]]:
    """The Nu HTML checker's errors per file ("file:line: message"); warnings are not errors."""
    done = subprocess.run(
        ["java", "-jar", str(VNU_JAR), "--format", "json", "--exit-zero-always", *map(str, files)],
        capture_output=True,
        text=True,
    )
    try:
        messages = json.loads(done.stderr)["messages"]
    except (json.JSONDecodeError, KeyError) as exc:
        raise RuntimeError(f"vnu gave no report: {done.stderr[:500]}") from exc
    errors: dict[str, list[str]] = {str(f): [] for f in files}
    for message in messages:
        if message.get("type") == "error" or message.get("subType") == "fatal":
            where = message.get("url", "").removeprefix("file:")
            errors.setdefault(where, []).append(f"{where}:{message.get('lastLine', '?')}: {message['message']}")
    return errors


def lighthouse(urls: list[str], runs: int) -> dict[str, dict]:
    """Median Lighthouse scores (mobile profile) of ``runs`` runs per URL, with the failed audits."""
    env = dict(os.environ, RUNS=str(runs), CHROME_PATH=chromium())
    done = subprocess.run(
        ["node", str(AUDIT / "lighthouse.mjs"), *urls], capture_output=True, text=True, env=env, cwd=AUDIT
    )
    if done.returncode != 0:
        raise RuntimeError(f"lighthouse failed:\n{done.stderr[-2000:]}")
    per_url: dict[str, list[dict]] = {}
    for line in done.stdout.splitlines():
        if line.startswith("{"):
            run = json.loads(line)
            per_url.setdefault(run["url"], []).append(run)
    medians = {}
    for url, url_runs in per_url.items():
        medians[url] = {
            "scores": {c: statistics.median(r["scores"][c] for r in url_runs) for c in LIGHTHOUSE_CATEGORIES},
            "failed": sorted({a for r in url_runs for a in r["failed"]}),
            "fcp": statistics.median(r["metrics"]["first-contentful-paint"] for r in url_runs),
            "lcp": statistics.median(r["metrics"]["largest-contentful-paint"] for r in url_runs),
        }
    return medians
