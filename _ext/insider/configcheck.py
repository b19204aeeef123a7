"""Validate the configuration examples the book shows.

- A YAML block whose documents have ``apiVersion: <group>.istio.io/<version>`` is checked
  against the CustomResourceDefinition schemas of istio/api v1.30.3 (unknown fields rejected,
  as ``kubectl apply`` with strict field validation would).
- A YAML block that starts with ``# envoy-type: envoy.config.listener.v3.Listener`` is parsed
  into that Envoy v3 API message with ``envoy-data-plane``; unknown fields, wrong types and
  unregistered ``@type`` URLs are rejected.
- A YAML block that looks like Envoy configuration (``typed_config``, ``@type``,
  ``static_resources``) but declares no type is an error: every Envoy example is checked.

Code blocks are not translated: both editions show them as written, so a code block with
Chinese in it (a shell comment, say) is an error too; comments in code are written in English.

Failures are warnings (errors under ``-W``) located at the page and line of the block.
"""

from __future__ import annotations

import copy
import gzip
import hashlib
import importlib
import pkgutil
import re
from functools import cache
from pathlib import Path

import yaml
from docutils import nodes
from sphinx.util import logging

logger = logging.getLogger(__name__)

CRDS = Path(__file__).resolve().parents[2] / "_refs" / "istio-api-v1.30.3-crds.yaml.gz"
HAN = re.compile(r"[\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uff00-\uffef]")
ENVOY_TYPE = re.compile(r"^\s*#\s*envoy-type:\s*([A-Za-z0-9_.]+)\s*$")
LOOKS_LIKE_ENVOY = re.compile(r"(typed_config|\"@type\"|'@type'|static_resources|filter_chains):")


class ConfigError(Exception):
    pass


def _structural(schema: dict) -> dict:
    """Turn a Kubernetes OpenAPI v3 schema into a JSON Schema that rejects unknown fields."""
    schema = copy.deepcopy(schema)

    def walk(node):
        if isinstance(node, dict):
            if node.pop("x-kubernetes-int-or-string", False):
                node.pop("type", None)
                node["anyOf"] = [{"type": "integer"}, {"type": "string"}]
            preserve = node.pop("x-kubernetes-preserve-unknown-fields", False)
            node.pop("x-kubernetes-validations", None)
            if node.get("nullable"):
                node.pop("nullable")
                if "type" in node:
                    node["type"] = [node["type"], "null"]
            if node.get("type") == "object" and "properties" in node and not preserve:
                node.setdefault("additionalProperties", False)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    return schema


@cache
def istio_crds() -> dict[tuple[str, str], dict]:
    """(apiVersion, kind) -> the CRD's OpenAPI schema of that version, as written."""
    table = {}
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: about 10x faster
    with gzip.open(CRDS, "rt", encoding="utf-8") as f:
        for crd in yaml.load_all(f, Loader=loader):
            if not crd:
                continue
            spec = crd["spec"]
            for version in spec["versions"]:
                if version.get("served", True):
                    table[(f"{spec['group']}/{version['name']}", spec["names"]["kind"])] = version["schema"][
                        "openAPIV3Schema"
                    ]
    return table


@cache
def istio_schema(api_version: str, kind: str) -> dict | None:
    """The JSON Schema an object of that kind and version must satisfy (made on first use)."""
    raw = istio_crds().get((api_version, kind))
    if raw is None:
        return None
    schema = _structural(raw)
    props = schema.setdefault("properties", {})
    props["apiVersion"] = {"type": "string"}
    props["kind"] = {"type": "string"}
    props["metadata"] = {"type": "object"}
    schema["additionalProperties"] = False
    schema["required"] = sorted(set(schema.get("required", [])) | {"metadata"})
    return schema


def check_istio(document: dict) -> None:
    import jsonschema

    key = (document.get("apiVersion"), document.get("kind"))
    schema = istio_schema(*key) if all(isinstance(k, str) for k in key) else None
    if schema is None:
        known = sorted({k for _, k in istio_crds()})
        raise ConfigError(f"{key[1]!r} in {key[0]!r} is not an Istio resource of v1.30.3 (kinds: {', '.join(known)})")
    validator = jsonschema.Draft7Validator(schema)
    errors = sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
    if errors:
        shown = [
            f"{'.'.join(str(p) for p in e.absolute_path) or '(top level)'}: {e.message}" for e in errors[:3]
        ]
        raise ConfigError(f"{key[1]} " + "; ".join(shown))


@cache
def envoy_api():
    """Import every envoy-data-plane module, so that any ``@type`` in ``typed_config`` resolves.

    About 1,000 modules (several seconds): only needed when a ``@type`` names a message whose
    module cannot be found from its name, to report the unknown type the same way."""
    import envoy_data_plane

    for module in pkgutil.walk_packages(envoy_data_plane.__path__, "envoy_data_plane."):
        importlib.import_module(module.name)
    return envoy_data_plane


def _type_urls(document):
    """Every ``@type`` in a YAML document, at any depth."""
    if isinstance(document, dict):
        for key, value in document.items():
            if key == "@type" and isinstance(value, str):
                yield value
            else:
                yield from _type_urls(value)
    elif isinstance(document, list):
        for value in document:
            yield from _type_urls(value)


@cache
def _import_package(package: str) -> bool:
    try:
        importlib.import_module(f"envoy_data_plane.{package}")
    except ImportError:
        return False
    return True


def import_envoy_types(type_name: str, document) -> None:
    """Import the modules that define the document's message and every ``@type`` it names
    (each module registers its messages for ``Any`` on import); the rest of the API only when
    one of them is not where its name says."""
    names = [type_name, *(url.rpartition("/")[2] for url in _type_urls(document))]
    if not all(_import_package(name.rpartition(".")[0]) for name in names):
        envoy_api()


@cache
def _keep_proto_field_names() -> None:
    """betterproto2 turns every key into its idea of snake case, which breaks proto field names
    that already are snake case but have a digit before letters (``consecutive_5xx`` becomes
    ``consecutive_5_xx``, an unknown field). A key already in snake case is left as written;
    camelCase JSON names are still converted."""
    import betterproto2

    original = betterproto2.safe_snake_case
    betterproto2.safe_snake_case = lambda key: key if re.fullmatch(r"[a-z0-9_]+", key) else original(key)


def check_envoy(type_name: str, document) -> None:
    _keep_proto_field_names()
    import_envoy_types(type_name, document)
    package, _, message = type_name.rpartition(".")
    try:
        module = importlib.import_module(f"envoy_data_plane.{package}")
        cls = getattr(module, message)
    except (ImportError, AttributeError):
        raise ConfigError(f"unknown Envoy message type {type_name!r}") from None
    try:
        cls.from_dict(document)
    except Exception as err:  # envoy-data-plane raises KeyError, TypeError, ValidationError
        text = str(err).strip().strip('"').splitlines()[0]
        raise ConfigError(f"invalid {type_name}: {text}") from None


def check_block(text: str) -> str | None:
    """Validate one YAML code block; return what was checked, or None when it is not a config."""
    lines = text.splitlines()
    declared = ENVOY_TYPE.match(lines[0]) if lines else None
    try:
        documents = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as err:
        raise ConfigError(f"YAML does not parse: {err}") from None
    if declared:
        if len(documents) != 1:
            raise ConfigError("an envoy-type block holds exactly one YAML document")
        check_envoy(declared.group(1), documents[0])
        return declared.group(1)
    checked = []
    for document in documents:
        if isinstance(document, dict) and str(document.get("apiVersion", "")).split("/")[0].endswith(
            "istio.io"
        ):
            check_istio(document)
            checked.append(document["kind"])
    if not checked and LOOKS_LIKE_ENVOY.search(text):
        raise ConfigError(
            "this looks like Envoy configuration: start the block with "
            "'# envoy-type: <full v3 message name>' so it can be validated"
        )
    return ", ".join(checked) or None


def check_doctree(app, doctree) -> None:
    """On each page read: no Chinese in code blocks; note the YAML blocks to validate."""
    blocks = []
    for block in doctree.findall(nodes.literal_block):
        for offset, line in enumerate(block.astext().splitlines()):
            if HAN.search(line):
                logger.warning(
                    "code blocks are shared by both editions and are not translated: "
                    f"write this line in English: {line.strip()[:60]!r}",
                    location=(app.env.docname, (block.line or 0) + 1 + offset),
                    type="insider",
                    subtype="code",
                )
                break
        if block.get("language") in ("yaml", "yml"):
            blocks.append((block.line or 0, block.astext()))
    if blocks:
        _blocks(app.env)[app.env.docname] = blocks


# The YAML blocks are validated once per build, in the main process, after every page is read:
# pages read in parallel would each load the Envoy API and the CRDs again in a process of
# their own. Results are remembered by content (the block, this module, the CRDs and the
# envoy-data-plane release), so an edit validates only the blocks it changed; every block of
# the book is looked up on every build, so an invalid example fails every build, not only the
# one that read its page.
#
# On a build that reads many pages in parallel (a clean build), loading the Envoy API and the
# CRDs and validating every block takes about 3 s of the main process while nothing else can
# run there. So the blocks are found in the pages' Markdown before reading starts, and a forked
# process validates them while the pages are read; validate() then finds their results ready,
# under the same content keys. A block the early pass missed or got differently is validated as
# before: the early pass can make a build faster, never different.


def _blocks(env) -> dict[str, list[tuple[int, str]]]:
    return env.__dict__.setdefault("insider_config_blocks", {})


def purge(app, env, docname) -> None:
    _blocks(env).pop(docname, None)


def merge(app, env, docnames, other) -> None:
    theirs = _blocks(other)
    for docname in docnames:
        if docname in theirs:
            _blocks(env)[docname] = theirs[docname]


@cache
def validator_key() -> bytes:
    from importlib.metadata import version

    digest = hashlib.sha256(Path(__file__).read_bytes())
    digest.update(CRDS.read_bytes())
    digest.update(version("envoy-data-plane").encode())
    return digest.digest()


def result_key(text: str) -> str:
    return hashlib.sha256(validator_key() + text.encode()).hexdigest()


def yaml_blocks(source: str) -> list[str]:
    """The YAML code blocks of a page's Markdown, as the page's doctree holds them: fenced blocks,
    also inside the bodies of MyST directives, and the YAML files a ``{lab}`` block shows."""
    from markdown_it import MarkdownIt

    from .labstore import LABS

    found = []
    for token in MarkdownIt("commonmark").parse(source):
        if token.type != "fence":
            continue
        info = token.info.strip()
        if info in ("yaml", "yml"):
            found.append(token.content)
        elif info.startswith("{lab}"):
            shown = re.search(r"^:file:\s*(\S+\.ya?ml)\s*$", token.content, re.M)
            lab = LABS / info.split()[-1] / shown.group(1) if shown else None
            if lab and lab.is_file():
                found.append(lab.read_text(encoding="utf-8").rstrip("\n"))  # as the lab directive shows it
        elif info.startswith("{"):
            found.extend(yaml_blocks(token.content))
    return found


_early: list = []  # [(process, receiving end of its pipe)] of a build's early validation


def _validate_early(texts: list[str], conn) -> None:
    try:
        conn.send({result_key(text): problem(text) for text in texts})
    finally:
        conn.close()


def validate_early(app, env, docnames) -> None:
    """Start validating the YAML blocks of the pages about to be read, in a forked process."""
    from multiprocessing import get_context

    from . import speed

    _early.clear()
    if app.parallel < 2 or len(docnames) < speed.SMALL:
        return
    results = env.__dict__.get("insider_config_results", {})
    texts = []
    for docname in docnames:
        try:
            source = Path(env.doc2path(docname)).read_text(encoding="utf-8")
        except OSError:
            continue
        texts.extend(t for t in yaml_blocks(source) if result_key(t) not in results)
    if not texts:
        return
    context = get_context("fork")
    receive, send = context.Pipe(duplex=False)
    process = context.Process(target=_validate_early, args=(sorted(set(texts)), send), daemon=True)
    process.start()
    send.close()
    _early.append((process, receive))


def _early_results() -> dict[str, str]:
    if not _early:
        return {}
    process, receive = _early.pop()
    try:
        return receive.recv()
    except (EOFError, OSError):  # the early process failed: validate() does all the work
        return {}
    finally:
        receive.close()
        process.join()


def problem(text: str) -> str:
    """Why a YAML block is not a valid configuration example ('' when it is, or is no config)."""
    try:
        check_block(text)
    except ConfigError as err:
        return str(err)
    return ""


def validate(app, env) -> None:
    results = env.__dict__.setdefault("insider_config_results", {})
    early = _early_results()
    used = set()
    for docname, blocks in sorted(_blocks(env).items()):
        for line, text in blocks:
            key = result_key(text)
            used.add(key)
            if key not in results and key in early:
                results[key] = early[key]
            if key not in results:
                results[key] = problem(text)
            if results[key]:
                logger.warning(
                    f"config example: {results[key]}", location=(docname, line), type="insider", subtype="config"
                )
    for key in set(results) - used:
        del results[key]


def setup(app):
    app.connect("doctree-read", check_doctree)
    app.connect("env-purge-doc", purge)
    app.connect("env-merge-info", merge)
    app.connect("env-before-read-docs", validate_early)
    app.connect("env-updated", validate)
