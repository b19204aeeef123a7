"""The build's shortcuts (insider.speed, insider.sidebar, the search's remembered splits) change
how fast the book builds, never what it builds: each is compared here with the work it skips."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from conftest import LANGUAGES, ROOT
from docutils.frontend import get_default_settings
from sphinx.application import Sphinx
from sphinx.transforms.i18n import _publish_msgstr

from insider import search, sidebar, speed

SIDEBAR = {"collapse": False, "maxdepth": 4, "includehidden": True, "titles_only": True}  # the book theme's call


@pytest.fixture(scope="module", params=LANGUAGES)
def built_app(request, site, tmp_path_factory):
    """A Sphinx application over an edition the session built (its environment, not rebuilt)."""
    language = request.param
    os.environ["BOOK_LANGUAGE"] = language
    try:
        app = Sphinx(
            ROOT, ROOT, tmp_path_factory.mktemp(f"out-{language}"), site / f".doctrees-html-{language}", "html",
            confoverrides={"language": language}, status=io.StringIO(), warning=io.StringIO(),
        )  # fmt: skip
    finally:
        os.environ.pop("BOOK_LANGUAGE", None)
    return app


def test_sidebar_is_the_same_with_reduced_tocs(built_app):
    env, builder = built_app.env, built_app.builder
    docnames = sorted(env.found_docs)
    assert len(docnames) > 20
    different = []
    for docname in docnames:
        full = builder._get_local_toctree(docname, **SIDEBAR)
        with sidebar.titles_only_tocs(env):
            reduced = builder._get_local_toctree(docname, **SIDEBAR)
        if full != reduced:
            different.append(docname)
    assert not different, f"the sidebar differs with reduced tocs on: {different}"


def test_sidebar_reduction_drops_headings():
    """The reduction does what it is for: a page's headings are gone, its title is kept."""
    from docutils import nodes
    from sphinx import addnodes

    title = nodes.list_item("", addnodes.compact_paragraph("", "", nodes.reference("", "Page", refuri="p", anchorname="")))
    heading = nodes.list_item("", addnodes.compact_paragraph("", "", nodes.reference("", "H", refuri="p", anchorname="#h")))
    title += nodes.bullet_list("", heading)
    reduced = sidebar.reduce(nodes.bullet_list("", title))
    assert [r.astext() for r in reduced.findall(nodes.reference)] == ["Page"]


def _messages(every: int) -> list[tuple[str, str, int]]:
    """Every `every`-th translated message of the English catalogs: (msgstr, its page, line)."""
    out = []
    catalogs = ROOT / "locales" / "en" / "LC_MESSAGES"
    for po in sorted(catalogs.rglob("*.po")):
        docname = po.relative_to(catalogs).with_suffix("").as_posix()
        with po.open("rb") as f:
            for message in read_po(f):
                if message.id and message.string:
                    out.append((message.string, docname, message.lineno))
    return out[::every]


def test_translated_messages_parse_the_same_with_the_parser_shortcuts(built_app):
    if built_app.config.language != "en":
        pytest.skip("the messages are the English edition's")
    from myst_parser.parsers.sphinx_ import MystParser

    settings = get_default_settings(MystParser)
    settings.env = built_app.env
    messages = _messages(every=5)
    assert len(messages) > 1000

    def parsed():
        env = built_app.env
        kwargs = {"config": built_app.config, "env": env, "registry": built_app.registry}
        out = []
        for text, docname, line in messages:
            env.temp_data["docname"] = docname
            out.append(_publish_msgstr(text, str(env.doc2path(docname)), line, settings=settings, **kwargs).pformat())
        return out

    speed.disable()
    try:
        plain = parsed()
    finally:
        speed.enable()
    different = [m[1:] for m, a, b in zip(messages, plain, parsed()) if a != b]
    assert not different, f"messages parse differently with the shortcuts: {different[:5]}"


# Pages whose English reading exercises the Locale shortcuts: glossary terms (Sphinx's first walk
# keeps their parse), many section titles, tables whose cells repeat the same message.
READ_PAGES = ("glossary", "ch2-envoy/index", "ch4-istio-ctrl-envoy/knob-reference", "ch2-envoy/http-codecs")


@pytest.fixture(scope="module")
def read_english(tmp_path_factory):
    """Read one English page from its source into a fresh doctree; return the tree as text."""
    os.environ["BOOK_LANGUAGE"] = "en"
    try:
        scratch = tmp_path_factory.mktemp("read-en")
        app = Sphinx(
            ROOT, ROOT, scratch / "out", scratch / "doctrees", "html",
            confoverrides={"language": "en"}, status=io.StringIO(), warning=io.StringIO(),
        )  # fmt: skip
    finally:
        os.environ.pop("BOOK_LANGUAGE", None)
    app.env.find_files(app.config, app.builder)

    def read(docname: str) -> str:
        app.env.prepare_settings(docname)
        app.builder.read_doc(docname, _cache=False)
        app.env._pickled_doctree_cache.pop(docname, None)  # the tree just read, not one read before
        return app.env.get_doctree(docname).pformat()

    return read


def test_english_pages_read_the_same_with_the_locale_shortcuts(read_english):
    different = []
    for docname in READ_PAGES:
        fast = read_english(docname)
        speed.disable()
        try:
            plain = read_english(docname)
        finally:
            speed.enable()
        assert len(plain) > 20_000, f"{docname} read as almost nothing"
        if fast != plain:
            different.append(docname)
    assert not different, f"these pages read differently with the Locale shortcuts: {different}"


def test_page_comparison_sees_a_misplaced_translation(read_english, monkeypatch):
    """Planted fault: a reuse of parsed messages keyed by where they come from (page and line)
    rather than by node hands a table cell the tree of another cell in its row; the comparison
    must see it."""
    import sphinx.transforms.i18n as sphinx_i18n

    correct = {docname: read_english(docname) for docname in READ_PAGES}
    shared = {}
    original = speed._ORIGINAL["_publish_msgstr"]

    def by_line(source, source_path, source_line, **kwargs):
        key = (source_path, source_line)
        if key not in shared:
            shared[key] = original(source, source_path, source_line, **kwargs)
        return shared[key]

    monkeypatch.setattr(sphinx_i18n, "_publish_msgstr", by_line)

    def read_or_fail(docname):
        try:
            return read_english(docname)
        except Exception as err:  # Sphinx may trip over the misplaced tree: that is seen too
            return f"failed: {err!r}"

    seen = [d for d in READ_PAGES if read_or_fail(d) != correct[d]]
    assert "ch4-istio-ctrl-envoy/knob-reference" in seen, f"the planted fault went unseen (seen on {seen})"


def test_remembered_splits_give_the_same_words_and_latin_terms():
    texts = ["连接池里的 ActiveClient 进入 draining 状态", "Envoy 的 upstream_cx_total 计数器", "连接池里的 ActiveClient 进入 draining 状态"]
    remembered = search.SearchChineseFixed({"dict": str(search.MESH_TERMS)})
    assert [remembered.split(t) for t in texts] == [search.SearchChinese.split(remembered, t) for t in texts]
    fresh = search.SearchChinese({})
    for text in texts:
        fresh.split(text)
    assert remembered.latin_terms == fresh.latin_terms and "ActiveClient" in fresh.latin_terms


def test_small_reads_and_writes_stay_in_the_main_process(monkeypatch):
    """Fewer than SMALL pages are read and written as -j 1 would; more go to Sphinx's workers, and a
    write gets as many workers as -j says (Sphinx would give it one fewer)."""
    from sphinx.builders import Builder

    calls = []

    class Builderish:
        class _app:
            parallel = 2

        def _read_serial(self, docnames):
            calls.append(("read", "serial", len(docnames)))

        def _write_serial(self, docnames):
            calls.append(("write", "serial", len(docnames)))

    monkeypatch.setitem(speed._ORIGINAL, "_read_parallel", lambda b, d, n: calls.append(("read", f"parallel {n}", len(d))))
    monkeypatch.setitem(speed._ORIGINAL, "_write_parallel", lambda b, d, n: calls.append(("write", f"parallel {n}", len(d))))
    sizes = (1, speed.SMALL - 1, speed.SMALL, 67)
    for n in sizes:
        speed.read_parallel(Builderish(), ["page"] * n, 2)
        speed.write_parallel(Builderish(), ["page"] * n, 1)
    expected = []
    for n in sizes:
        small = n < speed.SMALL
        expected += [("read", "serial" if small else "parallel 2", n), ("write", "serial" if small else "parallel 2", n)]
    assert calls == expected
    speed.enable()
    assert Builder._read_parallel is speed.read_parallel and Builder._write_parallel is speed.write_parallel


@pytest.mark.parametrize("language", LANGUAGES)
def test_compiled_templates_are_kept_with_the_doctrees(site, language):
    """The theme's templates compiled by one build are there for the next (Jinja's bytecode cache)."""
    kept = list((site / f".doctrees-html-{language}" / "insider-templates").glob("__jinja2_*.cache"))
    assert len(kept) >= 20, f"{len(kept)} compiled templates kept for the {language} edition"
