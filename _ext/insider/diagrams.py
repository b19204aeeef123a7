"""Mermaid diagrams as static, translatable, clickable SVG.

The ``mermaid`` directive (sphinxcontrib-mermaid's, extended here) keeps the Mermaid source in
the page. Its source and ``:alt:`` text are gettext messages, so the English edition carries
English labels and a changed diagram shows up as an untranslated string.

Readers never run Mermaid: each diagram is looked up in a render cache, ``_diagrams/svg/``,
by a hash of its resolved source, the Mermaid config and the pinned mermaid-cli. ``make
diagrams`` fills the cache with the real mermaid-cli and Chromium; a build without a current
render fails, naming the page and line. The SVG is inlined (so node links work and text is
real text) and also copied beside the page to be opened full size.

Node links use the source-reference roles: ``click Node href "envoy-sym:Class::method"``.
"""

from __future__ import annotations

import functools
import hashlib
import html
import math
import os
import posixpath
import re
import shutil
from pathlib import Path

from docutils import nodes
from sphinx import addnodes
from sphinx.transforms import SphinxTransform
from sphinx.util import logging
from sphinxcontrib.mermaid import Mermaid, mermaid

from . import sourcerefs

logger = logging.getLogger(__name__)

DIAGRAMS_DIR = Path(__file__).resolve().parents[2] / "_diagrams"
RENDERS_DIR = DIAGRAMS_DIR / "svg"
PDF_RENDERS_DIR = DIAGRAMS_DIR / "pdf"  # the same diagrams as vector PDF, for the LaTeX edition
# Everything that changes what mermaid-cli draws is part of the cache key.
KEY_INPUTS = (DIAGRAMS_DIR / "mermaid.json", DIAGRAMS_DIR / "package-lock.json")

CLICK_LINE = re.compile(r'^(\s*click\s+\S+\s+)(?:href\s+)?"([a-z-]+):([^"]+)"(.*)$')
FULL_SIZE_LABEL = {"zh_CN": "查看大图", "en": "Open full size"}
LINKS_LEGEND = {
    "zh_CN": "带蓝色边框的方框是链接，在新标签页打开固定版本的源码。",
    "en": "Boxes with a blue border are links to the pinned source; they open in a new tab.",
}
# Diagrams are drawn with 15 px text (_diagrams/mermaid.json) and may shrink to fit the text
# column, but never below 12 px text, the size of the page's small print: at most to 12/15 of
# their natural width. A diagram that cannot fit at that size scrolls inside its figure.
DRAWN_TEXT_PX = 15
SMALLEST_TEXT_PX = 12


class diagram(mermaid, addnodes.translatable):
    """A Mermaid diagram whose source and alt text are translatable messages."""

    def preserve_original_messages(self) -> None:
        self.setdefault("original_code", self["code"])
        self.setdefault("original_alt", self.get("alt", ""))

    def apply_translated_message(self, original_message: str, translated_message: str) -> None:
        if original_message == self["original_code"]:
            self["code"] = translated_message
        elif original_message == self["original_alt"]:
            self["alt"] = translated_message

    def extract_original_messages(self) -> list[str]:
        return [m for m in (self["code"], self.get("alt", "")) if m]


class MermaidDiagram(Mermaid):
    """sphinxcontrib-mermaid's directive, producing a translatable, cached diagram."""

    def run(self, **kwargs):
        source, line = self.state_machine.get_source_and_line(self.lineno)
        env = self.state.document.settings.env
        docname = env.docname
        for path in KEY_INPUTS:  # a new Mermaid config or mermaid-cli means new renders
            env.note_dependency(str(path))
        if not self.options.get("alt", "").strip():
            logger.warning(
                "diagram has no :alt: text (a text alternative is required)",
                location=(docname, line),
                type="insider",
                subtype="diagram",
            )
        if self.arguments:
            logger.warning(
                "diagram sources are written inline in the page, not in separate files",
                location=(docname, line),
                type="insider",
                subtype="diagram",
            )
            return []
        result = super().run(**kwargs)
        for top in list(result):
            for old in list(top.findall(mermaid)):
                new = diagram()
                new.attributes.update(old.attributes)
                new.source, new.line = source, line
                new["content_line"] = self._content_line(line)
                if old is top:
                    result[result.index(top)] = new
                else:
                    old.replace_self(new)
        return result


    def _content_line(self, line: int) -> int:
        """The source line of the diagram's first line (MyST's content_offset is relative)."""
        block = self.block_text.splitlines()
        if self.content and self.content[0] in block:
            return line + block.index(self.content[0])
        return line



@functools.cache
def _key_inputs() -> bytes:
    return b"".join(b"\0" + path.read_bytes() for path in KEY_INPUTS)


def render_key(resolved_code: str) -> str:
    return hashlib.sha256(resolved_code.encode("utf-8") + _key_inputs()).hexdigest()[:20]


def click_lines(code: str) -> list[str]:
    return [line.strip() for line in code.splitlines() if line.strip().startswith("click ")]


class ResolveDiagrams(SphinxTransform):
    """Resolve node links, check translations keep them, and find each diagram's render.

    Runs while reading, after the i18n transform (priority 20), so the English edition
    resolves and looks up its own, translated source.
    """

    default_priority = 50

    def apply(self, **kwargs) -> None:
        pending = os.environ.get("INSIDER_DIAGRAMS_PENDING")
        for node in self.document.findall(diagram):
            code = node["code"]
            location = node
            original = node.get("original_code", code)
            if code != original and click_lines(code) != click_lines(original):
                logger.warning(
                    "translated diagram changes its click lines; keep them exactly as in the source",
                    location=location,
                    type="insider",
                    subtype="diagram",
                )
            resolved = []
            for offset, line in enumerate(code.splitlines()):
                match = CLICK_LINE.match(line)
                if match and match.group(2) in sourcerefs.ROLES:
                    head, role, target, tail = match.groups()
                    try:
                        url = sourcerefs.resolve(role, target)
                    except sourcerefs.ReferenceError_ as err:
                        line_no = node.get("content_line", node.line or 0) + offset
                        logger.warning(
                            f"diagram link: {err}",
                            location=(self.env.docname, line_no),
                            type="insider",
                            subtype="sourceref",
                        )
                        continue
                    line = f'{head}href "{url}"{tail}'
                resolved.append(line)
            node["resolved_code"] = "\n".join(resolved)
            node["has_links"] = any(CLICK_LINE.match(line) for line in code.splitlines())
            key = node["render_key"] = render_key(node["resolved_code"])
            # Re-read the page while its render is missing, and once it appears.
            self.env.note_dependency(str(RENDERS_DIR / f"{key}.svg"))
            self.env.note_dependency(str(PDF_RENDERS_DIR / f"{key}.pdf"))
            if pending and not all(render_path(key, fmt).is_file() for fmt in ("svg", "pdf")):
                Path(pending).mkdir(parents=True, exist_ok=True)
                Path(pending, f"{key}.mmd").write_text(node["resolved_code"] + "\n", encoding="utf-8")
        used = getattr(self.env, "insider_diagram_keys", None)
        if used is None:
            used = self.env.insider_diagram_keys = {}
        used[self.env.docname] = sorted(n["render_key"] for n in self.document.findall(diagram))


_SVG_OPEN = re.compile(r"<svg\b[^>]*>", re.S)
_DROP_ATTRS = re.compile(r'\s(?:role|aria-roledescription|aria-labelledby|aria-describedby)="[^"]*"')


def _link_title(match: re.Match) -> str:
    url = match.group(1)
    where = url.split("/blob/", 1)[-1].split("/", 1)[-1] if "/blob/" in url else url
    return f'<a xlink:href="{url}" xlink:title="{html.escape(where, quote=True)}"'


def valid_svg(svg: str) -> str:
    """Make Mermaid's SVG valid standalone SVG (as EPUB checks it) and its links self-describing.

    Mermaid leaves placeholder <rect/>s without the size SVG requires, adds attributes SVG does
    not have (name on rect and line, width/height on circle), and gives the root a role list ("graphics-document document") that plain SVG does not allow; each source link
    gets a title naming the file and line it opens.
    """
    svg = re.sub(r"<rect(?![^>]*\bwidth=)(?![^>]*\bheight=)", '<rect width="0" height="0"', svg)
    # Sequence diagrams name their boxes, state diagrams size their start circle: not SVG.
    svg = re.sub(r'(<(?:rect|line)\b[^>]*?)\sname="[^"]*"', r"\1", svg)
    svg = re.sub(r'(<circle\b[^>]*?)\s(?:width|height)="[^"]*"', r"\1", svg)
    svg = re.sub(r'(<circle\b[^>]*?)\s(?:width|height)="[^"]*"', r"\1", svg)
    svg = re.sub(r'(<svg\b[^>]*?)\srole="[^"]*"', r'\1 role="img"', svg, count=1)
    return re.sub(r'<a xlink:href="([^"]+)"(?![^>]*xlink:title)', _link_title, svg)


def scoped_ids(svg: str) -> str:
    """Prefix a render's inner ids with its root id: Mermaid numbers them from 0 in every render
    (actor0, root-0, i0), and two diagrams on one page must not share an id."""
    root = re.search(r'<svg\b[^>]*?\sid="([^"]+)"', svg)
    if not root:
        return svg
    prefix = root.group(1)
    inner = sorted({i for i in re.findall(r'\sid="([^"]+)"', svg) if not i.startswith(prefix)}, key=len, reverse=True)
    if not inner:
        return svg
    names = "|".join(map(re.escape, inner))
    svg = re.sub(rf'(\sid=")({names})"', rf'\1{prefix}-\2"', svg)
    # References: url(#x), href="#x" and the style sheet's #x selectors.
    return re.sub(rf"#({names})(?![\w-])", rf"#{prefix}-\1", svg)


_VIEWBOX = re.compile(r'viewBox="[-\d.]+ [-\d.]+ ([\d.]+) [\d.]+"')


def sized(opening: str) -> str:
    """The SVG's width rule: the column's width, at most its natural width, and never so narrow
    that its text drops below SMALLEST_TEXT_PX."""
    box = _VIEWBOX.search(opening)
    if not box:
        return opening
    natural = float(box.group(1))
    smallest = math.ceil(natural * SMALLEST_TEXT_PX / DRAWN_TEXT_PX)
    style = f'style="max-width: {natural:.0f}px; min-width: {smallest}px"'
    opening = re.sub(r'\sstyle="[^"]*"', "", opening)
    return opening[:-1].rstrip("/") + f" {style}>"


def new_tab_links(svg: str) -> str:
    return re.sub(r"<a (xlink:href=)", r'<a target="_blank" rel="noopener" \1', svg)


def inline_svg(svg: str, alt: str, has_links: bool) -> str:
    """Give a rendered SVG its text alternative, the role that fits its content, and its size."""
    svg = new_tab_links(scoped_ids(valid_svg(re.sub(r"<\?xml[^>]*\?>\s*", "", svg))))
    match = _SVG_OPEN.search(svg)
    if not match:
        raise ValueError("not an SVG document")
    opening = sized(_DROP_ATTRS.sub("", match.group(0)))
    # A diagram with links must keep them reachable: role="img" would hide its children.
    role = "group" if has_links else "img"
    attrs = f' role="{role}" aria-label="{html.escape(alt, quote=True)}" focusable="false"'
    opening = opening[:-1].rstrip("/") + attrs + ">"
    return svg[: match.start()] + opening + svg[match.end() :]


def render_path(key: str, fmt: str) -> Path:
    return (RENDERS_DIR if fmt == "svg" else PDF_RENDERS_DIR) / f"{key}.{fmt}"


def current_render(node, fmt: str = "svg") -> Path | None:
    """The cached render of a diagram; a missing one is reported at the diagram's page and line."""
    key = node.get("render_key")
    path = render_path(key, fmt)
    if key and path.is_file():
        return path
    if not os.environ.get("INSIDER_DIAGRAMS_PENDING"):
        logger.warning(
            f"diagram has no current render ({key}.{fmt} is not in _diagrams/{fmt}); run `make diagrams`",
            location=node,
            type="insider",
            subtype="diagram",
        )
    return None


def html_visit_diagram(self, node):
    key = node.get("render_key")
    alt = node.get("alt", "")
    svg_path = current_render(node)
    if svg_path is None:
        self.body.append(f'<p class="insider-diagram-missing">{html.escape(alt)}</p>')
        raise nodes.SkipNode
    images = Path(self.builder.outdir, self.builder.imagedir)
    images.mkdir(parents=True, exist_ok=True)
    svg = svg_path.read_text(encoding="utf-8")
    (images / f"diagram-{key}.svg").write_text(valid_svg(svg), encoding="utf-8")
    full = posixpath.join(self.builder.imgpath, f"diagram-{key}.svg")
    if self.builder.name == "epub":
        # E-readers handle an SVG image better than inline SVG with links (and EPUB wants
        # every linked resource in the spine): the image, with its text alternative.
        self.body.append(self.starttag(node, "div", CLASS="insider-diagram"))
        self.body.append(f'<img src="{full}" alt="{html.escape(alt, quote=True)}" />')
        self.body.append("</div>\n")
        raise nodes.SkipNode
    language = self.builder.config.language if self.builder.config.language in FULL_SIZE_LABEL else "en"
    self.body.append(self.starttag(node, "div", CLASS="insider-diagram"))
    # Focusable: a diagram wider than a phone scrolls inside this panel, and a keyboard must reach it.
    self.body.append('<div class="insider-diagram__canvas" tabindex="0">')
    self.body.append(inline_svg(svg, alt, node.get("has_links")))
    self.body.append("</div>")
    self.body.append('<p class="insider-diagram__notes">')
    self.body.append(f'<a class="insider-diagram__full" href="{full}">{FULL_SIZE_LABEL[language]}</a>')
    if node.get("has_links"):
        self.body.append(f' <span class="insider-diagram__legend">{LINKS_LEGEND[language]}</span>')
    self.body.append("</p>")
    self.body.append("</div>\n")
    raise nodes.SkipNode


def latex_visit_diagram(self, node):
    """The diagram's vector PDF render, shrunk to the text block when it is larger."""
    pdf = current_render(node, "pdf")
    if pdf is None:
        self.body.append("\n\\begin{quote}\\itshape " + self.encode(node.get("alt", "")) + "\\end{quote}\n")
        raise nodes.SkipNode
    name = f"diagram-{node['render_key']}"
    shutil.copyfile(pdf, Path(self.builder.outdir, f"{name}.pdf"))
    in_figure = isinstance(node.parent, nodes.figure)
    self.body.append("\n" if in_figure else "\n\\begin{center}\n")
    self.body.append(f"\\sphinxincludegraphics{{{{{name}}}.pdf}}\n")
    self.body.append("" if in_figure else "\\end{center}\n")
    raise nodes.SkipNode


def skip_diagram(self, node):
    raise nodes.SkipNode


def write_used_keys(app, exception) -> None:
    if exception or app.builder.name != "html":
        return
    keys = sorted({k for ks in getattr(app.env, "insider_diagram_keys", {}).values() for k in ks})
    Path(app.outdir, ".diagram-keys").write_text("".join(f"{k}\n" for k in keys), encoding="utf-8")


def purge_doc(app, env, docname) -> None:
    getattr(env, "insider_diagram_keys", {}).pop(docname, None)


def merge_info(app, env, docnames, other) -> None:
    env.__dict__.setdefault("insider_diagram_keys", {}).update(
        getattr(other, "insider_diagram_keys", {})
    )


def setup(app):
    app.add_node(
        diagram,
        html=(html_visit_diagram, None),
        latex=(latex_visit_diagram, None),
        text=(skip_diagram, None),
        man=(skip_diagram, None),
        texinfo=(skip_diagram, None),
    )
    app.add_directive("mermaid", MermaidDiagram, override=True)
    app.add_transform(ResolveDiagrams)
    app.connect("build-finished", write_used_keys)
    app.connect("env-purge-doc", purge_doc)
    app.connect("env-merge-info", merge_info)
