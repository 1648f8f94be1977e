"""Hock-Schittkowski test problems, typed as a user would type them.

W. Hock and K. Schittkowski, Test Examples for Nonlinear Programming Codes, Lecture Notes
in Economics and Mathematical Systems 187, Springer, 1981. Each problem has the book's
starting point (``start``, feasible or not) and its optimal value and point, written from the
book (and K. Schittkowski's later collection of the same problems), not from any run of
ours. Shared by tests/test_constraints.py and benchmarks/constraints.py.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

S7 = math.sqrt(7)
R2, R3 = math.sqrt(2), math.sqrt(3)


@dataclass(frozen=True)
class HS:
    number: int
    objective: str
    constraints: tuple[str, ...]
    bounds: str | None
    start: str
    f_star: float
    x_star: dict[str, float]

    @property
    def name(self) -> str:
        return f"HS{self.number}"

    def args(self) -> list[str]:
        """The command line after ``minimize``: options, then ``--`` and the objective (which may
        start with '-')."""
        out = ["--from", self.start]
        for c in self.constraints:
            out += ["--subject-to", c]
        if self.bounds:
            out += ["--bounds", self.bounds]
        return [*out, "--", self.objective]


PROBLEMS = [
    HS(6, "(1 - x1)^2", ("10*(x2 - x1^2) = 0",), None, "x1=-1.2,x2=1", 0.0, {"x1": 1, "x2": 1}),
    HS(
        7,
        "log(1 + x1^2) - x2",
        ("(1 + x1^2)^2 + x2^2 = 4",),
        None,
        "x1=2,x2=2",
        -math.sqrt(3),
        {"x1": 0, "x2": math.sqrt(3)},
    ),
    HS(10, "x1 - x2", ("-3*x1^2 + 2*x1*x2 - x2^2 + 1 >= 0",), None, "x1=-10,x2=10", -1.0, {"x1": 0, "x2": 1}),
    HS(
        11,
        "(x1 - 5)^2 + x2^2 - 25",
        ("x2 >= x1^2",),
        None,
        "x1=4.9,x2=0.1",
        -8.498464223,
        # the book prints (1.234679, 1.524336); at its f* the constraint holds with equality and
        # f = (x1 - 5)^2 + x1^4 - 25 is stationary: x1 is the real root of 2 t^3 + t = 5
        {"x1": 1.2347728251, "x2": 1.2347728251**2},
    ),
    HS(
        12,
        "0.5*x1^2 + x2^2 - x1*x2 - 7*x1 - 7*x2",
        ("4*x1^2 + x2^2 <= 25",),
        None,
        "x1=0,x2=0",
        -30.0,
        {"x1": 2, "x2": 3},
    ),
    HS(
        14,
        "(x1 - 2)^2 + (x2 - 1)^2",
        ("x1 - 2*x2 + 1 = 0", "x1^2/4 + x2^2 <= 1"),
        None,
        "x1=2,x2=2",
        9 - 2.875 * S7,
        {"x1": 0.5 * (S7 - 1), "x2": 0.25 * (S7 + 1)},
    ),
    HS(
        15,
        "100*(x2 - x1^2)^2 + (1 - x1)^2",
        ("x1*x2 >= 1", "x1 + x2^2 >= 0"),
        "x1=:0.5",
        "x1=-2,x2=1",
        306.5,
        {"x1": 0.5, "x2": 2},
    ),
    HS(
        21,
        "0.01*x1^2 + x2^2 - 100",
        ("10*x1 - x2 >= 10",),
        "x1=2:50,x2=-50:50",
        "x1=-1,x2=-1",
        -99.96,
        {"x1": 2, "x2": 0},
    ),
    HS(
        35,
        "9 - 8*x1 - 6*x2 - 4*x3 + 2*x1^2 + 2*x2^2 + x3^2 + 2*x1*x2 + 2*x1*x3",
        ("x1 + x2 + 2*x3 <= 3",),
        "x1=0:,x2=0:,x3=0:",
        "x1=0.5,x2=0.5,x3=0.5",
        1 / 9,
        {"x1": 4 / 3, "x2": 7 / 9, "x3": 4 / 9},
    ),
    HS(
        43,
        "x1^2 + x2^2 + 2*x3^2 + x4^2 - 5*x1 - 5*x2 - 21*x3 + 7*x4",
        (
            "x1^2 + x2^2 + x3^2 + x4^2 + x1 - x2 + x3 - x4 <= 8",
            "x1^2 + 2*x2^2 + x3^2 + 2*x4^2 - x1 - x4 <= 10",
            "2*x1^2 + x2^2 + x3^2 + 2*x1 - x2 - x4 <= 5",
        ),
        None,
        "x1=0,x2=0,x3=0,x4=0",
        -44.0,
        {"x1": 0, "x2": 1, "x3": 2, "x4": -1},
    ),
    HS(
        71,
        "x1*x4*(x1 + x2 + x3) + x3",
        ("x1*x2*x3*x4 >= 25", "x1^2 + x2^2 + x3^2 + x4^2 = 40"),
        "x1=1:5,x2=1:5,x3=1:5,x4=1:5",
        "x1=1,x2=5,x3=5,x4=1",
        17.0140173,
        {"x1": 1, "x2": 4.7429994, "x3": 3.8211503, "x4": 1.3794082},
    ),
    HS(
        18,
        "0.01*x1^2 + x2^2",
        ("x1*x2 >= 25", "x1^2 + x2^2 >= 25"),
        "x1=2:50,x2=0:50",
        "x1=2,x2=2",
        5.0,
        {"x1": math.sqrt(250), "x2": math.sqrt(2.5)},
    ),
    HS(
        22,
        "(x1 - 2)^2 + (x2 - 1)^2",
        ("x1 + x2 <= 2", "x2 >= x1^2"),
        None,
        "x1=2,x2=2",
        1.0,
        {"x1": 1, "x2": 1},
    ),
    HS(
        39,
        "-x1",
        ("x2 - x1^3 - x3^2 = 0", "x1^2 - x2 - x4^2 = 0"),
        None,
        "x1=2,x2=2,x3=2,x4=2",
        -1.0,
        {"x1": 1, "x2": 1, "x3": 0, "x4": 0},
    ),
    HS(
        65,
        "(x1 - x2)^2 + (x1 + x2 - 10)^2/9 + (x3 - 5)^2",
        ("x1^2 + x2^2 + x3^2 <= 48",),
        "x1=-4.5:4.5,x2=-4.5:4.5,x3=-5:5",
        "x1=-5,x2=5,x3=0",
        0.9535288567,
        {"x1": 3.650461821, "x2": 3.650461821, "x3": 4.620417081},
    ),
    HS(
        76,
        "x1^2 + 0.5*x2^2 + x3^2 + 0.5*x4^2 - x1*x3 + x3*x4 - x1 - 3*x2 + x3 - x4",
        ("x1 + 2*x2 + x3 + x4 <= 5", "3*x1 + x2 + 2*x3 - x4 <= 4", "x2 + 4*x3 >= 1.5"),
        "x1=0:,x2=0:,x3=0:,x4=0:",
        "x1=0.5,x2=0.5,x3=0.5,x4=0.5",
        -4.681818181,
        {"x1": 0.2727273, "x2": 2.090909, "x3": 0, "x4": 0.5454545},
    ),
    HS(
        24,
        "((x1 - 3)^2 - 9)*x2^3/(27*sqrt(3))",
        ("x1/sqrt(3) - x2 >= 0", "x1 + sqrt(3)*x2 >= 0", "x1 + sqrt(3)*x2 <= 6"),
        "x1=0:,x2=0:",
        "x1=1,x2=0.5",
        -1.0,
        {"x1": 3, "x2": R3},
    ),
    HS(
        29,
        "-x1*x2*x3",
        ("x1^2 + 2*x2^2 + 4*x3^2 <= 48",),
        None,
        "x1=1,x2=1,x3=1",
        -16 * R2,
        {"x1": 4, "x2": 2 * R2, "x3": 2},
    ),
    HS(
        36,
        "-x1*x2*x3",
        ("x1 + 2*x2 + 2*x3 <= 72",),
        "x1=0:20,x2=0:11,x3=0:42",
        "x1=10,x2=10,x3=10",
        -3300.0,
        {"x1": 20, "x2": 11, "x3": 15},
    ),
    HS(
        41,
        "2 - x1*x2*x3",
        ("x1 + 2*x2 + 2*x3 - x4 = 0",),
        "x1=0:1,x2=0:1,x3=0:1,x4=0:2",
        "x1=2,x2=2,x3=2,x4=2",
        52 / 27,
        {"x1": 2 / 3, "x2": 1 / 3, "x3": 1 / 3, "x4": 2},
    ),
    HS(
        42,
        "(x1 - 1)^2 + (x2 - 2)^2 + (x3 - 3)^2 + (x4 - 4)^2",
        ("x1 = 2", "x3^2 + x4^2 = 2"),
        None,
        "x1=1,x2=1,x3=1,x4=1",
        28 - 10 * R2,
        {"x1": 2, "x2": 2, "x3": 0.6 * R2, "x4": 0.8 * R2},
    ),
    HS(
        44,
        "x1 - x2 - x3 - x1*x3 + x1*x4 + x2*x3 - x2*x4",
        ("x1 + 2*x2 <= 8", "4*x1 + x2 <= 12", "3*x1 + 4*x2 <= 12", "2*x3 + x4 <= 8", "x3 + 2*x4 <= 8", "x3 + x4 <= 5"),
        "x1=0:,x2=0:,x3=0:,x4=0:",
        "x1=0,x2=0,x3=0,x4=0",
        -15.0,
        {"x1": 0, "x2": 3, "x3": 0, "x4": 4},
    ),
    HS(
        48,
        "(x1 - 1)^2 + (x2 - x3)^2 + (x4 - x5)^2",
        ("x1 + x2 + x3 + x4 + x5 = 5", "x3 - 2*(x4 + x5) = -3"),
        None,
        "x1=3,x2=5,x3=-3,x4=2,x5=-2",
        0.0,
        {"x1": 1, "x2": 1, "x3": 1, "x4": 1, "x5": 1},
    ),
    HS(
        61,
        "4*x1^2 + 2*x2^2 + 2*x3^2 - 33*x1 + 16*x2 - 24*x3",
        ("3*x1 - 2*x2^2 = 7", "4*x1 - x3^2 = 11"),
        None,
        "x1=0,x2=0,x3=0",
        -143.6461422,
        {"x1": 5.32677016, "x2": -2.11899864, "x3": 3.21046424},
    ),
    HS(
        80,
        "exp(x1*x2*x3*x4*x5)",
        ("x1^2 + x2^2 + x3^2 + x4^2 + x5^2 = 10", "x2*x3 = 5*x4*x5", "x1^3 + x2^3 = -1"),
        "x1=-2.3:2.3,x2=-2.3:2.3,x3=-3.2:3.2,x4=-3.2:3.2,x5=-3.2:3.2",
        "x1=-2,x2=2,x3=2,x4=-1,x5=-1",
        0.0539498478,
        {"x1": -1.717143, "x2": 1.595709, "x3": 1.827247, "x4": -0.7636413, "x5": -0.7636450},
    ),
]
