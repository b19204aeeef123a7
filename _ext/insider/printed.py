"""The printed book (PDF): the preface as one chapter.

In a LaTeX build the root document's title becomes the book's title and each of its sections
would become a chapter of its own. The preface's sections belong together, so they are gathered
into one chapter titled 前言 / Preface, followed by the chapters of the root toctree.
"""

from __future__ import annotations

from docutils import nodes

PREFACE = {"zh_CN": "前言", "en": "Preface"}


def gather_preface(app, doctree, docname) -> None:
    if app.builder.format != "latex" or docname != app.config.root_doc:
        return
    root = next(iter(doctree.findall(nodes.section)), None)
    if root is None:
        return
    # The chapters (the inlined toctree) may sit inside the preface's last section: lift them
    # out so they stay chapters, then gather everything else under one title.
    chapters = [c for c in root.findall(nodes.compound) if "toctree-wrapper" in c["classes"]]
    for chapter in chapters:
        chapter.parent.remove(chapter)
    body = list(root.children[1:])
    if not body:
        return
    first = root.index(body[0])
    preface = nodes.section(ids=["insider-preface"], names=[])
    title = PREFACE.get(app.config.language, PREFACE["en"])
    preface += nodes.title(title, title)
    for child in body:
        root.remove(child)
        preface += child
    root.insert(first, preface)
    root.extend(chapters)


def setup(app):
    app.connect("doctree-resolved", gather_preface)
