"""Every command the Makefile's targets and the tests run comes from a package the project installs.

A bare Debian machine has only what the README tells a newcomer to install (`PREREQUISITES` in
the Makefile) and what Debian itself never goes without (Essential and required packages).
Everything else must be in one of the Makefile's package lists, or `make test` fails there and
not here. This happened once: `npm` was on the development machine by hand, no list had it,
and a newcomer's `make test` stopped at `npm: not found`.

How: collect the commands (the Makefile's recipes with its variables expanded, every
`subprocess`/`shutil.which` call with a literal command in the tests, the extension and the
labs, and the programs those run in turn), find each on PATH, follow its symlinks and
alternatives to the file a package owns (`dpkg -S`), and require that package to be in the
lists or pulled in by one of them (Depends, Pre-Depends, Provides).
"""

from __future__ import annotations

import ast
import os
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest
from conftest import ROOT

LISTS = ("PREREQUISITES", "SYSTEM_PACKAGES", "PRINT_PACKAGES", "LAB_PACKAGES")
# Programs that a command runs in turn, which no source names: (command, what it runs, why).
INDIRECT = (
    ("latexmk", "xelatex", "`latexmk -pdfxe` typesets with XeTeX"),
    ("npm", "node", "npm is a Node.js program"),
    ("mmdc", "chromium", "mermaid-cli draws in Chromium (PUPPETEER_EXECUTABLE_PATH)"),
    ("playwright", "chromium", "the browser tests drive Chromium (tests/system.py)"),
)
# Never a package's job: the shell's own words, and sudo, which a non-root user brings.
SHELL_WORDS = {
    "if", "then", "else", "elif", "fi", "for", "in", "do", "done", "while", "until", "case", "esac",
    "echo", "cd", "exit", "set", "export", "test", "[", "true", "false", "command", "read", "local",
    "return", ":", "{", "}", "!", "printf", "shift", "trap", "wait", "exec", "eval", "sudo",
}  # fmt: skip
SCANNED = ("tests", "_ext", "labs")
SUBPROCESS_CALLS = {"run", "Popen", "check_output", "check_call", "call"}
LAB_CALLS = {"sh", "start", "query"}  # the lab kit's ways of running a shell command


def _string(node: ast.AST) -> str | None:
    """A string literal, or an f-string with its placeholders as X."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) else "X" for v in node.values)
    return None


@dataclass(frozen=True)
class Use:
    command: str
    where: str  # file:line


# -- Collecting the commands ---------------------------------------------------------------


def makefile_variables(text: str) -> dict[str, str]:
    variables = {}
    for match in re.finditer(r"^([A-Z_]+)\s*[:?]?=\s*(.*)$", text, re.M):
        variables.setdefault(match.group(1), match.group(2).strip())
    return variables


def expand(text: str, variables: dict[str, str], depth: int = 0) -> str:
    if depth > 5:
        return text
    return re.sub(
        r"\$\(([A-Z_]+)\)", lambda m: expand(variables.get(m.group(1), ""), variables, depth + 1) if
        m.group(1) in variables else m.group(0), text
    )  # fmt: skip


def package_lists(text: str) -> dict[str, list[str]]:
    variables = makefile_variables(text)
    return {name: expand(variables.get(name, ""), variables).split() for name in LISTS}


OPERATORS = {";", "&&", "||", "|", "(", ")", "&", "{", "}", "!", ";;"}
KEYWORDS = {"then", "do", "else", "if", "while", "elif", "until", "done", "fi", "esac"}


def shell_commands(line: str) -> list[str]:
    """First words of the simple commands in shell text (command substitutions included)."""
    line = re.sub(r"'[^']*'", "''", line.replace("$$", "$"))  # quoted programs (awk, sed, -c) are data
    words = []
    while match := re.search(r"[$<>]\(([^()]*)\)", line):  # innermost $(...), <(...), >(...) first
        words += shell_commands(match.group(1))
        line = line[: match.start()] + "X" + line[match.end() :]
    lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|()<>")
    lexer.whitespace_split = True
    try:
        tokens = list(lexer)
    except ValueError:
        tokens = line.split()
    start = True
    for token in tokens:
        if token in OPERATORS or token in KEYWORDS:
            start = True
        elif start and not re.fullmatch(r"[@+-]*[A-Za-z_][A-Za-z0-9_]*=.*", token):  # VAR=value
            word = token.lstrip("@-+")
            if word.startswith("$"):
                continue  # a command held in a variable, often empty ($as_root): look further
            if word and not word.startswith("-") and not set(word) <= set("<>&0123456789") and word != "X":
                words.append(word)
            start = False
    return words


def logical_lines(text: str) -> list[tuple[int, str]]:
    """Lines with backslash continuations joined, each with the number of its first line."""
    out, pending, first = [], "", 0
    for number, line in enumerate(text.splitlines(), 1):
        if not pending:
            first = number
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        out.append((first, pending + line))
        pending = ""
    return out


def makefile_uses(path: Path) -> list[Use]:
    text = path.read_text(encoding="utf-8")
    variables = makefile_variables(text)
    uses = []
    recipe = False
    for number, line in logical_lines(text):
        if line.startswith("define "):
            recipe = True
            continue
        if line.startswith("endef"):
            recipe = False
            continue
        if line.startswith("\t") or recipe:
            body = expand(line, variables)
            body = body.replace("$(MAKE)", "make")
            while True:  # make's own $(...) (variables, functions), innermost first; $$( is the shell's
                shorter = re.sub(r"(?<!\$)\$\([^()$]*\)|(?<!\$)\$[@<^*]", "X", body)
                if shorter == body:
                    break
                body = shorter
            for word in shell_commands(body):
                if "/" in word:  # a tool the project installs itself: .venv/bin/, node_modules/
                    continue
                uses.append(Use(word, f"{path.name}:{number}"))
    return uses


def _literal_command(node: ast.AST, constants: dict[str, list[str]]) -> str | None:
    if isinstance(node, (ast.List, ast.Tuple)) and node.elts:
        first = node.elts[0]
        if isinstance(first, ast.Constant) and isinstance(first.value, str):
            return first.value
        if isinstance(first, ast.Starred) and isinstance(first.value, ast.Name):
            listed = constants.get(first.value.id)
            return listed[0] if listed else None
    if isinstance(node, ast.Name) and node.id in constants:
        return constants[node.id][0]
    if isinstance(node, ast.Constant) and isinstance(node.value, str):  # shell=True strings
        words = shell_commands(node.value)
        return words[0] if words else None
    return None


def python_uses(path: Path) -> list[Use]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    constants = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and isinstance(node.value, (ast.List, ast.Tuple)):
            values = [e.value for e in node.value.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)]
            first = node.value.elts[0] if node.value.elts else None
            if values and isinstance(first, ast.Constant) and first.value == values[0]:
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        constants[target.id] = values
    uses = []
    rel = path.relative_to(ROOT).as_posix()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        owner = func.value.id if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) else ""
        command = None
        if name in SUBPROCESS_CALLS and owner in ("subprocess", "") and node.args:
            command = _literal_command(node.args[0], constants)
        elif name == "which" and node.args and isinstance(node.args[0], ast.Constant):
            command = node.args[0].value
        elif name in LAB_CALLS and owner == "lab" and node.args:  # labs: lab.sh("curl ...")
            text = _string(node.args[0])
            for word in shell_commands(text) if text else []:
                if "/" not in word:
                    uses.append(Use(word, f"{rel}:{node.lineno}"))
        if command and "/" not in command and not command.startswith(("{", "$")):
            uses.append(Use(command, f"{rel}:{node.lineno}"))
    return uses


def collect(root: Path = ROOT, makefile_text: str | None = None) -> list[Use]:
    uses = makefile_uses(root / "Makefile") if makefile_text is None else []
    if makefile_text is not None:
        scratch = root / "_build" / "Makefile.scanned"
        scratch.parent.mkdir(exist_ok=True)
        scratch.write_text(makefile_text, encoding="utf-8")
        uses = [Use(u.command, u.where.replace("Makefile.scanned", "Makefile")) for u in makefile_uses(scratch)]
    for folder in SCANNED:
        for path in sorted((root / folder).rglob("*.py")) if (root / folder).is_dir() else []:
            if "node_modules" not in path.parts and path.name != Path(__file__).name:
                uses += python_uses(path)
    names = {u.command for u in uses}
    for command, runs, why in INDIRECT:
        if command in names or command == "playwright":
            uses.append(Use(runs, f"{Path(__file__).name}: {why}"))
    return [u for u in uses if u.command not in SHELL_WORDS and u.command not in ("python", "python3", "python3.11")
            and not u.command.startswith("envoy")]  # fmt: skip


# -- Resolving them to packages --------------------------------------------------------------


def candidate_paths(path: str) -> list[str]:
    """The file, each link on the way to its target (alternatives included), and their
    merged-/usr twins (dpkg records /bin/ip where the file is /usr/bin/ip)."""
    chain, seen = [path], set()
    current = path
    while os.path.islink(current) and current not in seen:
        seen.add(current)
        current = os.path.join(os.path.dirname(current), os.readlink(current))
        chain.append(os.path.normpath(current))
    chain.append(os.path.realpath(path))
    out = []
    for p in chain:
        for twin in (p, re.sub(r"^/usr/(s?bin|lib)/", r"/\1/", p), re.sub(r"^/(s?bin|lib)/", r"/usr/\1/", p)):
            if twin not in out:
                out.append(twin)
    return out


@cache
def owner(command: str) -> str | None:
    found = shutil.which(command)
    if not found:
        return None
    for path in reversed(candidate_paths(found)):
        done = subprocess.run(["dpkg-query", "-S", path], capture_output=True, text=True)
        if done.returncode == 0:
            return done.stdout.split(":", 1)[0].split(",")[0].strip()
    return ""


@cache
def installed() -> dict[str, dict[str, object]]:
    fields = "${Package}\t${db:Status-Status}\t${Essential}\t${Priority}\t${Depends}\t${Pre-Depends}\t${Provides}\n"
    out = subprocess.run(["dpkg-query", "-W", "-f", fields], capture_output=True, text=True, check=True).stdout
    table = {}
    for line in out.splitlines():
        package, status, essential, priority, depends, pre, provides = (line.split("\t") + [""] * 7)[:7]
        if status != "installed":
            continue

        def names(field: str) -> list[str]:
            return [re.sub(r"\(.*?\)|:\w+", "", alt).strip() for alt in re.split(r"[,|]", field) if alt.strip()]

        table[package] = {"base": essential == "yes" or priority == "required",
                          "depends": names(depends) + names(pre), "provides": names(provides)}  # fmt: skip
    return table


def closure(packages: list[str]) -> set[str]:
    """The packages a list brings onto a machine: themselves, what provides them, what they need."""
    table = installed()
    providers: dict[str, set[str]] = {}
    for package, info in table.items():
        for virtual in info["provides"]:
            providers.setdefault(virtual, set()).add(package)
    todo = list(packages)
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo += sorted(providers.get(name, ()))
        if name in table:
            todo += table[name]["depends"]
    return seen


def problems(uses: list[Use], lists: dict[str, list[str]]) -> list[str]:
    allowed = closure([p for names in lists.values() for p in names])
    base = {p for p, info in installed().items() if info["base"]}
    found = []
    for command in sorted({u.command for u in uses}):
        where = ", ".join(sorted({u.where for u in uses if u.command == command})[:3])
        package = owner(command)
        if package is None:
            found.append(f"{command} (run at {where}) is not installed: add its package to a list in the Makefile")
        elif package == "":
            found.append(f"{command} (run at {where}) is {shutil.which(command)}, which no Debian package owns: "
                         "installed by hand, so a new machine will not have it")  # fmt: skip
        elif package not in allowed and package not in base:
            found.append(f"{command} (run at {where}) comes from the Debian package {package!r}, which no list in the "
                         f"Makefile ({', '.join(LISTS)}) installs: add it to one")  # fmt: skip
    return found


needs_dpkg = pytest.mark.skipif(not shutil.which("dpkg-query"), reason="resolving commands to packages needs dpkg")


@needs_dpkg
def test_every_command_comes_from_a_package_the_project_installs():
    uses = collect()
    commands = {u.command for u in uses}
    # The collection itself works: it finds what the targets and tests are known to run.
    for expected in ("npm", "java", "msgfmt", "latexmk", "xelatex", "pdftotext", "chromium", "apt-get", "node",
                     "ip", "curl", "jq", "setpriv"):
        assert expected in commands, f"the scan no longer sees {expected}: {sorted(commands)}"
    found = problems(uses, package_lists((ROOT / "Makefile").read_text(encoding="utf-8")))
    assert not found, "\n".join(found)


@needs_dpkg
@pytest.mark.parametrize("removed", [("nodejs", "npm"), ("gettext",), ("chromium",)])
def test_a_package_missing_from_the_lists_fails(removed):
    text = (ROOT / "Makefile").read_text(encoding="utf-8")
    planted = re.sub(
        r"^(SYSTEM_PACKAGES\s*:=.*)$",
        lambda m: " ".join(w for w in m.group(1).split() if w not in removed).replace(":= ", ":= ", 1),
        text, flags=re.M,
    )  # fmt: skip
    assert planted != text
    found = problems(collect(makefile_text=planted), package_lists(planted))
    assert found, f"removing {removed} from SYSTEM_PACKAGES went unnoticed"
    assert any("which no list in the Makefile" in f for f in found), found
    # Each message names the command, where it runs, and the package.
    assert all(re.match(r"\S+ \(run at .+:\S*", f) for f in found), found


def test_the_scan_reads_shell_and_python():
    assert shell_commands('cd x && PUPPETEER=1 npm ci --no-audit') == ["cd", "npm"]
    assert shell_commands("command -v npm >/dev/null || system-deps") == ["command", "system-deps"]
    assert shell_commands("awk '$1 == \"x\" { print }' | tr ',' ' '") == ["awk", "tr"]
    assert shell_commands('java -jar "$$(readlink -f "$$(command -v epubcheck)")" x.epub') == ["command", "readlink", "java"]
    assert shell_commands("diff <(jq . a.json) b.json") == ["jq", "diff"]
    assert shell_commands('echo "a (b: c)"; for p in a b; do dpkg -s $p 2>/dev/null || echo $p; done') == [
        "echo", "for", "dpkg", "echo"]
    tree = ast.parse('import subprocess\nX = ["java", "-jar"]\nsubprocess.run([*X, "a"])\nsubprocess.run(["pdffonts", f])')
    source = ROOT / "_build" / "scan-probe.py"
    source.parent.mkdir(exist_ok=True)
    source.write_text(ast.unparse(tree), encoding="utf-8")
    assert [u.command for u in python_uses(source)] == ["java", "pdffonts"]
