"""f over a batch of starts, as one (starts, d) tensor: value, gradient and Hessian per start."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..calculus.derivatives import tower
from ..calculus.tf_build import TFFunction
from ..runtime import tensorflow


class BatchObjective:
    """f over a (starts, d) tensor X, with the parameters bound: f, gradient and Hessian per start."""

    def __init__(self, f: TFFunction, names: Sequence[str], params: Mapping[str, float]) -> None:
        self.tf = tensorflow()
        self.f = f
        self.names = list(names)
        self.params = dict(params)

    def env(self, X: Any) -> dict[str, Any]:
        return {**{p: self.f.constant(v) for p, v in self.params.items()}, **self.columns(X)}

    def columns(self, X: Any) -> dict[str, Any]:
        return dict(zip(self.names, self.tf.unstack(X, num=len(self.names), axis=1), strict=True))

    def per_start(self, t: Any, X: Any) -> Any:
        """t with one entry per row of X: broadcast only where it is not already (a constant)."""
        if t.shape.rank == 1 and t.shape[0] == X.shape[0]:  # None == None: both the batch size
            return t
        return self.tf.broadcast_to(t, self.tf.shape(X)[:1])

    def value(self, X: Any) -> Any:
        return self.per_start(self.f(self.env(X)), X)

    def total(self, columns: Sequence[Any]) -> Any:
        """The sum of f over the starts, from one tensor per variable."""
        env = {**{p: self.f.constant(v) for p, v in self.params.items()}, **dict(zip(self.names, columns, strict=True))}
        return self.tf.reduce_sum(self.tf.broadcast_to(self.f(env), self.tf.shape(columns[0])))

    def derivatives(self, X: Any, order: int) -> tuple[Any, ...]:
        """f (starts,), and with order >= 1 the gradient (starts, d), with 2 the Hessian (starts, d, d)."""
        tf = self.tf
        env = self.env(X)
        sources = {n: env[n] for n in self.names}
        levels = tower(self.f, env, sources, order)
        out = [self.per_start(levels[0][()], X)]
        if order >= 1:
            out.append(tf.stack([self.per_start(levels[1][(a,)], X) for a in self.names], axis=1))
        if order >= 2:
            rows = [tf.stack([self.per_start(levels[2][(a, b)], X) for b in self.names], axis=1) for a in self.names]
            out.append(tf.stack(rows, axis=1))
        return tuple(out)


def projected_gradient(tf: Any, X: Any, g: Any, lo: Any, hi: Any) -> Any:
    """x - P(x - g): the gradient, less the components that push against an active bound.

    Written out so that a component whose step stays inside the box is g itself: computed
    as x - (x - g), it rounds to 0 once |x| dwarfs |g| (x = -1e8, g = 1 in float32), and
    Newton on f = x reported convergence there.
    """
    step = X - g
    return tf.where(step < lo, X - lo, tf.where(step > hi, X - hi, g))


def column(t: Any) -> Any:
    """(starts,) -> (starts, 1), to scale or select the rows of a (starts, d) tensor."""
    return tensorflow().expand_dims(t, 1)
