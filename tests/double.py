"""A synthetic book twice the size of this one, for `DOUBLE=1 make bench` (issue: the builds must
stay fast as the book doubles). Every chapter folder is copied as <folder>-2 with its English
catalogs and listed again in the root toctree; the copies' labels get a -2 suffix so that they do
not clash. The text is the same, so the copy weighs what a second book of the same kind would."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

LABEL = re.compile(r"^\((?P<label>[A-Za-z0-9_.:-]+)\)=$", re.M)


def double(book: Path) -> list[str]:
    index = book / "index.md"
    text = index.read_text(encoding="utf-8")
    toctree = re.search(r"```\{toctree\}\n(?:.*\n)*?```", text)
    entries = [line for line in toctree.group(0).splitlines() if line.endswith("/index")]
    folders = [entry.split("/")[0] for entry in entries]
    catalogs = book / "locales" / "en" / "LC_MESSAGES"
    for folder in folders:
        shutil.copytree(book / folder, book / f"{folder}-2")
        for page in (book / f"{folder}-2").rglob("*.md"):
            page.write_text(LABEL.sub(lambda m: f"({m.group('label')}-2)=", page.read_text(encoding="utf-8")), encoding="utf-8")
        shutil.copytree(catalogs / folder, catalogs / f"{folder}-2")
    copies = "\n".join(f"{folder}-2/index" for folder in folders)
    index.write_text(text.replace(toctree.group(0), toctree.group(0)[: -len("```")] + copies + "\n```"), encoding="utf-8")
    return folders
