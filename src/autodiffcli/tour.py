"""The seed tutorial's seven cells, run through the same library the commands use."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import click
import numpy as np
from rich.console import Console

from .grad import grad, grad_request
from .minimize import minimize
from .output.serialize import dumps
from .settings import load_problem
from .solve.types import MinimizeSettings


@dataclass(frozen=True)
class Cell:
    number: int
    explanation: str
    command: str
    printed: dict[str, str]  # what the seed printed, by name, as it printed it
    ours: dict[str, float | None]

    @property
    def seed(self) -> dict[str, float | None]:
        return {k: None if v == "None" else float(v) for k, v in self.printed.items()}

    @property
    def matches(self) -> bool:
        return all(_same(v, self.ours.get(k)) for k, v in self.seed.items())


def _same(seed: float | None, ours: float | None) -> bool:
    if seed is None or ours is None:
        return seed is ours
    # tf.print shows float32 to about 9 significant digits
    return math.isclose(seed, ours, rel_tol=2e-7, abs_tol=1e-6)


def _grad(wrt: str, watch: str = "", order: int = 1) -> dict[str, float | None]:
    problem = load_problem(None, (), "float32")
    req = grad_request(problem, None, wrt.split(","), [w for w in watch.split(",") if w], order)
    r = grad(req).result
    out: dict[str, float | None] = {n: None if g is None else float(g[0]) for n, g in r.gradient.items()}
    if order >= 2:
        out["d2y/dx2"] = float(r.hessian["x"]["x"][0])
    return out


def _min(**kw: Any) -> dict[str, float | None]:
    problem = load_problem(None, (), "float32")
    o = minimize(problem, {"x": 0.0}, MinimizeSettings(**kw)).outcome
    return {"y": o.f, "x": o.x["x"]}


def _cells() -> list[tuple[int, str, str, dict[str, str], Callable[[], dict[str, float | None]]]]:
    return [
        (
            1,
            "A tape records y = a*x**2 + b*x + c; x is a Variable, so it gets a gradient, the constant a gets None.",
            "autodiff grad --wrt x,a",
            {"dy/dx": "-2.0", "dy/da": "None"},
            lambda: _rename(_grad("x,a"), {"x": "dy/dx", "a": "dy/da"}),
        ),
        (
            2,
            "tape.watch puts the constants a, b, c on the tape, so they get gradients too.",
            "autodiff grad --wrt x,a,b,c --watch a,b,c",
            {"dy/da": "0.0", "dy/dc": "1.0"},
            lambda: _rename(_grad("x,a,b,c", "a,b,c"), {"a": "dy/da", "c": "dy/dc"}),
        ),
        (
            3,
            "Nested tapes give the second derivative.",
            "autodiff grad --order 2",
            {"d2y/dx2": "2.0"},
            lambda: _grad("x", order=2),
        ),
        (
            4,
            "SGD(0.01), 1000 eager steps of GradientTape + apply_gradients.",
            "autodiff minimize --opt sgd --eager --style tape",
            {"y": "0", "x": "0.999998569"},
            lambda: _min(optimizer="sgd", graph=False, style="tape"),
        ),
        (
            5,
            "The same with a loss callable (Keras 2's optimizer.minimize, which Keras 3 dropped).",
            "autodiff minimize --opt sgd --eager --style minimize",
            {"y": "0", "x": "0.999998569"},
            lambda: _min(optimizer="sgd", graph=False, style="minimize"),
        ),
        (
            6,
            "Adam(0.01), 1000 steps in one tf.function loop over tf.range (here also XLA-compiled).",
            "autodiff minimize --opt adam --graph",
            {"y": "0", "x": "1.00000083"},
            lambda: _min(optimizer="adam", graph=True, jit=True),
        ),
        (
            7,
            "Adam(0.01), only 100 minimize steps (the seed unrolled a Python range; we loop over tf.range).",
            "autodiff minimize --opt adam --steps 100 --style minimize",
            {"y": "0.0503761768"},
            lambda: _min(optimizer="adam", steps=100, style="minimize"),
        ),
    ]


def _rename(values: dict[str, float | None], names: dict[str, str]) -> dict[str, float | None]:
    return {new: values[old] for old, new in names.items()}


def run_all() -> list[Cell]:
    cells = []
    for number, explanation, command, seed, compute in _cells():
        ours = compute()
        cells.append(Cell(number, explanation, command, seed, {k: ours.get(k) for k in seed}))
    return cells


def show(cells: list[Cell], fmt_name: str, console: Console) -> None:
    if fmt_name == "json":
        click.echo(
            dumps(
                {
                    "schema": "autodiff.tour/1",
                    "cells": [
                        {
                            "cell": c.number,
                            "explanation": c.explanation,
                            "command": c.command,
                            "seed": c.seed,
                            "autodiff": c.ours,
                            "matches": c.matches,
                        }
                        for c in cells
                    ],
                }
            )
        )
        return
    if fmt_name == "plain":
        for c in cells:
            click.echo(f"{c.number} {'ok' if c.matches else 'MISMATCH'} {_values(c.ours)}")
        return
    console.print("[bold]The seed tutorial, cell by cell[/]")
    for c in cells:
        verdict = "[green]match[/]" if c.matches else "[red]differs[/]"
        console.print()
        console.print(f"[bold]Cell {c.number}.[/] {c.explanation}")
        console.print(f"  $ {c.command}", highlight=False)
        console.print(f"  seed printed: {', '.join(f'{k} = {v}' for k, v in c.printed.items())}", highlight=False)
        console.print(f"  autodiff:     {_values(c.ours)}  {verdict}", highlight=False)


def _values(values: dict[str, float | None]) -> str:
    """Our float32 results the way the seed's tf.print wrote them (9 significant digits)."""
    return ", ".join(f"{k} = {'None' if v is None else f'{float(np.float32(v)):.9g}'}" for k, v in values.items())
