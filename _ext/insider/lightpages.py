"""Pages a reader gets fast: the theme's features, without what this book does not use.

Measured on the chapter pages (served with gzip, first visit): the theme made every page load
about 950 KB, mostly FontAwesome (1.5 MB of JavaScript, three webfonts) and the whole search
index (search-as-you-type is off, so only search.html needs it). What this module does:

- ``_templates/layout.html`` no longer loads fontawesome.js, nor the search scripts outside
  search.html; icons come from ``icons.py`` as one small stylesheet of CSS masks.
- Sphinx's own scripts are deferred (inline snippets become module scripts, which run in the
  same order as deferred ones), so nothing but CSS blocks the first paint.
- The theme stylesheets in the output keep only the rules whose classes and ids occur in the
  book's HTML or in the scripts it loads; FontAwesome's rules and fonts go. The pristine
  stylesheets are read from the installed themes on every build, so the result never depends
  on an earlier build.
- Each page gets a ``<meta name="description">`` from its first paragraph, and the site an
  icon, so that browsers do not ask for a missing /favicon.ico.
- Accessibility fixes the theme needs (see _templates/ too): the sidebar's chapter toggles get
  names; the download menu's ".md" appears only where a Markdown source exists.
"""

from __future__ import annotations

import hashlib
import pickle
import re
from pathlib import Path

import pydata_sphinx_theme
import sphinx_book_theme
import tinycss2
from docutils import nodes
from markupsafe import Markup
from sphinx.builders.html._assets import _JavaScript
from sphinx.locale import _ as sphinx_message

from .icons import icons_css
from .interface import relabel_buttons, translate_page

ICONS_CSS = "insider-icons.css"

# Output path under _static -> the installed stylesheet it is made from.
THEME_STYLESHEETS = {
    "styles/pydata-sphinx-theme.css": Path(pydata_sphinx_theme.__file__).parent
    / "theme/pydata_sphinx_theme/static/styles/pydata-sphinx-theme.css",
    "styles/sphinx-book-theme.css": Path(sphinx_book_theme.__file__).parent
    / "theme/sphinx_book_theme/static/styles/sphinx-book-theme.css",
}
# Theme files no page loads once FontAwesome is gone: not shipped.
UNUSED_ASSETS = (
    "scripts/fontawesome.js",
    "scripts/fontawesome.js.map",
    "scripts/fontawesome.js.LICENSE.txt",
    "vendor/fontawesome",
    "styles/pydata-sphinx-theme.css.map",
    "styles/sphinx-book-theme.css.map",
    "styles/theme.css",  # only @imports basic.css, which the layout links directly
    "webpack-macros.html",  # Jinja macros the themes copy along with their static files
    "sbt-webpack-macros.html",
)
# Classes that scripts compose at run time (Bootstrap's `bs-${name}-auto`) and so never
# appear whole in the scripts' text.
COMPOSED_CLASS_PREFIXES = ("bs-",)
DESCRIPTION_LENGTH = {"zh_CN": 110, "en": 200}


# -- Pages ---------------------------------------------------------------------------


def first_paragraph(doctree) -> str:
    for paragraph in doctree.findall(nodes.paragraph):
        if isinstance(paragraph.parent, (nodes.caption, nodes.title)):
            continue
        text = " ".join(paragraph.astext().split())
        if len(text) >= 20:
            return text
    return ""


def describe(app, context, doctree) -> str:
    """One sentence or two for search engines: the page's first paragraph, shortened."""
    text = first_paragraph(doctree) if doctree else ""
    if not text:
        title = re.sub(r"<[^>]+>", "", context.get("title", ""))
        text = f"{title} — {app.config.html_title}"
    limit = DESCRIPTION_LENGTH.get(app.config.language, 160)
    if len(text) > limit:
        text = text[: limit - 1].rstrip(" ，,、；;：:") + "…"
    return text


def defer_scripts(script_files: list) -> list:
    """Deferred files and module snippets keep their order and stop blocking the first paint."""
    deferred = []
    for script in script_files:
        attributes = dict(script.attributes)
        priority = script.priority
        if attributes.get("body"):
            attributes["type"] = "module"
        elif script.filename and not attributes.get("async"):
            attributes["defer"] = "defer"
        deferred.append(_JavaScript(script.filename, priority=priority, **attributes))
    return deferred


VIEWPORT = re.compile(r'<meta name="viewport"[^>]*>\s*')


# The sidebar's chapter toggles are <summary> elements holding only an icon: name them
# after the chapter (axe "summary-name").
SUMMARY_AFTER_LINK = re.compile(r'(<a class="[^"]*\breference\b[^"]*" href="[^"]*">(.*?)</a><details(?: open="open")?>)<summary>')
SUMMARY_LABEL = {"zh_CN": "“{}”的各节", "en": "Pages in “{}”"}


def label_summaries(html: str, language: str) -> str:
    label = SUMMARY_LABEL.get(language, SUMMARY_LABEL["en"])

    def named(match):
        title = re.sub(r"<[^>]+>", "", match.group(2)).replace('"', "&quot;")
        return f'{match.group(1)}<summary aria-label="{label.format(title)}">'

    return SUMMARY_AFTER_LINK.sub(named, html)


def labelled_toctree(generate, language: str):
    def generate_labelled(*args, **kwargs):
        return Markup(label_summaries(str(generate(*args, **kwargs)), language))

    return generate_labelled


def drop_source_download(buttons: list) -> None:
    """The download menu's ".md" is the page's source, which only the Chinese edition has."""
    for group in buttons:
        if group.get("label") == "download-buttons":
            group["buttons"] = [b for b in group["buttons"] if b.get("label") != "download-source-button"]


def page_context(app, pagename, templatename, context, doctree) -> None:
    if app.builder.format != "html" or app.builder.name != "html":
        return
    context["insider_description"] = describe(app, context, doctree)
    context["insider_search_label"] = sphinx_message("Search")
    # docutils 0.22 puts its own viewport tag among the page's metatags; the layout has one.
    context["metatags"] = VIEWPORT.sub("", context.get("metatags", ""))
    if app.config.language != "zh_CN":
        drop_source_download(context.get("header_buttons", []))
    relabel_buttons(context.get("header_buttons", []), app.config.language)
    if "generate_toctree_html" in context:
        context["generate_toctree_html"] = labelled_toctree(context["generate_toctree_html"], app.config.language)
    # search.html adds searchtools.js after these as a plain script, and it needs doctools.js
    # to have run: that page keeps the theme's order.
    if pagename != "search":
        context["script_files"] = defer_scripts(context.get("script_files", []))


# -- Stylesheets ---------------------------------------------------------------------

WORD = re.compile(r"-?[A-Za-z_][\w-]*")


CLASS_ATTRIBUTE = re.compile(r'class="([^"]*)"')
ID_ATTRIBUTE = re.compile(r'id="([^"]*)"')


def _attribute_values(pattern: re.Pattern, html: str):
    """Values of an attribute, where its name starts a word (not data-id, not xml:id)."""
    for match in pattern.finditer(html):
        start = match.start()
        if not start or not (html[start - 1].isalnum() or html[start - 1] == "_"):
            yield match.group(1)


def page_names(html: str) -> set[str]:
    """Every class and id in a written page."""
    names = {name for value in _attribute_values(CLASS_ATTRIBUTE, html) for name in value.split()}
    names.update(_attribute_values(ID_ATTRIBUTE, html))
    return names


def script_names(static: Path) -> set[str]:
    """Every word in the scripts the pages load (a class named there is used, too)."""
    names: set[str] = set()
    for script in static.rglob("*.js"):
        names.update(WORD.findall(script.read_text(encoding="utf-8", errors="replace")))
    return names


def split_selectors(prelude: str) -> list[str]:
    selectors, depth, start = [], 0, 0
    for i, ch in enumerate(prelude):
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        elif ch == "," and depth == 0:
            selectors.append(prelude[start:i].strip())
            start = i + 1
    selectors.append(prelude[start:].strip())
    return [s for s in selectors if s]


# Pseudo-classes and elements, with their arguments (innermost first when nested).
PSEUDO = re.compile(r"::?[\w-]+(\([^()]*\))?")
ATTRIBUTE = re.compile(r"\[[^\]]*\]")


def selector_names(selector: str) -> tuple[list[str], list[str]]:
    """Classes and ids a selector requires; names inside :not()/:is()/… are not required."""
    bare = ATTRIBUTE.sub("", selector)
    while PSEUDO.search(bare):
        bare = PSEUDO.sub("", bare)
    classes = re.findall(r"\.(-?[A-Za-z_][\w-]*)", bare)
    ids = re.findall(r"#(-?[A-Za-z_][\w-]*)", bare)
    return classes, ids


FONTAWESOME_TOKEN = re.compile(r"\.fa[srb]?(?![\w-])|\.fa-[\w-]+")


def fontawesome_own(selector: str) -> bool:
    """A selector of FontAwesome's stylesheet (only FA classes): icons.py replaces those.

    The theme's own selectors that merely mention an icon (rotating the open chevron) stay.
    """
    if not FONTAWESOME_TOKEN.search(selector):
        return False
    bare = selector
    while PSEUDO.search(bare):
        bare = PSEUDO.sub("", bare)
    return not re.sub(r"[\s>+~*]", "", FONTAWESOME_TOKEN.sub("", bare))


def keeps(selector: str, used: set[str]) -> bool:
    if fontawesome_own(selector):
        return False
    classes, ids = selector_names(selector)
    return all(c in used or c.startswith(COMPOSED_CLASS_PREFIXES) for c in classes) and all(i in used for i in ids)


def slim_rules(rules, used: set[str]) -> str:
    out = []
    for rule in rules:
        if rule.type == "qualified-rule":
            prelude = tinycss2.serialize(rule.prelude).strip()
            kept = [s for s in split_selectors(prelude) if keeps(s, used)]
            if kept:
                out.append(",".join(kept) + "{" + tinycss2.serialize(rule.content).strip() + "}")
        elif rule.type == "at-rule":
            name = rule.lower_at_keyword
            head = tinycss2.serialize(rule.prelude).strip()
            if name == "font-face" and "Font Awesome" in tinycss2.serialize(rule.content):
                continue
            if name == "keyframes" and head.startswith("fa-"):
                continue
            if name in ("media", "supports", "layer", "container") and rule.content is not None:
                inner = slim_rules(tinycss2.parse_rule_list(rule.content, skip_comments=True, skip_whitespace=True), used)
                if inner:
                    out.append(f"@{rule.at_keyword} {head}{{{inner}}}")
                continue
            out.append(tinycss2.serialize([rule]).strip())
    return "\n".join(out)


def slim_stylesheet(source: str, used: set[str]) -> str:
    rules = tinycss2.parse_stylesheet(source, skip_comments=True, skip_whitespace=True)
    return slim_rules(rules, used) + "\n"


# What the slimmed stylesheet is a function of besides its inputs: this module's code.
SLIMMER_VERSION = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:12]


def cached_slim_stylesheet(cache: Path, source: str, used: set[str]) -> str:
    """slim_stylesheet, remembered by its inputs: parsing the theme's CSS takes about a second,
    and a build that changes one page almost never changes the set of names in use."""
    key = digest("\0".join([SLIMMER_VERSION, source, *sorted(used)]))
    hit = cache / f"{key}.css"
    if hit.is_file():
        return hit.read_text(encoding="utf-8")
    css = slim_stylesheet(source, used)
    cache.mkdir(parents=True, exist_ok=True)
    tmp = hit.with_suffix(".tmp")
    tmp.write_text(css, encoding="utf-8")
    tmp.replace(hit)
    for old in sorted(cache.glob("*.css"), key=lambda p: p.stat().st_mtime)[:-8]:
        old.unlink(missing_ok=True)  # keep the latest few (two stylesheets, a few sets of names)
    return css


def slim_site(app, exception) -> None:
    """After each HTML build: drop unused theme assets, translate the interface around each page
    written, slim the theme's stylesheets to the classes and ids the pages use, and point every
    page at them. A page this build did not write keeps what an earlier build gave it: its
    names are remembered (by its size and modification time), and it is read again only when
    the stylesheets change."""
    if exception or app.builder.name != "html":
        return
    outdir = Path(app.outdir)
    static = outdir / "_static"
    for relative in UNUSED_ASSETS:
        target = static / relative
        if target.is_dir():
            for child in sorted(target.rglob("*"), reverse=True):
                child.unlink() if child.is_file() else child.rmdir()
            target.rmdir()
            if not any(target.parent.iterdir()):
                target.parent.rmdir()
        elif target.exists():
            target.unlink()
    memory = Path(app.doctreedir) / "insider-slim-pages.pickle"
    try:
        remembered = pickle.loads(memory.read_bytes())
    except (OSError, pickle.UnpicklingError, EOFError):
        remembered = {}
    known = remembered.get("pages", {})
    names: dict[Path, set[str]] = {}
    written: dict[Path, str] = {}  # pages read this time, as they are on disk
    pages: dict[Path, str] = {}  # the same, with the interface translated
    for page in outdir.rglob("*.html"):
        if page.relative_to(outdir).parts[0] == "_static":
            continue
        stat = page.stat()
        held = known.get(page)
        if held and held[0] == (stat.st_mtime_ns, stat.st_size):
            names[page] = held[1]
            continue
        written[page] = page.read_text(encoding="utf-8")
        pages[page] = translate_page(written[page], app.config.language)
        names[page] = page_names(pages[page])
    used = set().union(*names.values()) | script_names(static)
    versions = {}
    cache = Path(app.doctreedir) / "insider-slim-css"
    for relative, source in THEME_STYLESHEETS.items():
        css = cached_slim_stylesheet(cache, source.read_text(encoding="utf-8"), used)
        (static / relative).write_text(css, encoding="utf-8")
        versions[relative] = digest(css)
    if versions != remembered.get("versions"):  # every page must link the new stylesheets
        for page in names.keys() - pages.keys():
            written[page] = pages[page] = page.read_text(encoding="utf-8")
    version_links(pages, versions, written)
    known = {}
    for page in names:
        stat = page.stat()
        known[page] = ((stat.st_mtime_ns, stat.st_size), names[page])
    memory.write_bytes(pickle.dumps({"pages": known, "versions": versions}))


def version_links(pages: dict[Path, str], versions: dict[str, str], written: dict[Path, str]) -> None:
    """Point every page at this build's slimmed stylesheets (``?v=<content hash>``), so that a
    browser holding an older copy fetches the new one. The pages were written before the
    stylesheets existed, hence this pass over them."""
    pattern = re.compile(
        r'(_static/(' + "|".join(map(re.escape, versions)) + r'))(?:\?[^"]*)?"'
    )
    for page, html in pages.items():
        versioned = pattern.sub(lambda m: f'{m.group(1)}?v={versions[m.group(2)]}"', html)
        if versioned != written[page]:
            page.write_text(versioned, encoding="utf-8")


def write_icons(app) -> None:
    if app.builder.format != "html":  # the EPUB's pages link the stylesheet too
        return
    static = Path(app.outdir) / "_static"
    static.mkdir(parents=True, exist_ok=True)
    css = icons_css()
    target = static / ICONS_CSS
    if not target.exists() or target.read_text(encoding="utf-8") != css:
        target.write_text(css, encoding="utf-8")


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def setup(app):
    app.add_css_file(ICONS_CSS, priority=900)
    app.connect("builder-inited", write_icons)
    app.connect("html-page-context", page_context, priority=900)  # after the theme adds its snippets
    app.connect("build-finished", slim_site)
