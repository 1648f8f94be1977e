"""The README's examples are real: each runs, prints what the README shows, and ends with
the exit code recorded for it; JSON examples are strict and valid against their schema."""

from __future__ import annotations

import pytest

from autodiffcli.output import schema

from conftest import json_of
from readme_examples import EXIT_CODES, README, examples, invoke, normalize

EXAMPLES = examples(README.read_text())


def test_readme_has_the_two_setup_commands_and_examples_of_every_command():
    text = README.read_text()
    assert "make run" in text and "make test" in text
    commands = {e.command.split()[1] for e in EXAMPLES}
    assert {"grad", "minimize", "tour"} <= commands


def test_readme_documents_every_json_schema():
    # the README or a page of the manual in docs/
    text = "\n".join(p.read_text() for p in [README, *sorted((README.parent / "docs").glob("*.md"))])
    for name in schema.SCHEMAS:
        assert f"`{name}`" in text, f"neither the README nor docs/ has a table for {name}"


def test_every_recorded_exit_code_belongs_to_an_example():
    assert set(EXIT_CODES) <= {e.command for e in EXAMPLES}


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.command for e in EXAMPLES])
def test_readme_example_prints_what_the_readme_shows(example):
    result = invoke(example)
    assert normalize(result.stdout + result.stderr) == normalize(example.output)
    assert result.exit_code == example.exit_code, f"{example.command} exited {result.exit_code}"
    if "json" in example.args:
        json_of(result, example.args[0], example.exit_code)
