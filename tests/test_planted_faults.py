"""Every check fails on a planted fault, with a message that names the file and line."""

from __future__ import annotations

import re

import pytest
from conftest import copy_book, sphinx_build

import catalogs

PAGE = "ch0/index.md"

BUILD_FAULTS = {
    "unknown source path": (
        "引用 {envoy}`source/common/event/dispatcher_impll.cc` 的文件。",
        r"unknown envoy path 'source/common/event/dispatcher_impll.cc'.*did you mean",
    ),
    "unknown symbol": (
        "引用 {istio-sym}`xds.DiscoveryServer.Pushh` 的符号。",
        r"unknown istio symbol 'xds.DiscoveryServer.Pushh'",
    ),
    "broken cross-reference": (
        "参见 {ref}`no-such-section`。",
        r"undefined label: 'no-such-section'",
    ),
    "invalid Envoy YAML": (
        "```yaml\n# envoy-type: envoy.config.cluster.v3.Cluster\nname: demo\nconect_timeout: 1s\n```",
        r"config example: invalid envoy.config.cluster.v3.Cluster: Unknown field 'conect_timeout'",
    ),
    "invalid Istio resource": (
        "```yaml\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata:\n  name: d\nspec:\n  hots: r\n```",
        r"config example: DestinationRule .*Additional properties are not allowed \('hots'",
    ),
    "missing diagram render": (
        '```{mermaid}\n:alt: 一张还没有渲染过的图。\n\nflowchart LR\n  A["新框"] --> B["另一个新框"]\n```',
        r"diagram has no current render",
    ),
    "diagram link to an unknown symbol": (
        '```{mermaid}\n:alt: 一张链接错误的图。\n\nflowchart LR\n  A["框"]\n  click A href "envoy-sym:NoSuch::Thing"\n```',
        r"diagram link: unknown envoy symbol 'NoSuch::Thing'",
    ),
    "Chinese in a code block": (
        "```bash\nkubectl get pods\n# 查看 Pod\n```",
        r"code blocks are shared by both editions.*'# 查看 Pod'",
    ),
    "diagram without alt text": (
        '```{mermaid}\nflowchart LR\n  A["框"]\n```',
        r"diagram has no :alt: text",
    ),
}


@pytest.fixture(scope="module")
def planted_build(tmp_path_factory):
    """One copy of the book with every fault planted in one page, each in its own lines, built
    once (-W --keep-going reports every warning): (build, {fault: first line of its text})."""
    tmp = tmp_path_factory.mktemp("planted")
    book = copy_book(tmp / "book")
    page = book / PAGE
    text = page.read_text(encoding="utf-8").rstrip("\n") + "\n\n"
    lines = {}
    for fault in sorted(BUILD_FAULTS):
        lines[fault] = text.count("\n") + 1
        text += BUILD_FAULTS[fault][0] + "\n\n"
    page.write_text(text, encoding="utf-8")
    return sphinx_build(book, tmp / "out", "zh_CN"), lines


@pytest.mark.parametrize("fault", sorted(BUILD_FAULTS))
def test_build_fails_on_planted_fault(planted_build, fault):
    done, lines = planted_build
    line = lines[fault]
    expected = BUILD_FAULTS[fault][1]
    assert done.returncode != 0, f"the build passed despite: {fault}"
    location = re.compile(rf"{re.escape(PAGE)}:(\d+):")
    messages = [m for m in done.stderr.splitlines() if re.search(expected, m)]
    assert messages, f"no message matching {expected!r} in:\n{done.stderr}"
    here = [m for m in messages if location.search(m) and line <= int(location.search(m).group(1)) <= line + 8]
    assert here, f"no message for {fault!r} names {PAGE} at lines {line}-{line + 8}: {messages}"


def _catalog(book):
    return book / "locales" / "en" / "LC_MESSAGES" / "ch0" / "index.po"


def test_untranslated_string_fails(tmp_path):
    book = copy_book(tmp_path / "book")
    po = _catalog(book)
    text = po.read_text(encoding="utf-8")
    # Empty the translation of the first real message.
    text = re.sub(r'(\nmsgid "[^"]+"\n)msgstr "[^"]*"\n', r'\1msgstr ""\n', text, count=1)
    po.write_text(text, encoding="utf-8")
    found = catalogs.problems(book)
    assert any(re.search(r"ch0/index\.po:\d+: untranslated", f) for f in found), found


def test_fuzzy_translation_fails(tmp_path):
    book = copy_book(tmp_path / "book")
    po = _catalog(book)
    text = po.read_text(encoding="utf-8")
    text = re.sub(r'\n(msgid "[^"]+"\n)', r'\n#, fuzzy\n\1', text, count=1)
    po.write_text(text, encoding="utf-8")
    found = catalogs.problems(book)
    assert any(re.search(r"ch0/index\.po:\d+: fuzzy", f) for f in found), found


def test_stale_catalog_fails(tmp_path):
    book = copy_book(tmp_path / "book")
    page = book / PAGE
    page.write_text(page.read_text(encoding="utf-8") + "\n新加的一段话，还没有译文。\n", encoding="utf-8")
    found = catalogs.problems(book)
    assert any("ch0/index.po: missing message '新加的一段话" in f for f in found), found


def test_malformed_po_entry_fails_with_its_line(tmp_path):
    book = copy_book(tmp_path / "book")
    po = _catalog(book)
    lines = po.read_text(encoding="utf-8").splitlines(keepends=True)
    n = next(i for i, line in enumerate(lines) if line.startswith("msgstr") and i > 20)
    lines[n] = 'msgstr "unterminated\n'
    po.write_text("".join(lines), encoding="utf-8")
    found = catalogs.problems(book)
    # msgfmt names the broken line (or the one after it, where the string runs on).
    assert any(re.search(rf"ch0/index\.po:({n + 1}|{n + 2}):", f) for f in found), found
