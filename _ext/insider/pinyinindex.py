"""The Chinese edition's general index in pinyin order, grouped by Latin initials.

Sphinx groups index entries by their first character and sorts them by code point, so the
Chinese index had one heading per Han character (上, 下, 主, …) in an order no Chinese reader
expects. Chinese indexes are ordered by pinyin and grouped under A–Z, with Latin names (istiod,
xDS) in the same letters. This regroups the entries Sphinx computed, just before the page is
written; links, sub-entries and the English edition are untouched.
"""

from __future__ import annotations

import re

HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]")


def sort_key(name: str) -> tuple[str, str]:
    """(group letter, sort string) of an index entry: Han characters by their pinyin (tone as a
    tie-break), everything else as lower-case text. Entries that start with neither a letter nor
    a Han character go under Sphinx's own "Symbols" heading, first."""
    from pypinyin import Style, lazy_pinyin

    text = name.strip()
    syllables = lazy_pinyin(text, style=Style.TONE3, errors=lambda chars: [chars.lower()])
    spelled = " ".join(syllables)
    first = spelled[:1].upper()
    if not HAN.match(text) and not text[:1].isalpha():
        return "", spelled
    return first, spelled


def regroup(entries: list) -> list:
    """Sphinx's ``genindexentries`` ([(heading, [(name, (links, subitems, key)), …]), …]) as
    pinyin-ordered groups under A–Z (symbols first, under Sphinx's own heading)."""
    symbols_heading = None  # Sphinx's own (translated) heading for entries that start with a symbol
    groups: dict[str, list] = {}
    for heading, items in entries:
        for item in items:
            letter, _ = sort_key(item[0])
            if not letter:
                symbols_heading = heading
            groups.setdefault(letter, []).append(item)
    ordered = []
    for letter in sorted(groups):
        items = sorted(groups[letter], key=lambda item: (sort_key(item[0])[1], item[0]))
        ordered.append((letter or symbols_heading, items))
    return ordered


def page_context(app, pagename, templatename, context, doctree) -> None:
    if pagename != "genindex" or not (app.config.language or "").startswith("zh") or "genindexentries" not in context:
        return
    context["genindexentries"] = regroup(context["genindexentries"])
    context["genindexcounts"] = [sum(1 + len(subitems) for _, (_, subitems, _) in items) for _, items in context["genindexentries"]]


def setup(app):
    app.connect("html-page-context", page_context)
