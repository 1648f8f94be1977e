"""The package's shape: no import cycle, no private name imported from another module, and no
import that climbs from a lower layer to a higher one. Imports inside functions count too.

Layers, lowest first: the base (errors, runtime, the server's wire protocol), the language,
calculus, the methods (solve), the use cases, the output, and the front (commands, server,
console scripts). A module may import its own layer and those below it.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "autodiffcli"

LAYERS = [  # (layer, modules or subpackages in it), lowest first
    ("base", ["autodiffcli", "errors", "formatting", "interrupts", "runtime", "server.protocol"]),
    ("language", ["language"]),
    ("calculus", ["calculus"]),
    ("solve", ["solve"]),
    ("use cases", ["settings", "points", "grad", "minimize", "fit", "constrained"]),
    ("output", ["output"]),
    ("front", ["stream", "tour", "completion", "server", "cli", "main", "serve", "__main__"]),
]


def modules() -> dict[str, Path]:
    """Dotted name (``autodiffcli.solve.newton``) -> file, for every module of the package."""
    found = {}
    for path in PACKAGE.rglob("*.py"):
        name = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        found[name.removesuffix(".__init__")] = path
    return found


MODULES = modules()


def imports(name: str) -> list[tuple[str, str]]:
    """(module of the package imported, name imported from it) for every import in ``name``."""
    path = MODULES[name]
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package[: len(package) - node.level + 1]
                target = ".".join([*parts, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            for alias in node.names:
                if f"{target}.{alias.name}" in MODULES:
                    out.append((f"{target}.{alias.name}", ""))
                elif target in MODULES:
                    out.append((target, alias.name))
        elif isinstance(node, ast.Import):
            out.extend((alias.name, "") for alias in node.names if alias.name in MODULES)
    return [(t, n) for t, n in out if t != name and not name.startswith(t + ".")]


GRAPH = {name: {target for target, _ in imports(name)} for name in MODULES}


def layer(name: str) -> int:
    """The index in LAYERS of the most specific entry naming ``name`` or a package above it."""
    short = name.removeprefix("autodiffcli.") if name != "autodiffcli" else name
    best, depth = None, -1
    for index, (_, members) in enumerate(LAYERS):
        for member in members:
            if (short == member or short.startswith(member + ".")) and member.count(".") > depth:
                best, depth = index, member.count(".")
    assert best is not None, f"{name} is in no layer: add it to LAYERS"
    return best


def cycle() -> list[str]:
    """One import cycle, as the modules along it, or [] when there is none."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(v: str) -> list[str]:
        state[v] = 1
        path.append(v)
        for w in sorted(GRAPH[v]):
            if state.get(w) == 1:
                return [*path[path.index(w) :], w]
            if w not in state and (found := visit(w)):
                return found
        path.pop()
        state[v] = 2
        return []

    for v in sorted(GRAPH):
        if v not in state and (found := visit(v)):
            return found
    return []


def test_every_module_is_in_a_layer():
    for name in MODULES:
        layer(name)


def test_no_import_cycle():
    found = cycle()
    assert not found, "import cycle: " + " -> ".join(found)


def test_no_private_name_imported_from_another_module():
    private = [
        f"{name} imports {target}.{imported}"
        for name in MODULES
        for target, imported in imports(name)
        if imported.startswith("_") and not imported.startswith("__")
    ]
    assert not private


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_import_climbs_to_a_higher_layer(name):
    climbs = [t for t in GRAPH[name] if layer(t) > layer(name)]
    assert not climbs, f"{name} ({LAYERS[layer(name)][0]}) imports " + ", ".join(
        f"{t} ({LAYERS[layer(t)][0]})" for t in sorted(climbs)
    )


@pytest.mark.parametrize("name", ["autodiffcli.server.protocol", "autodiffcli.server.client", "autodiffcli.errors"])
def test_the_client_side_imports_only_the_standard_library(name):
    """The console script's fast path (client, protocol) and the error classes start nothing heavy."""
    outside = set()
    for node in ast.walk(ast.parse(MODULES[name].read_text())):
        if isinstance(node, ast.Import):
            outside.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            outside.add(node.module.split(".")[0])
    assert outside - {"autodiffcli", "__future__"} <= set(sys.stdlib_module_names)
