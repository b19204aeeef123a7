"""The Chinese general index is in pinyin order under A–Z; the English one is Sphinx's own."""

from __future__ import annotations

import re

import pytest
from conftest import ROOT  # noqa: F401 - puts _ext on the path
from insider.pinyinindex import regroup


def entry(name: str):
    return (name, ([(0, f"glossary.html#{name}", "main", "")], [], None))


def test_han_entries_go_under_their_pinyin_initial_in_pinyin_order():
    # What Sphinx hands over: one group per first character, in code-point order.
    sphinx = [
        ("I", [entry("istiod")]),
        ("S", [entry("Sidecar"), entry("SDS")]),
        ("X", [entry("xDS")]),
        ("上", [entry("上游")]),
        ("服", [entry("服务注册表"), entry("服务端先发协议"), entry("服务网格")]),
        ("熔", [entry("熔断")]),
        ("数", [entry("数据面")]),
        ("防", [entry("防抖")]),
    ]
    grouped = {letter: [name for name, _ in items] for letter, items in regroup(sphinx)}
    assert list(grouped) == ["F", "I", "R", "S", "X"]
    assert grouped["F"] == ["防抖", "服务端先发协议", "服务网格", "服务注册表"]  # fang < fu; duan < wang < zhu
    assert grouped["S"] == ["SDS", "上游", "数据面", "Sidecar"]  # sds < shang < shu < sidecar
    assert grouped["R"] == ["熔断"]


def test_symbols_stay_first_under_sphinxs_heading():
    grouped = regroup([("符号", [entry("--concurrency")]), ("A", [entry("ADS")]), ("上", [entry("上游")])])
    assert [letter for letter, _ in grouped] == ["符号", "A", "S"]


def test_links_and_subentries_are_carried_over_unchanged():
    item = ("熔断", ([(0, "glossary.html#term-1", "main", "")], [("统计", [(0, "stats.html#x", "", "")])], None))
    [(letter, [carried])] = regroup([("熔", [item])])
    assert letter == "R" and carried is item


@pytest.mark.parametrize("language", ["zh_CN", "en"])
def test_the_built_index_is_grouped_by_latin_letters(site, language):
    html = (site / language / "genindex.html").read_text(encoding="utf-8")
    headings = re.findall(r'<h2 id="([^"]+)">', html)
    assert len(headings) >= 10, headings
    assert all(re.fullmatch(r"[A-Z]", h) for h in headings), headings
    assert headings == sorted(headings)
    entries = re.findall(r'<li><a href="[^"]*">(?:<strong>)?([^<]+)', html)
    assert len(entries) > 80
    if language == "zh_CN":
        han = [e for e in entries if re.match(r"[\u4e00-\u9fff]", e)]
        assert len(han) > 50 and han.index("服务网格") < han.index("熔断") < han.index("数据面"), han
