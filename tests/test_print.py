"""The PDF and EPUB editions: built with `make pdf epub`, read back with poppler and epubcheck."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest
from conftest import LANGUAGES, ROOT, book_pages, copy_book
from system import epubcheck_jar

# Chapter titles each edition must show (pdftotext joins title words with single spaces).
TITLES = {
    "zh_CN": ["目录", "前言", "读者指南", "第一章 Istio 架构", "第二章 Envoy 内幕", "附录 实验环境", "术语表", "中文版"],
    "en": ["Contents", "Preface", "Chapter 1 Istio architecture", "Chapter 2 Inside Envoy", "Glossary", "English edition"],
}
TOFU = re.compile("[\ufffd\u25a1]")


def make(book: Path, build: Path, *targets: str, languages=LANGUAGES) -> subprocess.CompletedProcess:
    # -j2: the editions' PDFs and EPUBs are separate targets, built side by side (xelatex is serial).
    cmd = ["make", "-s", "-j2", "-C", str(book), *targets, f"BUILD={build}", f"VENV={ROOT / '.venv'}",
           f"LANGUAGES={' '.join(languages)}"]  # fmt: skip
    return subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, MAKEFLAGS=""))


def text(pdf: Path) -> str:
    return subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True).stdout


def diagrams_in_sources() -> int:
    return sum(p.read_text(encoding="utf-8").count("```{mermaid}") for p in book_pages())


@pytest.fixture(scope="module")
def printed(tmp_path_factory):
    build = tmp_path_factory.mktemp("print")
    done = make(ROOT, build, "pdf", "epub")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return build


@pytest.mark.parametrize("language", LANGUAGES)
def test_pdf_has_its_titles_in_its_language_and_no_tofu(printed, language):
    pdf_text = text(printed / "pdf" / f"istio-envoy-insider-{language}.pdf")
    flat = re.sub(r"\s+", " ", pdf_text)
    missing = [t for t in TITLES[language] if t not in flat]
    assert not missing, f"{language} PDF lacks {missing}"
    assert "Envoy v1.39.0" in flat and "Istio 1.30.3" in flat and "ztunnel 1.30.3" in flat
    assert not TOFU.search(pdf_text), "replacement or tofu characters in the PDF text"


def test_chinese_pdf_embeds_noto_cjk(printed):
    fonts = subprocess.run(
        ["pdffonts", str(printed / "pdf" / "istio-envoy-insider-zh_CN.pdf")], capture_output=True, text=True, check=True
    ).stdout
    cjk = [line for line in fonts.splitlines() if re.search(r"Noto(Serif|Sans)CJK", line)]
    assert cjk, fonts
    assert all(" yes " in line for line in cjk), "a Noto CJK font is not embedded"


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_diagram_is_in_the_pdf_as_a_vector_image(printed, language):
    latex = printed / "latex" / language
    log = (latex / f"istio-envoy-insider-{language}.log").read_text(encoding="utf-8", errors="replace")
    tex = (latex / f"istio-envoy-insider-{language}.tex").read_text(encoding="utf-8")
    included = re.findall(r"\\sphinxincludegraphics\{\{(diagram-[0-9a-f]{20})\}\.pdf\}", tex)
    assert len(included) == diagrams_in_sources()
    for name in set(included):
        assert f"{name}.pdf" in log, f"{name}.pdf was not read by xelatex"
    assert "Missing character" not in log


@pytest.mark.parametrize("language", LANGUAGES)
def test_epub_passes_epubcheck_with_diagrams_and_cover(printed, language):
    epub = printed / "epub" / f"istio-envoy-insider-{language}.epub"
    check = subprocess.run(["java", "-jar", epubcheck_jar(), str(epub)], capture_output=True, text=True)
    assert check.returncode == 0 and "No errors or warnings detected" in check.stdout, check.stdout + check.stderr
    names = zipfile.ZipFile(epub).namelist()
    assert len([n for n in names if re.search(r"_images/diagram-[0-9a-f]{20}\.svg$", n)]) >= diagrams_in_sources() // 2
    opf = zipfile.ZipFile(epub).read("content.opf").decode()
    cover_id = re.search(r'<meta name="cover" content="([^"]+)"', opf).group(1)
    assert re.search(rf'<item id="{cover_id}" href="_static/cover.svg"', opf)
    assert "epub-cover.xhtml" in names, "no cover page"


# "Overfull \hbox (12.3pt too wide) in paragraph at lines 4051--4052": text beyond the text block.
OVERFULL = re.compile(r"^Overfull \\hbox \((\d+(?:\.\d+)?)pt too wide\) (?:in paragraph |in alignment |detected )?at lines? (\d+)", re.M)
MARGIN_TOLERANCE_PT = 5


def overfull(log: str) -> list[tuple[float, int]]:
    """(points beyond the margin, .tex line) of every overfull line in a LaTeX log."""
    return [(float(pt), int(line)) for pt, line in OVERFULL.findall(log)]


@pytest.mark.parametrize("language", LANGUAGES)
def test_no_text_runs_past_the_margin(printed, language):
    latex = printed / "latex" / language
    log = (latex / f"istio-envoy-insider-{language}.log").read_text(encoding="utf-8", errors="replace")
    tex = (latex / f"istio-envoy-insider-{language}.tex").read_text(encoding="utf-8").splitlines()
    wide = [(pt, line) for pt, line in overfull(log) if pt > MARGIN_TOLERANCE_PT]
    shown = [f"{pt:.1f} pt at .tex line {line}: {tex[line - 1][:100] if line <= len(tex) else ''}" for pt, line in wide[:15]]
    assert not wide, f"{language} PDF: {len(wide)} lines run past the margin by more than {MARGIN_TOLERANCE_PT} pt:\n" + "\n".join(shown)


# The two planted print faults are set in a one-page document that uses the book's own LaTeX
# preamble and support files (from the Chinese edition just built), compiled the way `make pdf`
# compiles the book: the margin and glyph checks are properties of that preamble, and a page
# of it takes seconds where the whole book takes minutes.
LATEX_OUTPUTS = {".pdf", ".tex", ".aux", ".log", ".toc", ".out", ".fls", ".fdb_latexmk", ".xdv"}


def one_page(printed: Path, tmp_path: Path, body: str) -> tuple[subprocess.CompletedProcess, str]:
    source = printed / "latex" / "zh_CN"
    work = tmp_path / "one-page"
    work.mkdir()
    for item in source.iterdir():
        if item.is_file() and item.suffix not in LATEX_OUTPUTS:
            shutil.copy2(item, work / item.name)
    preamble = (source / "istio-envoy-insider-zh_CN.tex").read_text(encoding="utf-8").split("\\begin{document}")[0]
    (work / "page.tex").write_text(preamble + "\\begin{document}\n" + body + "\n\\end{document}\n", encoding="utf-8")
    done = subprocess.run(["latexmk", "-pdfxe", "-interaction=nonstopmode", "-halt-on-error", "-quiet", "page.tex"],
                          capture_output=True, text=True, cwd=work)  # fmt: skip
    return done, (work / "page.log").read_text(encoding="utf-8", errors="replace")


def test_an_unbreakable_identifier_is_caught_running_past_the_margin(printed, tmp_path):
    code = "\\sphinxcode{\\sphinxupquote{" + "unbreakable" * 12 + "}}"
    done, log = one_page(printed, tmp_path, f"一个没有分隔符、也没有大小写分界的长名字：{code}，它会伸出页边。")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert [pt for pt, _ in overfull(log) if pt > MARGIN_TOLERANCE_PT], "the planted identifier was not caught"


def test_a_character_without_a_glyph_fails_the_pdf(printed, tmp_path):
    done, log = one_page(printed, tmp_path, "藏文字母 ༀ 不在 Noto CJK 里。")
    assert done.returncode != 0
    assert "Missing character" in log


def test_four_digit_page_numbers_fit_the_table_of_contents(printed, tmp_path):
    """A book twice this size passes 1,000 pages; its table of contents must still set page
    numbers such as 1116 inside their column. With LaTeX's default width (the planted fault) the
    same contents overflow."""
    body = ("\\tableofcontents\n\\setcounter{page}{1116}\n"
            + "".join(f"\\chapter{{第{n}章 一个足够长、足以排满整行目录的章节标题}}\n\\section{{一节}}\n" for n in range(1, 4)))
    done, log = one_page(printed, tmp_path, body)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert re.search(r"\{11[0-9][0-9]\}", (tmp_path / "one-page" / "page.toc").read_text(encoding="utf-8"))
    assert not [pt for pt, _ in overfull(log) if pt > 0.5], overfull(log)
    planted = tmp_path / "planted"
    planted.mkdir()
    done, log = one_page(printed, planted, "\\makeatletter\\renewcommand{\\@pnumwidth}{1.55em}\\makeatother\n" + body)
    assert done.returncode == 0
    assert [pt for pt, _ in overfull(log) if pt > 0.5], "LaTeX's default page-number width did not overflow"


def test_a_missing_diagram_render_fails_the_pdf(tmp_path):
    book = copy_book(tmp_path / "book")
    for render in (book / "_diagrams" / "pdf").glob("*.pdf"):
        render.unlink()
    done = make(book, tmp_path / "build", "pdf", languages=["zh_CN"])
    assert done.returncode != 0
    assert re.search(r"ch0/index\.md:\d+: WARNING: diagram has no current render \([0-9a-f]{20}\.pdf", done.stderr), (
        done.stderr[-2000:]
    )


@pytest.mark.parametrize("language", LANGUAGES)
def test_pdf_chapters_are_the_preface_and_the_root_toctree(printed, language):
    tex = (printed / "latex" / language / f"istio-envoy-insider-{language}.tex").read_text(encoding="utf-8")
    chapters = re.findall(r"^\\chapter\{(.+)\}$", tex, re.M)
    root_toctree = re.search(r"```\{toctree\}\n(?::.*\n)*\n((?:.+\n)+)```", (ROOT / "index.md").read_text(encoding="utf-8"))
    assert len(chapters) == 1 + len(root_toctree.group(1).split()), chapters
    assert chapters[0] == {"zh_CN": "前言", "en": "Preface"}[language]
    # A chapter's own pages are its sections, not subsections of its summary.
    for page in sorted((ROOT / "ch1-istio-arch").glob("*.md")):
        if page.name != "index.md":
            title = re.search(r"^# (.+)$", page.read_text(encoding="utf-8"), re.M).group(1)
            if language == "zh_CN":
                assert f"\\section{{{title}" in tex.replace("\\sphinxhyphen{}", "-"), title
