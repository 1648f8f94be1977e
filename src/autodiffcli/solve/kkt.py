"""The KKT conditions and the second-order test at a point of a constrained problem.

The Lagrangian is ``L(x, lam) = f(x) - sum_i lam_i (lhs_i(x) - rhs_i)``, so at a KKT point
``grad f = sum_i lam_i grad(lhs_i - rhs_i)`` and each multiplier is the rate at which the
best f changes as the right-hand side grows: ``lam_i = d f* / d rhs_i``. At a minimum, a
``lhs >= rhs`` that holds with equality has ``lam >= 0`` (raising rhs tightens it, f* rises),
a ``lhs <= rhs`` has ``lam <= 0``; at a maximum the signs are reversed.

At the point: the constraints that hold with equality (within ``ACTIVE`` of their scale)
are active, with the ``--bounds`` held; the multipliers are the least-squares solution of
the gradient condition over the active ones; the KKT residual is what is left of the
Lagrangian's gradient, its largest component. Then the Hessian of the Lagrangian decides
on the critical cone: the null space of the Jacobian of the active constraints whose
multiplier is not zero, cut down, for each active inequality (or bound) whose multiplier is
zero, to its feasible side (``critical_cone``). Positive there is a ``minimum``, negative a
``maximum``; a curvature against the kind asked for (negative somewhere when minimizing)
refutes it, a ``saddle`` unless the other kind is shown; a curvature too close to 0 that
refutes nothing is ``degenerate``. Inequalities whose multipliers have the signs of a
minimum allow only a minimum (moving off them raises f), those of a maximum only a maximum,
and both kinds at once make a ``saddle``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from .verdict import DEGENERATE, MAXIMUM, MINIMUM, SADDLE, Verdict

NOT_KKT = "not a KKT point"
EQ, LE, GE = "=", "<=", ">="

FEASIBLE = 1e-6  # largest violation, over max(1, |grad(lhs - rhs)|): about a distance in x
ACTIVE = 1e-5  # an inequality within this (same scale) of equality is active
ZERO = 1e-6  # a curvature within this of 0, relative to the largest |eigenvalue| of the Lagrangian's Hessian


@dataclass(frozen=True)
class KKTPoint:
    values: np.ndarray  # lhs - rhs per constraint
    active: np.ndarray  # bool per constraint
    multipliers: np.ndarray  # per constraint (0 when inactive)
    violations: np.ndarray  # per constraint, >= 0
    violated: np.ndarray  # bool per constraint: its violation, over max(1, |grad|), above FEASIBLE
    max_violation: float
    kkt_residual: float  # the largest component of grad f - sum lam grad(lhs - rhs) (bounds held included)
    feasible: bool
    kkt: bool  # the residual within tol, relative to max(1, |grad f|)
    verdict: Verdict
    # the unit directions (d, k) of the tangent space along which the verdict's eigenvalues
    # are the Lagrangian's curvature; None where the second-order test did not run
    directions: np.ndarray | None = None
    linear: bool = False  # every constraint active there is linear (its Hessian is 0): lines along them stay feasible
    # a unit direction the active constraints allow (their critical cone) along which the
    # objective asked for (-f when maximizing) falls to second order: the point is no solution
    descent: np.ndarray | None = None


def violations(values: np.ndarray, senses: Sequence[str]) -> np.ndarray:
    """How far each constraint is from holding (0 where it holds)."""
    out = np.empty_like(values)
    for i, s in enumerate(senses):
        out[i] = abs(values[i]) if s == EQ else max(0.0, values[i]) if s == LE else max(0.0, -values[i])
    return out


def scaled_violation(values: np.ndarray, grads: np.ndarray, senses: Sequence[str]) -> np.ndarray:
    """Each violation over max(1, |grad|): about how far x is from where the constraint holds."""
    scale = np.maximum(1.0, np.max(np.abs(grads), axis=1, initial=0.0)) if len(values) else np.ones(0)
    return violations(values, senses) / scale


def _active_set(
    x: np.ndarray, values: np.ndarray, grads: np.ndarray, senses: Sequence[str], lo: np.ndarray, hi: np.ndarray
) -> tuple[np.ndarray, list[int], np.ndarray, list[str], np.ndarray]:
    """The constraints that hold with equality at x (within ACTIVE of their scale), then the
    bounds held (x_j - lo_j >= 0, x_j - hi_j <= 0, as constraints of their own): the mask of
    active constraints; per row of A the constraint it is (-1: a bound); A, the rows'
    gradients (k, d); their senses; and their residuals (lhs - rhs, x_j - bound)."""
    d, m = len(x), len(values)
    gscale = np.maximum(1.0, np.max(np.abs(grads), axis=1, initial=0.0)) if m else np.ones(0)
    active = np.array([s == EQ or abs(values[i]) / gscale[i] <= ACTIVE for i, s in enumerate(senses)], dtype=bool)
    which = [int(i) for i in np.flatnonzero(active)]
    rows, kinds, residuals = [grads[i] for i in which], [senses[i] for i in which], [values[i] for i in which]
    for j in range(d):
        for bound, kind in ((lo[j], GE), (hi[j], LE)):
            if np.isfinite(bound) and abs(x[j] - bound) <= ACTIVE * max(1.0, abs(bound)):
                e = np.zeros(d)
                e[j] = 1.0
                rows.append(e)
                kinds.append(kind)
                which.append(-1)
                residuals.append(x[j] - bound)
    return active, which, np.array(rows).reshape(len(rows), d), kinds, np.array(residuals, dtype=np.float64)


def analyze(
    x: np.ndarray,
    grad_f: np.ndarray,
    hess_f: np.ndarray,
    values: np.ndarray,
    grads: np.ndarray,
    hessians: np.ndarray,
    senses: Sequence[str],
    lo: np.ndarray,
    hi: np.ndarray,
    tol: float,
    sense: float = 1.0,
) -> KKTPoint:
    """The KKT analysis at x: f's gradient (d,) and Hessian (d, d), the residuals (m,), their
    gradients (m, d) and Hessians (m, d, d), their senses; the box (lo, hi). ``sense`` -1:
    maximizing (a vertex where nothing else decides is then a maximum)."""
    d, m = len(x), len(values)
    viol = violations(values, senses)
    scaled = scaled_violation(values, grads, senses)
    active, which, A, kinds, _ = _active_set(x, values, grads, senses, lo, hi)
    lam = np.linalg.lstsq(A.T, grad_f, rcond=None)[0] if len(which) else np.zeros(0)
    residual = grad_f - A.T @ lam
    kkt_residual = float(np.max(np.abs(residual), initial=0.0))
    gsize = max(1.0, float(np.max(np.abs(grad_f), initial=0.0)))
    multipliers = np.zeros(m)
    for k, i in enumerate(which):
        if i >= 0:
            multipliers[i] = lam[k]
    feasible = bool(np.all(scaled <= FEASIBLE)) and bool(np.all(x >= lo) and np.all(x <= hi))
    kkt = kkt_residual <= tol * gsize
    max_violation = float(np.max(viol, initial=0.0))
    if not (feasible and kkt):
        return KKTPoint(
            values, active, multipliers, viol, scaled > FEASIBLE, max_violation, kkt_residual, feasible, kkt,
            Verdict(NOT_KKT, ()),
        )  # fmt: skip
    # which way each active inequality pushes: +1 as at a minimum, -1 as at a maximum, 0 weakly active
    small = tol * gsize
    push = np.zeros(len(kinds))
    for k, kind in enumerate(kinds):
        size = abs(lam[k]) * max(1.0, float(np.max(np.abs(A[k]))))
        if kind != EQ and size > small:
            push[k] = np.sign(lam[k]) * (1.0 if kind == GE else -1.0)
    weak = [k for k, kind in enumerate(kinds) if kind != EQ and push[k] == 0]
    strong = np.array([kind == EQ or push[k] != 0 for k, kind in enumerate(kinds)], dtype=bool)
    can_min, can_max = not (push < 0).any(), not (push > 0).any()
    hess_l = hess_f.copy()
    for k, i in enumerate(which):
        if i >= 0:
            hess_l = hess_l - lam[k] * hessians[i]
    hess_l = 0.5 * (hess_l + hess_l.T)
    Z = null_space(A[strong])
    reduced = Z.T @ hess_l @ Z
    mu, V = np.linalg.eigh(0.5 * (reduced + reduced.T)) if Z.shape[1] else (np.zeros(0), np.zeros((0, 0)))
    linear = all(i < 0 or not np.any(hessians[i]) for i in which)
    zero = ZERO * float(np.max(np.abs(np.linalg.eigvalsh(hess_l)), initial=0.0)) if d else 0.0
    # a weakly active inequality allows moves to its feasible side only: a GE row a allows a.d >= 0
    W = np.array([A[k] if kinds[k] == GE else -A[k] for k in weak]).reshape(len(weak), d)
    cone = critical_cone(hess_l, A[strong], W) if Z.shape[1] else None
    kind, descent = _kind(mu, cone, zero, can_min, can_max, sense)
    return KKTPoint(
        values, active, multipliers, viol, scaled > FEASIBLE, max_violation, kkt_residual, feasible, kkt,
        Verdict(kind, tuple(float(v) for v in mu)), Z @ V if Z.shape[1] else None, linear, descent,
    )  # fmt: skip


CONE_ROWS = 12  # the most weakly active inequalities whose faces the critical cone's test visits (2**12)


@dataclass(frozen=True)
class Cone:
    """The least and the largest curvature of the Lagrangian over the critical cone's unit
    directions, each with a direction that has it; None where too many weak rows to visit."""

    lo: float
    at_lo: np.ndarray
    hi: float
    at_hi: np.ndarray


def critical_cone(H: np.ndarray, E: np.ndarray, W: np.ndarray) -> Cone | None:
    """The extremes of d.H.d over the unit d of the critical cone {E d = 0, W d >= 0}: the
    directions along the equations and the strongly active inequalities, and to the feasible
    side of each weakly active one (a bound held with a zero multiplier allows x to move into
    the box only, not along a line both ways).

    The least value is reached at some d; with S the rows of W that hold with equality at d,
    the others hold strictly nearby, so d is a local least of the Rayleigh quotient on the
    unit sphere of the face {E d = 0, W_S d = 0}: an eigenvector of its least eigenvalue.
    So visiting every face S and keeping the eigenvectors (either sign) that lie in the cone
    finds the least and, likewise, the largest value exactly. None beyond CONE_ROWS rows."""
    d, w = H.shape[0], len(W)
    if w > CONE_ROWS:
        return None
    scale = np.maximum(1.0, np.linalg.norm(W, axis=1)) if w else np.ones(0)
    best = Cone(math.inf, np.zeros(d), -math.inf, np.zeros(d))
    for mask in range(1 << w):
        rows = [j for j in range(w) if mask >> j & 1]
        Z = null_space(np.vstack([E.reshape(-1, d), W[rows].reshape(-1, d)]))
        if not Z.shape[1]:
            continue
        R = Z.T @ H @ Z
        values, vectors = np.linalg.eigh(0.5 * (R + R.T))
        for value, v in zip(values, vectors.T, strict=True):
            u = Z @ v
            for side in (u, -u):
                if w and np.any(W @ side < -1e-9 * scale):
                    continue
                if value < best.lo:
                    best = replace(best, lo=float(value), at_lo=side)
                if value > best.hi:
                    best = replace(best, hi=float(value), at_hi=side)
    return best if math.isfinite(best.lo) else None


def _kind(
    mu: np.ndarray, cone: Cone | None, zero: float, can_min: bool, can_max: bool, sense: float
) -> tuple[str, np.ndarray | None]:
    """The verdict, and a direction of the critical cone along which sense * f falls to second
    order where there is one (where the point is refuted by its curvature)."""
    if not (can_min or can_max):
        return SADDLE, None  # f rises off one active inequality and falls off another
    if not mu.size:  # a vertex: the active constraints fix the point
        if can_min and can_max:
            return (MINIMUM if sense > 0 else MAXIMUM), None
        return (MINIMUM if can_min else MAXIMUM), None
    if cone is None:  # too many weakly active inequalities to visit: definite on the tangent space, or nothing
        if can_min and (mu > zero).all():
            return MINIMUM, None
        return (MAXIMUM if can_max and (mu < -zero).all() else DEGENERATE), None
    if can_min and cone.lo > zero:
        return MINIMUM, None  # positive on the critical cone: a strict constrained minimum
    if can_max and cone.hi < -zero:
        return MAXIMUM, None
    against = cone.lo < -zero if sense > 0 else cone.hi > zero
    if not against and (can_min if sense > 0 else can_max):
        return DEGENERATE, None  # the kind asked for is possible, not shown: a curvature is 0 on the cone
    # the kind asked for is refuted and the other not shown
    descent = (cone.at_lo if sense > 0 else cone.at_hi) if against else None
    return SADDLE, descent


def null_space(A: np.ndarray) -> np.ndarray:
    """An orthonormal basis (d, k) of the vectors A maps to 0 (SVD, rank to rounding)."""
    d = A.shape[1]
    if A.shape[0] == 0:
        return np.eye(d)
    _, s, vt = np.linalg.svd(A)
    rank = int((s > max(A.shape) * np.finfo(np.float64).eps * max(1.0, float(s[0]) if s.size else 1.0)).sum())
    return vt[rank:].T


def newton_step(
    x: np.ndarray,
    grad_f: np.ndarray,
    hess_f: np.ndarray,
    values: np.ndarray,
    grads: np.ndarray,
    hessians: np.ndarray,
    senses: Sequence[str],
    lo: np.ndarray,
    hi: np.ndarray,
) -> np.ndarray | None:
    """Newton's step on the KKT conditions of the constraints active at x (as ``analyze``
    finds them, with the bounds held): the step dx of

        [ H_L  -A^T ] [dx ]     [ grad f - A^T lam ]
        [ A     0   ] [dlam] = -[ c_active          ]

    with lam the least-squares multipliers and H_L the Lagrangian's Hessian. Near a KKT
    point with linearly independent active gradients and a reduced Hessian that is not
    singular it converges quadratically, with exact derivatives from the tapes: a method that
    stops on a loose test (SLSQP on ftol) ends a step or two from full precision. None where
    the system is singular or the step not finite."""
    d = len(x)
    _, which, A, _, residuals = _active_set(x, values, grads, senses, lo, hi)
    k = len(which)
    curvature = [hessians[i] if i >= 0 else np.zeros((d, d)) for i in which]
    lam = np.linalg.lstsq(A.T, grad_f, rcond=None)[0] if k else np.zeros(0)
    hess_l = hess_f - np.einsum("k,kij->ij", lam, np.array(curvature).reshape(k, d, d))
    K = np.block([[0.5 * (hess_l + hess_l.T), -A.T], [A, np.zeros((k, k))]])
    rhs = -np.concatenate([grad_f - A.T @ lam, residuals])
    try:
        step = np.linalg.solve(K, rhs)
    except np.linalg.LinAlgError:
        return None
    dx = step[:d]
    return dx if np.all(np.isfinite(dx)) else None
