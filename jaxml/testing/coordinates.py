"""Pytree coordinates for the reports of :mod:`jaxml.testing`: readable names of the scalar
entries of a pytree (``x['w'][2, 1]``), their dtype epsilons, and float64 flattening; plus the
argument checks the checks share.

``Coordinates(tree, prefix)`` maps a flat index of ``jax.flatten_util.ravel_pytree(tree)`` to
its name and back (``unflatten``); ``flat64(tree)`` ravels a pytree into one float64 NumPy
vector without a round trip through JAX (so float64 survives with x64 disabled).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxml._core import check_int_in_range

__all__ = ["Coordinates", "flat64"]


class Coordinates:
    """Maps a flat index of a raveled pytree (``jax.flatten_util.ravel_pytree`` order: leaves
    in ``tree_leaves`` order, each in C order) to a readable name ``prefix + path + [i, j]``.

    Attributes:
        size: the number of scalar coordinates.
        eps: (size,) machine epsilon of each coordinate's leaf dtype (float64's for
            integer leaves).
    """

    def __init__(self, tree, prefix: str = ""):
        leaves, self.treedef = jax.tree_util.tree_flatten_with_path(tree)
        self.prefix = prefix
        self.paths = [jax.tree_util.keystr(p) for p, _ in leaves]
        self.shapes = [tuple(np.shape(leaf)) for _, leaf in leaves]
        sizes = [int(np.prod(s, dtype=np.int64)) for s in self.shapes]
        self.offsets = np.concatenate([[0], np.cumsum(sizes, dtype=np.int64)])
        self.size = int(self.offsets[-1])
        eps = [leaf_eps(leaf) for _, leaf in leaves]
        self.eps = np.repeat(np.asarray(eps, np.float64), sizes) if sizes else np.zeros(0)

    def name(self, k: int) -> str:
        leaf = int(np.searchsorted(self.offsets, k, side="right")) - 1
        shape = self.shapes[leaf]
        base = f"{self.prefix}{self.paths[leaf]}"
        if not shape:
            return base
        idx = np.unravel_index(int(k - self.offsets[leaf]), shape)
        return f"{base}[{', '.join(str(int(i)) for i in idx)}]"


    def unflatten(self, vec) -> object:
        """A flat (size,) vector back into the pytree, NumPy float64 leaves."""
        vec = np.asarray(vec, np.float64)
        leaves = [vec[a:b].reshape(s) for a, b, s in
                  zip(self.offsets[:-1], self.offsets[1:], self.shapes)]
        return jax.tree_util.tree_unflatten(self.treedef, leaves)


def flat64(tree) -> np.ndarray:
    """The leaves of ``tree`` raveled and concatenated, as one float64 NumPy vector (no
    round trip through JAX, so float64 survives with x64 disabled)."""
    leaves = [np.asarray(leaf, np.float64).ravel() for leaf in jax.tree_util.tree_leaves(tree)]
    return np.concatenate(leaves) if leaves else np.zeros(0)


def leaf_eps(leaf) -> float:
    """Machine epsilon of a leaf's dtype (float64's for non-floating leaves)."""
    dt = jnp.asarray(leaf).dtype if not hasattr(leaf, "dtype") else leaf.dtype
    if jnp.issubdtype(dt, jnp.floating):
        return float(jnp.finfo(dt).eps)
    return float(np.finfo(np.float64).eps)


def check_callable(fn, name: str) -> None:
    if not callable(fn):
        raise TypeError(f"{name} must be callable, got {type(fn).__name__}")


def check_floating_tree(x, name: str) -> None:
    leaves = jax.tree_util.tree_leaves(x)
    if not leaves:
        raise ValueError(f"{name} must hold at least one array, got an empty pytree")
    for path, leaf in jax.tree_util.tree_flatten_with_path(x)[0]:
        dt = jnp.asarray(leaf).dtype
        if not jnp.issubdtype(dt, jnp.floating):
            raise TypeError(f"{name}{jax.tree_util.keystr(path)} must be floating, got dtype {dt}")


def check_probability(alpha, name: str) -> float:
    try:
        a = float(alpha)
    except (TypeError, ValueError) as e:
        raise TypeError(f"{name} must be a number in (0, 1), got {alpha!r}") from e
    if not 0.0 < a < 1.0:
        raise ValueError(f"{name} must lie in (0, 1), got {alpha!r}")
    return a


def check_tolerance(value, name: str) -> float | None:
    """``None`` (use the default) or a finite number ≥ 0."""
    if value is None:
        return None
    try:
        v = float(value)
    except (TypeError, ValueError) as e:
        raise TypeError(f"{name} must be a non-negative number, got {value!r}") from e
    if not np.isfinite(v) or v < 0:
        raise ValueError(f"{name} must be a finite non-negative number, got {value!r}")
    return v


def check_count(n, name: str, low: int = 1) -> int:
    check_int_in_range(n, name, low, 2**31 - 1)
    return int(n)


def fmt(v) -> str:
    """A number with enough digits to tell two close float64 values apart."""
    return f"{float(v):.10g}"


def same_structure(a, b) -> bool:
    return jax.tree_util.tree_structure(a) == jax.tree_util.tree_structure(b)


def same_shapes(a, b) -> bool:
    """Same pytree structure and the same shape leaf by leaf."""
    return same_structure(a, b) and all(
        np.shape(u) == np.shape(w)
        for u, w in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)))
