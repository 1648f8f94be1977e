"""The documentation is true and whole: every console example in the README and in docs/ runs,
prints what the page shows and ends with the exit code recorded for it (JSON examples are
strict and valid against their schema); the README is a front door from which every page is
reachable; every link between pages lands; docs/json.md shows the schemas as they are."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from autodiffcli.output import schema

from conftest import json_of
from readme_examples import (
    EXIT_CODES,
    JSON_DOCS,
    PAGES,
    README,
    ROOT,
    UPDATE,
    all_examples,
    examples,
    generated_section,
    invoke,
    normalize,
    schema_section,
    update,
)

if UPDATE:
    update()

EXAMPLES = all_examples()
COMMANDS = ["completion", "grad", "maximize", "minimize", "server", "tour"]
# pages that other branches add: a link to one of them may come before the page does
LINK = re.compile(r"\]\(([^)\s]+)\)")


def test_readme_has_the_two_setup_commands_and_an_example_of_every_command():
    text = README.read_text()
    assert "make run" in text and "make test" in text and "make check" in text
    shown = {e.command.split()[1] for e in examples(text)}
    assert {"grad", "minimize", "maximize", "tour"} <= shown
    for command in COMMANDS:  # server and completion start processes or print scripts: sh blocks
        assert f"autodiff {command}" in text


def test_readme_is_a_front_door():
    assert len(README.read_text().splitlines()) <= 320


def test_every_page_is_reachable_from_the_readme():
    linked = {target.split("#")[0] for target in LINK.findall(README.read_text())}
    for page in [*PAGES, ROOT / "CHANGELOG.md", ROOT / "benchmarks" / "results.md"]:
        if page != README:
            assert str(page.relative_to(ROOT)) in linked, f"the README has no link to {page.relative_to(ROOT)}"


def _anchors(page: Path) -> set[str]:
    """GitHub's anchors for a page's headings: lower case, spaces to -, other punctuation gone."""
    out = set()
    for line in page.read_text().splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            out.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return out


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_every_link_between_pages_lands(page):
    for target in LINK.findall(page.read_text()):
        if re.match(r"[a-z]+:", target):  # https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        goal = (page.parent / path).resolve() if path else page
        assert goal.exists(), f"{page.name} links to {target}, which does not exist"
        if anchor and goal.suffix == ".md":
            assert anchor in _anchors(goal), f"{page.name} links to {target}: no such heading"


def test_the_json_docs_document_every_schema():
    text = JSON_DOCS.read_text()
    written = text[: text.index("## The schemas")]  # the tables people read, not the generated part
    for name in schema.SCHEMAS:
        assert f"## `{name}`" in written, f"docs/json.md has no table for {name}"


def test_the_json_docs_show_the_schemas_as_they_are():
    assert generated_section(JSON_DOCS.read_text()) == schema_section(), "run make snapshots, read the diff"


def test_every_recorded_exit_code_belongs_to_an_example():
    assert set(EXIT_CODES) <= {e.command for e in EXAMPLES}


@pytest.mark.parametrize("example", EXAMPLES, ids=[f"{e.page}: {e.command}" for e in EXAMPLES])
def test_example_prints_what_the_page_shows(example):
    result = invoke(example)
    assert normalize(result.stdout + result.stderr) == normalize(example.output)
    assert result.exit_code == example.exit_code, f"{example.command} exited {result.exit_code}"
    if "json" in example.args:
        json_of(result, example.args[0], example.exit_code)
