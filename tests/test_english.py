"""The English edition reads as written in English, and stays that way (CONTRIBUTING.md's
English style sheet, checked where a machine can see it).

Each check reads every catalog in locales/en/LC_MESSAGES and reports file:line; each is shown
to fail on a planted fault.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from conftest import ROOT, book_pages

CATALOGS = ROOT / "locales" / "en" / "LC_MESSAGES"

# One Chinese heading per section kind of the page anatomy, and its one English translation.
ANATOMY = {
    "源码导航图": "Source navigation map",
    "源码走读": "Walking through the source",
    "代价与后果": "Trade-offs and consequences",
    "版本说明": "Version notes",
    "动手验证": "See it yourself",
    "小结": "Summary",
    "阅读前需要的知识": "Prerequisites",
    "章节地图": "Chapter map",
    "本章讲什么": "What this chapter covers",
    "主题顺序": "Order of topics",
}
# Chinese headings that name an anatomy section another way: write the one above instead.
ANATOMY_VARIANTS = {"代价与取舍": "代价与后果", "代价与边界": "代价与后果", "代价": "代价与后果", "取舍": "代价与后果",
                    "源码地图": "源码导航图", "源码导读": "源码走读", "前置知识": "阅读前需要的知识"}  # fmt: skip

# US spelling: the British forms that must not appear (word stems; checked case-insensitively).
BRITISH = {
    "behaviour": "behavior", "labelled": "labeled", "labelling": "labeling", "modelled": "modeled",
    "modelling": "modeling", "initialis": "initializ", "serialis": "serializ", "normalis": "normaliz",
    "optimis": "optimiz", "organis": "organiz", "recognis": "recogniz", "summaris": "summariz",
    "prioritis": "prioritiz", "synchronis": "synchroniz", "minimis": "minimiz", "maximis": "maximiz",
    "utilis": "utiliz", "analyse": "analyze", "analysed": "analyzed", "analysing": "analyzing", "colour": "color", "favour": "favor", "honour": "honor",
    "centre": "center", "licence": "license", "cancelled": "canceled", "cancelling": "canceling",
    "travelled": "traveled", "signalled": "signaled", "signalling": "signaling", "queueing": "queuing",
    "catalogue": "catalog", "defence": "defense", "judgement": "judgment", "artefact": "artifact",
    "acknowledgement": "acknowledgment", "offence": "offense", "grey": "gray", "travelling": "traveling",
}  # fmt: skip
# Allowed: names that are spelled this way in the source ("Initialise" in no API we cite, but
# Envoy's own identifiers and file names are written in code spans, which the checks skip).
MAX_WORDS = 60
SEMICOLONS_PER_1000 = 5
# CJK punctuation has no place in English text (it may appear inside {zh}`…` or code).
CJK_PUNCTUATION = re.compile(r"[\u3000-\u303f\uff01-\uff0f\uff1a-\uff1f\uff3b-\uff40\uff5b-\uff65、，。；：？！（）《》]")
CURLY_QUOTES = re.compile(r"[“”‘’]")  # the book writes straight quotes
# Sentences that may run longer than MAX_WORDS: (catalog, start of the msgid) -> why.
LONG_SENTENCES_ALLOWED: dict[tuple[str, str], str] = {}
DIAGRAM = re.compile(r"^(flowchart|graph|sequenceDiagram|stateDiagram(-v2)?|classDiagram)\b")
WORD = re.compile(r"[A-Za-z0-9][\w'’-]*")


@dataclass
class Message:
    catalog: str
    line: int
    id: str
    text: str


def messages(root: Path = CATALOGS) -> list[Message]:
    found = []
    for path in sorted(root.rglob("*.po")):
        with path.open("rb") as f:
            po = read_po(f)
        rel = path.relative_to(root.parent.parent.parent).as_posix() if root == CATALOGS else path.name
        for m in po:
            if m.id and m.string:
                found.append(Message(rel, m.lineno, m.id, m.string))
    return found


def prose(text: str) -> str:
    """The English a reader reads: no code spans, role names, link targets, markup."""
    if DIAGRAM.match(text):
        # A diagram: only its labels are English prose (not the targets of its click lines).
        labels = "\n".join(line for line in text.splitlines() if not line.strip().startswith("click "))
        return html.unescape(". ".join(re.findall(r'"([^"]*)"', labels)).replace("<br/>", " "))  # each label stands alone
    text = re.sub(r"`[^`]*`", "X", text)
    text = re.sub(r"\{[a-z-]+\}", "", text)
    text = re.sub(r"\]\([^)]*\)", "]", text)
    return re.sub(r"<[^>]+>", " ", text)


# A sentence ends at . ! or ? followed by a space, whatever comes next (identifiers such as
# `istiod` start sentences in lower case), except after an abbreviation.
SENTENCE_END = re.compile(r"(?<!\be\.g\.)(?<!\bi\.e\.)(?<!\betc\.)(?<!\bvs\.)(?<=[.!?])\s+")


def sentences(text: str) -> list[str]:
    return [s for s in SENTENCE_END.split(text) if WORD.search(s)]


# -- The checks ----------------------------------------------------------------------------------


def heading_problems(msgs: list[Message]) -> list[str]:
    return [f"{m.catalog}:{m.line}: the heading {m.id} is written {ANATOMY[m.id]!r} everywhere, not {m.text!r}"
            for m in msgs if m.id in ANATOMY and m.text != ANATOMY[m.id]]  # fmt: skip


def source_heading_problems(pages: list[Path]) -> list[str]:
    found = []
    for page in pages:
        for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
            heading = re.match(r"^#{2,4} (.+?)\s*$", line)
            if heading and heading.group(1) in ANATOMY_VARIANTS:
                found.append(f"{page.relative_to(ROOT)}:{number}: write the heading {ANATOMY_VARIANTS[heading.group(1)]!r}, "
                             f"one name per section kind, not {heading.group(1)!r}")  # fmt: skip
    return found


def spelling_problems(msgs: list[Message]) -> list[str]:
    found = []
    for m in msgs:
        text = prose(m.text).lower()
        for british, american in BRITISH.items():
            if re.search(rf"\b{british}" + (r"\b" if british.startswith("analys") else ""), text):
                found.append(f"{m.catalog}:{m.line}: US spelling: {american}…, not {british}…")
    return found


# Variants the style sheet replaces with one form (the glossary's own terms are checked below).
VARIANTS = {r"\blayer[ -]4\b": "L4", r"\blayer[ -]7\b": "L7"}


def variant_problems(msgs: list[Message]) -> list[str]:
    found = []
    for m in msgs:
        text = prose(m.text).lower()
        for variant, preferred in VARIANTS.items():
            if re.search(variant, text):
                found.append(f"{m.catalog}:{m.line}: write {preferred!r}, not {re.search(variant, text).group(0)!r}")
    return found


# Calques blind reviews kept finding (CONTRIBUTING.md, "Words that translate badly by reflex").
REFLEX = {
    r"\banswers? (?:with )?(?:an? )?[1-5]\d\d\b": "'returns' or 'responds with a …'",
    r"\bgets? [1-5]\d\d\b": "'receives a …'",
    r"\bthis page reads\b": "'this page walks through'",
    r"\bstart on (?:a single|one) machine\b": "'start with a single machine'",
    r"\bleaves at (?:its|the|an?) [\w-]+ rule\b": "'is let through by … rule'",
    r"\bmultipl(?:y|ies) with\b": "'is multiplied by' or 'grows with'",
    r"\banswers (?:LIVE|DRAINING|PRE_INITIALIZING)\b": "'returns LIVE' (a server state is returned, not answered)",
}


def reflex_problems(msgs: list[Message]) -> list[str]:
    found = []
    for m in msgs:
        text = prose(m.text)
        for pattern, preferred in REFLEX.items():
            if hit := re.search(pattern, text, re.I):
                found.append(f"{m.catalog}:{m.line}: {hit.group(0)!r} is a calque: write {preferred}")
    return found


def glossary_terms() -> dict[str, str]:
    """English term (lower case) -> how the glossary writes it."""
    text = (CATALOGS / "glossary.po").read_text(encoding="utf-8")
    terms = {}
    for match in re.finditer(r'^msgstr "(.+)"$', text, re.M):
        head = match.group(1)
        if len(head) < 40 and not re.search(r"[.:;]", head) and not head.startswith(("{", "`", "|", "<")):
            terms.setdefault(head.lower(), head)
    return terms


def term_case_problems(msgs: list[Message], terms: dict[str, str]) -> list[str]:
    """{term}`Display <目标>` in the middle of a sentence is written as the glossary writes it."""
    found = []
    for m in msgs:
        for match in re.finditer(r"\{term\}`([^`<]+?)\s*<[^`]+>`", m.text):
            shown = match.group(1).strip()
            before = m.text[: match.start()].rstrip()
            starts_sentence = not before or before.endswith((".", ":", "!", "?", "|", "*"))
            expected = terms.get(shown.lower()) or next((v for k, v in terms.items() if shown.lower() == k + "s"), None)
            if expected and not starts_sentence and shown != expected and shown != expected + "s" and shown[0] != expected[0]:
                found.append(f"{m.catalog}:{m.line}: glossary term written {shown!r}; the glossary writes {expected!r}")
    return found


def punctuation_problems(msgs: list[Message]) -> list[str]:
    found = []
    for m in msgs:
        text = re.sub(r"\{zh\}`[^`]*`|`[^`]*`", "", m.text)
        if DIAGRAM.match(m.text):
            continue  # diagram node ids and arrows are not prose; their labels are checked below
        bad = CJK_PUNCTUATION.findall(text)
        if bad:
            found.append(f"{m.catalog}:{m.line}: CJK punctuation {''.join(sorted(set(bad)))!r} in English text")
        if CURLY_QUOTES.search(text):
            found.append(f"{m.catalog}:{m.line}: curly quotes; the book writes straight quotes (\" and ')")
    return found


def length_problems(msgs: list[Message]) -> list[str]:
    found = []
    for m in msgs:
        if (m.catalog, m.id[:30]) in LONG_SENTENCES_ALLOWED:
            continue
        for sentence in sentences(prose(m.text)):
            n = len(WORD.findall(sentence))
            if n > MAX_WORDS:
                found.append(f"{m.catalog}:{m.line}: a sentence of {n} words (at most {MAX_WORDS}): {sentence[:80]!r}…")
    return found


def semicolon_problems(msgs: list[Message]) -> list[str]:
    per: dict[str, list[int]] = {}
    for m in msgs:
        text = prose(m.text)
        counts = per.setdefault(m.catalog, [0, 0])
        counts[0] += len(WORD.findall(text))
        counts[1] += text.count(";")
    found = [f"{catalog}: {semis} semicolons in {words} words ({semis * 1000 / words:.1f} per 1,000; at most {SEMICOLONS_PER_1000})"
             for catalog, (words, semis) in per.items() if words >= 400 and semis * 1000 / words > SEMICOLONS_PER_1000]  # fmt: skip
    words, semis = sum(w for w, _ in per.values()), sum(s for _, s in per.values())
    if words and semis * 1000 / words > SEMICOLONS_PER_1000:
        found.append(f"all catalogs: {semis * 1000 / words:.1f} semicolons per 1,000 words")
    return found


HEADER_FIELDS = {"Project-Id-Version", "PO-Revision-Date", "Last-Translator", "Language-Team", "Language",
                 "MIME-Version", "Content-Type", "Content-Transfer-Encoding"}  # fmt: skip


def header_problems(root: Path = CATALOGS) -> list[str]:
    found = []
    for path in sorted(root.rglob("*.po")):
        head = path.read_text(encoding="utf-8").split("\n\n", 1)[0]
        # The header is one msgstr, possibly wrapped over several quoted lines: join them first.
        value = "".join(re.findall(r'^"(.*)"$', head.split('msgstr ""', 1)[-1], re.M)).replace("\\n", "\n")
        fields = dict(re.findall(r"^([A-Za-z-]+): (.*)$", value, re.M))
        rel = path.relative_to(ROOT) if ROOT in path.parents else path
        missing = HEADER_FIELDS - set(fields)
        if missing:
            found.append(f"{rel}:1: header lacks {', '.join(sorted(missing))}")
        if "YEAR" in fields.get("PO-Revision-Date", "YEAR") or "FULL NAME" in fields.get("Last-Translator", ""):
            found.append(f"{rel}:1: header still has the template's placeholder date or translator")
        if fields.get("Language") != "en":
            found.append(f"{rel}:1: header Language is {fields.get('Language')!r}, not 'en'")
        if "charset=utf-8" not in fields.get("Content-Type", "").lower():
            found.append(f"{rel}:1: header Content-Type is not UTF-8")
    return found


# -- The tests ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def msgs():
    return messages()


def test_recurring_headings_have_one_name_in_each_language(msgs):
    found = heading_problems(msgs) + source_heading_problems(book_pages())
    assert not found, "\n".join(found)


def test_us_spelling(msgs):
    found = spelling_problems(msgs)
    assert not found, "\n".join(found)


def test_one_form_for_each_term_variant(msgs):
    found = variant_problems(msgs)
    assert not found, "\n".join(found[:40])


def test_no_reflex_calques(msgs):
    found = reflex_problems(msgs)
    assert not found, "\n".join(found)


def test_glossary_terms_keep_the_glossarys_case(msgs):
    found = term_case_problems(msgs, glossary_terms())
    assert not found, "\n".join(found)


def test_no_cjk_punctuation_in_english(msgs):
    found = punctuation_problems(msgs)
    assert not found, "\n".join(found)


def test_sentences_stay_short(msgs):
    found = length_problems(msgs)
    assert not found, "\n".join(found[:40]) + (f"\n… and {len(found) - 40} more" if len(found) > 40 else "")


def test_semicolons_are_rare(msgs):
    found = semicolon_problems(msgs)
    assert not found, "\n".join(found)


def test_catalog_headers_are_complete():
    found = header_problems()
    assert not found, "\n".join(found)


# -- Planted faults -------------------------------------------------------------------------------


def planted(text: str, id_: str = "某段话") -> list[Message]:
    return [Message("locales/en/LC_MESSAGES/x.po", 7, id_, text)]


def test_each_check_fails_on_a_planted_fault(tmp_path):
    assert heading_problems(planted("Costs and consequences", "代价与后果"))
    assert spelling_problems(planted("Envoy's behaviour is modelled on …"))
    assert variant_problems(planted("ztunnel handles Layer 4 only."))
    assert not variant_problems(planted("ztunnel handles L4 only; the player 4 wins."))
    assert reflex_problems(planted("Without a route, Envoy answers 404 itself."))
    assert reflex_problems(planted("The connection leaves at its exclusion rule."))
    assert reflex_problems(planted("The connection count multiplies with the number of workers."))
    assert reflex_problems(planted("Soon `/ready` answers LIVE."))
    assert not reflex_problems(planted("The connection count is multiplied by the number of workers; `/ready` returns LIVE."))
    assert not reflex_problems(planted("Envoy responds with a 404, and the client receives a 404."))
    assert term_case_problems(planted("The request reaches the {term}`Sidecar <边车>` first."), {"sidecar": "sidecar"})
    assert not term_case_problems(planted("{term}`Sidecar <边车>` proxies sit beside the app."), {"sidecar": "sidecar"})
    assert punctuation_problems(planted("the listener，then the filter chain"))
    assert punctuation_problems(planted("the “sidecar” proxy"))
    assert not punctuation_problems(planted("the {zh}`服务网格` column"))
    assert length_problems(planted(" ".join(["word"] * 61) + "."))
    assert not length_problems(planted(" ".join(["word"] * 59) + "."))
    assert semicolon_problems(planted("one; two; " * 5 + "word " * 500))
    assert not semicolon_problems(planted("one; two; " + "word " * 500))
    bad = tmp_path / "locales" / "en" / "LC_MESSAGES"
    bad.mkdir(parents=True)
    (bad / "x.po").write_text('msgid ""\nmsgstr ""\n"PO-Revision-Date: YEAR-MO-DA HO:MI+ZONE\\n"\n\nmsgid "a"\nmsgstr "b"\n', encoding="utf-8")
    assert header_problems(bad)
    good = '"Project-Id-Version: Book "\n"v1\\n"\n"PO-Revision-Date: 2026-01-01 00:00+0000\\n"\n"Last-Translator: T\\n"\n' \
        '"Language: en\\n"\n"Language-Team: English <https://example.org/a-very-long-"\n"address>\\n"\n"MIME-Version: 1.0\\n"\n' \
        '"Content-Type: text/plain; charset=utf-8\\n"\n"Content-Transfer-Encoding: 8bit\\n"\n'
    (bad / "x.po").write_text('msgid ""\nmsgstr ""\n' + good + '\nmsgid "a"\nmsgstr "b"\n', encoding="utf-8")
    assert not header_problems(bad), "a header wrapped over several lines is still a complete header"


def test_source_heading_check_fails_on_a_planted_variant(tmp_path):
    page = ROOT / "_build" / "planted-heading.md"
    page.parent.mkdir(exist_ok=True)
    page.write_text("# 标题\n\n## 代价与取舍\n", encoding="utf-8")
    try:
        found = source_heading_problems([page])
    finally:
        page.unlink()
    assert found and "_build/planted-heading.md:3:" in found[0]
