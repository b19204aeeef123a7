"""The response-flag decoder is checked against Envoy v1.39.0's flag list, and the build refuses a
decoder table that misses a flag or names one that does not exist, in both editions, naming the
page and the line."""

from __future__ import annotations

import hashlib
import re

import pytest
from conftest import ROOT, copy_book, sphinx_build

TSV = ROOT / "_refs" / "envoy-v1.39.0-response-flags.tsv"
PAGE = "ch2-envoy/access-logs-and-response-flags.md"
COMMIT = "8eea3285d6bdb89f8ea34632cfe7ce1608a8f374"
REMOVED = "DR"  # the flag whose row the planted fault removes
EXTRA = "| `XX` | `NotAFlag` | – | – | – | – |"
RENAMED = ("UT", "UpstreamRequestTimeout", "UpstreamTimeout")  # a row whose long name the fault changes


def tsv_rows() -> list[list[str]]:
    return [line.split("\t") for line in TSV.read_text(encoding="utf-8").splitlines() if line and not line.startswith("#")]


def decoder_rows(text: str) -> tuple[int, dict[str, int]]:
    """(line of the {flag-decoder} directive, {short name: line}) from the page's Markdown."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "```{flag-decoder}")
    rows: dict[str, int] = {}
    for i in range(start + 1, len(lines)):
        line = lines[i]
        if line.startswith("```"):
            break
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) > 1 and cells[0].startswith("`"):
            rows[cells[0].strip("`")] = i + 1
    return start + 1, rows


def test_flag_list_is_the_recorded_copy():
    sums = dict(reversed(line.split()) for line in (ROOT / "_refs" / "SHA256SUMS").read_text().splitlines())
    assert TSV.name in sums, "_refs/SHA256SUMS has no line for the flag list"
    assert hashlib.sha256(TSV.read_bytes()).hexdigest() == sums[TSV.name]


def test_flag_list_names_its_source_and_holds_every_flag_once():
    header = "\n".join(line for line in TSV.read_text(encoding="utf-8").splitlines() if line.startswith("#"))
    assert COMMIT in header and "source/common/stream_info/utility.h" in header and "python3 -c" in header
    rows = tsv_rows()
    assert all(len(row) == 3 for row in rows)
    shorts = [row[0] for row in rows]
    assert len(shorts) == len(set(shorts)) == 30
    assert rows[0] == ["LH", "FailedLocalHealthCheck", "FailedLocalHealthCheck"]
    assert rows[-1] == ["UDO", "UnconditionalDropOverload", "UnconditionalDropOverload"]


def test_page_has_one_row_per_flag():
    _, rows = decoder_rows((ROOT / PAGE).read_text(encoding="utf-8"))
    assert sorted(rows) == sorted(row[0] for row in tsv_rows())


@pytest.fixture(scope="module", params=["zh_CN", "en"])
def planted(request, tmp_path_factory):
    """A copy of the book whose decoder lacks the row for DR, has a row for a flag that does not
    exist and gives UT a long name Envoy does not use, built in one edition:
    (build, directive line, extra row line, renamed row line)."""
    tmp = tmp_path_factory.mktemp(f"flags-{request.param}")
    book = copy_book(tmp / "book")
    page = book / PAGE
    lines = page.read_text(encoding="utf-8").splitlines()
    _, rows = decoder_rows("\n".join(lines))
    lines[rows["UDO"] - 1 : rows["UDO"]] = [lines[rows["UDO"] - 1], EXTRA]
    short, right, wrong = RENAMED
    lines[rows[short] - 1] = lines[rows[short] - 1].replace(f"| `{right}` |", f"| `{wrong}` |", 1)
    del lines[rows[REMOVED] - 1]
    page.write_text("\n".join(lines) + "\n", encoding="utf-8")
    directive, planted_rows = decoder_rows("\n".join(lines))
    assert REMOVED not in planted_rows and "XX" in planted_rows
    return sphinx_build(book, tmp / "out", request.param), directive, planted_rows["XX"], planted_rows[short]


def _messages(done, pattern: str) -> list[tuple[int, str]]:
    location = re.compile(rf"{re.escape(PAGE)}:(\d+): WARNING: (.*)")
    found = []
    for line in done.stderr.splitlines():
        match = location.search(line)
        if match and re.search(pattern, match.group(2)):
            found.append((int(match.group(1)), match.group(2)))
    return found


def test_missing_row_fails_at_the_directive(planted):
    done, directive, _, _ = planted
    assert done.returncode != 0, "the build passed with a flag missing from the decoder"
    found = _messages(done, rf"flag decoder: no row for 1 response flag.*\b{REMOVED} \(DownstreamRemoteReset\)")
    assert found, f"no message about the missing row in:\n{done.stderr}"
    assert [line for line, _ in found] == [directive], found


def test_extra_row_fails_at_its_line(planted):
    done, _, extra, _ = planted
    assert done.returncode != 0, "the build passed with a row for a flag Envoy does not have"
    found = _messages(done, r"flag decoder: row for 'XX', which is not a response flag of Envoy v1\.39\.0")
    assert found, f"no message about the extra row in:\n{done.stderr}"
    assert [line for line, _ in found] == [extra], found


def test_wrong_long_name_fails_at_its_line(planted):
    done, _, _, renamed = planted
    short, right, wrong = RENAMED
    assert done.returncode != 0
    found = _messages(done, rf"flag decoder: row for '{short}' gives its long name as '{wrong}'; Envoy v1\.39\.0 calls it '{right}'")
    assert found, f"no message about the wrong long name in:\n{done.stderr}"
    assert [line for line, _ in found] == [renamed], found
