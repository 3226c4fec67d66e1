"""Principal component analysis: the eigenvectors of the sample covariance.

For data X (n, d) with mean x̄, the sample covariance is

    S = (X − 1x̄ᵀ)ᵀ(X − 1x̄ᵀ) / (n − 1)  = V Λ Vᵀ,   λ₁ ≥ λ₂ ≥ … ≥ λ_d ≥ 0.

The first k principal axes are the top-k eigenvectors v₁..v_k: the orthonormal directions
of largest variance, and the k-dimensional subspace with the smallest squared
reconstruction error. The scores are z = Vₖᵀ(x − x̄) and the reconstruction is
x̂ = x̄ + Vₖ z. Explained variances are λⱼ (ddof = 1, as scikit-learn), their ratios
λⱼ / Σλ, and the singular values of the centred data are σⱼ = √((n − 1) λⱼ).

``fit`` forms S and calls ``eigh`` (O(n·d²) + O(d³)) — the chapter's method, and fastest
when n ≫ d. When d > n, S has rank < n and is large; ``fit`` then takes the thin SVD of
the centred data, X − 1x̄ᵀ = U Σ Vᵀ (O(n²·d)), whose right singular vectors are the same
eigenvectors. The choice is static, from the shapes.

Signs follow scikit-learn's ``svd_flip(u_based_decision=False)``: in every component the
entry of largest magnitude is positive, so results are deterministic.

Reference: I. T. Jolliffe, *Principal Component Analysis*, 2nd ed., Springer (2002);
C. M. Bishop, *Pattern Recognition and Machine Learning*, §12.1 (2006).
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxml._core import HIGHEST, blocked_gram, check_int_in_range, check_matrix

__all__ = ["PCAResult", "fit", "transform", "inverse_transform", "covariance", "sign_flip"]

_HI = HIGHEST


class PCAResult(NamedTuple):
    """A fitted PCA.

    Attributes:
        mean: (d,) the sample mean x̄.
        components: (k, d) orthonormal principal axes, rows sorted by decreasing variance.
        explained_variance: (k,) λ₁ ≥ … ≥ λ_k, variances along the axes (ddof = 1).
        explained_variance_ratio: (k,) λⱼ / Σᵢ λᵢ (the sum over all min(n, d) or d
            eigenvalues: the total variance); 0 when the total variance is 0.
        singular_values: (k,) √((n − 1) λⱼ), singular values of the centred data.
        noise_variance: () mean of the discarded eigenvalues (the probabilistic-PCA
            maximum-likelihood noise variance, Tipping & Bishop 1999); 0 if none discarded.
    """

    mean: jax.Array
    components: jax.Array
    explained_variance: jax.Array
    explained_variance_ratio: jax.Array
    singular_values: jax.Array
    noise_variance: jax.Array


def covariance(X) -> tuple[jax.Array, jax.Array]:
    """Sample mean (d,) and covariance (d, d) with ddof = 1 of X (n, d), from centred data.

    The centred scatter is summed over row blocks (``_core.blocked_gram``), each centred in
    cache: no centred copy of X is written, and nothing cancels (unlike XᵀX − n x̄x̄ᵀ).
    """
    X = check_matrix(X, "X")
    if X.shape[0] < 2:
        raise ValueError(f"X must have at least 2 rows, got {X.shape[0]}")
    return _covariance(X)


@jax.jit
def _covariance(X):
    mean = jnp.mean(X, axis=0)
    return mean, blocked_gram(X, center=mean) / (X.shape[0] - 1)


def sign_flip(components: jax.Array) -> jax.Array:
    """Flip each row of ``components`` (k, d) so its largest-magnitude entry is positive.

    The convention of scikit-learn's ``svd_flip(None, V, u_based_decision=False)``.
    """
    idx = jnp.argmax(jnp.abs(components), axis=1)
    s = jnp.sign(jnp.take_along_axis(components, idx[:, None], axis=1))
    return components * jnp.where(s == 0, 1.0, s).astype(components.dtype)


def _spectrum_eigh(X):
    mean, S = _covariance(X)
    evals, evecs = jnp.linalg.eigh(S)                  # ascending
    return mean, jnp.maximum(evals[::-1], 0.0), evecs[:, ::-1].T


def _spectrum_svd(X):
    mean = jnp.mean(X, axis=0)
    _, s, vt = jnp.linalg.svd(X - mean, full_matrices=False)
    return mean, s * s / (X.shape[0] - 1), vt


@partial(jax.jit, static_argnames=("n_components",))
def _fit(X, n_components: int) -> PCAResult:
    n, d = X.shape
    k = n_components
    mean, evals, vt = (_spectrum_svd if d > n else _spectrum_eigh)(X)
    components = sign_flip(vt[:k])
    ev = evals[:k]
    total = jnp.sum(evals)
    rest = evals[k:min(n, d)]
    noise = jnp.mean(rest) if rest.shape[0] > 0 else jnp.zeros((), X.dtype)
    return PCAResult(
        mean=mean,
        components=components,
        explained_variance=ev,
        # constant data: zero total variance, every ratio defined as 0 (not 0/0)
        explained_variance_ratio=jnp.where(total > 0, ev / jnp.where(total > 0, total, 1.0),
                                           0.0),
        singular_values=jnp.sqrt(ev * (n - 1)),
        noise_variance=noise,
    )


def fit(X, n_components: int) -> PCAResult:
    """Principal components of X by eigendecomposition of its covariance (SVD when d > n).

    Args:
        X: (n, d) data, n ≥ 2.
        n_components: k, 1 ≤ k ≤ min(n, d) (static).

    Returns:
        :class:`PCAResult` with mean (d,), components (k, d), explained_variance (k,),
        explained_variance_ratio (k,), singular_values (k,), noise_variance ().

    Differentiable with respect to X (``jax.grad`` through ``eigh``/``svd``): the
    derivative of the sign-fixed components exists while the eigenvalues are distinct
    (it involves 1/(λᵢ − λⱼ)); at repeated eigenvalues (e.g. constant or isotropic data)
    the eigenvectors are not unique and the derivative is not finite.
    """
    X = check_matrix(X, "X")
    n, d = X.shape
    if n < 2:
        raise ValueError(f"X must have at least 2 rows, got {n}")
    n_components = check_int_in_range(n_components, "n_components", 1, min(n, d))
    return _fit(X, n_components)


def _check_model(model: PCAResult, X, name: str, axis: int) -> jax.Array:
    if not isinstance(model, PCAResult):
        raise TypeError(f"model must be a PCAResult, got {type(model).__name__}")
    width = model.components.shape[axis]
    X = check_matrix(X, name, dtype=model.components.dtype)
    if X.shape[1] != width:
        raise ValueError(f"{name} must have shape (m, {width}), got {X.shape}")
    return X


def transform(model: PCAResult, X) -> jax.Array:
    """Scores Z = (X − x̄) Vₖᵀ: (m, d) → (m, k)."""
    return _transform(model, _check_model(model, X, "X", 1))


@jax.jit
def _transform(model, X):
    return jnp.matmul(X - model.mean, model.components.T, precision=_HI)


def inverse_transform(model: PCAResult, Z) -> jax.Array:
    """Reconstructions X̂ = x̄ + Z Vₖ: (m, k) → (m, d)."""
    return _inverse_transform(model, _check_model(model, Z, "Z", 0))


@jax.jit
def _inverse_transform(model, Z):
    return jnp.matmul(Z, model.components, precision=_HI) + model.mean
