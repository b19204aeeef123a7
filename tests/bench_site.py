"""`make bench-site`: the built site served with gzip on 127.0.0.1, page by page.

Prints, for every page of both editions: bytes on the wire and requests of a first visit,
Lighthouse scores (mobile, median of RUNS runs), axe-core violations in light and dark mode,
and Nu HTML checker errors; then the budgets and whether each holds. Exits 1 if one does not.
Environment: RUNS (Lighthouse runs per page, default 3), PAGES (a substring: only matching
pages, e.g. PAGES=ch2-envoy/), LIGHTHOUSE=0 to skip Lighthouse.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from audit import axe, lighthouse, tools_missing, vnu  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402
from conftest import LANGUAGES, pages  # noqa: E402
from served import launch, load, over_budget, serve  # noqa: E402

SCORE_BUDGETS = {"performance": 95, "accessibility": 100, "best-practices": 100, "seo": 100}


def main(site: Path) -> int:
    missing = tools_missing()
    if missing:
        raise SystemExit(missing)
    runs = int(os.environ.get("RUNS", "3"))
    only = os.environ.get("PAGES", "")
    with_lighthouse = os.environ.get("LIGHTHOUSE", "1") != "0"
    chosen = [(lang, rel) for lang in LANGUAGES for rel in pages(site, lang) if only in f"{lang}/{rel}"]
    if not chosen:
        raise SystemExit(f"no page of {site} matches PAGES={only!r}")
    started = time.perf_counter()
    rows, problems = {}, []
    html_errors = vnu([site / lang / rel for lang, rel in chosen])
    with serve(site) as base, sync_playwright() as p:
        browser = launch(p)
        for lang, rel in chosen:
            url = f"{base}/{lang}/{rel}"
            first = load(browser, url)
            row = rows[url] = {
                "page": f"{lang}/{rel}",
                "kb": first.weight / 1024,
                "requests": len(first.transfers),
                "external": first.external,
                "axe": {s: axe(browser, url, s) for s in ("light", "dark")},
                "vnu": html_errors.get(str(site / lang / rel), []),
            }
            if reason := over_budget(rel, first.weight):
                problems.append(f"{lang}/{reason}")
            if first.external:
                problems.append(f"{row['page']}: requests leave the site: {first.external[:3]}")
            for scheme, violations in row["axe"].items():
                for v in violations:
                    problems.append(f"{row['page']} ({scheme}): axe {v['id']} ({v['impact']}) at {v['nodes'][:2]}")
            problems += row["vnu"]
        browser.close()
        if with_lighthouse:
            scores = lighthouse(list(rows), runs)
            for url, row in rows.items():
                row["lighthouse"] = scores[url]
                for category, floor in SCORE_BUDGETS.items():
                    if scores[url]["scores"][category] < floor:
                        problems.append(
                            f"{row['page']}: Lighthouse {category} {scores[url]['scores'][category]:.0f} < {floor}"
                            f" (failed audits: {', '.join(scores[url]['failed']) or 'none'})"
                        )
    report(rows, with_lighthouse, runs)
    print(f"\n{len(rows)} pages in {time.perf_counter() - started:.0f} s")
    if problems:
        print("\nBudgets broken:")
        print("\n".join(f"  {p}" for p in problems))
        return 1
    print("All budgets hold.")
    return 0


def report(rows: dict, with_lighthouse: bool, runs: int) -> None:
    head = f"{'page':52} {'KB gz':>7} {'req':>4} {'axe L/D':>8} {'vnu':>4}"
    if with_lighthouse:
        head += f" {'perf':>5} {'a11y':>5} {'bp':>4} {'seo':>4} {'FCP ms':>7} {'LCP ms':>7}"
    print(head)
    for row in rows.values():
        line = (
            f"{row['page']:52} {row['kb']:7.1f} {row['requests']:4d} "
            f"{len(row['axe']['light']):>3}/{len(row['axe']['dark']):<4} {len(row['vnu']):4d}"
        )
        if with_lighthouse:
            s = row["lighthouse"]["scores"]
            line += (
                f" {s['performance']:5.0f} {s['accessibility']:5.0f} {s['best-practices']:4.0f} {s['seo']:4.0f}"
                f" {row['lighthouse']['fcp']:7.0f} {row['lighthouse']['lcp']:7.0f}"
            )
        print(line)
    weights = [row["kb"] for row in rows.values()]
    print(
        f"\nweight KB gz: median {statistics.median(weights):.1f}, max {max(weights):.1f}"
        f" ({max(rows.values(), key=lambda r: r['kb'])['page']}); requests max {max(r['requests'] for r in rows.values())}"
    )
    if with_lighthouse:
        for category in SCORE_BUDGETS:
            values = [row["lighthouse"]["scores"][category] for row in rows.values()]
            print(f"Lighthouse {category} (median of {runs} runs per page): min {min(values):.0f}, median {statistics.median(values):.0f}")


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1] if len(sys.argv) > 1 else "_build/site")))
