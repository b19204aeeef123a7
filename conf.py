# Sphinx configuration of 《Istio & Envoy 内幕》 / Istio & Envoy Insider.
#
# One source tree, two editions: Chinese (the source) and English (from locales/en).
# The language comes from the environment: `make html-en` sets BOOK_LANGUAGE=en, Read the
# Docs sets READTHEDOCS_LANGUAGE (zh-cn or en) and passes the same as -D language=...;
# the default is zh_CN.
# The book's own behaviour lives in the local extension _ext/insider.

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT / "_ext"))

# -- The book ------------------------------------------------------------------------

READTHEDOCS_LANGUAGES = {"zh-cn": "zh_CN", "zh_cn": "zh_CN", "en": "en"}
language = os.environ.get("BOOK_LANGUAGE") or READTHEDOCS_LANGUAGES.get(
    os.environ.get("READTHEDOCS_LANGUAGE", "").lower(), "zh_CN"
)
TITLES = {"zh_CN": "《Istio & Envoy 内幕》", "en": "Istio & Envoy Insider"}
project = TITLES[language]
author = "Istio & Envoy Insider authors"
copyright = {
    "zh_CN": "2026，《Istio & Envoy 内幕》作者；文字采用 CC BY-SA 4.0，代码采用 MIT 许可",
    "en": "2026, Istio & Envoy Insider authors; text CC BY-SA 4.0, code MIT",
}[language]

# The pinned source versions; every source reference links to these.
ENVOY_VERSION = "v1.39.0"
ISTIO_VERSION = "1.30.3"
ZTUNNEL_VERSION = "1.30.3"
version = release = f"Envoy {ENVOY_VERSION} · Istio {ISTIO_VERSION} · ztunnel {ZTUNNEL_VERSION}"

REPOSITORY_URL = "https://github.com/istio-envoy-insider/istio-envoy-insider"

extensions = [
    "myst_parser",
    "sphinxcontrib.mermaid",
    "sphinx_book_theme",
    "insider",
]

root_doc = "index"
source_suffix = {".md": "markdown"}
templates_path = ["_templates"]
exclude_patterns = [
    "_build",
    ".venv",
    ".pytest_cache",
    "**/.pytest_cache",
    "**/node_modules",
    "_diagrams",
    "_refs",
    "_ext",
    "labs",
    ".venv-labs",
    "_templates",
    "tests",
    "README.md",
    "CONTRIBUTING.md",
    "LICENSE*",
    ".ci",
    ".github",
]

# -- MyST ----------------------------------------------------------------------------

myst_enable_extensions = ["colon_fence", "deflist", "attrs_inline"]
myst_heading_anchors = 3

# -- Translation ---------------------------------------------------------------------

locale_dirs = ["locales/"]
gettext_compact = False  # one catalog per document
gettext_uuid = False
gettext_location = True
gettext_last_translator = "Istio & Envoy Insider translators"
gettext_language_team = "English <https://github.com/istio-envoy-insider/istio-envoy-insider>"
# Translate image alt text too; literal blocks stay as written (translating them breaks
# MyST code blocks, and code needs no translation).
gettext_additional_targets = ["image"]

# -- Diagrams ------------------------------------------------------------------------

# Rendered ahead of time into _diagrams/svg by `make diagrams`; readers load no Mermaid JS.
mermaid_output_format = "svg"

# -- HTML ----------------------------------------------------------------------------

html_theme = "sphinx_book_theme"
html_title = TITLES[language]
html_static_path = ["_static"]
html_css_files = ["insider.css"]
html_favicon = "_static/favicon.svg"
html_last_updated_fmt = None
html_baseurl = os.environ.get("READTHEDOCS_CANONICAL_URL", "")
# The page's Markdown is what the download menu's ".md" offers (the Chinese edition only:
# the English one has no Markdown of its own); no "show source" link in the page.
html_copy_source = language == "zh_CN"
html_show_sourcelink = False
html_theme_options = {
    "repository_url": REPOSITORY_URL,
    "repository_branch": "main",
    "path_to_docs": "",
    "use_edit_page_button": True,
    "use_issues_button": True,
    "use_repository_button": True,
    "use_download_button": True,
    "article_header_end": ["edition-switcher.html", "article-header-buttons.html"],
    "navbar_persistent": [],  # the sidebar already has the search field
    "show_toc_level": 2,
    "home_page_in_toc": True,
    "search_bar_text": {"zh_CN": "搜索……", "en": "Search…"}[language],
}
html_context = {"default_mode": "auto"}
# The theme's sidebar, with the title in a labelled region (see _templates/insider-sidebar-title.html).
html_sidebars = {"**": ["insider-sidebar-title.html", "search-button-field.html", "sbt-sidebar-nav.html"]}

# Search: jieba segments Chinese, helped by the book's dictionary of mesh terms.
html_search_options = {"dict": str(ROOT / "_ext" / "insider" / "mesh-terms.txt")}

# -- EPUB and LaTeX ------------------------------------------------------------------

epub_title = TITLES[language]
epub_author = author
epub_language = {"zh_CN": "zh-CN", "en": "en"}[language]
epub_publisher = author
epub_copyright = copyright
# Sphinx writes epub_uid into toc.ncx where readers expect the identifier: keep them equal.
epub_identifier = epub_uid = f"istio-envoy-insider-{language}-envoy-{ENVOY_VERSION}-istio-{ISTIO_VERSION}"
epub_cover = ("_static/cover.svg", "epub-cover.html")
epub_show_urls = "no"
# Sphinx keeps .buildinfo.bak next to the output when the configuration changed: not a book file.
epub_exclude_files = ["search.html", "genindex.html", ".buildinfo.bak"]

# PDF through xelatex. Both editions load xeCJK with Debian's Noto CJK fonts (the English
# edition shows Chinese in the glossary); the Chinese edition adds ctex for Chinese names
# (目录, 图, 表). Chapter titles carry their own 第一章 / Chapter 1, so LaTeX numbers nothing.
latex_engine = "xelatex"
latex_use_xindy = False
latex_show_urls = "no"
latex_show_pagerefs = False
latex_documents = [
    ("index", f"istio-envoy-insider-{language}.tex", TITLES[language].replace("&", r"\&"), author, "manual")
]
SUBTITLES = {"zh_CN": "Istio 与 Envoy 的设计与实现", "en": "How Istio and Envoy are designed and built"}
latex_elements = {
    "papersize": "a4paper",
    "pointsize": "10pt",
    # Chapters start on the next page, not the next right-hand one: no blank pages with headers.
    "extraclassoptions": "openany",
    "fontenc": r"\usepackage{xeCJK}",
    "babel": r"\usepackage[english]{babel}" if language == "en" else "",
    "polyglossia": "",
    # Noto CJK comes as .ttc collections; XeTeX picks face 0 (the Japanese one) when asked by
    # family name, so each font is named by file and the Simplified Chinese face's index.
    "fontpkg": r"""
\newcommand{\insiderfont}[3]{#1{NotoSerifCJK-Regular.ttc}[FontIndex=#2,
  BoldFont=NotoSerifCJK-Bold.ttc, BoldFeatures={FontIndex=#2}, #3]}
\newcommand{\insidersans}[3]{#1{NotoSansCJK-Regular.ttc}[FontIndex=#2,
  BoldFont=NotoSansCJK-Bold.ttc, BoldFeatures={FontIndex=#2}, #3]}
\insidersans{\setmonofont}{7}{Scale=0.88}
\insiderfont{\setCJKmainfont}{2}{}
\insidersans{\setCJKsansfont}{2}{}
\insidersans{\setCJKmonofont}{7}{}
"""
    + (
        # Chinese edition: Noto for Latin text too, so both scripts share one design.
        r"""
\insiderfont{\setmainfont}{2}{}
\insidersans{\setsansfont}{2}{}
"""
        if language == "zh_CN"
        # English edition: Latin Modern for text; quotes and apostrophes stay Latin.
        else r"""
\setmainfont{Latin Modern Roman}
\setsansfont{Latin Modern Sans}
\xeCJKDeclareCharClass{Default}{"2018, "2019, "201C, "201D, "2013, "2014, "2026}
% Arrows, math operators and box drawing are not in Latin Modern: take them from Noto CJK.
\xeCJKDeclareCharClass{CJK}{"2190 -> "21FF, "2200 -> "22FF, "2500 -> "257F}
"""
    ),
    "fncychap": r"\usepackage[Sonny]{fncychap}\ChNameVar{\Large\sffamily}\ChTitleVar{\Huge\sffamily\bfseries}",
    "preamble": (r"\usepackage[UTF8,scheme=chinese,heading=false,fontset=none]{ctex}" if language == "zh_CN" else "")
    + r"""
\tracinglostchars=3 % a character missing from the fonts is an error, not a silent gap
\AtBeginDocument{\renewcommand{\releasename}{}} % the header shows the versions, not "Release"
\setlength{\tymin}{4.2em} % no table column narrower than a port number
% Tables in slightly smaller type with narrower gutters, so a six-column reference table's
% identifiers fit their columns (the test reads the overfull boxes from the LaTeX log).
\makeatletter\g@addto@macro\sphinxattablestart{\small\setlength{\tabcolsep}{4pt}}\makeatother
\setcounter{secnumdepth}{-1}
% Room for four-digit page numbers in the table of contents (a doubled book passes 1,000 pages).
\makeatletter\renewcommand{\@pnumwidth}{2.4em}\renewcommand{\@tocrmarg}{3.4em}\makeatother
\setlength{\emergencystretch}{2em} % a last resort before a line runs into the margin
\setcounter{tocdepth}{1}
\xeCJKsetup{CJKspace=true}
\newcommand{\insiderversions}{Envoy """
    + ENVOY_VERSION
    + r""" \textbullet{} Istio """
    + ISTIO_VERSION
    + r""" \textbullet{} ztunnel """
    + ZTUNNEL_VERSION
    + r"""}
""",
    "maketitle": r"""
\begin{titlepage}
  \centering
  \vspace*{0.2\textheight}
  {\sffamily\bfseries\fontsize{30}{38}\selectfont """
    + TITLES[language].replace("&", r"\&")
    + r"""\par}
  \vspace{1.2em}
  {\sffamily\Large """
    + SUBTITLES[language]
    + r"""\par}
  \vspace{2.5em}
  {\large """
    + {"zh_CN": "中文版", "en": "English edition"}[language]
    + r"""\par}
  \vfill
  {\sffamily \insiderversions\par}
  \vspace{0.5em}
  {\small """
    + author.replace("&", r"\&")
    + r"""\par}
\end{titlepage}
""",
    "sphinxsetup": "verbatimwrapslines=true, verbatimforcewraps=true, verbatimmaxoverfull=1",
    "tableofcontents": r"\sphinxtableofcontents",
    "printindex": "",
}

# -- Checks --------------------------------------------------------------------------

nitpicky = False
suppress_warnings = []
