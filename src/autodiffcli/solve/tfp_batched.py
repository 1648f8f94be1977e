"""Batched L-BFGS and BFGS from many starts: TensorFlow Probability's, one iteration a call.

TFP's ``lbfgs_minimize`` (two-loop recursion) and ``bfgs_minimize``, both with a Hager-Zhang
line search, advance every start of a (starts, d) batch at once. They run here on TFP's
NumPy substrate, with f and its gradient from one compiled TensorFlow function over the
whole batch. TFP's own loop keeps every start in the batch until the last one stops;
instead each call here runs one iteration (from the state TFP returned: its
``previous_optimizer_results``, or for BFGS its ``initial_inverse_hessian_estimate``), and
between calls this module

* drops the starts that have stopped, so the line searches run on the starts still going;
* tests convergence itself: the gradient's largest component, projected onto the box, at
  most ``tol``, and Newton's step there (exact Hessian) within ``types.step_tolerance``; a
  start whose gradient is within tol a long step from its minimum (f of scale 1e-7) goes on
  with a tighter gradient test (TFP also stops on a step that changes nothing, which is a
  stall, not a minimum);
* restarts a start whose line search failed with an empty memory (TFP's documented gap:
  it does not reset a direction that is not a descent direction); a start whose line search
  fails right after a restart is ``stalled``;
* starts every (re)start with the inverse Hessian ``I / |g|``, as L-BFGS-B's first step
  (TFP's is ``I``, a first step of length ``|g|``);
* with bounds, runs in the variables ``u`` of a change of variables that keeps every point
  inside the box (MINUIT's): ``x = lo + (hi - lo)(sin u + 1)/2``.
"""

from __future__ import annotations

import importlib.util
import math
import os
import sys
import types
from typing import Any

import numpy as np

from ..interrupts import deferred
from .batch import BatchObjective
from .types import (
    CONVERGED,
    DIVERGED,
    RUNNING,
    STALLED,
    BatchResult,
    Box,
    Reporter,
    Row,
    history_row,
    newton_step_within,
    projected,
    row_length,
    same_point,
    step_tolerance,
)

MEMORY = 10  # correction pairs kept per start, as SciPy's L-BFGS-B (maxcor)
LINE_SEARCH = 50  # most evaluations of one Hager-Zhang line search (TFP's default)
COMPACT = 0.1  # drop the stopped starts from TFP's batch once they are this share of it
FTOL = 1e7 * float(np.finfo(np.float64).eps)  # SciPy L-BFGS-B's factr * eps: a relative decrease too small


def _tfp(method: str) -> Any:
    """TFP's NumPy-substrate ``lbfgs`` or ``bfgs`` module, imported without TFP's package ``__init__``.

    Once TensorFlow is imported, ``import tensorflow_probability`` insists on ``tf_keras``
    (for its TensorFlow substrate, which is not used here; installing tf-keras would change
    what ``import tensorflow`` loads in every command). The NumPy substrate needs neither:
    its parent packages are entered as bare packages, so only the optimizer's modules load.
    """
    module = f"tensorflow_probability.substrates.numpy.optimizer.{method}"
    if module in sys.modules:
        return sys.modules[module]
    if "tensorflow_probability" not in sys.modules:
        spec = importlib.util.find_spec("tensorflow_probability")
        if spec is None or not spec.submodule_search_locations:
            raise ModuleNotFoundError("tensorflow-probability is not installed (pip install tensorflow-probability)")
        root = list(spec.submodule_search_locations)[0]
        for name in ("", ".python", ".substrates", ".substrates.numpy", ".substrates.numpy.optimizer"):
            package = types.ModuleType("tensorflow_probability" + name)
            package.__path__ = [os.path.join(root, *name.split(".")[1:])]
            sys.modules.setdefault(package.__name__, package)
    broadcast = importlib.import_module("tensorflow_probability.substrates.numpy.internal.broadcast_util")
    setattr(broadcast, "where_left_justified_mask", _where_left_justified_mask)  # noqa: B010 (a library module)
    return importlib.import_module(module)


def _where_left_justified_mask(mask: Any, vals1: Any, vals2: Any, name: str | None = None) -> Any:
    """TFP's ``broadcast_util.where_left_justified_mask`` on its NumPy substrate, in NumPy.

    The Hager-Zhang line search calls it a few hundred times an iteration (``val_where`` over
    every field of its state); TFP's version goes through its static-shape shims, about
    0.6 ms a call, most of an iteration's time from any number of starts. The same
    arithmetic: the mask padded with ones on the right to the values' rank, then ``where``.
    """
    mask = np.asarray(mask)
    rank = max(np.ndim(vals1), np.ndim(vals2))
    return np.where(mask.reshape(mask.shape + (1,) * max(rank - mask.ndim, 0)), vals1, vals2)


class Coordinates:
    """x = T(u), coordinate by coordinate, MINUIT's transforms: where both bounds are finite
    ``x = lo + (hi - lo)(sin u + 1)/2``; where only the lower one is, ``x = lo - 1 + sqrt(u**2 + 1)``;
    only the upper one, ``x = hi + 1 - sqrt(u**2 + 1)``.

    Every u maps inside the box; a minimum on a bound, where f's slope points out of the
    box, is a minimum in u with a nonzero second derivative, so L-BFGS reaches it as fast
    as an inner one. A variable without bounds is its own coordinate.
    """

    EDGE = 1e-4  # a point on a bound, where dx/du = 0, starts this far inside in u

    def __init__(self, box: Box) -> None:
        self.lo, self.hi = box.lo, box.hi
        low, high = np.isfinite(box.lo), np.isfinite(box.hi)
        self.both, self.lower, self.upper = low & high, low & ~high, high & ~low
        self.identity = not (low | high).any()
        lo, hi = np.where(self.both, box.lo, -1.0), np.where(self.both, box.hi, 1.0)
        self.mid, self.half = (lo + hi) / 2, (hi - lo) / 2
        self.lo0, self.hi0 = np.where(low, box.lo, 0.0), np.where(high, box.hi, 0.0)

    def x(self, u: np.ndarray) -> np.ndarray:
        if self.identity:
            return u
        root = np.sqrt(u * u + 1)
        rise = u * u / (root + 1)  # sqrt(u**2 + 1) - 1, without cancellation near the bound
        x = np.where(self.both, self.mid + self.half * np.sin(u), u)
        x = np.where(self.lower, self.lo0 + rise, x)
        x = np.where(self.upper, self.hi0 - rise, x)
        return np.clip(x, self.lo, self.hi)

    def dx_du(self, u: np.ndarray) -> np.ndarray:
        if self.identity:
            return np.ones_like(u)
        slope = u / np.sqrt(u * u + 1)
        out = np.where(self.both, self.half * np.cos(u), 1.0)
        return np.where(self.lower, slope, np.where(self.upper, -slope, out))

    def u(self, x: np.ndarray) -> np.ndarray:
        if self.identity:
            return np.array(x)
        inside = np.clip(x, self.lo, self.hi)
        s = np.clip((inside - self.mid) / self.half, -1.0, 1.0)
        # a point on a bound, where dx/du = 0, is moved a hair inside so that it can move
        edge = math.pi / 2 - self.EDGE
        out = np.where(self.both, np.clip(np.arcsin(s), -edge, edge), x)
        above = np.where(self.lower, inside - self.lo0, 0.0) + 1
        below = np.where(self.upper, self.hi0 - inside, 0.0) + 1
        out = np.where(self.lower, np.maximum(np.sqrt(above * above - 1), self.EDGE), out)
        return np.where(self.upper, np.maximum(np.sqrt(below * below - 1), self.EDGE), out)


def _projected_gnorm(x: np.ndarray, g: np.ndarray, box: Box) -> np.ndarray:
    """The largest component of x - P(x - g): the gradient, less what pushes against a bound."""
    return np.max(np.abs(projected(x, g, box)), axis=1)


class _Working:
    """The starts still in TFP's batch: their indices and (L-)BFGS state, in u, compact.

    The memory is L-BFGS's correction pairs S, Y (``MEMORY`` of them, oldest first, as TFP
    keeps them), or BFGS's inverse Hessian H.
    """

    def __init__(self, method: str, idx: np.ndarray, u: np.ndarray, f: np.ndarray, g: np.ndarray) -> None:
        n, d = u.shape
        self.method, self.idx, self.u, self.f, self.g = method, idx, u, f, g
        if method == "lbfgs":
            self.S = np.zeros((MEMORY, n, d), u.dtype)
            self.Y = np.zeros((MEMORY, n, d), u.dtype)
        else:
            self.H = np.zeros((n, d, d), u.dtype)
        self.fresh = np.ones(n, dtype=bool)  # (re)started: the memory holds the scaled identity only
        self.stopped = np.zeros(n, dtype=bool)  # stopped, left in the batch until the next compaction
        self.restart(np.arange(n))

    def restart(self, k: np.ndarray, length: np.ndarray | float = 1.0) -> None:
        """An empty memory: the inverse Hessian gamma * I (for L-BFGS, one pair (s, s/gamma)).

        gamma = length / |g|, so the first step tried is ``length`` long (1 by default, as
        L-BFGS-B's first step; the last step's length after a stretch without curvature).
        """
        d = self.u.shape[1]
        g = self.g[k].astype(np.float64)
        size = np.linalg.norm(g, axis=1, keepdims=True)
        tiny = np.finfo(self.u.dtype).tiny
        gamma = np.maximum(np.reshape(length, (-1, 1)), tiny) / np.maximum(size, tiny)
        if self.method == "bfgs":
            self.H[k] = gamma[:, :, None] * np.eye(d)
        else:
            direction = np.where(size > 0, g / np.where(size > 0, size, 1.0), 1.0 / math.sqrt(d))
            self.S[:, k] = 0
            self.Y[:, k] = 0
            self.S[-1, k] = direction
            self.Y[-1, k] = direction / gamma
        self.fresh[k] = True

    def keep(self, k: np.ndarray) -> None:
        """Only the starts ``k`` (positions in this batch) stay."""
        self.idx, self.u, self.f, self.g = self.idx[k], self.u[k], self.f[k], self.g[k]
        if self.method == "bfgs":
            self.H = self.H[k]
        else:
            self.S, self.Y = np.take(self.S, k, axis=1), np.take(self.Y, k, axis=1)
        self.fresh, self.stopped = self.fresh[k], self.stopped[k]

    def iterate(self, tfp: Any, value_and_gradient: Any) -> tuple[Any, np.ndarray, np.ndarray]:
        """One TFP iteration on the batch: its result, and per start the new memory's curvature s.y."""
        with np.errstate(all="ignore"):  # TFP's arithmetic on a start it then reports failed
            if self.method == "lbfgs":
                r = tfp.minimize(
                    value_and_gradient,
                    None,
                    previous_optimizer_results=tfp.LBfgsOptimizerResults(
                        converged=self.stopped.copy(),  # TFP leaves these where they are
                        failed=np.zeros(len(self.idx), bool),
                        num_iterations=np.int32(MEMORY),  # >= MEMORY: the two-loop uses every stored pair
                        num_objective_evaluations=np.int32(0),
                        position=self.u,
                        objective_value=self.f,
                        objective_gradient=self.g,
                        position_deltas=self.S,
                        gradient_deltas=self.Y,
                    ),
                    num_correction_pairs=MEMORY,
                    tolerance=0.0,  # convergence is tested here, in x and with the bounds
                    max_iterations=MEMORY + 1,  # one iteration
                    max_line_search_iterations=LINE_SEARCH,
                )
                s, y = r.position_deltas[-1], r.gradient_deltas[-1]
            else:  # TFP's BFGS takes no previous state: its start is this H, and f and g are known
                known = [(self.f, self.g)]
                r = tfp.minimize(
                    lambda u: known.pop() if known else value_and_gradient(u),
                    self.u,
                    initial_inverse_hessian_estimate=self.H,
                    scale_initial_inverse_hessian=False,
                    tolerance=0.0,
                    max_iterations=1,
                    validate_args=False,
                    max_line_search_iterations=LINE_SEARCH,
                )
                s, y = r.position - self.u, r.objective_gradient - self.g
            return r, np.sum(s * y, axis=1) > 0, np.linalg.norm(s.astype(np.float64), axis=1)

    def remember(self, r: Any, k: np.ndarray) -> None:
        """The memory TFP updated, for the starts ``k`` (a mask) that moved along some curvature."""
        if self.method == "bfgs":
            self.H = np.where(k[:, None, None], r.inverse_hessian_estimate, self.H)
            return
        self.S = np.where(k[None, :, None], r.position_deltas, self.S)
        self.Y = np.where(k[None, :, None], r.gradient_deltas, self.Y)
        first = np.flatnonzero(k & self.fresh)  # the scaled identity has served: plain L-BFGS from here
        self.S[-2, first] = 0
        self.Y[-2, first] = 0


def quasi_newton(
    method: str,
    batch: BatchObjective,
    starts: np.ndarray,
    box: Box,
    steps: int,
    tol: float,
    every: int,
    reporter: Reporter,
) -> BatchResult:
    """L-BFGS (``method`` "lbfgs") or BFGS ("bfgs") from every start at once; ``steps`` caps the iterations.

    See the module's docstring. BFGS keeps a d x d inverse Hessian per start; TFP's BFGS takes
    no previous state, so each call starts from it, and its first evaluation (at the points
    themselves) is answered from the last iteration without computing f again.

    ``evaluations`` counts f-and-gradient computations, one per start in each batch TFP
    asked for (starts whose line search has ended, or that stopped since the batch was last
    compacted, are evaluated with the rest). A start whose f or gradient turns non-finite,
    or whose f reaches -inf, is ``diverged`` and keeps its last finite point.
    """
    tfp = _tfp(method)
    tf = batch.tf
    dtype = batch.f.dtype
    npdtype = dtype.as_numpy_dtype
    n, d = starts.shape
    coords = Coordinates(box)
    ftol = max(FTOL, 10 * float(np.finfo(npdtype).eps))
    # u in float64 where it is mapped into a box: in float32 its rounding, times half the
    # box's width, would be coarser than float32's own in x
    sdtype = npdtype if coords.identity else np.float64
    traces = [0]
    counted = [0]

    def derivatives(X: Any) -> tuple[Any, Any]:
        traces[0] += 1
        return batch.derivatives(X, 1)

    compiled = tf.function(derivatives, autograph=False, input_signature=[tf.TensorSpec([None, d], dtype)])
    eps = float(np.finfo(npdtype).eps)
    hessian = tf.function(
        lambda X: batch.derivatives(X, 2)[2], autograph=False, input_signature=[tf.TensorSpec([None, d], dtype)]
    )

    def settled(x: np.ndarray, g: np.ndarray) -> np.ndarray:
        """Per start of x (k, d), gradients g in x: is Newton's step (exact Hessian, over the
        variables no bound holds) within the step tolerance? The gradient test alone is not
        enough: every slope of a function of scale 1e-7 is below tol."""
        if not len(x):
            return np.zeros(0, dtype=bool)
        h = hessian(tf.constant(x, dtype))
        counted[0] += len(x)  # f and its derivatives, once more at these points
        held = projected(x, g, box) != g  # the projection cut these: a bound holds them
        return newton_step_within(g, h.numpy(), step_tolerance(x, tol, eps), held)

    def in_x(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        y, g = compiled(tf.constant(x, dtype))
        counted[0] += len(x)
        return y.numpy(), g.numpy()

    seen: dict[str, np.ndarray] = {}  # per start of the batch, the lowest point its line search evaluated

    def value_and_gradient(u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if coords.identity:
            y, g = in_x(u)
        else:
            y, g = in_x(coords.x(u))
            y, g = y.astype(sdtype), g * coords.dx_du(u)
        with np.errstate(invalid="ignore"):
            better = (y < seen["f"]) & np.isfinite(y) & np.isfinite(g).all(axis=1)
        np.copyto(seen["u"], u, where=better[:, None])
        np.copyto(seen["f"], y, where=better)
        np.copyto(seen["g"], g, where=better[:, None])
        return y, g

    X = np.clip(np.asarray(starts, dtype=npdtype), box.lo, box.hi)
    U = coords.u(X).astype(sdtype)
    X = coords.x(U).astype(npdtype)
    F, Gx = in_x(X)
    finite = np.isfinite(F) & np.isfinite(Gx).all(axis=1)
    gnorm = np.where(finite, _projected_gnorm(X, Gx, box), np.inf)
    # each start's gradient tolerance: tol, lowered for a start whose gradient met it a long
    # Newton step from its stationary point, until its Newton step is short
    tols = np.full(n, tol)
    met = finite & (gnorm <= tol)
    met[met] = settled(X[met], Gx[met])
    tols = np.where(finite & (gnorm <= tol) & ~met, 0.5 * gnorm, tols)
    status = np.where(~finite, DIVERGED, np.where(met, CONVERGED, RUNNING))
    iterations = np.zeros(n, dtype=np.int64)
    history: list[Row] = []
    interrupted = False
    go = np.flatnonzero(status == RUNNING)
    w = _Working(method, go, U[go], F[go].astype(sdtype), (Gx[go] * coords.dx_du(U[go])).astype(sdtype))

    def record(step: int, last: bool = False) -> None:
        size = row_length(projected(X, Gx, box))  # rows show |projected grad|, as every method's
        row = history_row(batch.names, X, np.where(status == DIVERGED, np.nan, F), size, step)
        if row is None or (history and same_point(history[-1], row)):
            return
        if history and history[-1].step == row.step:
            if not last:
                return
            history.pop()  # the points as reported (a start put on its bound): they replace this step's row
        history.append(row)
        reporter.row(row)

    record(0)
    try:
        with deferred() as ctrl_c:  # Ctrl-C stops the loop between iterations
            for it in range(steps):
                if not len(w.idx):
                    break
                seen.update(u=w.u.copy(), f=w.f.copy(), g=w.g.copy())
                r, curved, length = w.iterate(tfp, value_and_gradient)
                run = ~w.stopped
                u_new, f_new, g_new = r.position, r.objective_value, r.objective_gradient
                finite = np.isfinite(f_new) & np.isfinite(g_new).all(axis=1) & np.isfinite(u_new).all(axis=1)
                ok = run & ~r.failed & ~r.converged & finite  # TFP's converged (tolerance 0): the step changed nothing
                # where TFP's search failed or did not move, the lowest point it evaluated, if lower
                lower = run & ~ok & (seen["f"] < w.f)
                scale = np.maximum(np.maximum(abs(w.f), abs(seen["f"])), 1.0)
                progress = lower & (w.f - seen["f"] > ftol * scale)
                went = ok | lower
                w.u = np.where(ok[:, None], u_new, np.where(lower[:, None], seen["u"], w.u))
                w.f = np.where(ok, f_new, np.where(lower, seen["f"], w.f))
                w.g = np.where(ok[:, None], g_new, np.where(lower[:, None], seen["g"], w.g))
                # a step without positive curvature (a flat or concave stretch) would spoil the
                # inverse Hessian: the memory is kept as it was (Nocedal and Wright, 7.2)
                pair = ok & curved
                w.remember(r, pair)
                k = np.flatnonzero(run)
                i = w.idx[k]
                iterations[w.idx[went]] += 1
                U[i], F[i] = w.u[k], w.f[k]
                X[i] = coords.x(U[i]).astype(npdtype)
                with np.errstate(divide="ignore", invalid="ignore"):
                    gx = w.g[k] / coords.dx_du(w.u[k])
                gx = np.where(np.isfinite(gx), gx, 0.0)  # at a bound exactly: dx/du = 0
                Gx[i] = gx
                gnorm[i] = _projected_gnorm(X[i], gx, box)
                done = gnorm[i] <= tols[i]
                if done.any():  # the gradient test met: and Newton's step short?
                    long = np.flatnonzero(done)[~settled(X[i[done]], gx[done])]
                    tols[i[long]] = 0.5 * gnorm[i[long]]  # not yet: go on, with a tighter gradient test
                    done[long] = False
                blown = ~finite[k] & ~done
                stuck = ~ok[k] & ~done & ~blown
                fresh = w.fresh[k]
                stall = stuck & fresh & ~progress[k]
                status[i[done]] = CONVERGED
                status[i[blown]] = DIVERGED
                status[i[stall]] = STALLED
                w.stopped[k[done | blown | stall]] = True
                w.fresh[k[pair[k]]] = False
                again = k[stuck & ~stall]
                if len(again):
                    w.restart(again)
                # moved along a stretch without curvature (f linear or concave there): start afresh,
                # trying the step just taken, so that an f unbounded below is followed out quickly
                flat = k[ok[k] & ~pair[k] & ~done & ~blown]
                if len(flat):
                    w.restart(flat, length[flat])
                if w.stopped.sum() > COMPACT * len(w.idx):
                    w.keep(np.flatnonzero(~w.stopped))
                if (it + 1) % every == 0 or it + 1 == steps:
                    record(it + 1)
                reporter.progress(it + 1, steps)
                ctrl_c.check()
    except KeyboardInterrupt:
        interrupted = True
    # a start that converged onto a bound (its gradient pushing out, within tol of it) is put
    # on it, as L-BFGS-B's projection would; then the reported points' f and gradient, in x,
    # the last word on convergence
    with np.errstate(invalid="ignore"):
        step = X - np.where(np.isfinite(Gx), Gx, 0.0)
    on = (status == CONVERGED)[:, None]
    X = np.where(on & (step <= box.lo) & (X - box.lo <= tol), box.lo, X).astype(npdtype)
    X = np.where(on & (step >= box.hi) & (box.hi - X <= tol), box.hi, X).astype(npdtype)
    y, g = in_x(X)
    good = np.isfinite(y) & np.isfinite(g).all(axis=1)
    F = np.where(good, y, F)
    Gx = np.where(good[:, None], g, Gx)
    gnorm = np.where(good, _projected_gnorm(X, g, box), gnorm)
    short = np.zeros(n, dtype=bool)
    check = np.flatnonzero(good & (gnorm <= tol) & ((status == CONVERGED) | (status == RUNNING)))
    short[check] = settled(X[check], Gx[check])
    status = np.where((status == CONVERGED) & ~(short & (gnorm <= tol)), STALLED, status)
    status = np.where((status == RUNNING) & short & (gnorm <= tol), CONVERGED, status)
    record(int(iterations.max(initial=0)), last=True)
    return BatchResult(X, F, iterations, status, counted[0], history, interrupted, traces[0])
