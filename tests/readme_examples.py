"""The documentation's console examples and generated sections: find them, run them, refresh them.

An example is a ```console block whose first line is ``$ autodiff ...``, in the README or in
any other page of the documentation (PAGES); the rest of the block is what the command
prints (stdout, then stderr). Commands run through click's CliRunner, with ``--format
table`` added when the example gives no format, since that is the default on a terminal.
Every example exits 0 unless EXIT_CODES says otherwise.

docs/json.md ends with the JSON schemas, generated from output/schema.py between two
markers. ``AUTODIFF_UPDATE_SNAPSHOTS=1`` (``make snapshots``) rewrites every example's output
and that section from what the code does now; read the diff before committing it.
"""

from __future__ import annotations

import json
import os
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from click.testing import CliRunner, Result

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
JSON_DOCS = ROOT / "docs" / "json.md"
# the README first, then the other pages at the top and the manual in docs/
PAGES = [README, *sorted(p for p in ROOT.glob("*.md") if p != README), *sorted((ROOT / "docs").glob("*.md"))]
UPDATE = bool(os.environ.get("AUTODIFF_UPDATE_SNAPSHOTS"))

BLOCK = re.compile(r"```console\n\$ (autodiff[^\n]*)\n(.*?)```", re.DOTALL)
VARYING = [  # timings change from run to run
    (re.compile(r"optimize time │ [0-9.]+ s"), "optimize time │ * s"),
    (re.compile(r'"optimize_s": [0-9.e-]+'), '"optimize_s": *'),
]
GENERATED = re.compile(
    r"(<!-- generated from src/autodiffcli/output/schema.py: begin -->\n)(.*?)"
    r"(<!-- generated from src/autodiffcli/output/schema.py: end -->)",
    re.DOTALL,
)


# The examples that show a failure, and the exit code each must end with (README, Exit codes).
EXIT_CODES = {
    'autodiff grad "sinn(x) + 1"': 2,
    'autodiff grad "atan2(x) + 1"': 2,
    'autodiff grad "x + cοs(x)"': 2,
    'autodiff grad "0x10*x"': 2,
    'autodiff grad "max(0, acos(2))*x" --at 1': 2,
    'autodiff grad "2x - 2x" --at x=1': 2,
    'autodiff grad "sin(x)" --plot-file plot.jpg': 2,
    'autodiff grad "log(x)" --at -1': 1,
    'autodiff grad "(exp(x)-1-x)/x**2" --at 0.001 --check': 1,
    "autodiff minimize --opt adamm": 2,
    # docs/trust.md
    'autodiff grad "x" --at 1e39': 2,
    'autodiff grad "sqrt(x)" --at 1e-40': 2,
    'autodiff grad "hypot(x,y)" --at x=1e20,y=1e20 --format plain': 1,
    'autodiff grad "1e8*x + (exp(y)-1-y)/y**2" --at x=1,y=0.001 --check --format plain': 1,
    # docs/fitting.md
    'autodiff fit "y = b1*(1-exp[-b2*xx])" --data docs/data/misra1a.csv': 2,
    # docs/constraints.md
    'autodiff minimize "x**2" --subject-to "x >= 1" --subject-to "x <= 0" --format plain': 3,
    'autodiff minimize "x**2" --opt adam --subject-to "x >= 1"': 2,
    'autodiff minimize "x**2 + y**2" --subject-to "x + z <= 1"': 2,
    'autodiff minimize "x**2 + y**2" --subject-to "x + y < 1"': 2,
}


@dataclass(frozen=True)
class Example:
    command: str
    output: str
    page: str = "README.md"  # where it is shown, relative to the repository

    @property
    def exit_code(self) -> int:
        return EXIT_CODES.get(self.command, 0)

    @property
    def args(self) -> list[str]:
        args = shlex.split(self.command)[1:]
        return args if "--format" in args or "--help" in args else [*args, "--format", "table"]


def examples(text: str, page: str = "README.md") -> list[Example]:
    return [Example(m.group(1), m.group(2), page) for m in BLOCK.finditer(text)]


def all_examples() -> list[Example]:
    """Every example of every page, in the order of PAGES."""
    return [e for page in PAGES for e in examples(page.read_text(), str(page.relative_to(ROOT)))]


_DONE: dict[tuple[str, ...], Result] = {}
SHARED = {("tour", "--format", "table")}  # on several pages, a seconds-long command: run once a process


def invoke(example: Example) -> Result:
    from autodiffcli.cli import cli

    key = tuple(example.args)
    if key in SHARED and key in _DONE:
        return _DONE[key]
    # a fixed width and no colour, whatever the terminal the tests run in
    result = CliRunner().invoke(cli, example.args, env={"COLUMNS": "80", "NO_COLOR": "1"})
    _DONE[key] = result
    return result


def run(example: Example) -> str:
    result = invoke(example)
    return result.stdout + result.stderr


def normalize(text: str) -> str:
    for pattern, replacement in VARYING:
        text = pattern.sub(replacement, text)
    return "\n".join(line.rstrip() for line in text.splitlines())


def schema_section() -> str:
    """The JSON schemas as docs/json.md shows them, one folded block each."""
    from autodiffcli.output import schema

    parts = []
    for name, document in schema.SCHEMAS.items():
        text = json.dumps(document, indent=2, ensure_ascii=False)
        parts.append(f"<details><summary><code>{name}</code></summary>\n\n```json\n{text}\n```\n\n</details>\n")
    return "\n".join(parts)


def generated_section(text: str) -> str | None:
    m = GENERATED.search(text)
    return m.group(2) if m else None


def update() -> None:
    """Rewrite every example's output, and the generated schema section, from the code."""
    for page in PAGES:
        text = page.read_text()

        def fill(m: re.Match[str]) -> str:
            output = run(Example(m.group(1), ""))
            if normalize(output) == normalize(m.group(2)):
                output = m.group(2)  # unchanged but for timings: keep the page as it is
            return f"```console\n$ {m.group(1)}\n{output}```"

        text = BLOCK.sub(fill, text)
        if page == JSON_DOCS:
            text = GENERATED.sub(lambda m: m.group(1) + schema_section() + m.group(3), text)
        page.write_text(text)
