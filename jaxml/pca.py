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
eigenvectors. The choice is static, from the shapes. (A mixed-precision path — S from
float32 products, then the top k eigenpairs refined in float64 and certified by their
float64 residuals, ``_core.refine_top_eigenpairs`` — gives the same answer but did not
win on the 2-core CPU measured, so ``fit`` does not choose it; see ``_method``.)

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
from jax import lax

from jaxml._core import checks_on_outputs, fold_rows, mixed_precision_pays, refine_top_eigenpairs
from jaxml._core import HIGHEST, check_int_in_range, check_matrix, host_function, shifted_scatter
from jaxml._core.fold import Chunks, chunk_moments, first_chunk

__all__ = ["PCAResult", "fit", "fit_streamed", "transform", "inverse_transform", "covariance",
           "sign_flip"]

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


@checks_on_outputs
def covariance(X) -> tuple[jax.Array, jax.Array]:
    """Sample mean (d,) and covariance (d, d) with ddof = 1 of X (n, d), in one pass over X.

    The scatter of the rows shifted by a strided sample mean s is summed over row blocks,
    each shifted in cache, with Σ(x − s) in the same pass (``_core.shifted_scatter``): no
    centred copy of X is written, no separate pass for the mean, and the correction
    −n(x̄ − s)(x̄ − s)ᵀ is small (s is already near x̄, unlike XᵀX − n x̄x̄ᵀ).
    """
    X = check_matrix(X, "X")
    if X.shape[0] < 2:
        raise ValueError(f"X must have at least 2 rows, got {X.shape[0]}")
    return _covariance(X)


@jax.jit
def _covariance(X):
    # One pass (measured, 100 000 × 256 on the shared 2-core CPU: 0.58–0.85× the time of
    # the former two passes, a mean then the centred blocked Gram).
    mean, scatter = shifted_scatter(X)
    return mean, scatter / (X.shape[0] - 1)


def sign_flip(components: jax.Array) -> jax.Array:
    """Flip each row of ``components`` (k, d) so its largest-magnitude entry is positive.

    The convention of scikit-learn's ``svd_flip(None, V, u_based_decision=False)``.
    """
    idx = jnp.argmax(jnp.abs(components), axis=1)
    s = jnp.sign(jnp.take_along_axis(components, idx[:, None], axis=1))
    return components * jnp.where(s == 0, 1.0, s).astype(components.dtype)


def _eigh_desc(S):
    """Eigenvalues (descending, floored at 0) and eigenvectors (rows) of symmetric S."""
    evals, evecs = jnp.linalg.eigh(S)                  # ascending
    return jnp.maximum(evals[::-1], 0.0), evecs[:, ::-1].T


def _spectrum_eigh(X):
    mean, S = _covariance(X)
    return (mean, *_eigh_desc(S))


def _spectrum_svd(X):
    mean = jnp.mean(X, axis=0)
    _, s, vt = jnp.linalg.svd(X - mean, full_matrices=False)
    return mean, s * s / (X.shape[0] - 1), vt


# The refined path ("refined": float32 covariance, float64 refinement of the top k) costs
# one float32 product of n·d² plus three float64 passes S V of 2·n·d·k multiply-adds. On
# the 2-core XLA:CPU measured (100 000 × 256, float64) the float32 blocked Gram was only
# 1.1–1.5× faster than the float64 one on a lightly loaded machine, so the path lost
# (k = 32: 1.2–1.4× slower than "eigh"; k = 8: 1.4× slower) and won only under heavy
# load (up to 2.4×). ``fit`` therefore does not choose it (_REFINED_MAX_FRACTION = 0
# turns it off); set it to 8 (8k ≤ d, with ``mixed_precision_pays``) where float32
# products are ≥ 3× faster than float64 ones.
_REFINED_MAX_FRACTION = 0


def _method(X, k: int) -> str:
    """The static choice of spectrum: "svd" (d > n), "refined" or "eigh" (n ≥ d)."""
    n, d = X.shape
    if d > n:
        return "svd"
    if mixed_precision_pays(X) and 0 < _REFINED_MAX_FRACTION * k <= d:
        return "refined"
    return "eigh"


def _apply_covariance(X, mean, V):
    """S V (d, k) for V (d, k), in X's dtype: one pass of the row fold, each block centred
    in cache and multiplied as (Z V)ᵀ Z (2·n·d·k multiply-adds)."""
    def block_product(rows, mask):
        Z = jnp.where(mask[:, None], rows - mean, 0)
        return jnp.matmul(jnp.matmul(Z, V, precision=_HI).T, Z, precision=_HI)
    return fold_rows(block_product, X, block=1024).T / (X.shape[0] - 1)


def _shifted_moments(X):
    """Mean (d,), tr S () and S from float32 products (d, d), in one pass over X
    (``_core.shifted_scatter``: the blocks shifted by a strided sample mean, the products
    in float32, Σ‖x − s‖² and the sums in X's dtype, so tr S is exact)."""
    mean, scatter, total = shifted_scatter(X, compute_dtype=jnp.float32, with_trace=True)
    return mean, total / (X.shape[0] - 1), scatter / (X.shape[0] - 1)


def _refined_spectrum(X, k: int, max_iter: int = 4):
    """(mean (d,), λ₁..λ_k (k,), sign-fixed components (k, d), tr S (), certified ()) from
    the float32 covariance refined in float64 (``_core.refine_top_eigenpairs``)."""
    mean, total, S32 = _shifted_moments(X)
    mu, W = jnp.linalg.eigh(S32.astype(jnp.float32))
    mu, W = mu[::-1].astype(X.dtype), W[:, ::-1].astype(X.dtype)
    theta, V, _, certified = refine_top_eigenpairs(partial(_apply_covariance, X, mean), W, mu,
                                                   k, max_iter=max_iter)
    return mean, jnp.maximum(theta, 0.0), sign_flip(V.T), total, certified


def _exact_top(X, k: int):
    """The same four from the float64 covariance and its ``eigh``."""
    mean, evals, vt = _spectrum_eigh(X)
    return mean, evals[:k], sign_flip(vt[:k]), jnp.sum(evals)


@partial(jax.custom_jvp, nondiff_argnums=(1,))
def _top_spectrum(X, k: int):
    """The refined spectrum where certified, the float64 ``eigh`` one where not. Its
    derivative is the float64 path's (the same function: the certificate makes the two
    values agree to a float64 ``eigh``'s accuracy)."""
    *top, certified = _refined_spectrum(X, k)
    return lax.cond(certified, lambda: tuple(top), lambda: _exact_top(X, k))


@_top_spectrum.defjvp
def _top_spectrum_jvp(k, primals, tangents):
    (X,), (dX,) = primals, tangents
    _, dtop = jax.jvp(lambda X: _exact_top(X, k), (X,), (dX,))
    return _top_spectrum(X, k), dtop


@partial(jax.jit, static_argnames=("n_components", "method"))
def _fit(X, n_components: int, method: str | None = None) -> PCAResult:
    n, d = X.shape
    k = n_components
    method = _method(X, k) if method is None else method
    if method == "refined":
        mean, ev, components, total = _top_spectrum(X, k)
        noise = jnp.maximum(total - jnp.sum(ev), 0.0) / max(d - k, 1)
        return _assemble(mean, components, ev, total, noise, n)
    mean, evals, vt = (_spectrum_svd if method == "svd" else _spectrum_eigh)(X)
    return _result(mean, evals, vt, n, k)


@partial(jax.jit, static_argnames=("n", "n_components"))
def _fit_scatter(mean, S, n: int, n_components: int) -> PCAResult:
    return _result(mean, *_eigh_desc(S / (n - 1)), n, n_components)


def _result(mean, evals, vt, n: int, k: int) -> PCAResult:
    """The fitted PCA from the spectrum: eigenvalues (descending), eigenvectors (rows)."""
    d = mean.shape[0]
    components = sign_flip(vt[:k])
    ev = evals[:k]
    total = jnp.sum(evals)
    rest = evals[k:min(n, d)]
    noise = jnp.mean(rest) if rest.shape[0] > 0 else jnp.zeros((), mean.dtype)
    return _assemble(mean, components, ev, total, noise, n)


def _assemble(mean, components, ev, total, noise, n: int) -> PCAResult:
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


@checks_on_outputs
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


@host_function
def fit_streamed(X, n_components: int) -> PCAResult:
    """Principal components of rows streamed from the host in chunks.

    Two passes of the ``_core`` chunk fold (device memory: one chunk and the (d, d)
    scatter): the mean, then the centred scatter Σ (x − x̄)(x − x̄)ᵀ (no cancellation);
    then ``eigh`` of S = scatter / (n − 1), as :func:`fit` does for n ≥ d. Equals
    :func:`fit` on the concatenated rows to rounding (for d > n, :func:`fit` takes the SVD
    of the centred data instead: the same nonzero spectrum). A host function (a Python loop
    over host data): no ``jit``/``vmap``/``grad``.

    Args:
        X: the rows, as :func:`jaxml.data.chunks` of (m, d) arrays (or anything it accepts:
            a list of arrays, a memory-mapped ``.npy``, a callable returning an iterable);
            n ≥ 2 rows in all.
        n_components: k, 1 ≤ k ≤ min(n, d) (static).

    Returns:
        :class:`PCAResult`, as :func:`fit`.
    """
    source = X if isinstance(X, Chunks) else Chunks(X)
    d = check_matrix(first_chunk(source), "X (first chunk)").shape[1]
    n_components = check_int_in_range(n_components, "n_components", 1, d)
    n, mean, S = chunk_moments(source)
    n = int(n)
    if n < 2:
        raise ValueError(f"X must have at least 2 rows, got {n}")
    if not bool(jnp.all(jnp.isfinite(S))):
        raise ValueError("X must be finite (some chunk holds NaN or inf)")
    n_components = check_int_in_range(n_components, "n_components", 1, min(n, d))
    return _fit_scatter(mean, S, n, n_components)


def _check_model(model: PCAResult, X, name: str, axis: int) -> jax.Array:
    if not isinstance(model, PCAResult):
        raise TypeError(f"model must be a PCAResult, got {type(model).__name__}")
    width = model.components.shape[axis]
    X = check_matrix(X, name, dtype=model.components.dtype)
    if X.shape[1] != width:
        raise ValueError(f"{name} must have shape (m, {width}), got {X.shape}")
    return X


@checks_on_outputs
def transform(model: PCAResult, X) -> jax.Array:
    """Scores Z = (X − x̄) Vₖᵀ: (m, d) → (m, k)."""
    return _transform(model, _check_model(model, X, "X", 1))


@jax.jit
def _transform(model, X):
    return jnp.matmul(X - model.mean, model.components.T, precision=_HI)


@checks_on_outputs
def inverse_transform(model: PCAResult, Z) -> jax.Array:
    """Reconstructions X̂ = x̄ + Z Vₖ: (m, k) → (m, d)."""
    return _inverse_transform(model, _check_model(model, Z, "Z", 0))


@jax.jit
def _inverse_transform(model, Z):
    return jnp.matmul(Z, model.components, precision=_HI) + model.mean
