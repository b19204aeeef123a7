"""Search: Chinese search that works in the browser, and an index built without waste.

Sphinx 9.0.4 writes ``window.Stemmer = ChineseStemmer;`` into ``language_data.js`` for the
Chinese index, but the only stemmer it ships for Chinese is the English one, so every search
fails with ``ChineseStemmer is not defined`` (sphinx-doc/sphinx#14229). The Chinese language
class here hands the index builder ready-made stemmer code that names the class it really
loads; jieba and the project dictionary of mesh terms segment the Chinese text as before.

Building the index, Sphinx stems every word of every page with the Snowball stemmer, the same
few thousand words over and over (about a fifth of a clean build): both editions remember each
word's stem. And Sphinx loads jieba's dictionary (about a second) whenever it prepares to
write, even when no page changed; here it loads on the first page that needs segmenting.
"""

from __future__ import annotations

import logging
from functools import cache
from pathlib import Path

import jieba
import sphinx.search
from docutils import nodes
from sphinx.search.en import SearchEnglish
from sphinx.search.zh import SearchChinese

MINIFIED_JS = Path(sphinx.search.__file__).parent / "minified-js"
MESH_TERMS = Path(__file__).with_name("mesh-terms.txt")


class RememberedStems:
    """``stem()`` computed once per word (and per the one piece of state it reads)."""

    def stem(self, word: str) -> str:
        cache = self.__dict__.setdefault("_stems", {})
        key = (word, word in getattr(self, "latin_terms", ()))
        stem = cache.get(key)
        if stem is None:
            stem = cache[key] = super().stem(word)
        return stem


class SearchEnglishRemembered(RememberedStems, SearchEnglish):
    pass


_SPLITS: dict[str, list[str]] = {}  # text -> its words; jieba and its dictionaries are fixed


class SearchChineseFixed(RememberedStems, SearchChinese):
    js_stemmer_rawcode = ""  # use js_stemmer_code below instead of Sphinx's broken glue line
    js_stemmer_code = "\n".join(
        (
            (MINIFIED_JS / "base-stemmer.js").read_text(encoding="utf-8"),
            (MINIFIED_JS / "english-stemmer.js").read_text(encoding="utf-8"),
            "window.Stemmer = EnglishStemmer;",
        )
    )

    def __init__(self, options: dict[str, str]) -> None:
        self._user_dict = options.get("dict")
        super().__init__({**options, "dict": ""})  # jieba waits for the first split (_ready)

    def split(self, input: str) -> list[str]:
        """Sphinx's split, once per distinct text (the same words recur on every page, and on
        every rebuild of a page under ``make serve``)."""
        words = _SPLITS.get(input)
        if words is None:
            _ready(self._user_dict)
            words = _SPLITS[input] = super().split(input)
        else:  # what Sphinx's split also does, besides returning the words
            self.latin_terms.update(term.strip() for term in self.latin1_letters.findall(input))
        return list(words)


@cache
def _ready(user_dict: str | None) -> None:
    """jieba with its dictionary and the book's (html_search_options["dict"]) loaded, once."""
    jieba.initialize()
    if user_dict:
        jieba.load_userdict(user_dict)


# Segmenting Chinese is most of the work of indexing a page, and Sphinx indexes each page in the
# main process while the pages are written. Here the pages' texts are segmented while they are
# read, which runs in parallel; the index then finds each text already split. Same function,
# same input, same words: only where and when it runs changes.


def _indexing_chinese(app) -> bool:
    return app.builder.name == "html" and app.builder.search and str(app.config.language).startswith("zh")


def _texts(doctree) -> set[str]:
    return {node.astext() for node in doctree.findall(lambda n: isinstance(n, (nodes.Text, nodes.title)))}


def before_reading(app, env, docnames) -> None:
    if _indexing_chinese(app) and len(docnames) > 1:
        _ready(app.config.html_search_options.get("dict"))  # in the main process, so that the processes reading in parallel inherit it


def segment_page(app, doctree) -> None:
    if not _indexing_chinese(app):
        return
    _ready(app.config.html_search_options.get("dict"))
    splitter = SearchChinese.__new__(SearchChinese)
    splitter.latin_terms = set()
    env = app.env
    env.__dict__.setdefault("insider_splits", {})[env.docname] = {
        text: SearchChinese.split(splitter, text) for text in _texts(doctree) if text not in _SPLITS
    }


def merge_segments(app, env, docnames, other) -> None:
    theirs = other.__dict__.get("insider_splits", {})
    for docname in docnames:
        if docname in theirs:
            env.__dict__.setdefault("insider_splits", {})[docname] = theirs[docname]


def keep_segments(app, env) -> None:
    """Into this process's memory, out of the environment (which is saved to disk next)."""
    for segments in env.__dict__.pop("insider_splits", {}).values():
        _SPLITS.update(segments)


def setup(app):
    jieba.setLogLevel(logging.WARNING)  # its "Building prefix dict" chatter is not a build message
    app.add_search_language(SearchChineseFixed)
    app.add_search_language(SearchEnglishRemembered)
    app.connect("env-before-read-docs", before_reading)
    app.connect("doctree-read", segment_page)
    app.connect("env-merge-info", merge_segments)
    app.connect("env-updated", keep_segments)
