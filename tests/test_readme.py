"""The README's examples are real: each runs and prints what the README shows."""

from __future__ import annotations

import pytest

from readme_examples import README, examples, normalize, run

EXAMPLES = examples(README.read_text())


def test_readme_has_the_two_setup_commands_and_examples_of_every_command():
    text = README.read_text()
    assert "make run" in text and "make test" in text
    commands = {e.command.split()[1] for e in EXAMPLES}
    assert {"grad", "minimize", "tour"} <= commands


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.command for e in EXAMPLES])
def test_readme_example_prints_what_the_readme_shows(example):
    assert normalize(run(example)) == normalize(example.output)
