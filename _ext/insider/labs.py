"""The ``lab`` directive: a lab's recorded transcript (or one of its input files) in a page.

````markdown
```{lab} sidecar-interception
:section: outbound-path
:shows: ISTIO_REDIRECT, 127.0.0.6
```
````

- ``:section:`` names one or more sections of the transcript (space separated), in the order
  shown; without it the whole transcript is shown.
- ``:file:`` shows one of the lab's input files instead (an Envoy config, a rule file).
- ``:shows:`` lists strings (comma separated) the page's text relies on; each must be in what
  is shown, so a re-recorded lab that no longer shows them fails the build.

The transcript comes from the store (``labs/transcripts/<lab>.<key>.txt``, see labstore): a
lab whose inputs changed since it was recorded has no current transcript, and the build fails
at the page and line, naming the command that records it. Both editions show the same
transcript; the caption is in the edition's language.
"""

from __future__ import annotations

from docutils import nodes
from docutils.parsers.rst import directives
from sphinx import addnodes
from sphinx.util import logging
from sphinx.transforms.post_transforms import SphinxPostTransform
from sphinx.util.docutils import SphinxDirective

from . import labstore

logger = logging.getLogger(__name__)

CAPTIONS = {
    "zh_CN": ("实验 {lab} 的运行记录", "（{sections}）", "输入文件 {file}（实验 {lab}）", "自己运行：make lab NAME={lab}"),
    "en": ("Transcript of the lab {lab}", " ({sections})", "Input file {file} of the lab {lab}", "run it yourself: make lab NAME={lab}"),
}
LANGUAGES = {".yaml": "yaml", ".yml": "yaml", ".json": "json", ".py": "python", ".rules": "text", ".sh": "bash"}


class LabDirective(SphinxDirective):
    required_arguments = 1
    has_content = False
    option_spec = {"section": directives.unchanged, "file": directives.unchanged, "shows": directives.unchanged}

    def problem(self, message: str) -> list[nodes.Node]:
        logger.warning(message, location=self.get_location(), type="insider", subtype="lab")
        return []

    def run(self) -> list[nodes.Node]:
        name = self.arguments[0].strip()
        if name not in labstore.lab_names():
            return self.problem(f"unknown lab {name!r} (labs: {', '.join(labstore.lab_names())})")
        _uses(self.env).setdefault(self.env.docname, set()).add(name)
        for path in labstore.inputs(name):
            self.env.note_dependency(str(path))
        language = self.env.config.language if self.env.config.language in CAPTIONS else "en"
        whole, part, file_caption, run_it = CAPTIONS[language]
        if "file" in self.options:
            return self.show_file(name, self.options["file"].strip(), file_caption, run_it)

        key = labstore.lab_key(name)
        path = labstore.transcript_path(name, key)
        self.env.note_dependency(str(path))
        if not path.is_file():
            recorded = labstore.recorded_keys(name)
            return self.problem(
                f"lab {name!r} has no current transcript: its inputs changed since it was recorded "
                f"(inputs {key}, recorded {', '.join(recorded) or 'never'}); "
                f"run `make lab NAME={name} RECORD=1` as root and commit {path.relative_to(labstore.ROOT)}"
            )
        text = path.read_text(encoding="utf-8")
        available = labstore.sections(text)
        wanted = self.options.get("section", "").split()
        unknown = [s for s in wanted if s not in available]
        if unknown:
            return self.problem(f"lab {name!r} has no section {', '.join(map(repr, unknown))} (sections: {', '.join(available)})")
        shown = "\n".join(available[s] for s in wanted) if wanted else "\n".join(available.values())
        missing = self.missing(shown)
        if missing:
            return self.problem(
                f"the page relies on {', '.join(map(repr, missing))} in lab {name!r}"
                f"{' section ' + ' '.join(wanted) if wanted else ''}, and the transcript does not show it"
            )
        caption = whole.format(lab=name) + (part.format(sections=", ".join(wanted)) if wanted else "")
        return [self.block(shown, "console", f"{caption} · {run_it.format(lab=name)}")]

    def show_file(self, name: str, file: str, file_caption: str, run_it: str) -> list[nodes.Node]:
        path = labstore.LABS / name / file
        if not path.is_file() or labstore.LABS / name not in path.resolve().parents:
            return self.problem(f"lab {name!r} has no input file {file!r}")
        shown = path.read_text(encoding="utf-8").rstrip("\n")
        missing = self.missing(shown)
        if missing:
            return self.problem(f"the page relies on {', '.join(map(repr, missing))} in {file} of lab {name!r}, which it does not contain")
        language = LANGUAGES.get(path.suffix, "text")
        return [self.block(shown, language, f"{file_caption.format(file=file, lab=name)} · {run_it.format(lab=name)}")]

    def missing(self, shown: str) -> list[str]:
        wanted = [s.strip() for s in self.options.get("shows", "").split(",") if s.strip()]
        return [s for s in wanted if s not in shown]

    def block(self, text: str, language: str, caption: str) -> nodes.Node:
        literal = nodes.literal_block(text, text, language=language, classes=["insider-lab__text"])
        literal["insider_lab"] = True  # shared by both editions: not a message to translate
        self.set_source_info(literal)
        title = nodes.caption(caption, "", nodes.Text(caption), translatable=False)
        wrapper = nodes.container("", title, literal, classes=["literal-block-wrapper", "insider-lab"], literal_block=True)
        return wrapper


# Which pages quote which labs, noted as the pages are read; the lab index is drawn from it when
# its page is written, and its page is written again whenever it changes (not re-read: a page
# that starts or stops quoting a lab does not make the index page's source outdated).


def _uses(env) -> dict[str, set[str]]:
    return env.__dict__.setdefault("insider_lab_uses", {})


def _index_pages(env) -> set[str]:
    return env.__dict__.setdefault("insider_lab_index_pages", set())


def purge(app, env, docname) -> None:
    _uses(env).pop(docname, None)
    _index_pages(env).discard(docname)


def merge(app, env, docnames, other) -> None:
    for docname in docnames:
        if docname in _uses(other):
            _uses(env)[docname] = _uses(other)[docname]
        if docname in _index_pages(other):
            _index_pages(env).add(docname)


def rewrite_index_pages(app, env) -> list[str]:
    shown = sorted((docname, sorted(names)) for docname, names in _uses(env).items())
    if shown == env.__dict__.get("insider_lab_uses_shown"):
        return []
    env.insider_lab_uses_shown = shown
    return sorted(_index_pages(env))


class lab_index(nodes.General, nodes.Element):
    """Where the lab index goes; LabIndexTable draws it when the page is written."""


class LabIndexDirective(SphinxDirective):
    """``{lab-index}``: a table of every lab — its name, what it shows (SUMMARY_ZH or TITLE from its
    lab.py, by the edition's language) and the pages that quote it — made from the labs themselves,
    so the guide cannot fall behind them."""

    def run(self) -> list[nodes.Node]:
        language = _language(self.env)
        for name in labstore.lab_names():
            self.env.note_dependency(str(labstore.LABS / name / "lab.py"))
            if not labstore.lab_meta(name).get(SUMMARY[language]):
                logger.warning(
                    f"lab {name!r} has no {SUMMARY[language]} in its lab.py",
                    location=self.get_location(), type="insider", subtype="lab",
                )  # fmt: skip
        _index_pages(self.env).add(self.env.docname)
        return [lab_index()]


SUMMARY = {"zh_CN": "SUMMARY_ZH", "en": "TITLE"}
HEADERS = {"zh_CN": ("实验", "展示什么", "引用它的页面"), "en": ("Lab", "What it shows", "Pages that quote it")}


def _language(env) -> str:
    return env.config.language if env.config.language in HEADERS else "en"


class LabIndexTable(SphinxPostTransform):
    default_priority = 5  # before the references in it are resolved

    def run(self, **kwargs) -> None:
        for placeholder in self.document.findall(lab_index):
            placeholder.replace_self(self.table())

    def table(self) -> nodes.table:
        language = _language(self.env)
        using: dict[str, list[str]] = {}
        for docname, names in _uses(self.env).items():
            for name in names:
                using.setdefault(name, []).append(docname)
        table = nodes.table(classes=["insider-lab-index"])
        group = nodes.tgroup(cols=3)
        table += group
        for width in (20, 50, 30):
            group += nodes.colspec(colwidth=width)
        head = nodes.thead()
        group += head
        head += _row([nodes.Text(h) for h in HEADERS[language]])
        body = nodes.tbody()
        group += body
        for name in labstore.lab_names():
            summary = labstore.lab_meta(name).get(SUMMARY[language])
            if not summary:
                continue  # reported when the page was read
            links = nodes.paragraph()
            for i, docname in enumerate(sorted(using.get(name, []))):
                if i:
                    links += nodes.Text(", " if language != "zh_CN" else "、")
                ref = addnodes.pending_xref("", refdomain="std", reftype="doc", reftarget="/" + docname, refexplicit=False)
                ref += nodes.inline("", docname)
                links += ref
            body += _row([nodes.literal(name, name), nodes.Text(summary), links])
        return table


def _row(cells) -> nodes.row:
    row = nodes.row()
    for cell in cells:
        entry = nodes.entry()
        entry += cell if isinstance(cell, nodes.paragraph) else nodes.paragraph("", "", cell)
        row += entry
    return row


def setup(app):
    app.add_directive("lab", LabDirective)
    app.add_directive("lab-index", LabIndexDirective)
    app.add_node(lab_index)
    app.add_post_transform(LabIndexTable)
    app.connect("env-purge-doc", purge)
    app.connect("env-merge-info", merge)
    app.connect("env-updated", rewrite_index_pages)
