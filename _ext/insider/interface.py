"""The interface around the pages, in the edition's language.

The themes bring their own interface text: some through message catalogs that lack Chinese
entries ("System Settings", "Color mode") or use Taiwanese usage (列印成 PDF for "Print to PDF";
mainland Chinese says 打印), some written into the templates in English ("Toggle primary
sidebar", the navigation landmarks "Main" and "Page"). The Chinese edition gets all of it in
mainland Chinese from this one table: the header buttons when the page is put together, the
rest in the written pages. The English edition keeps the themes' English.
``tests/test_reading.py`` finds any interface text left in the wrong language.
"""

from __future__ import annotations

import re

# The themes' interface strings and their Chinese.
CHINESE = {
    # sphinx-book-theme's header buttons (its "booktheme" catalog)
    "Repository": "源码仓库",
    "Source repositories": "源码仓库",
    "Suggest edit": "建议修改",
    "Open issue": "报告问题",
    "Print to PDF": "打印为 PDF",
    "Download this page": "下载本页",
    "Fullscreen mode": "全屏",
    # pydata-sphinx-theme's colour-mode switch (Sphinx's catalog, no Chinese entries there)
    "Color mode": "颜色模式",
    "System Settings": "跟随系统",
    "Light": "亮色",
    "Dark": "暗色",
    # written into the templates in English
    "Toggle primary sidebar": "显示或隐藏全书目录",
    "Toggle secondary sidebar": "显示或隐藏本页目录",
    "Main": "全书目录",
    "Page": "本页目录",
    "Search...": "搜索……",
    "Skip to main content": "跳到正文",
    "Back to top": "回到顶部",
}
# Where these strings sit in the written page: attribute values and element text.
_ATTRIBUTE = re.compile(r'\b(title|aria-label|placeholder|data-bs-title)="([^"]+)"')
_TEXT = re.compile(r">(\s*)([^<>]+?)(\s*)<")
# Phrases inside longer text: Taiwanese usage, and the footer's English "© Copyright <year…>".
_TAIWANESE = {"列印成 PDF": "打印为 PDF", "列印": "打印", "© Copyright ": "© "}


def relabel_buttons(buttons: list, language: str) -> None:
    """sphinx-book-theme's header buttons (a list of groups of dicts), in the edition's language."""
    if language != "zh_CN":
        return
    for button in buttons:
        for key in ("tooltip", "text", "label"):
            value = button.get(key)
            if isinstance(value, str):
                value = CHINESE.get(value, value)
                for taiwanese, mainland in _TAIWANESE.items():
                    value = value.replace(taiwanese, mainland)
                button[key] = value
        relabel_buttons(button.get("buttons", []), language)


def translate_page(html: str, language: str) -> str:
    """The interface strings of a written page (outside its article) in the edition's language."""
    if language != "zh_CN":
        return html
    start, end = html.find('<article class="bd-article"'), html.find("</article>")
    outside = [(0, start if start >= 0 else len(html))]
    if start >= 0 and end >= 0:
        outside.append((end, len(html)))
    pieces, last = [], 0
    for begin, finish in outside:
        pieces.append(html[last:begin])
        pieces.append(_translate(html[begin:finish]))
        last = finish
    pieces.append(html[last:])
    return "".join(pieces)


def _translate(part: str) -> str:
    part = _ATTRIBUTE.sub(lambda m: f'{m.group(1)}="{CHINESE.get(m.group(2), m.group(2))}"', part)
    part = _TEXT.sub(lambda m: f">{m.group(1)}{CHINESE.get(m.group(2), m.group(2))}{m.group(3)}<", part)
    for taiwanese, mainland in _TAIWANESE.items():
        part = part.replace(taiwanese, mainland)
    return part
