"""The README's console examples: parse them, run them, and (with --update) refresh them.

An example is a ```console block whose first line is ``$ autodiff ...``; the rest of the
block is what the command prints (stdout, then stderr). Commands run through click's
CliRunner, with ``--format table`` added when the example gives no format, since that is
the default on a terminal. Every example exits 0 unless EXIT_CODES says otherwise.
"""

from __future__ import annotations

import re
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

from click.testing import CliRunner, Result

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCK = re.compile(r"```console\n\$ (autodiff[^\n]*)\n(.*?)```", re.DOTALL)
VARYING = [  # timings change from run to run
    (re.compile(r"optimize time │ [0-9.]+ s"), "optimize time │ * s"),
    (re.compile(r'"optimize_s": [0-9.e-]+'), '"optimize_s": *'),
]


# The examples that show a failure, and the exit code each must end with (README, Exit codes).
EXIT_CODES = {
    'autodiff grad "sinn(x) + 1"': 2,
    'autodiff grad "atan2(x) + 1"': 2,
    'autodiff grad "x + cοs(x)"': 2,
    'autodiff grad "0x10*x"': 2,
    'autodiff grad "2x - 2x" --at x=1': 2,
    'autodiff grad "sin(x)" --plot-file plot.jpg': 2,
    'autodiff grad "log(x)" --at -1': 1,
    'autodiff grad "(exp(x)-1-x)/x**2" --at 0.001 --check': 1,
    "autodiff minimize --opt adamm": 2,
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

    @property
    def exit_code(self) -> int:
        return EXIT_CODES.get(self.command, 0)

    @property
    def args(self) -> list[str]:
        args = shlex.split(self.command)[1:]
        return args if "--format" in args or "--help" in args else [*args, "--format", "table"]


def examples(text: str) -> list[Example]:
    return [Example(m.group(1), m.group(2)) for m in BLOCK.finditer(text)]


def invoke(example: Example) -> Result:
    from autodiffcli.cli import cli

    # a fixed width and no colour, whatever the terminal the tests run in
    return CliRunner().invoke(cli, example.args, env={"COLUMNS": "80", "NO_COLOR": "1"})


def run(example: Example) -> str:
    result = invoke(example)
    return result.stdout + result.stderr


def normalize(text: str) -> str:
    for pattern, replacement in VARYING:
        text = pattern.sub(replacement, text)
    return "\n".join(line.rstrip() for line in text.splitlines())


def update() -> None:
    text = README.read_text()

    def fill(m: re.Match[str]) -> str:
        return f"```console\n$ {m.group(1)}\n{run(Example(m.group(1), ''))}```"

    README.write_text(BLOCK.sub(fill, text))


if __name__ == "__main__":
    if sys.argv[1:] == ["--update"]:
        update()
