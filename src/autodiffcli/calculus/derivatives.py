"""Values and derivatives with ``tf.GradientTape``.

One primitive, :func:`tower`, nests one tape per order (the seed's cell 3 generalised):
level 0 is f, level k holds every k-th partial derivative keyed by the names it was taken
with respect to. The gradient is level 1, the Hessian is level 2, f^(n) of a single
variable is level n. All points of a batch are computed together: every variable holds
one value per point, and since points do not interact, the gradient of the *sum* over
the batch is, entry by entry, each point's own gradient.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..runtime import tensorflow
from .tf_build import TFFunction

Level = dict[tuple[str, ...], Any]  # names differentiated by -> tensor of shape (points,)


def tower(f: TFFunction, env: Mapping[str, Any], sources: Mapping[str, Any], order: int) -> list[Level]:
    """[{(): f}, {(a,): df/da}, {(a, b): d2f/da db}, ...] up to ``order``, with nested tapes.

    ``sources`` are the tensors differentiated with respect to (Variables, or constants
    that get watched: cell 2). Each level is computed while all outer tapes are recording.
    """
    tf = tensorflow()
    if order == 0:
        return [{(): f(env)}]
    with tf.GradientTape(persistent=True) as tape:
        for t in sources.values():
            if not isinstance(t, tf.Variable):
                tape.watch(t)
        levels = tower(f, env, sources, order - 1)
    names, tensors = list(sources), list(sources.values())
    top: Level = {}
    for index, y in levels[-1].items():
        # the gradient of a tensor is that of its sum, without the Sum op and its gradient's
        # Reshape and Tile in the graph: the same numbers with fewer ops
        grads = tape.gradient(y, tensors, unconnected_gradients=tf.UnconnectedGradients.ZERO)
        for name, g in zip(names, grads, strict=True):
            top[index + (name,)] = g
    del tape
    return levels + [top]


@dataclass(frozen=True)
class Derivatives:
    """Numbers for a batch of points; every array has one entry per point."""

    value: np.ndarray
    gradient: dict[str, np.ndarray | None]  # None: a parameter that was not watched
    hessian: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    higher: list[np.ndarray] = field(default_factory=list)  # f', f'', ... for one name

    def gradient_by(self, name: str) -> np.ndarray:
        """The derivative by ``name`` at every point; ``name`` must have been differentiated by."""
        column = self.gradient[name]
        if column is None:
            raise ValueError(f"no derivative by {name}: a parameter that was not watched")
        return column


def derivatives(
    f: TFFunction,
    points: np.ndarray,
    variables: Sequence[str],
    params: Mapping[str, float],
    wrt: Sequence[str],
    watch: Sequence[str],
    order: int,
) -> Derivatives:
    """Evaluate f and its derivatives up to ``order`` at every point, as one batch.

    ``points`` has one row per point and one column per variable. Variables are
    ``tf.Variable``s, parameters ``tf.constant``s; a parameter in ``wrt`` gets a gradient
    only when it is also in ``watch`` (otherwise None, as in cell 1).
    """
    tf = tensorflow()
    n = len(points)
    env: dict[str, Any] = {v: tf.Variable(tf.cast(points[:, j], f.dtype), name=v) for j, v in enumerate(variables)}
    for name, number in params.items():
        # watched parameters get one copy per point, so their gradient is per point too
        env[name] = tf.fill([n], f.constant(number)) if name in watch else f.constant(number)
    sources = {name: env[name] for name in wrt if name in variables or name in watch}
    levels = tower(f, env, sources, order)

    def host(t: Any) -> np.ndarray:
        return np.broadcast_to(np.asarray(t), (n,))

    value = host(levels[0][()])
    gradient = {name: host(levels[1][(name,)]) if name in sources else None for name in wrt}
    hessian = {a: {b: host(levels[2][(a, b)]) for b in sources} for a in sources} if order >= 2 else {}
    higher = []
    if len(sources) == 1:
        (only,) = sources
        higher = [host(levels[k][(only,) * k]) for k in range(1, order + 1)]
    return Derivatives(value, gradient, hessian, higher)


def hessian_at(f: TFFunction, names: Sequence[str], params: Mapping[str, float]) -> Callable[[np.ndarray], np.ndarray]:
    """Hessians over ``names`` at a batch of points (points, d) -> (points, d, d), from nested tapes."""

    def hessians(points: np.ndarray) -> np.ndarray:
        d = derivatives(f, points, names, params, names, (), 2)
        return np.stack([np.stack([d.hessian[a][b] for b in names], axis=1) for a in names], axis=1)

    return hessians
