"""Source-reference roles: {envoy}`path#L12`, {envoy-sym}`Class::method`, ...

Every reference is resolved against the path and symbol indexes in ``_refs/``, so a link can
only point at something that exists at the pinned version. An unknown target is a warning
(an error under ``-W``) naming the page and line, with the closest matches as suggestions.
"""

from __future__ import annotations

import difflib
import gzip
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from docutils import nodes
from sphinx.util import logging
from sphinx.util.nodes import split_explicit_title

logger = logging.getLogger(__name__)

REFS_DIR = Path(__file__).resolve().parents[2] / "_refs"


@dataclass(frozen=True)
class Tree:
    """One pinned source tree: where its files are indexed and how to link to them."""

    role: str  # the path role; the symbol role is role + "-sym" where there is one
    url: str  # blob URL prefix at the pinned version
    paths: str
    symbols: tuple[str, ...] = ()
    separator: str = "::"  # between scopes in a qualified symbol name
    strip_prefix: str = ""  # a namespace a reference may omit


TREES = {
    "envoy": Tree(
        "envoy",
        "https://github.com/envoyproxy/envoy/blob/v1.39.0/",
        "envoy-v1.39.0.paths.gz",
        ("envoy-v1.39.0.symbols.gz", "envoy-v1.39.0.interface-decls.gz"),
        "::",
        "Envoy::",
    ),
    "istio": Tree(
        "istio",
        "https://github.com/istio/istio/blob/1.30.3/",
        "istio-1.30.3.paths.gz",
        ("istio-1.30.3.symbols.gz",),
        ".",
    ),
    "ztunnel": Tree(
        "ztunnel",
        "https://github.com/istio/ztunnel/blob/1.30.3/",
        "ztunnel-1.30.3.paths.gz",
        ("ztunnel-1.30.3.symbols.gz",),
        "::",
    ),
    "istio-api": Tree(
        "istio-api",
        "https://github.com/istio/api/blob/v1.30.3/",
        "api-v1.30.3.paths.gz",
    ),
}

ROLES = {name: (tree, False) for name, tree in TREES.items()}
ROLES.update({f"{name}-sym": (tree, True) for name, tree in TREES.items() if tree.symbols})


class ReferenceError_(Exception):
    """A reference that does not resolve; the message says why and what was meant."""


def _lines(filename: str):
    with gzip.open(REFS_DIR / filename, "rt", encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if line:
                yield line


@cache
def paths(tree: Tree) -> frozenset[str]:
    return frozenset(_lines(tree.paths))


@cache
def symbols(tree: Tree) -> dict[str, list[tuple[str, int]]]:
    """Qualified name (without the optional prefix) -> [(path, line), ...]."""
    table: dict[str, list[tuple[str, int]]] = {}
    for filename in tree.symbols:
        for line in _lines(filename):
            name, _, where = line.partition("\t")
            path, _, lineno = where.rpartition(":")
            if tree.strip_prefix and name.startswith(tree.strip_prefix):
                name = name[len(tree.strip_prefix) :]
            entry = (path, int(lineno))
            bucket = table.setdefault(name, [])
            if entry not in bucket:
                bucket.append(entry)
    return table


@cache
def _by_last_component(tree: Tree) -> dict[str, list[str]]:
    index: dict[str, list[str]] = {}
    for name in symbols(tree):
        index.setdefault(name.rsplit(tree.separator, 1)[-1], []).append(name)
    return index


def _suggest(word: str, choices, limit: int = 3) -> str:
    close = difflib.get_close_matches(word, list(choices), n=limit, cutoff=0.6)
    return f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""


def resolve_path(tree: Tree, target: str) -> str:
    path, _, anchor = target.partition("#")
    path = path.strip().lstrip("/")
    if anchor and not re.fullmatch(r"L\d+(-L\d+)?", anchor):
        raise ReferenceError_(f"bad line anchor {anchor!r} in {target!r} (use path#L123)")
    known = paths(tree)
    if path not in known:
        base = path.rsplit("/", 1)[-1]
        same_name = [p for p in known if p.rsplit("/", 1)[-1] == base]
        hint = (
            f"; did you mean {', '.join(repr(p) for p in sorted(same_name)[:3])}?"
            if same_name
            else _suggest(path, known)
        )
        raise ReferenceError_(f"unknown {tree.role} path {path!r} at the pinned version{hint}")
    return tree.url + path + (f"#{anchor}" if anchor else "")


def find_symbol(tree: Tree, target: str) -> tuple[str, str, int]:
    """Return (qualified name, path, line) for a symbol reference, or raise."""
    query, _, in_file = target.strip().partition("@")
    query = query.strip()
    if tree.strip_prefix and query.startswith(tree.strip_prefix):
        query = query[len(tree.strip_prefix) :]
    table = symbols(tree)
    if query in table:
        names = [query]
    else:
        last = query.rsplit(tree.separator, 1)[-1]
        names = [
            n for n in _by_last_component(tree).get(last, []) if n.endswith(tree.separator + query)
        ]
    candidates = [(n, p, line) for n in names for p, line in table[n]]
    if in_file:
        candidates = [c for c in candidates if c[1] == in_file.strip()]
    if not candidates:
        where = f" in {in_file!r}" if in_file else ""
        raise ReferenceError_(
            f"unknown {tree.role} symbol {query!r}{where} at the pinned version"
            + _suggest(query, table)
        )
    distinct_names = {c[0] for c in candidates}
    distinct_files = {c[1] for c in candidates}
    if len(distinct_names) > 1 or len(distinct_files) > 1:
        listed = ", ".join(f"{n}@{p}:{line}" for n, p, line in sorted(candidates)[:10])
        raise ReferenceError_(
            f"ambiguous {tree.role} symbol {query!r}: {len(candidates)} candidates: {listed}"
            + (" …" if len(candidates) > 10 else "")
            + " (write the full name, or Name@path)"
        )
    # Overloads defined in one file: link the first definition.
    return min(candidates, key=lambda c: c[2])


def resolve(role: str, target: str) -> str:
    """The URL a role and target stand for; raises ReferenceError_ when it does not resolve."""
    if role not in ROLES:
        raise ReferenceError_(f"unknown source role {role!r} (known: {', '.join(sorted(ROLES))})")
    tree, is_symbol = ROLES[role]
    if not is_symbol:
        return resolve_path(tree, target)
    _, path, line = find_symbol(tree, target)
    return f"{tree.url}{path}#L{line}"


def source_role(name, rawtext, text, lineno, inliner, options=None, content=None):
    has_title, title, target = split_explicit_title(text)
    env = inliner.document.settings.env
    try:
        url = resolve(name, target)
    except ReferenceError_ as err:
        logger.warning(str(err), location=(env.docname, lineno), type="insider", subtype="sourceref")
        return [nodes.literal(rawtext, title)], []
    label = title if has_title else target.split("@", 1)[0]
    ref = nodes.reference(rawtext, "", refuri=url, classes=["source-ref", f"source-ref-{name}"])
    ref += nodes.literal(label, label)
    return [ref], []


class zh_text(nodes.inline):
    """Text that stays Chinese in every edition: the glossary's Chinese column, for one."""


def visit_zh_text(self, node):
    self.body.append(self.starttag(node, "span", "", lang="zh-CN"))


def depart_zh_text(self, node):
    self.body.append("</span>")


def zh_role(name, rawtext, text, lineno, inliner, options=None, content=None):
    return [zh_text(rawtext, text)], []


def shorten_paths_in_tables(app, doctree) -> None:
    """A source path in a table cell shows as its file name (and line); the full path is the
    link's target and its title. A long path in a narrow column otherwise breaks mid-word."""
    for ref in doctree.findall(nodes.reference):
        if "source-ref" not in ref.get("classes", []) or not any(isinstance(a, nodes.entry) for a in _ancestors(ref)):
            continue
        literal = next(iter(ref.findall(nodes.literal)), None)
        label = literal.astext() if literal else ""
        if "/" not in label or " " in label:
            continue
        path, _, anchor = label.partition("#")
        short = path.rsplit("/", 1)[-1] + (f"#{anchor}" if anchor else "")
        literal.replace(literal[0], nodes.Text(short))
        ref["reftitle"] = label


def _ancestors(node):
    while node.parent is not None:
        node = node.parent
        yield node


# Inline code breaks at the separators of names and paths (::, ., /, _), of Istio's node IDs
# (~) and after an elided prefix (…), and nowhere else:
# <wbr> after each, in the written HTML (the stylesheet lets a name break there, and only
# there, unless a single part is wider than its box).
_PRE = re.compile(r'(<span class="pre">)([^<]+)(</span>)')
_SEPARATOR = re.compile(r"(::|[./_~\u2026])(?=[^\s])")


def break_points(app, pagename, templatename, context, doctree) -> None:
    if app.builder.format == "html" and "body" in context:
        wbr = r"\1<wbr/>" if app.builder.name == "epub" else r"\1<wbr>"  # EPUB pages are XHTML
        context["body"] = _PRE.sub(lambda m: m.group(1) + _SEPARATOR.sub(wbr, m.group(2)) + m.group(3), context["body"])


def setup(app):
    app.connect("doctree-read", shorten_paths_in_tables)
    app.connect("html-page-context", break_points)
    for role in ROLES:
        app.add_role(role, source_role)
    app.add_node(
        zh_text,
        html=(visit_zh_text, depart_zh_text),
        latex=(lambda self, node: None, lambda self, node: None),
        text=(lambda self, node: None, lambda self, node: None),
    )
    app.add_role("zh", zh_role)
