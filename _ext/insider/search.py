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
from pathlib import Path

import jieba
import sphinx.search
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
        super().__init__({**options, "dict": ""})  # jieba waits for the first split

    def split(self, input: str) -> list[str]:
        if self._user_dict:
            jieba.load_userdict(str(self._user_dict))
            self._user_dict = None
        return super().split(input)


def setup(app):
    jieba.setLogLevel(logging.WARNING)  # its "Building prefix dict" chatter is not a build message
    app.add_search_language(SearchChineseFixed)
    app.add_search_language(SearchEnglishRemembered)
