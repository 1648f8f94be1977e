"""The names ``--opt`` takes, and what each runs. Standard library only (completion reads it).

A test checks the Keras table against ``keras.optimizers``, so it cannot drift from the
installed Keras.
"""

from __future__ import annotations

from ..errors import UsageError, did_you_mean

# Every optimizer Keras 3 ships, by the lower-case name users type. A test checks this
# table against keras.optimizers, so it cannot drift from the installed Keras.
OPTIMIZERS: dict[str, str] = {
    "adadelta": "Adadelta",
    "adafactor": "Adafactor",
    "adagrad": "Adagrad",
    "adam": "Adam",
    "adamax": "Adamax",
    "adamw": "AdamW",
    "ftrl": "Ftrl",
    "lamb": "Lamb",
    "lion": "Lion",
    "muon": "Muon",
    "nadam": "Nadam",
    "rmsprop": "RMSprop",
    "schedulefreeadamw": "ScheduleFreeAdamW",
    "sgd": "SGD",
}

# Newton's method and SciPy's quasi-Newton methods (see local.py), by the name users type
METHODS: dict[str, str] = {"newton": "Newton", "bfgs": "BFGS", "lbfgs": "L-BFGS-B"}
# SciPy's methods that take constraints (--subject-to), by the name users type (less its '-')
CONSTRAINED: dict[str, str] = {"slsqp": "SLSQP", "trustconstr": "trust-constr"}
DEFAULT_CONSTRAINED = "slsqp"
# their convergence test, when --tol is not given: the gradient's largest component
DEFAULT_GTOL = 1e-5  # SciPy's own default

# Without --opt: Newton with the exact Hessian up to this many variables (one Hessian costs
# d reverse passes, and its eigendecomposition d**3), L-BFGS-B beyond (docs/defaults.md)
NEWTON_UP_TO = 20


def default_method(variables: int, keras_options: bool = False) -> str:
    """The ``--opt`` name used when none is given.

    ``newton`` for up to NEWTON_UP_TO variables, ``lbfgs`` beyond: both converge from far
    starts and test convergence on the gradient. Options that only a Keras optimizer takes
    (``--lr``, ``--style minimize``) ask for the tutorial's ``sgd``.
    """
    if keras_options:
        return "sgd"
    return "newton" if variables <= NEWTON_UP_TO else "lbfgs"


def optimizer_name(name: str) -> str:
    """The registry key for ``name`` (case-insensitive), or a UsageError naming the closest one."""
    key = name.lower().replace("-", "").replace("_", "")
    known = {**OPTIMIZERS, **METHODS, **CONSTRAINED}
    if key not in known:
        shown = sorted({**OPTIMIZERS, **METHODS, "slsqp": "", "trust-constr": ""})
        raise UsageError(f"--opt: unknown optimizer {name!r}{did_you_mean(key, known)}; choose from {', '.join(shown)}")
    return key


def display_name(key: str, starts: int = 1) -> str:
    """``Adam``, ``Newton``, ``L-BFGS-B``: the class or method behind an --opt name.

    ``lbfgs`` and ``bfgs`` from several starts are TensorFlow Probability's batched L-BFGS and
    BFGS (quasi_newton.py).
    """
    if key in ("lbfgs", "bfgs") and starts > 1:
        return {"lbfgs": "L-BFGS", "bfgs": "BFGS"}[key] + " (TFP)"
    return OPTIMIZERS.get(key) or METHODS.get(key) or CONSTRAINED[key]
