"""Small linear-algebra helpers shared by the chapters."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.scipy.linalg import cho_solve, solve_triangular


def symmetrize(A: jax.Array) -> jax.Array:
    """(A + Aᵀ)/2 over the last two axes."""
    return 0.5 * (A + jnp.swapaxes(A, -1, -2))


def add_jitter(A: jax.Array, jitter) -> jax.Array:
    """A + jitter·I over the last two axes."""
    return A + jitter * jnp.eye(A.shape[-1], dtype=A.dtype)


def safe_cholesky(A: jax.Array, jitter=0.0) -> jax.Array:
    """Lower Cholesky factor of the symmetrized ``A + jitter·I``."""
    return jnp.linalg.cholesky(add_jitter(symmetrize(A), jitter))


def cholesky_solve(L: jax.Array, B: jax.Array) -> jax.Array:
    """Solve (L Lᵀ) X = B given the lower factor L (n, n); B is (n,) or (n, m)."""
    return cho_solve((L, True), B)


def logdet_from_cholesky(L: jax.Array) -> jax.Array:
    """log det(L Lᵀ) = 2 Σ log Lᵢᵢ, over the last two axes."""
    return 2.0 * jnp.sum(jnp.log(jnp.diagonal(L, axis1=-2, axis2=-1)), axis=-1)


def whiten(L: jax.Array, x: jax.Array) -> jax.Array:
    """L⁻¹ x for lower-triangular L (n, n) and x (n,) or (n, m)."""
    return solve_triangular(L, x, lower=True)


def psd_solve(A: jax.Array, B: jax.Array, jitter=0.0) -> jax.Array:
    """Solve (A + jitter·I) X = B for symmetric positive (semi)definite A by Cholesky."""
    return cholesky_solve(safe_cholesky(A, jitter), B)


def eps(dtype) -> jax.Array:
    """Machine epsilon of ``dtype``."""
    return jnp.finfo(dtype).eps
