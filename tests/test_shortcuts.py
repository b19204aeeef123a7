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


def test_remembered_splits_give_the_same_words_and_latin_terms():
    texts = ["连接池里的 ActiveClient 进入 draining 状态", "Envoy 的 upstream_cx_total 计数器", "连接池里的 ActiveClient 进入 draining 状态"]
    remembered = search.SearchChineseFixed({"dict": str(search.MESH_TERMS)})
    assert [remembered.split(t) for t in texts] == [search.SearchChinese.split(remembered, t) for t in texts]
    fresh = search.SearchChinese({})
    for text in texts:
        fresh.split(text)
    assert remembered.latin_terms == fresh.latin_terms and "ActiveClient" in fresh.latin_terms
