r"""Random test inputs without hypothesis: a symmetric positive-definite matrix of bounded
condition number from a PRNG key, for a test that needs one fixed input (a covariance to
compare with scipy, a precision to sample from) rather than a property over many.

:func:`random_spd` draws S = Q·diag(λ)·Qᵀ with Q Haar-orthogonal (the QR factor of a
standard-normal matrix, signs fixed so the law is exactly Haar) and log-uniform eigenvalues
λᵢ = scale·κ^(−uᵢ), uᵢ ~ U[0, 1], so that κ(S) ≤ ``max_condition`` and λ_max ≤ ``scale``.
For property tests over many such matrices use :func:`jaxml.testing.strategies.spd_matrices`
(hypothesis, shrinks to simple cases).

Reference: F. Mezzadri, "How to generate random matrices from the classical compact
groups", Notices of the AMS 54 (2007) (the sign fix of the QR factor).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["random_spd"]


def random_spd(key: jax.Array, n: int, *, batch_shape: tuple = (), max_condition: float = 100.0,
               scale: float = 1.0, dtype=None) -> jax.Array:
    r"""A random symmetric positive-definite (…, n, n) matrix with eigenvalues in
    [scale/max_condition, scale].

    Args:
        key: PRNG key.
        n: the order (≥ 1).
        batch_shape: leading dimensions (a batch of independent matrices).
        max_condition: bound κ ≥ 1 on λ_max/λ_min.
        scale: the bound on the largest eigenvalue (> 0).
        dtype: a floating dtype (default: JAX's default float, float64 with x64 enabled).

    Returns:
        (*batch_shape, n, n) array, exactly symmetric; its eigenvalues lie in
        [scale/κ, scale] up to rounding.
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be an int ≥ 1, got {n!r}")
    kappa = float(max_condition)
    if not (np.isfinite(kappa) and kappa >= 1.0):
        raise ValueError(f"max_condition must be a finite number ≥ 1, got {max_condition!r}")
    scale = float(scale)
    if not (np.isfinite(scale) and scale > 0):
        raise ValueError(f"scale must be a positive finite number, got {scale!r}")
    batch = tuple(int(b) for b in batch_shape)
    dtype = jnp.zeros(0).dtype if dtype is None else jnp.dtype(dtype)
    if not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(f"dtype must be a floating dtype, got {dtype}")
    k_q, k_l = jax.random.split(key)
    g = jax.random.normal(k_q, batch + (n, n), jnp.float64 if jax.config.x64_enabled
                          else jnp.float32)
    q, r = jnp.linalg.qr(g)
    q = q * jnp.where(jnp.diagonal(r, axis1=-2, axis2=-1) < 0, -1.0, 1.0)[..., None, :]
    u = jax.random.uniform(k_l, batch + (n,), q.dtype)
    lam = scale * kappa ** (-u)
    s = (q * lam[..., None, :]) @ jnp.swapaxes(q, -1, -2)
    s = 0.5 * (s + jnp.swapaxes(s, -1, -2))
    return s.astype(dtype)
