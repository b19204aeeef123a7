"""Two editions of one book: the language switcher, hreflang links and the sitemap.

Locally the site is ``_build/site/{zh_CN,en}/``; on Read the Docs each edition lives at
``/<language>/<version>/`` of one domain (the zh_CN parent project and its en translation).
The switcher is a relative link to the same page in the other edition, so it works in both
layouts without knowing the host. Canonical URLs and the sitemap come from Read the Docs'
``READTHEDOCS_CANONICAL_URL`` (``html_baseurl``); nothing here names a host.
"""

from __future__ import annotations

import os
from pathlib import Path
from xml.sax.saxutils import escape

# language -> (the edition's folder in the local site, its slug on Read the Docs, its label)
EDITIONS = {
    "zh_CN": ("zh_CN", "zh-cn", "中文"),
    "en": ("en", "en", "English"),
}
HREFLANG = {"zh_CN": "zh-Hans", "en": "en"}


def other_language(language: str) -> str:
    return "en" if language == "zh_CN" else "zh_CN"


def edition_prefix(language: str) -> str:
    """From the root of this edition to the root of the other one."""
    folder, slug, _ = EDITIONS[other_language(language)]
    version = os.environ.get("READTHEDOCS_VERSION")
    if os.environ.get("READTHEDOCS") and version:
        return f"../../{slug}/{version}/"
    return f"../{folder}/"


def page_context(app, pagename, templatename, context, doctree) -> None:
    language = app.config.language
    other = other_language(language)
    to_root = "../" * pagename.count("/")
    target = f"{to_root}{edition_prefix(language)}{pagename}.html"
    context["insider_switcher"] = {
        "href": target,
        "label": EDITIONS[other][2],
        "lang": "zh-CN" if other == "zh_CN" else "en",
        "hreflang": HREFLANG[other],
    }
    base = app.config.html_baseurl
    if base:
        other_base = base.replace(f"/{EDITIONS[language][1]}/", f"/{EDITIONS[other][1]}/", 1)
        context["insider_alternates"] = [
            (HREFLANG[language], f"{base.rstrip('/')}/{pagename}.html"),
            (HREFLANG[other], f"{other_base.rstrip('/')}/{pagename}.html"),
        ]


def write_sitemap(app, exception) -> None:
    base = app.config.html_baseurl
    if exception or app.builder.name != "html" or not base:
        return
    language = app.config.language
    other = other_language(language)
    other_base = base.replace(f"/{EDITIONS[language][1]}/", f"/{EDITIONS[other][1]}/", 1)
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9" '
        'xmlns:xhtml="http://www.w3.org/1999/xhtml">',
    ]
    for docname in sorted(app.env.found_docs):
        page = f"{docname}.html"
        lines.append("  <url>")
        lines.append(f"    <loc>{escape(base.rstrip('/') + '/' + page)}</loc>")
        for lang, root in ((language, base), (other, other_base)):
            href = escape(root.rstrip("/") + "/" + page)
            lines.append(f'    <xhtml:link rel="alternate" hreflang="{HREFLANG[lang]}" href="{href}"/>')
        lines.append("  </url>")
    lines.append("</urlset>")
    Path(app.outdir, "sitemap.xml").write_text("\n".join(lines) + "\n", encoding="utf-8")


def setup(app):
    app.connect("html-page-context", page_context)
    app.connect("build-finished", write_sitemap)
