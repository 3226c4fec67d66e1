"""Small linear-algebra helpers shared by the chapters."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax
from jax.scipy.linalg import cho_solve, solve_triangular

from jaxml._core.fold import fold_rows


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


def blocked_gram(X: jax.Array, *, center=None, compute_dtype=None, block=None) -> jax.Array:
    """(X − 1cᵀ)ᵀ(X − 1cᵀ) (d, d) for X (n, d), summed over blocks of ``block`` rows
    (default 1024 for float64 products, 4096 otherwise: the fastest measured on XLA:CPU).

    Each block is centred (by ``center`` (d,), if given) and cast to ``compute_dtype``
    (default X's) while in cache, so neither a centred nor a cast copy of X is ever
    written; the blocks' products are summed in X's dtype (float32 products summed in
    float64 carry only one block's rounding). Float64 blocks are multiplied as
    (d, b)·(b, d) from a transposed copy of the block, which XLA:CPU's float64 GEMM runs
    ~1.5× faster than ``X.T @ X`` (measured: 0.44 s vs 0.84 s at 100 000 × 500, 0.14 s vs
    0.24 s at 100 000 × 256, blocks of 1024 rows). Exactly symmetric. Precision is
    ``HIGHEST`` (no TF32 on GPUs).
    """
    n, d = X.shape
    compute_dtype = X.dtype if compute_dtype is None else jnp.dtype(compute_dtype)
    if block is None:
        block = 1024 if compute_dtype == jnp.float64 else 4096
    hi = lax.Precision.HIGHEST

    def product(rows, mask):
        Z = rows if center is None else rows - center
        Z = jnp.where(mask[:, None], Z, 0).astype(compute_dtype)   # rows seen before: 0
        if compute_dtype == jnp.float64:
            Zt = lax.optimization_barrier(Z.T)
            G = jnp.matmul(Zt, Zt.T, precision=hi)
        else:
            G = jnp.matmul(Z.T, Z, precision=hi)
        return G.astype(X.dtype)

    return symmetrize(fold_rows(product, X, block=block))


def max_eigenvalue(matvec, d: int, dtype, *, n_iter: int = 60) -> jax.Array:
    """λ_max of a symmetric PSD operator ``matvec`` on ℝᵈ by ``n_iter`` power iterations.

    A lower estimate (the Rayleigh quotient of the last iterate); solvers that use it as a
    Lipschitz constant scale it up and guard the step (backtracking or doubling).
    """
    v0 = jnp.ones((d,), dtype) + jnp.linspace(0.0, 1.0, d, dtype=dtype)
    tiny = jnp.finfo(dtype).tiny

    def body(_, v):
        u = matvec(v)
        return u / jnp.maximum(jnp.linalg.norm(u), tiny)

    v = lax.fori_loop(0, n_iter, body, v0 / jnp.linalg.norm(v0))
    return jnp.dot(v, matvec(v))
