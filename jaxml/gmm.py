"""Gaussian mixture models fitted by expectation-maximization (EM).

The model: a latent component z ∈ {1..k} with p(z = j) = πⱼ, and x | z = j ~ N(μⱼ, Σⱼ), so

    log p(x) = log Σⱼ πⱼ N(x | μⱼ, Σⱼ).

EM alternates

* **E step** — responsibilities rᵢⱼ = p(zᵢ = j | xᵢ, θ)
  = exp(log πⱼ + log N(xᵢ | μⱼ, Σⱼ) − log p(xᵢ)), computed in log space with
  ``logsumexp``; it also returns the mean log-likelihood (1/n) Σᵢ log p(xᵢ | θ) of the
  current parameters;
* **M step** — maximize E_r[log p(x, z | θ)]: Nⱼ = Σᵢ rᵢⱼ + 10ε, πⱼ = Nⱼ / Σₗ Nₗ,
  μⱼ = (1/Nⱼ) Σᵢ rᵢⱼ xᵢ, and Σⱼ = (1/Nⱼ) Σᵢ rᵢⱼ (xᵢ − μⱼ)(xᵢ − μⱼ)ᵀ + λI (``reg_covar`` = λ),
  or its ``tied`` (one shared matrix), ``diag`` (per-feature variances) and ``spherical``
  (one variance per component) restrictions.

Each EM step cannot decrease the log-likelihood (Dempster, Laird & Rubin 1977). The
conventions are scikit-learn's ``GaussianMixture``: the same parameter shapes
(``covariances`` is (k, d, d) full, (d, d) tied, (k, d) diag, (k,) spherical), the same
``10·eps`` floor on Nⱼ, ``reg_covar`` added to the diagonal, and ``lower_bound`` is the mean
log-likelihood computed in the E step of the last iteration (so it belongs to the
parameters *before* the last M step, exactly like ``lower_bound_``); ``fit`` stops when the
change of that bound is at most ``tol``. Started from the same parameters, ``fit`` follows
scikit-learn iteration for iteration. The covariance type is part of the parameters
(``GMMParams.covariance_type``, static pytree metadata): every verb reads it from there.

**Memory and speed.** Both steps are linear in a per-row feature vector φ(x̃) of width D,
where x̃ = x − c for a fixed shift c (the data mean in ``fit``/``m_step``, the mixture mean
Σⱼ πⱼμⱼ in ``e_step`` and the verbs), which leaves covariances unchanged and keeps
cancellation small. For ``full``, φ = [x̃ₐx̃_b (a ≤ b), x̃], so
(x̃ − μ̃ⱼ)ᵀΛⱼ(x̃ − μ̃ⱼ) = φᵀaⱼ + μ̃ⱼᵀΛⱼμ̃ⱼ, and the M step's sufficient statistics are
Σᵢ rᵢⱼ φ(x̃ᵢ). The data are streamed in row blocks of b rows (the ``_core`` row fold:
``lax.fori_loop`` over ``lax.dynamic_slice``, nothing copied or padded); per block the
E step is one (b, D)×(D, k) matmul and the M step one (k, b)×(b, D) matmul, and ``fit``
fuses them: one pass over the data per iteration, O(b·(D + k) + k·d²) working memory,
never an (n, k, d) array. ``e_step``/``predict_proba`` return (n, k) arrays and so need
O(n·k). The quadratic expansion costs about ε‖x̃‖²λ_max(Λⱼ) of absolute accuracy in the
Mahalanobis term: negligible in float64; in float32 it matters only for very tight
components far from c.

A collapsing component (all rᵢⱼ → 0) gets Nⱼ = 10ε, a finite mean and covariance ≈ λI,
and a tiny but positive weight, so nothing becomes NaN; a non-finite log-likelihood (e.g.
``reg_covar=0`` on degenerate data) is reported as ``converged=False``.

Reference: C. M. Bishop, *Pattern Recognition and Machine Learning* (2006), §9.2;
A. P. Dempster, N. M. Laird, D. B. Rubin, "Maximum likelihood from incomplete data via the
EM algorithm", JRSS-B 39 (1977); scikit-learn ``sklearn.mixture.GaussianMixture``.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.scipy.linalg import solve_triangular
from jax.scipy.special import logsumexp

from jaxml._core import (HIGHEST, LOG_2PI, Adjoint, Implicit, check_int_in_range,
                         check_loop_options, check_matrix, check_nonnegative, check_value,
                         checks_on_outputs, fixed_point, host_function, is_concrete)
from jaxml._core.fold import Chunks, first_chunk, fold_chunks, fold_rows, map_rows

__all__ = [
    "COVARIANCE_TYPES", "GMMParams", "GMMState", "GMMInfo", "GMMResult", "init", "init_state",
    "e_step", "m_step", "step", "fit",
    "log_likelihood", "predict_proba", "predict", "sample",
]

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")
_HI = HIGHEST


class GMMParams(NamedTuple):
    """Parameters of a Gaussian mixture with k components in d dimensions.

    Attributes:
        weights: (k,) mixing proportions π (non-negative, summing to 1).
        means: (k, d) component means μ.
        covariances: the component covariances, shaped by the covariance type as in
            scikit-learn: (k, d, d) ``full``, (d, d) ``tied``, (k, d) ``diag`` (variances),
            (k,) ``spherical`` (one variance per component).
        covariance_type: ``"full" | "tied" | "diag" | "spherical"`` (scikit-learn's words),
            a static field: it is pytree metadata, not a leaf, so it crosses ``jit`` and
            ``vmap`` unchanged and every verb reads it from here.
    """

    weights: jax.Array
    means: jax.Array
    covariances: jax.Array
    covariance_type: str = "full"


class GMMState(NamedTuple):
    """The state EM iterates (:func:`step`).

    Attributes:
        params: the current :class:`GMMParams`.
        lower_bound: () the mean log-likelihood computed by the last E step, i.e. of the
            parameters before the last M step (``-inf`` before any step).
    """

    params: GMMParams
    lower_bound: jax.Array


class GMMInfo(NamedTuple):
    """What an EM step reports.

    Attributes:
        error: () |Δ lower bound|, what ``fit``'s stopping rule compares with ``tol``.
        value: () the mean log-likelihood of the step's *input* parameters (the E step's).
    """

    error: jax.Array
    value: jax.Array


class GMMResult(NamedTuple):
    """A mixture fitted by :func:`fit`.

    Attributes:
        weights, means, covariances: the final parameters (see :class:`GMMParams`).
        lower_bound: () the mean log-likelihood per sample computed in the last E step
            (scikit-learn's ``lower_bound_``).
        n_iter: () int32, EM iterations run.
        converged: () bool, the last change of the lower bound was at most ``tol`` and
            every parameter and the lower bound are finite.
        trace: (max_iter,) the mean log-likelihood of every iteration (scikit-learn's
            ``lower_bounds_``); non-decreasing; NaN past ``n_iter``.
        covariance_type: static, as in :class:`GMMParams`.
    """

    weights: jax.Array
    means: jax.Array
    covariances: jax.Array
    lower_bound: jax.Array
    n_iter: jax.Array
    converged: jax.Array
    trace: jax.Array
    covariance_type: str = "full"

    @property
    def params(self) -> GMMParams:
        """The fitted parameters as a :class:`GMMParams`."""
        return GMMParams(self.weights, self.means, self.covariances, self.covariance_type)


# The covariance type is static metadata of the pytree (not a leaf).
jax.tree_util.register_pytree_node(
    GMMParams, lambda p: (tuple(p[:3]), p.covariance_type),
    lambda ct, leaves: GMMParams(*leaves, ct))
jax.tree_util.register_pytree_node(
    GMMResult, lambda r: (tuple(r[:7]), r.covariance_type),
    lambda ct, leaves: GMMResult(*leaves, ct))


# ============================================================================ checks

def _check_covariance_type(covariance_type) -> str:
    if covariance_type not in COVARIANCE_TYPES:
        raise ValueError(f"covariance_type must be one of {COVARIANCE_TYPES}, "
                         f"got {covariance_type!r}")
    return covariance_type


def _cov_shape(covariance_type: str, k: int, d: int) -> tuple[int, ...]:
    return {"full": (k, d, d), "tied": (d, d), "diag": (k, d), "spherical": (k,)}[covariance_type]


def _check_params(params, dtype=None, d=None) -> GMMParams:
    """Validate a GMMParams-like object (weights, means, covariances, covariance_type)."""
    try:
        weights, means, covs = params.weights, params.means, params.covariances
        covariance_type = params.covariance_type
    except AttributeError as e:
        raise TypeError("params must have weights, means, covariances and covariance_type "
                        f"(a GMMParams or GMMResult), got {type(params).__name__}") from e
    _check_covariance_type(covariance_type)
    means = check_matrix(means, "params.means", dtype=dtype)
    dtype = means.dtype
    k, dd = means.shape
    if d is not None and dd != d:
        raise ValueError(f"params.means has {dd} features but X has {d}")
    weights = jnp.asarray(weights, dtype)
    covs = jnp.asarray(covs, dtype)
    if weights.shape != (k,):
        raise ValueError(f"params.weights must have shape ({k},), got {weights.shape}")
    want = _cov_shape(covariance_type, k, dd)
    if covs.shape != want:
        raise ValueError(f"params.covariances must have shape {want} for covariance_type="
                         f"{covariance_type!r}, got {covs.shape}")
    if is_concrete(weights) and is_concrete(covs) and is_concrete(means):
        w = np.asarray(weights, dtype=np.float64)
        if not np.all(np.isfinite(w)) or np.any(w < 0) or abs(w.sum() - 1.0) > 1e-4:
            raise ValueError("params.weights must be non-negative and sum to 1")
        c = np.asarray(covs, dtype=np.float64)
        if not np.all(np.isfinite(c)):
            raise ValueError("params.covariances contains NaN or inf")
        if covariance_type in ("full", "tied"):
            c = c.reshape(-1, dd, dd)
            if not np.allclose(c, np.swapaxes(c, -1, -2), rtol=1e-5, atol=1e-8) or \
                    np.any(np.linalg.eigvalsh(0.5 * (c + np.swapaxes(c, -1, -2))) <= 0):
                raise ValueError("params.covariances must be symmetric positive definite")
        elif np.any(c <= 0):
            raise ValueError("params.covariances (variances) must be positive")
    else:   # traced (the caller's jit/vmap/grad): checked at run time, on the data path
        weights = check_value(weights, "params.weights",
                              lambda xp, v: ~(xp.isfinite(v) & (v >= 0)),
                              "must be non-negative and finite")
        covs = check_value(covs, "params.covariances", lambda xp, v: ~xp.isfinite(v),
                           "contains NaN or inf")
    return GMMParams(weights, means, covs, covariance_type)


def _check_X(X, name="X"):
    X = check_matrix(X, name)
    if X.shape[0] < 1:
        raise ValueError(f"{name} must have at least one row")
    return X


def _check_resp(resp, X):
    resp = check_matrix(resp, "resp", dtype=X.dtype)
    if resp.shape[0] != X.shape[0]:
        raise ValueError(f"resp and X must have the same number of rows, got {resp.shape[0]} "
                         f"and {X.shape[0]}")
    return check_nonnegative(resp, "resp")


# ============================================================================ row blocks

def _n_features(covariance_type: str, d: int) -> int:
    """Width D of the per-row feature vector φ(x) (see :func:`_features`)."""
    return {"full": d * (d + 1) // 2 + d, "tied": d, "diag": 2 * d,
            "spherical": d + 1}[covariance_type]


def _block_rows(n: int, k: int, D: int, block_size: int | None) -> int:
    """Rows per block: a (b, D + k) block of about 2¹⁶ entries on CPU (cache-sized), 2²²
    on an accelerator (enough parallel work per kernel), at most n."""
    if block_size is None:
        budget = 1 << (16 if jax.default_backend() == "cpu" else 22)
        block_size = max(64, budget // max(D + k, 1))
    return max(1, min(n, int(block_size)))


# ============================================================================ features
#
# Both steps are linear in a per-row feature vector φ(x̃) (x̃ = x − shift):
#   full:      φ = [x̃_i x̃_j (i ≤ j), x̃]    (d(d+1)/2 + d)
#   tied:      φ = x̃                        (the shared quadratic x̃ᵀΛx̃ is added apart)
#   diag:      φ = [x̃², x̃]                  (2d)
#   spherical: φ = [‖x̃‖², x̃]                (d + 1)
# E step: (x̃−μ̃_j)ᵀΛ_j(x̃−μ̃_j) = φ(x̃)ᵀa_j + μ̃_jᵀΛ_jμ̃_j, one (b, D)×(D, k) matmul.
# M step: Σ_i r_ij φ(x̃_i) are the sufficient statistics, one (k, b)×(b, D) matmul.

def _upper_pairs(d: int):
    return np.triu_indices(d)


def _features(Xc, covariance_type: str):
    """φ(x̃) for a block of shifted rows: (b, D)."""
    d = Xc.shape[1]
    if covariance_type == "full":
        quad = [Xc[:, i:i + 1] * Xc[:, i:] for i in range(d)]  # row-major i ≤ j, no gather
        return jnp.concatenate(quad + [Xc], axis=1)
    if covariance_type == "tied":
        return Xc
    if covariance_type == "diag":
        return jnp.concatenate([Xc * Xc, Xc], axis=1)
    return jnp.concatenate([jnp.sum(Xc * Xc, axis=1, keepdims=True), Xc], axis=1)


class _Quadratic(NamedTuple):
    """The E step's coefficients, precomputed from the parameters (all tiny).

    shift: (d,) subtracted from x and μ. A: (D, k) so that φ(x̃)ᵀA[:, j] + c_j is the
    squared Mahalanobis distance (for tied, plus ‖Pᵀx̃‖²). c: (k,). P: (d, d) L⁻ᵀ of the
    tied covariance (a (1, 1) placeholder otherwise). log_norm: (k,)
    log π_j − ½ log det Σ_j − (d/2) log 2π.
    """

    shift: jax.Array
    A: jax.Array
    c: jax.Array
    P: jax.Array
    log_norm: jax.Array


def _quadratic(params: GMMParams, shift) -> _Quadratic:
    w, mu, cov, covariance_type = params
    k, d = mu.shape
    dtype = mu.dtype
    mu_c = mu - shift
    P = jnp.zeros((1, 1), dtype)
    if covariance_type in ("full", "tied"):
        L = jnp.linalg.cholesky(cov)                                    # (k,d,d) or (d,d)
        eye = jnp.broadcast_to(jnp.eye(d, dtype=dtype), L.shape)
        Linv = solve_triangular(L, eye, lower=True)
        half_logdet = -jnp.sum(jnp.log(jnp.diagonal(L, axis1=-2, axis2=-1)), axis=-1)
        Lam = jnp.matmul(jnp.swapaxes(Linv, -1, -2), Linv, precision=_HI)   # Σ⁻¹
        if covariance_type == "full":
            Lam_mu = jnp.einsum("kde,ke->kd", Lam, mu_c, precision=_HI)     # (k, d)
            iu, ju = _upper_pairs(d)
            offdiag = jnp.asarray(np.where(iu == ju, 1.0, 2.0), dtype)
            A = jnp.concatenate([(Lam[:, iu, ju] * offdiag).T, -2.0 * Lam_mu.T], axis=0)
        else:
            Lam_mu = jnp.matmul(mu_c, Lam, precision=_HI)
            A = -2.0 * Lam_mu.T
            P = jnp.swapaxes(Linv, -1, -2)
            half_logdet = jnp.broadcast_to(half_logdet, (k,))
        c = jnp.sum(mu_c * Lam_mu, axis=1)
    else:
        prec = 1.0 / cov                                                  # (k, d) or (k,)
        if covariance_type == "diag":
            A = jnp.concatenate([prec.T, -2.0 * (mu_c * prec).T], axis=0)
            c = jnp.sum(mu_c * mu_c * prec, axis=1)
            half_logdet = 0.5 * jnp.sum(jnp.log(prec), axis=1)
        else:
            A = jnp.concatenate([prec[None, :], -2.0 * (mu_c * prec[:, None]).T], axis=0)
            c = jnp.sum(mu_c * mu_c, axis=1) * prec
            half_logdet = 0.5 * d * jnp.log(prec)
    log_norm = (jnp.log(jnp.maximum(w, jnp.finfo(dtype).tiny)) + half_logdet
                - 0.5 * d * LOG_2PI)
    return _Quadratic(shift, A, c, P, log_norm)


def _block_weighted_log_prob(F, Xc, q: _Quadratic, covariance_type: str):
    """log π_j + log N(x_i | μ_j, Σ_j) for a block: (b, k), from its features F (b, D)."""
    maha = jnp.matmul(F, q.A, precision=_HI) + q.c
    if covariance_type == "tied":
        Z = jnp.matmul(Xc, q.P, precision=_HI)
        maha = maha + jnp.sum(Z * Z, axis=1, keepdims=True)
    # the expansion can round below 0 for a point on top of a tight component
    return q.log_norm - 0.5 * jnp.maximum(maha, 0.0)


def _weighted_log_prob(X, params: GMMParams, block):
    """(n, k) log π_j + log N(x_i | μ_j, Σ_j), computed in row blocks."""
    (n, d), k = X.shape, params.means.shape[0]
    ct = params.covariance_type
    shift = jnp.einsum("k,kd->d", params.weights, params.means, precision=_HI)
    q = _quadratic(params, shift)

    def rows(Xb, mask):
        Xc = Xb - shift
        return _block_weighted_log_prob(_features(Xc, ct), Xc, q, ct)

    return map_rows(rows, X, block=_block_rows(n, k, _n_features(ct, d), block))


# ============================================================================ M step pieces

class _Stats(NamedTuple):
    """Sufficient statistics of the M step, accumulated around ``shift`` (x̃ = x − shift).

    nk: (k,) Σ_i r_ij. sF: (k, D) Σ_i r_ij φ(x̃_i). sxx: (d, d) Σ_i (Σ_j r_ij) x̃_i x̃_iᵀ for
    tied (a (1, 1) placeholder otherwise). ll: Σ_i log p(x_i) (fused E+M only).
    """

    nk: jax.Array
    sF: jax.Array
    sxx: jax.Array
    ll: jax.Array


def _block_stats(F, Xc, r, covariance_type: str, ll=None) -> _Stats:
    """One block's statistics; ``r`` (b, k) already zero on masked rows."""
    dtype = F.dtype
    if covariance_type == "tied":
        # Σ_i (Σ_j r_ij) x̃_i x̃_iᵀ: all the pooled scatter Σ_j Σ_i r_ij (x̃_i−μ̃_j)(x̃_i−μ̃_j)ᵀ
        # needs (equal to Σ_i x̃_i x̃_iᵀ, scikit-learn's, when the rows of r sum to 1)
        sxx = jnp.matmul((Xc * jnp.sum(r, axis=1, keepdims=True)).T, Xc, precision=_HI)
    else:
        sxx = jnp.zeros((1, 1), dtype)
    return _Stats(nk=jnp.sum(r, axis=0), sF=jnp.matmul(r.T, F, precision=_HI), sxx=sxx,
                  ll=jnp.zeros((), dtype) if ll is None else ll)


def _params_from_stats(st: _Stats, shift, reg_covar, covariance_type: str) -> GMMParams:
    """The M step from sufficient statistics (scikit-learn's estimators, 10·eps floor)."""
    d = shift.shape[0]
    dtype = st.sF.dtype
    floor = 10 * jnp.finfo(dtype).eps
    nk = st.nk + floor
    sx = st.sF[:, -d:]
    mu_c = sx / nk[:, None]
    reg = jnp.asarray(reg_covar, dtype)
    eye = jnp.eye(d, dtype=dtype)
    if covariance_type == "full":
        # Σ_i r_ij (x̃_i − μ̃_j)(x̃_i − μ̃_j)ᵀ / N_j, with N_j = Σ r + floor and μ̃ = sx/N_j
        iu, ju = _upper_pairs(d)
        col = np.zeros((d, d), dtype=np.int32)
        col[iu, ju] = np.arange(len(iu))
        col[ju, iu] = np.arange(len(iu))
        S = st.sF[:, col]                                                  # (k, d, d)
        outer = mu_c[:, :, None] * mu_c[:, None, :]
        cov = S / nk[:, None, None] - (1 + floor / nk)[:, None, None] * outer + reg * eye
    elif covariance_type == "tied":
        cov = (st.sxx - jnp.einsum("k,kd,ke->de", nk, mu_c, mu_c, precision=_HI)) / jnp.sum(nk)
        cov = 0.5 * (cov + cov.T) + reg * eye
    elif covariance_type == "diag":
        cov = jnp.maximum(st.sF[:, :d] / nk[:, None] - mu_c * mu_c, 0.0) + reg
    else:
        var = (st.sF[:, 0] / nk - jnp.sum(mu_c * mu_c, axis=1)) / d
        cov = jnp.maximum(var, 0.0) + reg
    return GMMParams(nk / jnp.sum(nk), mu_c + shift, cov, covariance_type)


# ============================================================================ compiled cores

@partial(jax.jit, static_argnames=("block",))
def _e_step(params, X, block=None):
    wlp = _weighted_log_prob(X, params, block)
    lpn = logsumexp(wlp, axis=1)
    return jnp.exp(wlp - lpn[:, None]), jnp.mean(lpn)


@partial(jax.jit, static_argnames=("covariance_type", "block"))
def _m_step(X, resp, reg_covar, covariance_type, block=None):
    n, d = X.shape
    k = resp.shape[1]
    shift = jnp.mean(X, axis=0)

    def stat(rows, mask):
        Xb, rb = rows
        Xc = Xb - shift
        return _block_stats(_features(Xc, covariance_type), Xc,
                            jnp.where(mask[:, None], rb, 0.0), covariance_type)

    st = fold_rows(stat, (X, resp), block=_block_rows(n, k, _n_features(covariance_type, d),
                                                        block))
    return _params_from_stats(st, shift, reg_covar, covariance_type)


def _em_step(params: GMMParams, X, shift, reg_covar, block):
    """One fused E+M step: one pass over X. Returns (new params, mean log-lik of old)."""
    n, d = X.shape
    k = params.means.shape[0]
    ct = params.covariance_type
    q = _quadratic(params, shift)
    st = fold_rows(partial(_em_block, q=q, shift=shift, covariance_type=ct), X,
                   block=_block_rows(n, k, _n_features(ct, d), block))
    return _params_from_stats(st, shift, reg_covar, ct), st.ll / n


def _em_block(Xb, mask, q: _Quadratic, shift, covariance_type: str) -> _Stats:
    """The fused E+M statistics of a block of rows (masked rows weigh nothing)."""
    Xc = Xb - shift
    F = _features(Xc, covariance_type)
    wlp = _block_weighted_log_prob(F, Xc, q, covariance_type)
    lpn = logsumexp(wlp, axis=1)
    r = jnp.exp(wlp - lpn[:, None]) * mask[:, None]   # (a select here measured ~15% slower)
    return _block_stats(F, Xc, r, covariance_type, jnp.sum(jnp.where(mask, lpn, 0.0)))


def _step(state: GMMState, X, reg_covar, shift, block) -> tuple[GMMState, GMMInfo]:
    params, ll = _em_step(state.params, X, shift, reg_covar, block)
    return GMMState(params, ll), GMMInfo(jnp.abs(ll - state.lower_bound), ll)


def _loop_step(state: GMMState, args, block=None) -> tuple[GMMState, GMMInfo]:
    X, reg_covar, shift = args
    return _step(state, X, reg_covar, shift, block)


@partial(jax.jit, static_argnames=("max_iter", "block", "adjoint"))
def _fit_from(X, params, tol, reg_covar, max_iter, block=None, adjoint=None) -> GMMResult:
    shift = jnp.mean(X, axis=0)
    out = fixed_point(partial(_loop_step, block=block), _init_state(params),
                      (X, jnp.asarray(reg_covar, X.dtype), shift), tol=tol, max_iter=max_iter,
                      adjoint=adjoint)
    p, ll = out.state
    finite = jnp.isfinite(ll)
    for leaf in (p.weights, p.means, p.covariances):
        finite = finite & jnp.all(jnp.isfinite(leaf))
    return GMMResult(p.weights, p.means, p.covariances, ll, out.n_iter, out.converged & finite,
                     out.trace.astype(X.dtype), p.covariance_type)


# ============================================================================ public API

@checks_on_outputs
def e_step(params: GMMParams, X) -> tuple[jax.Array, jax.Array]:
    """E step: responsibilities and the mean log-likelihood of ``params``.

        rᵢⱼ = exp(log πⱼ + log N(xᵢ | μⱼ, Σⱼ) − log p(xᵢ)),   log p(xᵢ) = logsumexpⱼ(·).

    Args:
        params: a :class:`GMMParams` (or :class:`GMMResult`); its ``covariance_type`` is
            the one used.
        X: (n, d) data.

    Returns:
        ``(resp, mean_log_likelihood)``: (n, k) rows summing to 1, and ()
        (1/n) Σᵢ log p(xᵢ).
    """
    X = _check_X(X)
    return _e_step(_check_params(params, X.dtype, X.shape[1]), X)


def m_step(X, resp, *, reg_covar=1e-6, covariance_type: str = "full") -> GMMParams:
    """M step: the parameters maximizing E_r[log p(X, z | θ)].

    Nⱼ = Σᵢ rᵢⱼ + 10ε, πⱼ = Nⱼ / Σₗ Nₗ, μⱼ = (1/Nⱼ) Σᵢ rᵢⱼ xᵢ,
    Σⱼ = (1/Nⱼ) Σᵢ rᵢⱼ (xᵢ − μⱼ)(xᵢ − μⱼ)ᵀ + λI (full); tied: the pooled scatter
    (1/Σⱼ Nⱼ) Σᵢⱼ rᵢⱼ (xᵢ − μⱼ)(xᵢ − μⱼ)ᵀ + λI; diag: the diagonal of the full estimate;
    spherical: the mean of the diagonal. These are scikit-learn's estimators (for tied,
    when the rows of ``resp`` sum to 1: scikit-learn uses Σᵢ xᵢxᵢᵀ whatever the row sums,
    which is not the pooled scatter otherwise and not shift-invariant). The sums run over
    row blocks (the ``_core`` row fold).

    Args:
        X: (n, d) data.
        resp: (n, k) non-negative responsibilities (rows normally sum to 1).
        reg_covar: () λ ≥ 0 added to the variances (may be traced).
        covariance_type: ``"full" | "tied" | "diag" | "spherical"`` (static).

    Returns:
        :class:`GMMParams` with weights (k,), means (k, d) and covariances of the type's shape.
    """
    X = _check_X(X)
    resp = _check_resp(resp, X)
    _check_covariance_type(covariance_type)
    reg_covar = check_nonnegative(reg_covar, "reg_covar")
    return _m_step(X, resp, reg_covar, covariance_type)


def init_state(params: GMMParams) -> GMMState:
    """The EM state before the first :func:`step`: ``params`` and a lower bound of −∞."""
    return _init_state(_check_params(params))


def _init_state(params: GMMParams) -> GMMState:
    return GMMState(params, jnp.asarray(-jnp.inf, params.means.dtype))


def step(state: GMMState, X: jax.Array, *, reg_covar=1e-6) -> tuple[GMMState, GMMInfo]:
    """One EM iteration (E step fused with the M step, one pass over X).

    Args:
        state: a :class:`GMMState` (see :func:`init_state`); the covariance type is
            ``state.params.covariance_type``.
        X: (n, d) data.
        reg_covar: () λ ≥ 0 (may be traced).

    Returns:
        ``(state, info)``: the new parameters with the mean log-likelihood of the *input*
        parameters (what the E step computed, as in :func:`fit`'s trace) as
        ``state.lower_bound``, and a :class:`GMMInfo` (``error`` = |Δ lower bound|,
        ``value`` = that log-likelihood).
    """
    X = _check_X(X)
    params = _check_params(state.params, X.dtype, X.shape[1])
    reg_covar = check_nonnegative(reg_covar, "reg_covar")
    lb = jnp.asarray(state.lower_bound, X.dtype)
    return _step_jit(GMMState(params, lb), X, jnp.asarray(reg_covar, X.dtype))


@jax.jit
def _step_jit(state, X, reg_covar):
    return _step(state, X, reg_covar, jnp.mean(X, axis=0), None)


def init(key, X, n_components: int, *, covariance_type: str = "full", method: str = "kmeans",
         reg_covar=1e-6) -> GMMParams:
    """Initial parameters, scikit-learn style: initial responsibilities, then one M step.

    Methods (``method``):

    * ``"kmeans"`` (scikit-learn's default): hard responsibilities from the labels of a
      k-means fit (:func:`jaxml.kmeans.fit` from k-means++ seeds);
    * ``"k-means++"``: each point assigned to its nearest k-means++ seed (no Lloyd steps;
      unlike scikit-learn, which gives each seed alone responsibility for its component);
    * ``"random"``: uniform random responsibilities, normalized per row.

    Args:
        key: a ``jax.random`` key.
        X: (n, d) data.
        n_components: k ≤ n (static).
        covariance_type: ``"full" | "tied" | "diag" | "spherical"`` (static).
        method: as above (static).
        reg_covar: () λ ≥ 0.

    Returns:
        :class:`GMMParams`.
    """
    from jaxml import kmeans  # noqa: PLC0415  (k-means is only needed to initialize)

    X = _check_X(X)
    n = X.shape[0]
    n_components = check_int_in_range(n_components, "n_components", 1, n)
    _check_covariance_type(covariance_type)
    reg_covar = check_nonnegative(reg_covar, "reg_covar")
    if method == "kmeans":
        labels = kmeans.fit(key, X, n_components).labels
        resp = jax.nn.one_hot(labels, n_components, dtype=X.dtype)
    elif method == "k-means++":
        centers = kmeans.plusplus_init(key, X, n_components)
        resp = jax.nn.one_hot(kmeans.predict(centers, X), n_components, dtype=X.dtype)
    elif method == "random":
        u = jax.random.uniform(key, (n, n_components), dtype=X.dtype)
        resp = u / jnp.sum(u, axis=1, keepdims=True)
    else:
        raise ValueError(f"method must be 'kmeans', 'k-means++' or 'random', got {method!r}")
    return _m_step(X, resp, reg_covar, covariance_type)


@checks_on_outputs
def fit(key, X, n_components: int, *, covariance_type: str | None = None, init_params=None,
        max_iter: int = 100, tol=1e-3, reg_covar=1e-6, init_method: str = "kmeans",
        block_size: int | None = None, adjoint: Adjoint | None = None) -> GMMResult:
    """Fit a Gaussian mixture by EM (scikit-learn's ``GaussianMixture(n_init=1)``).

    Runs :func:`init` (unless ``init_params`` is given), then EM steps under the shared
    bounded loop until the change of the mean log-likelihood is at most ``tol`` or
    ``max_iter`` iterations.

    Args:
        key: a ``jax.random`` key for :func:`init` (may be None when ``init_params`` is given).
        X: (n, d) data.
        n_components: k ≤ n (static).
        covariance_type: ``"full" | "tied" | "diag" | "spherical"`` (static); default
            ``init_params.covariance_type`` when ``init_params`` is given, else ``"full"``
            (a different value from ``init_params``' is an error).
        init_params: optional starting :class:`GMMParams` (like scikit-learn's
            ``weights_init``/``means_init``/``precisions_init``).
        max_iter: static bound on EM iterations (≥ 1).
        tol: () stop when |Δ lower bound| ≤ tol (may be traced); scikit-learn stops on
            ``< tol``, which differs only when the change equals ``tol`` exactly.
        reg_covar: () λ ≥ 0 added to the variances (may be traced).
        init_method: ``"kmeans" | "k-means++" | "random"``, see :func:`init`.
        block_size: rows per streamed block (static); default ~2¹⁶/(D + k) on CPU,
            2²²/(D + k) on an accelerator (D: feature width, d(d+1)/2 + d for full).
        adjoint: how ``jax.grad``/``jvp`` go through the fit (static). ``None``/``Implicit()``
            (default, same forward cost as ``Direct()``): implicit differentiation at the
            fixed point θ = EM(θ; X, λ) of the EM map, with respect to X and ``reg_covar``,
            for every covariance type; memory flat in ``max_iter``. The EM map is smooth
            (soft responsibilities: no ties), so the derivative exists wherever the fit
            converged; NaN when the fit or the adjoint's linear solve did not converge;
            derivatives are as accurate as the fit (the stopping rule reads
            the log-likelihood change, so use a small ``tol``, e.g. 1e-12, when they
            matter). ``Direct()``: the plain loop (forward mode through the steps);
            ``Unrolled()``: reverse mode through the steps taken.

    Returns:
        :class:`GMMResult` with weights (k,), means (k, d), covariances, lower_bound (),
        trace (max_iter,), n_iter, converged.
    """
    X = _check_X(X)
    n, d = X.shape
    n_components = check_int_in_range(n_components, "n_components", 1, n)
    if covariance_type is None:
        covariance_type = getattr(init_params, "covariance_type", "full")
    _check_covariance_type(covariance_type)
    max_iter, tol = check_loop_options(max_iter, tol)
    reg_covar = check_nonnegative(reg_covar, "reg_covar")
    if block_size is not None:
        check_int_in_range(block_size, "block_size", 1, 2**31 - 1)
    if init_params is None:
        if key is None:
            raise ValueError("key must be a PRNG key when init_params is None")
        params = init(key, X, n_components, covariance_type=covariance_type,
                      method=init_method, reg_covar=reg_covar)
    else:
        params = _check_params(init_params, X.dtype, d)
        if params.covariance_type != covariance_type:
            raise ValueError(f"covariance_type={covariance_type!r} but init_params has "
                             f"covariance_type={params.covariance_type!r}")
        if params.means.shape[0] != n_components:
            raise ValueError(f"init_params has {params.means.shape[0]} components, "
                             f"n_components is {n_components}")
    return _fit_from(X, params, tol, reg_covar, max_iter, block_size,
                     Implicit() if adjoint is None else adjoint)


@checks_on_outputs
def log_likelihood(params: GMMParams, X) -> jax.Array:
    """Per-sample log density log p(x_i) = logsumexp_j(log π_j + log N(x_i|μ_j, Σ_j)).

    Its mean is scikit-learn's ``score``; the values are ``score_samples``.

    Args:
        params: :class:`GMMParams` or :class:`GMMResult`.
        X: (n, d) points.

    Returns:
        (n,) log densities.
    """
    X = _check_X(X)
    return _log_likelihood(_check_params(params, X.dtype, X.shape[1]), X)


@jax.jit
def _log_likelihood(params, X):
    return logsumexp(_weighted_log_prob(X, params, None), axis=1)


@checks_on_outputs
def predict_proba(params: GMMParams, X) -> jax.Array:
    """Posterior component probabilities p(z_i = j | x_i): (n, k), rows summing to 1."""
    return e_step(params, X)[0]


@checks_on_outputs
def predict(params: GMMParams, X) -> jax.Array:
    """Most probable component of each row: (n,) int32 labels."""
    X = _check_X(X)
    return _predict(_check_params(params, X.dtype, X.shape[1]), X)


@jax.jit
def _predict(params, X):
    return jnp.argmax(_weighted_log_prob(X, params, None), axis=1).astype(jnp.int32)


def sample(key, params: GMMParams, n: int) -> tuple[jax.Array, jax.Array]:
    """Draw ``n`` points from the mixture: z ~ Categorical(π), x | z ~ N(μ_z, Σ_z).

    Args:
        key: a ``jax.random`` key.
        params: :class:`GMMParams` or :class:`GMMResult`.
        n: static number of draws.

    Returns:
        ``(X, z)``: (n, d) draws and their (n,) int32 components.
    """
    check_int_in_range(n, "n", 0, 2**31 - 1)
    return _sample(key, _check_params(params), n)


@partial(jax.jit, static_argnames=("n",))
def _sample(key, params, n):
    w, mu, cov, covariance_type = params
    k, d = mu.shape
    kz, kx = jax.random.split(key)
    logits = jnp.log(jnp.maximum(w, jnp.finfo(mu.dtype).tiny))
    z = jax.random.categorical(kz, logits, shape=(n,)).astype(jnp.int32)
    eps = jax.random.normal(kx, (n, d), dtype=mu.dtype)
    if covariance_type == "full":
        L = jnp.linalg.cholesky(cov)

        def add(j, noise):  # one component at a time: O(n·d) memory, not O(n·d²)
            return jnp.where((z == j)[:, None], jnp.matmul(eps, L[j].T, precision=_HI), noise)

        noise = lax.fori_loop(0, k, add, jnp.zeros_like(eps))
    elif covariance_type == "tied":
        noise = jnp.matmul(eps, jnp.linalg.cholesky(cov).T, precision=_HI)
    else:
        sd = jnp.sqrt(cov)
        noise = eps * (sd[z] if covariance_type == "diag" else sd[z][:, None])
    return mu[z] + noise, z


# ============================================================================ online EM

class OnlineGMMState(NamedTuple):
    """State of online EM: the parameters and the running sufficient statistics.

    Attributes:
        params: the current :class:`GMMParams` (the M step of the statistics).
        nk: (k,) running mean of rᵢⱼ per point.
        sF: (k, D) running mean of rᵢⱼ φ(x̃ᵢ) (the features of the batch E+M step).
        sxx: (d, d) running mean of (Σⱼ rᵢⱼ) x̃ᵢx̃ᵢᵀ for tied ((1, 1) otherwise).
        t: () int32, steps taken.
    """

    params: GMMParams
    nk: jax.Array
    sF: jax.Array
    sxx: jax.Array
    t: jax.Array


def online_step(key: jax.Array, state: OnlineGMMState, X: jax.Array, *, batch_size: int,
                shift, reg_covar=1e-6, step_offset=2.0,
                decay=0.6) -> tuple[OnlineGMMState, GMMInfo]:
    """One online-EM step (Cappé & Moulines 2009) on a minibatch drawn from X.

        s ← (1 − ρₜ) s + ρₜ · (1/B) Σ_{i∈B} E_{r(θ)}[φ(xᵢ)],   ρₜ = (t + t₀)^(−κ) (ρ₀ = 1),
        θ ← M(s)

    (the statistics are those of the batch EM step, around ``shift``).

    Args:
        key: a JAX PRNG key for the batch.
        state: an :class:`OnlineGMMState`.
        X: (n, d) data.
        batch_size: B, rows per batch (static).
        shift: (d,) the centre the statistics are accumulated around (e.g. the data mean).
        reg_covar: () λ ≥ 0 added to the variances.
        step_offset: t₀ ≥ 1 (traced).
        decay: κ ∈ (0.5, 1] (traced).

    Returns:
        ``(state, info)``; ``info.value`` is the batch's mean log-likelihood under the input
        parameters, ``info.error`` the largest change of a mean.
    """
    return _online_step(key, state, X, batch_size, shift, reg_covar, step_offset, decay)


@partial(jax.jit, static_argnames=("batch_size",))
def _online_step(key, state: OnlineGMMState, X, batch_size: int, shift, reg_covar, t0, kappa):
    dtype = X.dtype
    params = state.params
    ct = params.covariance_type
    Xb = X[jax.random.randint(key, (batch_size,), 0, X.shape[0])]
    Xc = Xb - shift
    F = _features(Xc, ct)
    wlp = _block_weighted_log_prob(F, Xc, _quadratic(params, shift), ct)
    lpn = logsumexp(wlp, axis=1)
    st = _block_stats(F, Xc, jnp.exp(wlp - lpn[:, None]), ct)
    t = state.t.astype(dtype)
    rho = jnp.where(state.t == 0, 1.0, (t + jnp.asarray(t0, dtype)) ** (-jnp.asarray(kappa, dtype)))
    mix = lambda old, new: (1 - rho) * old + rho * new / batch_size   # noqa: E731
    nk, sF, sxx = mix(state.nk, st.nk), mix(state.sF, st.sF), mix(state.sxx, st.sxx)
    new = _params_from_stats(_Stats(nk, sF, sxx, jnp.zeros((), dtype)), shift,
                             jnp.asarray(reg_covar, dtype), ct)
    err = jnp.max(jnp.abs(new.means - params.means))
    return OnlineGMMState(new, nk, sF, sxx, state.t + 1), GMMInfo(err, jnp.mean(lpn))


def _online_loop_step(state, args, batch_size):
    key, X, shift, reg_covar, t0, kappa = args
    return _online_step(jax.random.fold_in(key, state.t), state, X, batch_size, shift,
                        reg_covar, t0, kappa)


@partial(jax.jit, static_argnames=("batch_size", "n_steps"))
def _fit_online(key, X, params, tol, reg_covar, t0, kappa, batch_size: int, n_steps: int):
    d = X.shape[1]
    k = params.means.shape[0]
    ct = params.covariance_type
    shift = jnp.mean(X, axis=0)
    D = _n_features(ct, d)
    sxx = jnp.zeros((d, d) if ct == "tied" else (1, 1), X.dtype)
    state = OnlineGMMState(params, jnp.zeros((k,), X.dtype), jnp.zeros((k, D), X.dtype), sxx,
                           jnp.asarray(0, jnp.int32))
    out = fixed_point(partial(_online_loop_step, batch_size=batch_size), state,
                      (key, X, shift, reg_covar, t0, kappa), tol=tol, max_iter=n_steps)
    p = out.state.params
    wlp = _weighted_log_prob(X, p, None)
    lb = jnp.mean(logsumexp(wlp, axis=1))
    healthy = out.converged & jnp.isfinite(lb)
    return GMMResult(p.weights, p.means, p.covariances, lb, out.n_iter, healthy, out.trace, ct)


@checks_on_outputs
def fit_online(key, X, n_components: int, *, covariance_type: str | None = None,
               init_params=None, batch_size: int = 256, max_iter: int = 10, tol=0.0,
               reg_covar=1e-6, step_offset=2.0, decay=0.6) -> GMMResult:
    """Fit a Gaussian mixture by online EM (Cappé & Moulines 2009) over minibatches.

    Runs ``max_iter`` epochs of ⌈n / batch_size⌉ :func:`online_step` s: each E step sees
    one batch, the sufficient statistics are a stochastic approximation with step sizes
    ρₜ = (t + t₀)^(−κ), and the M step is the batch one. A step costs O(B·k·D), not O(n).

    Args:
        key: a JAX PRNG key (initialization, unless ``init_params`` is given, and batches).
        X: (n, d) data.
        n_components: k ≤ n (static).
        covariance_type: as in :func:`fit`.
        init_params: optional starting :class:`GMMParams`; default :func:`init` (k-means).
        batch_size: B (static).
        max_iter: epochs (static).
        tol: stop once a step moves no mean by more than ``tol`` (default 0: run the budget).
        reg_covar: () λ ≥ 0 added to the variances.
        step_offset: t₀ ≥ 1.
        decay: κ ∈ (0.5, 1] (the Robbins–Monro conditions).

    Returns:
        :class:`GMMResult`; ``lower_bound`` is the mean log-likelihood of all of X under the
        final parameters, ``trace`` the batch mean log-likelihood of each step.

    Reference:
        O. Cappé and E. Moulines, "On-line expectation–maximization algorithm for latent
        data models", JRSS B 71(3), 2009.
    """
    from jaxml._core import check_in_range
    batch_size = check_int_in_range(batch_size, "batch_size", 1, 2**31 - 1)
    max_iter, tol = check_loop_options(max_iter, tol)
    X = _check_X(X)
    n, d = X.shape
    n_components = check_int_in_range(n_components, "n_components", 1, n)
    covariance_type = _check_covariance_type(
        getattr(init_params, "covariance_type", "full") if covariance_type is None
        else covariance_type)
    reg_covar = check_nonnegative(reg_covar, "reg_covar")
    step_offset = check_in_range(step_offset, "step_offset", 1.0, float("inf"),
                                 low_open=False, high_open=True)
    decay = check_in_range(decay, "decay", 0.5, 1.0, low_open=True, high_open=False)
    if key is None:
        raise ValueError("key must be a PRNG key (it draws the batches)")
    k_init, k_batch = jax.random.split(key)
    if init_params is None:
        params = init(k_init, X, n_components, covariance_type=covariance_type,
                      reg_covar=reg_covar)
    else:
        params = _check_params(init_params, X.dtype, d)
        if params.covariance_type != covariance_type:
            raise ValueError(f"covariance_type={covariance_type!r} but init_params has "
                             f"covariance_type={params.covariance_type!r}")
    n_steps = max_iter * -(-n // batch_size)
    return _fit_online(k_batch, X, params, tol, reg_covar, step_offset, decay, batch_size,
                       n_steps)


__all__ += ["OnlineGMMState", "online_step", "fit_online"]


# ============================================================================ streamed

def _moments_chunk(rows, mask):
    """Rows, column sums and non-finite entries of a chunk (masked rows excluded)."""
    Xm = jnp.where(mask[:, None], rows, 0.0)
    return (jnp.sum(mask.astype(rows.dtype)), jnp.sum(Xm, axis=0),
            jnp.sum(~jnp.isfinite(Xm)).astype(jnp.int32))


# one hashable statistic per covariance type, so each compiles once per chunk shape
_EM_CHUNK = {ct: partial(_em_block, covariance_type=ct) for ct in COVARIANCE_TYPES}
_quadratic_jit = jax.jit(_quadratic)
_params_from_stats_jit = jax.jit(_params_from_stats, static_argnames=("covariance_type",))


@host_function
def fit_streamed(key, X, n_components: int, *, covariance_type: str | None = None,
                 init_params=None, max_iter: int = 100, tol=1e-3, reg_covar=1e-6,
                 init_method: str = "kmeans", block_size: int | None = None) -> GMMResult:
    """Fit a Gaussian mixture by EM over rows streamed from the host in chunks.

    The same iteration as :func:`fit` (the same fused E+M statistics around the data mean,
    the same stopping rule on the change of the mean log-likelihood), but each EM step is
    one pass of the ``_core`` row fold over host chunks: device memory holds one chunk and
    the (k, D) statistics, never X. Started from the same parameters it equals :func:`fit`
    on the concatenated rows to rounding, for every covariance type. A host function (a
    Python loop over host data): it cannot run under ``jit``/``vmap``/``grad``.

    Args:
        key: a ``jax.random`` key for :func:`init` on the *first chunk* (may be ``None``
            when ``init_params`` is given).
        X: the rows, as :func:`jaxml.data.chunks` of (m, d) arrays (or anything it accepts:
            a list of arrays, a memory-mapped ``.npy``, a callable returning an iterable).
        n_components: k (static; at most the first chunk's rows when initializing from it).
        covariance_type: as in :func:`fit`.
        init_params: optional starting :class:`GMMParams`.
        max_iter: bound on EM iterations (passes over the data).
        tol: stop when |Δ lower bound| ≤ tol.
        reg_covar: () λ ≥ 0 added to the variances.
        init_method: as in :func:`init` (used only without ``init_params``).
        block_size: rows per block within a chunk (static); default as in :func:`fit`.

    Returns:
        :class:`GMMResult` (``trace`` (max_iter,) on the host device).

    Raises:
        ValueError: a chunk's width or dtype differs from the first chunk's (the message
            names the chunk), or X contains NaN or inf.
    """
    source = X if isinstance(X, Chunks) else Chunks(X)
    max_iter, tol = check_loop_options(max_iter, tol)
    reg_covar = check_nonnegative(reg_covar, "reg_covar")
    if block_size is not None:
        check_int_in_range(block_size, "block_size", 1, 2**31 - 1)
    first = first_chunk(source)
    first = _check_X(first, "the first chunk of X")
    d, dtype = first.shape[1], first.dtype
    if covariance_type is None:
        covariance_type = getattr(init_params, "covariance_type", "full")
    ct = _check_covariance_type(covariance_type)
    if init_params is None:
        if key is None:
            raise ValueError("key must be a PRNG key when init_params is None")
        params = init(key, first, n_components, covariance_type=ct, method=init_method,
                      reg_covar=reg_covar)
    else:
        params = _check_params(init_params, dtype, d)
        if params.covariance_type != ct:
            raise ValueError(f"covariance_type={ct!r} but init_params has "
                             f"covariance_type={params.covariance_type!r}")
        if params.means.shape[0] != check_int_in_range(n_components, "n_components", 1,
                                                       2**31 - 1):
            raise ValueError(f"init_params has {params.means.shape[0]} components, "
                             f"n_components is {n_components}")
    k = params.means.shape[0]
    n, s1, bad = fold_chunks(_moments_chunk, source)
    if int(bad):
        raise ValueError("X contains NaN or inf (in some chunk)")
    shift = s1 / n
    block = _block_rows(source.chunk_size, k, _n_features(ct, d), block_size)
    reg = jnp.asarray(reg_covar, dtype)
    trace = np.full((max_iter,), np.nan)
    lb, converged, it = -np.inf, False, 0
    for it in range(1, max_iter + 1):
        st = fold_chunks(_EM_CHUNK[ct], source, args=(_quadratic_jit(params, shift), shift),
                         block=block)
        ll = float(st.ll / n)
        params = _params_from_stats_jit(st, shift, reg, covariance_type=ct)
        trace[it - 1], change, lb = ll, abs(ll - lb), ll
        if change <= float(tol):
            converged = True
            break
    finite = np.isfinite(lb) and all(bool(jnp.all(jnp.isfinite(a))) for a in params[:3])
    return GMMResult(params.weights, params.means, params.covariances, jnp.asarray(lb, dtype),
                     jnp.asarray(it, jnp.int32), jnp.asarray(converged and finite),
                     jnp.asarray(trace, dtype), ct)


__all__ += ["fit_streamed"]
