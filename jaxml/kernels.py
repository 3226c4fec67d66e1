"""Kernels k(x, z) = ⟨φ(x), φ(z)⟩ as equinox modules, with scikit-learn's parametrization.

    Linear():                         k(x, z) = xᵀz
    RBF(gamma):                       k(x, z) = exp(−γ ‖x − z‖²)
    Polynomial(degree, gamma, coef0): k(x, z) = (γ xᵀz + c₀)^degree

Every kernel derives from the abstract :class:`Kernel` and implements ``gram(X, Z)``; a user
kernel is a subclass (its numeric parameters as fields), and works wherever a jaxml kernel
does (``jaxml.svm.fit``, ``jaxml.rvm``, :func:`gram`)::

    class Laplacian(Kernel):
        gamma: float = 1.0
        def gram(self, X, Z):
            return jnp.exp(-self.gamma * jnp.sum(jnp.abs(X[:, None] - Z[None]), -1))

Numeric parameters (``gamma``, ``coef0``) are pytree leaves, so ``jax.vmap`` over a batch
of ``RBF(gammas)`` or over ``lambda g: fit(..., kernel=RBF(g))`` works without
recompiling; ``degree`` is a static integer (an integer power, exact for negative bases).
A kernel is a pytree: it crosses ``jit`` and can be differentiated with respect to its
parameters (``jax.grad`` of a loss through ``gram``).

Cost: ``gram`` of X (n, d) and Z (m, d) is O(n m d) time, O(n m) memory.

Reference: B. Schölkopf & A. Smola, *Learning with Kernels* (2002), ch. 2; scikit-learn's
``sklearn.metrics.pairwise`` (``linear_kernel``, ``rbf_kernel``, ``polynomial_kernel``).
"""

from __future__ import annotations

import abc

import equinox as eqx
import jax
import jax.numpy as jnp

from jaxml._core.checks import as_float_array, check_int_in_range, check_positive, float_dtype
from jaxml._core.numerics import HIGHEST

__all__ = ["Kernel", "Linear", "RBF", "Polynomial", "gram", "gamma_scale"]


def _dot(X: jax.Array, Z: jax.Array) -> jax.Array:
    """X Zᵀ at full float precision (no TF32 on GPUs)."""
    return jnp.matmul(X, Z.T, precision=HIGHEST)


class Kernel(eqx.Module):
    """Abstract base: a positive semi-definite kernel k(x, z).

    Subclasses implement ``gram(X, Z)`` → (n, m) for X (n, d) and Z (m, d); numeric
    parameters are fields (pytree leaves), sizes are ``eqx.field(static=True)``.
    ``k(x, z)`` for two vectors (d,) is ``gram`` on one row each.
    """

    @abc.abstractmethod
    def gram(self, X: jax.Array, Z: jax.Array) -> jax.Array:
        """The (n, m) matrix [k(X[a], Z[b])] for X (n, d), Z (m, d)."""

    def __call__(self, x: jax.Array, z: jax.Array) -> jax.Array:
        """k(x, z) for x, z of shape (d,): a scalar."""
        return self.gram(jnp.atleast_2d(x), jnp.atleast_2d(z))[0, 0]


class Linear(Kernel):
    """k(x, z) = xᵀz (scikit-learn ``kernel="linear"``)."""

    def gram(self, X: jax.Array, Z: jax.Array) -> jax.Array:
        return _dot(X, Z)


class RBF(Kernel):
    """k(x, z) = exp(−γ ‖x − z‖²) (scikit-learn ``kernel="rbf"``, ``gamma``).

    ``gamma`` > 0 is a pytree leaf (scalar, or a batch under ``vmap``). scikit-learn's
    ``gamma="scale"`` is ``gamma_scale(X)`` = 1 / (d · Var(X)).
    """

    gamma: float | jax.Array = 1.0

    def __check_init__(self):
        check_positive(self.gamma, "gamma")

    def gram(self, X: jax.Array, Z: jax.Array) -> jax.Array:
        sq = (jnp.sum(X * X, axis=1)[:, None] + jnp.sum(Z * Z, axis=1)[None, :]
              - 2.0 * _dot(X, Z))
        gamma = check_positive(self.gamma, "gamma")   # traced gamma: checked at run time
        return jnp.exp(-gamma * jnp.maximum(sq, 0.0))


class Polynomial(Kernel):
    """k(x, z) = (γ xᵀz + c₀)^degree (scikit-learn ``kernel="poly"``: degree, gamma, coef0).

    ``degree`` is a static positive int; ``gamma`` > 0 and ``coef0`` are pytree leaves.
    """

    degree: int = eqx.field(default=3, static=True)
    gamma: float | jax.Array = 1.0
    coef0: float | jax.Array = 0.0

    def __check_init__(self):
        check_int_in_range(self.degree, "degree", 1, 10_000)
        check_positive(self.gamma, "gamma")

    def gram(self, X: jax.Array, Z: jax.Array) -> jax.Array:
        gamma = check_positive(self.gamma, "gamma")
        return jnp.power(gamma * _dot(X, Z) + self.coef0, self.degree)


def gram(kernel: Kernel, X, Z=None) -> jax.Array:
    """The Gram matrix G[a, b] = k(X[a], Z[b]).

    Args:
        kernel: a :class:`Kernel` (``Linear()``, ``RBF(gamma)``, ``Polynomial(...)``, or a
            user subclass).
        X: (n, d) points.
        Z: (m, d) points; ``None`` means ``X`` (the symmetric (n, n) training Gram matrix).

    Returns:
        (n, m) array in the dtype of ``X``/``Z``.

    Raises:
        TypeError: ``kernel`` is not a Kernel.
        ValueError: X or Z not 2-D, NaN/inf, or different feature counts.
    """
    if not isinstance(kernel, Kernel):
        raise TypeError(f"kernel must be a jaxml.kernels.Kernel (Linear, RBF, Polynomial or "
                        f"a subclass), got {type(kernel).__name__}")
    X = as_float_array(X, "X", ndim=2)
    if Z is None:
        Z = X
    else:
        Z = as_float_array(Z, "Z", ndim=2)
        if Z.shape[1] != X.shape[1]:
            raise ValueError(f"X and Z must have the same number of features, "
                             f"got {X.shape[1]} and {Z.shape[1]}")
    dt = float_dtype(X, Z)
    return kernel.gram(X.astype(dt), Z.astype(dt)).astype(dt)


def gamma_scale(X) -> jax.Array:
    """scikit-learn's ``gamma="scale"``: 1 / (d · Var(X)) over all entries of X (n, d)."""
    X = as_float_array(X, "X", ndim=2)
    return 1.0 / (X.shape[1] * jnp.var(X))
