"""Chinese search that works in the browser.

Sphinx 9.0.4 writes ``window.Stemmer = ChineseStemmer;`` into ``language_data.js`` for the
Chinese index, but the only stemmer it ships for Chinese is the English one, so every search
fails with ``ChineseStemmer is not defined`` (sphinx-doc/sphinx#14229). This subclass hands
the index builder ready-made stemmer code that names the class it really loads; jieba and the
project dictionary of mesh terms segment the Chinese text as before.
"""

from __future__ import annotations

import logging
from pathlib import Path

import jieba
import sphinx.search
from sphinx.search.zh import SearchChinese

MINIFIED_JS = Path(sphinx.search.__file__).parent / "minified-js"
MESH_TERMS = Path(__file__).with_name("mesh-terms.txt")


class SearchChineseFixed(SearchChinese):
    js_stemmer_rawcode = ""  # use js_stemmer_code below instead of Sphinx's broken glue line
    js_stemmer_code = "\n".join(
        (
            (MINIFIED_JS / "base-stemmer.js").read_text(encoding="utf-8"),
            (MINIFIED_JS / "english-stemmer.js").read_text(encoding="utf-8"),
            "window.Stemmer = EnglishStemmer;",
        )
    )


def setup(app):
    jieba.setLogLevel(logging.WARNING)  # its "Building prefix dict" chatter is not a build message
    app.add_search_language(SearchChineseFixed)
