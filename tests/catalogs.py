"""The English catalogs are complete and current: the checks behind `make test`.

``problems(book)`` returns one line per problem, each naming the catalog file and line:
a malformed entry (msgfmt --check), a fuzzy or untranslated message, a message the pages no
longer have, a message the catalog lacks, or any other difference `make update-po` would make.
"""

from __future__ import annotations

import filecmp
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from babel.messages.pofile import PoFileError, read_po

HEADER_DATES = re.compile(r'^"(POT-Creation-Date|PO-Revision-Date): .*\\n"$', re.M)


def templates(book: Path, out: Path) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "sphinx", "-b", "gettext", "-W", "--keep-going", "-q",
           "-d", str(out / ".doctrees"), str(book), str(out)]  # fmt: skip
    return subprocess.run(cmd, capture_output=True, text=True, cwd=book)


def _normalised(path: Path) -> str:
    return HEADER_DATES.sub("", path.read_text(encoding="utf-8"))


def extra_paragraphs(msgid: str, msgstr: str) -> str:
    """A translation with a paragraph break its source does not have ('' when there is none):
    text pasted in from elsewhere, such as a reviewer's tally after a corrected paragraph."""
    if msgstr.strip().count("\n\n") > msgid.strip().count("\n\n"):
        tail = msgstr.strip().split("\n\n")[-1]
        return f"the translation has a paragraph its source does not have: {tail[:60]!r}"
    return ""


def problems(book: Path) -> list[str]:
    found: list[str] = []
    malformed = False
    catalogs = book / "locales" / "en" / "LC_MESSAGES"
    with tempfile.TemporaryDirectory() as scratch:
        pot_dir = Path(scratch) / "gettext"
        done = templates(book, pot_dir)
        if done.returncode != 0:
            return [f"the gettext build failed:\n{done.stderr}"]
        pots = {p.relative_to(pot_dir).with_suffix(".po"): p for p in pot_dir.rglob("*.pot")}
        pos = {p.relative_to(catalogs): p for p in catalogs.rglob("*.po")}
        for rel in sorted(set(pots) - set(pos)):
            found.append(f"{catalogs / rel}: missing catalog for a page (run `make update-po`)")
        for rel in sorted(set(pos) - set(pots)):
            found.append(f"{catalogs / rel}: catalog of a page that no longer exists (delete it)")

        for rel in sorted(set(pots) & set(pos)):
            po_path = pos[rel]
            check = subprocess.run(
                ["msgfmt", "--check", "-o", "/dev/null", str(po_path)], capture_output=True, text=True
            )
            if check.returncode != 0:
                malformed = True
                found.extend(line for line in check.stderr.splitlines() if line.strip())
                continue
            try:
                with po_path.open("rb") as f:
                    po = read_po(f, abort_invalid=True)
                with pots[rel].open("rb") as f:
                    pot = read_po(f)
            except PoFileError as err:
                malformed = True
                found.append(f"{po_path}: malformed: {err}")
                continue
            wanted = {m.id for m in pot if m.id}
            for message in po:
                if not message.id:
                    continue
                where = f"{po_path}:{message.lineno}"
                if message.id not in wanted:
                    found.append(f"{where}: stale message the page no longer has (run `make update-po`)")
                elif message.fuzzy:
                    found.append(f"{where}: fuzzy translation (review it and drop the fuzzy flag)")
                elif not message.string or not str(message.string).strip():
                    found.append(f"{where}: untranslated: {message.id[:60]!r}")
                elif extra := extra_paragraphs(message.id, str(message.string)):
                    found.append(f"{where}: {extra}")
            for message_id in sorted(wanted - {m.id for m in po if m.id}):
                found.append(f"{po_path}: missing message {message_id[:60]!r} (run `make update-po`)")
            for obsolete in po.obsolete.values():
                found.append(f"{po_path}:{obsolete.lineno}: obsolete entry (run `make update-po`)")

        if malformed:
            return found  # sphinx-intl cannot update a catalog it cannot read
        # Anything else `make update-po` would change (locations, flags, wrapping) is stale too.
        updated = Path(scratch) / "locales"
        shutil.copytree(book / "locales", updated)
        subprocess.run(
            [sys.executable, "-m", "sphinx_intl", "update", "-p", str(pot_dir), "-d", str(updated),
             "-l", "en", "-w", "0", "--no-obsolete"],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        for rel, po_path in sorted(pos.items()):
            fresh = updated / "en" / "LC_MESSAGES" / rel
            if not filecmp.cmp(po_path, fresh, shallow=False) and _normalised(po_path) != _normalised(fresh):
                found.append(f"{po_path}: out of date with the pages (run `make update-po`)")
    return found


PLACEHOLDER_DATE = re.compile(r'^"PO-Revision-Date: YEAR-MO-DA HO:MI\+ZONE\\n"$', re.M)


def fill_headers(book: Path) -> list[Path]:
    """Give new catalogs (made by `make update-po`) a real revision date instead of the
    template's placeholder, which msgfmt warns about; return the catalogs changed."""
    import datetime

    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M+0000")
    changed = []
    for po in sorted((book / "locales" / "en" / "LC_MESSAGES").rglob("*.po")):
        text = po.read_text(encoding="utf-8")
        if PLACEHOLDER_DATE.search(text):
            po.write_text(PLACEHOLDER_DATE.sub(f'"PO-Revision-Date: {stamp}\\\\n"', text, count=1), encoding="utf-8")
            changed.append(po)
    return changed


if __name__ == "__main__" and sys.argv[1:] == ["--fill-headers"]:
    for path in fill_headers(Path(__file__).resolve().parents[1]):
        print(f"header filled: {path}")
