"""The response-flag decoder is checked against the pinned source, in both editions.

````markdown
```{flag-decoder}
| 短名 | 长名 | … |
|---|---|---|
| `LH` | `FailedLocalHealthCheck` | … |
```
````

``{flag-decoder}`` wraps one ordinary MyST table whose first column holds the flags' short
names. ``_refs/envoy-v1.39.0-response-flags.tsv`` lists every flag of Envoy v1.39.0
(``StreamInfo::CoreResponseFlag`` and ``CORE_RESPONSE_FLAGS``), extracted once from the source.
After a page is read (and, in the English edition, translated), every decoder table is compared
with that list: a flag without a row is a warning at the directive's line, a row naming a flag
the list does not have (or naming one twice) is a warning at that row's line. Under ``-W`` either
fails the build. A book with no decoder table at all is a warning too, so removing the table does
not silently remove the check.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from docutils import nodes
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

logger = logging.getLogger(__name__)

FLAGS_TSV = Path(__file__).resolve().parents[2] / "_refs" / "envoy-v1.39.0-response-flags.tsv"
CLASS = "insider-flag-decoder"


@cache
def pinned_flags() -> dict[str, tuple[str, str]]:
    """Short name -> (long name, enumerator), in enum order."""
    flags: dict[str, tuple[str, str]] = {}
    for line in FLAGS_TSV.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        short, long_name, enumerator = line.split("\t")
        flags[short] = (long_name, enumerator)
    return flags


class FlagDecoderDirective(SphinxDirective):
    has_content = True

    def run(self) -> list[nodes.Node]:
        self.env.note_dependency(str(FLAGS_TSV))
        container = nodes.container("", classes=[CLASS])
        self.set_source_info(container)
        self.state.nested_parse(self.content, self.content_offset, container)
        # MyST leaves the table's text nodes without a source when the table is parsed inside a
        # directive; Sphinx's gettext skips such nodes, so the English edition would keep the
        # Chinese cells. Give each one the page and the line of the row it sits in.
        for row in container.findall(nodes.row):
            line = row["insider_line"] = _line(row, container.line)  # kept for the check, after translation
            for text in row.findall(nodes.TextElement):
                if not text.source:
                    text.source, text.line = container.source, line
        return [container]


def _line(row: nodes.Node, fallback: int | None) -> int | None:
    """The source line of a table row. MyST gives a table's rows the table's own line (or, inside
    a directive, none), but the inline code in a cell carries the line it was written on: the
    first cell holds the flag's short name as inline code."""
    for inner in row.findall(nodes.literal):
        if getattr(inner, "line", None):
            return inner.line
    return getattr(row, "line", None) or fallback


def check_decoders(app, doctree: nodes.document) -> None:
    env = app.env
    docname = env.docname
    decoders = [n for n in doctree.findall(nodes.container) if CLASS in n.get("classes", [])]
    if not decoders:
        return
    env.insider_flag_decoders = getattr(env, "insider_flag_decoders", set()) | {docname}
    pinned = pinned_flags()
    for decoder in decoders:
        where = (docname, decoder.line)
        tables = list(decoder.findall(nodes.table))
        if len(tables) != 1:
            logger.warning(f"flag decoder: expected one table inside {{flag-decoder}}, found {len(tables)}",
                           location=where, type="insider", subtype="flags")  # fmt: skip
            continue
        seen: dict[str, int | None] = {}
        for body in tables[0].findall(nodes.tbody):
            for row in body.children:
                if not isinstance(row, nodes.row) or not row.children:
                    continue
                short = row.children[0].astext().strip().strip("`").strip()
                line = row.get("insider_line") or _line(row, decoder.line)
                if short not in pinned:
                    logger.warning(f"flag decoder: row for {short!r}, which is not a response flag of Envoy v1.39.0 "
                                   f"({FLAGS_TSV.name} has {', '.join(pinned)})",
                                   location=(docname, line), type="insider", subtype="flags")  # fmt: skip
                elif len(row.children) > 1 and (named := row.children[1].astext().strip().strip("`").strip()) != pinned[short][0]:
                    logger.warning(f"flag decoder: row for {short!r} gives its long name as {named!r}; "
                                   f"Envoy v1.39.0 calls it {pinned[short][0]!r} ({FLAGS_TSV.name})",
                                   location=(docname, line), type="insider", subtype="flags")  # fmt: skip
                    seen[short] = line
                elif short in seen:
                    logger.warning(f"flag decoder: a second row for {short!r} (the first is at line {seen[short]})",
                                   location=(docname, line), type="insider", subtype="flags")  # fmt: skip
                else:
                    seen[short] = line
        missing = [f"{short} ({long_name})" for short, (long_name, _) in pinned.items() if short not in seen]
        if missing:
            logger.warning(f"flag decoder: no row for {len(missing)} response flag(s) of Envoy v1.39.0: "
                           f"{', '.join(missing)} (from {FLAGS_TSV.name})",
                           location=where, type="insider", subtype="flags")  # fmt: skip


def purge(app, env, docname) -> None:
    getattr(env, "insider_flag_decoders", set()).discard(docname)


def merge(app, env, docnames, other) -> None:
    env.insider_flag_decoders = getattr(env, "insider_flag_decoders", set()) | (
        getattr(other, "insider_flag_decoders", set()) & set(docnames)
    )


def require_a_decoder(app, env) -> None:
    if not getattr(env, "insider_flag_decoders", set()):
        logger.warning(f"flag decoder: no page has a {{flag-decoder}} table, so nothing checks the response flags "
                       f"against {FLAGS_TSV.name}", type="insider", subtype="flags")  # fmt: skip


def setup(app):
    app.add_directive("flag-decoder", FlagDecoderDirective)
    app.connect("doctree-read", check_decoders)
    app.connect("env-purge-doc", purge)
    app.connect("env-merge-info", merge)
    app.connect("env-check-consistency", require_a_decoder)
