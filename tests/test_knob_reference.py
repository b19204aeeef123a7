"""The knob reference has one row for every field it promises, and no row for a field that does not exist.

ch4-istio-ctrl-envoy/knob-reference.md maps DestinationRule and VirtualService fields to the istiod
function, the Envoy field and the class that enforces it. Its tables (those whose first header cell
is HEADER) must hold exactly one row per leaf field of the v1.30.3 CRD schemas under the paths in
SCOPES: a field the API has and the page forgets, a row for a field the API does not have, or a
field with two rows each fail, naming the field (and the page's line). The check reads the CRDs
and the Markdown only; it builds nothing.
"""

from __future__ import annotations

import gzip
import re
import shutil
from functools import cache
from pathlib import Path

import yaml
from conftest import ROOT

PAGE = ROOT / "ch4-istio-ctrl-envoy" / "knob-reference.md"
CRDS = ROOT / "_refs" / "istio-api-v1.30.3-crds.yaml.gz"
HEADER = "Istio 字段"
# (kind, the path from spec to where the page's paths start, the subtrees the page must cover,
# how the page writes a field: prefix + path below the start).
SCOPES = [
    ("DestinationRule", ["trafficPolicy"], ["connectionPool", "outlierDetection", "loadBalancer", "retryBudget"], ""),
    ("VirtualService", ["http", "[]"], ["timeout", "retries"], "http[]."),
]
CELL_FIELD = re.compile(r"`([^`]+)`")


@cache
def schemas() -> dict[str, dict]:
    """kind -> the networking.istio.io/v1 schema of its spec."""
    out = {}
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when available: about 10x faster
    with gzip.open(CRDS, "rt", encoding="utf-8") as f:
        for doc in yaml.load_all(f, Loader=loader):
            if not doc or doc.get("kind") != "CustomResourceDefinition":
                continue
            if doc["spec"]["group"] != "networking.istio.io":
                continue
            for version in doc["spec"]["versions"]:
                if version["name"] == "v1":
                    out[doc["spec"]["names"]["kind"]] = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
    return out


def descend(node: dict, steps: list[str]) -> dict:
    for step in steps:
        node = node["items"] if step == "[]" else node["properties"][step]
    return node


def leaves(node: dict, path: str):
    """Every leaf field below a schema node: objects with properties and lists of such objects are
    walked (a list adds "[]"); anything else (scalars, maps, lists of scalars) is a leaf."""
    if node.get("type") == "object" and node.get("properties"):
        for name, child in node["properties"].items():
            yield from leaves(child, f"{path}.{name}" if path else name)
    elif node.get("type") == "array" and node.get("items", {}).get("properties"):
        yield from leaves(node["items"], f"{path}[]")
    else:
        yield path


def crd_fields() -> dict[str, str]:
    """Each field as the page writes it -> where it is in the CRD (for messages)."""
    out = {}
    for kind, start, subtrees, prefix in SCOPES:
        base = descend(schemas()[kind], start)
        for subtree in subtrees:
            for field in leaves(base["properties"][subtree], subtree):
                out[prefix + field] = f"{kind} {'.'.join(s for s in start if s != '[]')}{'[]' if '[]' in start else ''}.{field}"
    return out


def page_rows(text: str) -> list[tuple[int, str]]:
    """(line, field) for every body row of the page's knob tables; field is the first code span of
    the row's first cell ("" when the cell has none)."""
    rows, in_table, lines = [], False, text.splitlines()
    for number, line in enumerate(lines, 1):
        if not line.startswith("|"):
            in_table = False
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells and cells[0] == HEADER:
            in_table = True
            continue
        if not in_table or set(line.replace("|", "").strip()) <= set("-: "):
            continue
        match = CELL_FIELD.search(cells[0])
        rows.append((number, match.group(1) if match else ""))
    return rows


def problems(page: Path) -> list[str]:
    expected = crd_fields()
    rel = page.name if not page.is_relative_to(ROOT) else page.relative_to(ROOT).as_posix()
    rows = page_rows(page.read_text(encoding="utf-8"))
    found: dict[str, list[int]] = {}
    out = []
    for line, field in rows:
        if field not in expected:
            out.append(f"{rel}:{line}: row names no field of the v1.30.3 CRDs: {field or '(no code span)'}")
        found.setdefault(field, []).append(line)
    for field, where in sorted(expected.items()):
        lines = found.get(field, [])
        if not lines:
            out.append(f"{rel}: no row for {where} (write it as `{field}`)")
        elif len(lines) > 1:
            out.append(f"{rel}:{lines[1]}: a second row for {field} (first at line {lines[0]})")
    return out


def test_crd_fields_are_found():
    """The walk itself: it finds the fields the tables are about (a broken walk would find none)."""
    fields = crd_fields()
    for field in ("connectionPool.tcp.maxConnections", "connectionPool.tcp.tcpKeepalive.probes",
                  "loadBalancer.consistentHash.httpCookie.attributes[].name",
                  "loadBalancer.localityLbSetting.distribute[].to", "retryBudget.percent",
                  "http[].timeout", "http[].retries.retryOn"):  # fmt: skip
        assert field in fields, f"{field} not among the CRD fields: {sorted(fields)}"
    assert not any(f.startswith(("tls.", "portLevelSettings", "http[].route")) for f in fields)


def test_every_field_has_exactly_one_row():
    found = problems(PAGE)
    assert not found, "\n".join(found)


def test_a_removed_row_is_named(tmp_path):
    """Planted fault: a copy of the page without the row for http.idleTimeout fails, naming it."""
    copy = tmp_path / "knob-reference.md"
    shutil.copyfile(PAGE, copy)
    text = copy.read_text(encoding="utf-8")
    row = next(line for line in text.splitlines() if line.startswith("| `connectionPool.http.idleTimeout` |"))
    copy.write_text(text.replace(row + "\n", ""), encoding="utf-8")
    found = problems(copy)
    assert found == ["knob-reference.md: no row for DestinationRule trafficPolicy.connectionPool.http.idleTimeout "
                     "(write it as `connectionPool.http.idleTimeout`)"], found  # fmt: skip


def test_a_row_for_no_field_and_a_second_row_are_named(tmp_path):
    """Planted faults: a misspelt field and a duplicated row each fail with the line they are on."""
    copy = tmp_path / "knob-reference.md"
    shutil.copyfile(PAGE, copy)
    lines = copy.read_text(encoding="utf-8").splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("| `http[].timeout` |"))
    lines[at + 1 : at + 1] = ["| `http[].timout` | x | x | x | x | x |", lines[at]]
    copy.write_text("\n".join(lines) + "\n", encoding="utf-8")
    found = problems(copy)
    assert found == [f"knob-reference.md:{at + 2}: row names no field of the v1.30.3 CRDs: http[].timout",
                     f"knob-reference.md:{at + 3}: a second row for http[].timeout (first at line {at + 1})"], found  # fmt: skip
