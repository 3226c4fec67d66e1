"""Variational relevance vector machine for binary labels (ARD prior, local reparameterization).

Model (labels yᵢ ∈ {−1, +1}, basis functions φ(x) ∈ ℝᵐ), as in Tipping (2001)::

    p(yᵢ | xᵢ, w) = σ(yᵢ wᵀφ(xᵢ)),        p(w | α) = N(w | 0, diag(α)⁻¹),

with **α the prior precisions** (Tipping's parametrization: αⱼ → ∞ switches basis function j
off). The posterior is approximated by q(w) = N(μ, Σ), Σ diagonal or full (a
:class:`jaxml.vi.MeanFieldGaussian` or :class:`jaxml.vi.FullRankGaussian`), and (q, α)
maximize the evidence lower bound

    ELBO(q, α) = Σᵢ E_q log σ(yᵢ wᵀφᵢ) − KL(q(w) ‖ N(0, diag(α)⁻¹)),
    KL = ½ Σⱼ [ αⱼ(Σⱼⱼ + μⱼ²) − 1 − log αⱼ ] − ½ log det Σ   (:mod:`jaxml.gaussian`'s KL).

*Local reparameterization.* Each expectation is one-dimensional: uᵢ = wᵀφᵢ ~ N(φᵢᵀμ, φᵢᵀΣφᵢ),
so it is estimated by sampling uᵢ directly, one independent εᵢ per data point, instead of
sampling w (which couples all n terms through the same draw and so has a larger variance):
the :class:`jaxml.vi.LocalReparameterization` ELBO estimator. A deterministic Gauss–Hermite
rule is offered too (the same estimator with ``n_nodes`` set).

*α step.* For fixed q the ELBO is maximized over α in closed form, ∂KL/∂αⱼ = 0 ⇔

    1/αⱼ = μⱼ² + Σⱼⱼ,

(the EM / variational ARD update). Basis functions that do not help the likelihood see αⱼ
grow without bound; those with threshold · αⱼ ≥ minₖ αₖ are pruned (the ``relevant`` mask is
the complement): what remains are the relevance vectors.

*q step.* Between α updates, q is moved by ``n_inner`` Adam steps on the local-reparameterized
ELBO, in whitened coordinates w = diag(α)^(−½) ν (so ν has a N(0, I) prior): the step sizes
then scale with each prior width, and after every α update ν̄ⱼ² + Sⱼⱼ = 1 exactly, so pruned
weights stay well conditioned as αⱼ → ∞. The ELBO trace is evaluated after each α update with a
deterministic Gauss–Hermite rule (independent of the Monte Carlo noise of the q step).

With ``kernel`` set (a :class:`jaxml.kernels.Kernel`) the basis is
φ(x) = (1, k(x, x₁), …, k(x, xₙ)), the kernel RVM on the training points with the bias first
as in Tipping (2001); with ``kernel=None`` it is (1, x). With ``bias=False`` the leading 1 is
dropped. So with a bias, ``mean[0]``, ``alpha[0]``, ``relevant[0]`` are the bias's and
``relevant[1:]`` marks the relevance vectors, ``basis[relevant[1:]]``.

Prediction integrates w out: p(y = +1 | x) = E σ(wᵀφ(x)) with wᵀφ ~ N(m, s²), computed by
MacKay's probit approximation σ(m / √(1 + π s²/8)) (``method="probit"``) or by Gauss–Hermite
quadrature (``method="gh"``). Pruned basis functions are dropped (their weight set to 0).

Cost: O(n m) per Adam step for the diagonal q, O(n m²) for the full one; m = d (+1) or n (+1).

References:
    M. E. Tipping, "Sparse Bayesian learning and the relevance vector machine", JMLR 1 (2001).
    C. M. Bishop & M. E. Tipping, "Variational relevance vector machines", UAI (2000).
    D. P. Kingma, T. Salimans & M. Welling, "Variational dropout and the local
    reparameterization trick", NeurIPS (2015).
    D. J. C. MacKay, "The evidence framework applied to classification networks", Neural
    Computation 4 (1992) — the probit approximation of the predictive.
"""

from __future__ import annotations

from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxml import gaussian, vi
from jaxml._core import (
    Adjoint, Implicit, check_int, check_labels, check_loop_options, check_matrix,
    check_positive, check_same_length, check_value, fixed_point, float_dtype,
    log_cholesky_from_tril, safe_cholesky, train,
)
from jaxml.kernels import Kernel, gram

__all__ = [
    "RVMResult", "RVMState", "RVMInfo", "design_matrix", "local_moments",
    "gauss_hermite_log_sigmoid", "expected_log_likelihood", "kl_divergence", "optimal_alpha",
    "elbo", "relevant_mask", "stopping_error", "init", "step", "fit", "decision_moments",
    "predict_proba", "predict",
]

_COVARIANCES = ("diag", "full")
_ESTIMATORS = ("local", "weights", "gh")


class RVMState(NamedTuple):
    """State of the alternating (q, α) iteration.

    Attributes:
        mean: (m,) posterior mean μ.
        factor: (m,) posterior standard deviations (``covariance="diag"``) or (m, m) lower
            Cholesky factor L of Σ = L Lᵀ (``covariance="full"``).
        alpha: (m,) prior precisions α.
        elbo_history: (2W,) the last 2W ELBO values, oldest first (NaN before they exist);
            W = ``window``.
        n_stable: () int32, consecutive iterations the ``relevant`` set has not changed.
    """

    mean: jax.Array
    factor: jax.Array
    alpha: jax.Array
    elbo_history: jax.Array
    n_stable: jax.Array


class RVMInfo(NamedTuple):
    """What one :func:`step` reports: ``error`` () the :func:`stopping_error`, ``value`` ()
    the ELBO after the α update (Gauss–Hermite)."""

    error: jax.Array
    value: jax.Array


class RVMResult(NamedTuple):
    """A fitted RVM (a pytree: it crosses ``jit`` and stacks under ``vmap``).

    Attributes:
        mean: (m,) posterior mean μ of the weights (``mean[0]`` is the bias if ``bias``).
        covariance: (m,) posterior variances (diagonal q) or (m, m) posterior covariance Σ.
        alpha: (m,) prior precisions α at the optimum (Tipping's α).
        relevant: (m,) bool, threshold · αⱼ < minₖ αₖ (the kept basis functions; with a bias,
            ``relevant[0]`` is the bias's and ``relevant[1:]`` the basis functions').
        elbo: () the ELBO after the last α update (Gauss–Hermite).
        trace: (max_iter,) ELBO after each α update; NaN past ``n_iter``.
        n_iter: () int32 number of outer (q step + α update) iterations.
        converged: () bool, the stopping rule of :func:`fit` held at the last iteration
            (windowed relative ELBO change ≤ tol with an unchanged relevant set).
        basis: (n, d) training inputs the kernel is centred on (``None`` without a kernel).
        kernel: the :class:`jaxml.kernels.Kernel`, or ``None`` (features used as given).
    """

    mean: jax.Array
    covariance: jax.Array
    alpha: jax.Array
    relevant: jax.Array
    elbo: jax.Array
    trace: jax.Array
    n_iter: jax.Array
    converged: jax.Array
    basis: Any
    kernel: Any


# ----------------------------------------------------------------------------- basis functions

def design_matrix(X: jax.Array, *, kernel=None, basis=None, bias: bool = True) -> jax.Array:
    """The basis-function matrix Φ, bias column first (Tipping 2001).

    Args:
        X: (n, d) inputs.
        kernel: ``None`` (Φ = X) or a :class:`jaxml.kernels.Kernel` (Φ = k(X, basis)).
        basis: (n_b, d) points the kernel is centred on (required with a kernel).
        bias: prepend a column of ones.

    Returns:
        (n, m) with m = (1 +) d or (1 +) n_b.
    """
    return _design_matrix_jit(X, kernel, basis, bias=bool(bias))


def _design_matrix(X, kernel, basis, *, bias):
    Phi = X if kernel is None else gram(kernel, X, basis).astype(X.dtype)
    if bias:
        Phi = jnp.concatenate([jnp.ones((Phi.shape[0], 1), Phi.dtype), Phi], axis=1)
    return Phi


_design_matrix_jit = jax.jit(_design_matrix, static_argnames=("bias",))

# ----------------------------------------------------------------------------- expectations

def _variance_along_rows(covariance: jax.Array, Phi: jax.Array) -> jax.Array:
    """φᵢᵀ Σ φᵢ for each row φᵢ of Phi (n, m); Σ is (m,) diagonal or (m, m)."""
    if covariance.ndim == 1:
        return (Phi * Phi) @ covariance
    return jnp.einsum("ij,jk,ik->i", Phi, covariance, Phi)


def local_moments(mean: jax.Array, covariance: jax.Array, Phi: jax.Array,
                  y: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Moments of uᵢ = yᵢ wᵀφᵢ under w ~ N(μ, Σ): (yᵢ μᵀφᵢ, φᵢᵀ Σ φᵢ).

    Args:
        mean: (m,) μ. covariance: (m,) diagonal of Σ or (m, m) Σ.
        Phi: (n, m) basis functions. y: (n,) labels ±1.

    Returns:
        (n,) means and (n,) variances (the variance does not depend on yᵢ, since yᵢ² = 1).
    """
    return _local_moments_jit(mean, covariance, Phi, y)


def _local_moments(mean, covariance, Phi, y):
    return y * (Phi @ mean), _variance_along_rows(covariance, Phi)


_local_moments_jit = jax.jit(_local_moments)


def _gh_expect(f, mean, var, n_nodes: int):
    """E f(u), u ~ N(mean, var) elementwise, by Gauss–Hermite."""
    t, w = vi.gauss_hermite_nodes(n_nodes, jnp.result_type(mean, var))
    pos = var > 0          # √ with a zero slope at var = 0 (an all-zero row of Φ)
    sd = jnp.where(pos, jnp.sqrt(jnp.where(pos, var, 1.0)), 0.0)
    return jnp.sum(w * f(mean[..., None] + sd[..., None] * t), axis=-1)


def gauss_hermite_log_sigmoid(mean: jax.Array, var: jax.Array, *, n_nodes: int = 32) -> jax.Array:
    """E log σ(u), u ~ N(mean, var), by ``n_nodes``-point Gauss–Hermite quadrature (elementwise).

    E f(u) ≈ Σₖ wₖ f(mean + √var tₖ) with (tₖ, wₖ) = :func:`jaxml.vi.gauss_hermite_nodes`.
    """
    return _gauss_hermite_log_sigmoid_jit(mean, var, n_nodes=int(n_nodes))


def _gauss_hermite_log_sigmoid(mean, var, *, n_nodes):
    return _gh_expect(jax.nn.log_sigmoid, mean, var, n_nodes)


_gauss_hermite_log_sigmoid_jit = jax.jit(_gauss_hermite_log_sigmoid,
                                         static_argnames=("n_nodes",))


def _log_likelihood(y):
    """u (n,) -> Σᵢ log σ(yᵢ uᵢ): the logistic log-likelihood of the linear predictors."""
    return lambda u: jnp.sum(jax.nn.log_sigmoid(y * u))


def _family(mean, covariance):
    """q = N(mean, covariance) as a vi family (diagonal (m,) or full (m, m) covariance)."""
    if covariance.ndim == 1:
        return vi.MeanFieldGaussian(mean, 0.5 * jnp.log(covariance))
    return vi.FullRankGaussian(mean, log_cholesky_from_tril(safe_cholesky(covariance)))


def expected_log_likelihood(key, mean: jax.Array, covariance: jax.Array, Phi: jax.Array,
                            y: jax.Array, *, estimator: str = "local",
                            n_samples: int = 1, n_nodes: int = 32) -> jax.Array:
    """An estimate of Σᵢ E_{w~N(μ,Σ)} log σ(yᵢ wᵀφᵢ).

    Estimators:
        ``"local"``: local reparameterization (:class:`jaxml.vi.LocalReparameterization`) —
        uᵢ ~ N(μᵀφᵢ, φᵢᵀΣφᵢ) drawn independently for every i (``n_samples`` draws each);
        unbiased.
        ``"weights"``: ``n_samples`` weight draws w = μ + L ε shared by all n terms
        (:class:`jaxml.vi.AnalyticKL`'s sampler); unbiased, larger variance (the n terms are
        positively correlated through w).
        ``"gh"``: deterministic Gauss–Hermite quadrature on each uᵢ (``key`` is ignored).

    Args:
        key: PRNG key. mean: (m,). covariance: (m,) diagonal or (m, m). Phi: (n, m). y: (n,).

    Returns:
        () the estimate.
    """
    if estimator not in _ESTIMATORS:
        raise ValueError(f"estimator must be one of {_ESTIMATORS}, got {estimator!r}")
    return _expected_ll_jit(key, mean, covariance, Phi, y, estimator=estimator,
                            n_samples=int(n_samples), n_nodes=int(n_nodes))


def _expected_ll(key, mean, covariance, Phi, y, *, estimator, n_samples, n_nodes):
    q = _family(mean, covariance)
    ll = _log_likelihood(y)
    if estimator == "weights":
        return vi.AnalyticKL().expected_log_likelihood(key, lambda w: ll(Phi @ w), q, n_samples)
    est = vi.LocalReparameterization(Phi, n_nodes=n_nodes if estimator == "gh" else None)
    return est.expected_log_likelihood(key, ll, q, n_samples)


_expected_ll_jit = jax.jit(_expected_ll, static_argnames=("estimator", "n_samples", "n_nodes"))


def kl_divergence(mean: jax.Array, covariance: jax.Array, alpha: jax.Array) -> jax.Array:
    """KL(N(μ, Σ) ‖ N(0, diag(α)⁻¹)) = ½ Σⱼ[αⱼ(Σⱼⱼ + μⱼ²) − 1 − log αⱼ] − ½ log det Σ.

    Computed by :mod:`jaxml.gaussian` in whitened coordinates (KL is invariant under the
    map w ↦ diag(√α) w, which takes the prior to N(0, I)).

    Args:
        mean: (m,). covariance: (m,) diagonal or (m, m). alpha: (m,) prior precisions.
    """
    return _kl_jit(mean, covariance, alpha)


@jax.jit
def _kl_jit(mean, covariance, alpha):
    d = jnp.sqrt(alpha)
    if covariance.ndim == 1:
        return gaussian.kl_diag_standard_normal(d * mean, jnp.log(covariance) + jnp.log(alpha))
    m = mean.shape[0]
    return gaussian.kl_divergence(d * mean, d[:, None] * covariance * d[None, :],
                                  jnp.zeros(m, mean.dtype), jnp.eye(m, dtype=mean.dtype))


def optimal_alpha(mean: jax.Array, covariance: jax.Array) -> jax.Array:
    """argmax_α ELBO(q, α) = argmin_α KL(q ‖ N(0, diag(α)⁻¹)): αⱼ = 1/(μⱼ² + Σⱼⱼ). Shape (m,)."""
    return _optimal_alpha_jit(mean, covariance)


def _optimal_alpha(mean, covariance):
    diag = covariance if covariance.ndim == 1 else jnp.diagonal(covariance)
    return 1.0 / (mean ** 2 + diag)


_optimal_alpha_jit = jax.jit(_optimal_alpha)


def elbo(key, mean: jax.Array, covariance: jax.Array, alpha: jax.Array, Phi: jax.Array,
         y: jax.Array, *, estimator: str = "gh", n_samples: int = 1) -> jax.Array:
    """ELBO(q, α) = Σᵢ E_q log σ(yᵢ wᵀφᵢ) − KL(q ‖ N(0, diag(α)⁻¹)); see
    :func:`expected_log_likelihood` for the estimators. Shapes as there; returns ()."""
    if estimator not in _ESTIMATORS:
        raise ValueError(f"estimator must be one of {_ESTIMATORS}, got {estimator!r}")
    return _elbo_jit(key, mean, covariance, alpha, Phi, y, estimator=estimator,
                     n_samples=int(n_samples))


def _elbo(key, mean, covariance, alpha, Phi, y, *, estimator, n_samples):
    return (_expected_ll(key, mean, covariance, Phi, y, estimator=estimator,
                         n_samples=n_samples, n_nodes=32)
            - _kl_jit(mean, covariance, alpha))


_elbo_jit = jax.jit(_elbo, static_argnames=("estimator", "n_samples"))


def relevant_mask(alpha: jax.Array, threshold) -> jax.Array:
    """(m,) bool: threshold · αⱼ < minₖ αₖ, i.e. the prior variance 1/αⱼ exceeds ``threshold``
    times the largest one (the basis functions the ARD prior keeps)."""
    return _relevant_mask_jit(alpha, threshold)


def _relevant_mask(alpha, threshold):
    return threshold * alpha < jnp.min(alpha)


_relevant_mask_jit = jax.jit(_relevant_mask)


# ----------------------------------------------------------------------------- the fit

def _check_options(*, covariance="diag", estimator="local"):
    for name, val, allowed in (("covariance", covariance, _COVARIANCES),
                               ("estimator", estimator, ("local", "gh"))):
        if val not in allowed:
            raise ValueError(f"{name} must be one of {allowed}, got {val!r}")


def _covariance_from_factor(factor):
    return factor ** 2 if factor.ndim == 1 else factor @ factor.T


def _diag_from_factor(factor):
    return factor ** 2 if factor.ndim == 1 else jnp.sum(factor ** 2, axis=1)


def _variance_floor(dtype):
    return jnp.asarray(np.sqrt(np.finfo(dtype).tiny), dtype)


def init(Phi: jax.Array, *, covariance: str = "diag", alpha_init=1.0, init_scale=1.0,
         window: int = 10) -> RVMState:
    """Start at α = ``alpha_init`` (precisions), μ = 0 and Σ = ``init_scale``² · diag(α)⁻¹
    (q = prior when ``init_scale`` = 1).

    Args:
        Phi: (n, m) basis functions (only m and the dtype are used).
        covariance: ``"diag"`` or ``"full"``.
        window: W, the stopping rule's window (static): the state keeps the last 2W ELBOs.
    """
    if covariance not in _COVARIANCES:
        raise ValueError(f"covariance must be one of {_COVARIANCES}, got {covariance!r}")
    return _init_jit(Phi, alpha_init, init_scale, covariance=covariance, window=int(window))


def _init(Phi, alpha_init, init_scale, *, covariance, window):
    dtype = Phi.dtype
    m = Phi.shape[1]
    alpha = jnp.full((m,), alpha_init, dtype)
    scale = jnp.asarray(init_scale, dtype) / jnp.sqrt(alpha)
    factor = scale if covariance == "diag" else jnp.diag(scale)
    return RVMState(jnp.zeros((m,), dtype), factor, alpha,
                    jnp.full((2 * int(window),), jnp.nan, dtype), jnp.int32(0))


_init_jit = jax.jit(_init, static_argnames=("covariance", "window"))


def _whitened_q(state: RVMState, s: jax.Array):
    """q of ν = w / s (s = α^(−½)) as a vi family: prior N(0, I)."""
    nu = state.mean / s
    if state.factor.ndim == 1:
        return vi.MeanFieldGaussian(nu, jnp.log(state.factor / s))
    return vi.FullRankGaussian(nu, log_cholesky_from_tril(state.factor / s[:, None]))


def stopping_error(elbo_history: jax.Array, n_stable: jax.Array) -> jax.Array:
    """The error :func:`fit` stops on: windowed relative ELBO change, or ∞ while undecided.

    With the last 2W ELBO values split into an older and a newer window of W (means Ē₀, Ē₁),

        error = |Ē₁ − Ē₀| / (W · |Ē₁|),

    the average relative change of the ELBO per outer iteration over the last 2W iterations
    (averaging over W iterations damps the Monte Carlo jitter of the q step). The error is ∞
    before 2W iterations, and while the relevant set changed within the last W iterations
    (``n_stable`` < W): pruning still under way is not convergence.

    Args:
        elbo_history: (2W,) oldest first. n_stable: () int.
    """
    return _stopping_error_jit(elbo_history, n_stable)


def _stopping_error(elbo_history, n_stable):
    w = elbo_history.shape[0] // 2
    old, new = jnp.mean(elbo_history[:w]), jnp.mean(elbo_history[w:])
    err = jnp.abs(new - old) / (w * jnp.abs(new))
    ready = jnp.all(jnp.isfinite(elbo_history)) & (n_stable >= w)
    return jnp.where(ready, err, jnp.inf)


_stopping_error_jit = jax.jit(_stopping_error)


def step(key: jax.Array, state: RVMState, Phi: jax.Array, y: jax.Array, *, n_inner: int = 50,
         learning_rate=0.05, n_samples: int = 4, estimator: str = "local",
         threshold=1e-3) -> tuple[RVMState, RVMInfo]:
    """One outer iteration: ``n_inner`` Adam steps on q, then the closed-form α update.

    The q step maximizes the :class:`jaxml.vi.LocalReparameterization` ELBO of the whitened
    weights ν = diag(α)^(½) w (a :class:`jaxml.vi.MeanFieldGaussian` or
    :class:`jaxml.vi.FullRankGaussian` with a N(0, I) prior) with :func:`jaxml._core.train`.

    Args:
        key: PRNG key for the q step's draws.
        state: the current :class:`RVMState`. Phi: (n, m) basis functions. y: (n,) labels ±1.
        n_inner: Adam steps per α update (static). learning_rate: Adam step size (traced).
        n_samples: local-reparameterization draws per data point and step (static).
        estimator: ``"local"`` (Monte Carlo, local reparameterization) or ``"gh"``
            (deterministic Gauss–Hermite) for the q-step objective.
        threshold: relative prior variance below which a weight counts as pruned.

    Returns:
        ``(state, info)``: the new :class:`RVMState` and :class:`RVMInfo` (error =
        :func:`stopping_error` of the updated ELBO history, ∞ if the q step met a
        non-finite loss or gradient or the ELBO is not finite; value = the ELBO after the
        update by Gauss–Hermite quadrature).
    """
    _check_options(estimator=estimator)
    return _step_jit(key, state, Phi, y, learning_rate=learning_rate, threshold=threshold,
                     n_inner=int(n_inner), n_samples=int(n_samples), estimator=estimator)


def _step(key, state, Phi, y, *, n_inner, learning_rate, n_samples, estimator, threshold):
    s = jax.lax.rsqrt(state.alpha)                      # prior standard deviations
    est = vi.LocalReparameterization(Phi * s, n_nodes=32 if estimator == "gh" else None)
    ll = _log_likelihood(y)
    n = int(n_samples)

    def loss(q, k):
        return -est.surrogate(k, ll, q, n)

    inner = train(key, loss, _whitened_q(state, s), optimizer=optax.adam(learning_rate),
                  n_steps=int(n_inner))
    q = inner.params
    mean = s * q.loc
    if state.factor.ndim == 1:
        factor = s * q.scale
    else:
        factor = s[:, None] * q.scale_tril
    var = jnp.maximum(mean ** 2 + _diag_from_factor(factor), _variance_floor(Phi.dtype))
    alpha = 1.0 / var
    value = _elbo(None, mean, _covariance_from_factor(factor), alpha, Phi, y, estimator="gh",
                  n_samples=1)
    same = jnp.all(relevant_mask(alpha, threshold) == relevant_mask(state.alpha, threshold))
    n_stable = jnp.where(same, state.n_stable + 1, 0).astype(jnp.int32)
    history = jnp.append(state.elbo_history[1:], value.astype(state.elbo_history.dtype))
    new = RVMState(mean, factor, alpha, history, n_stable)
    # a q step that met a non-finite loss or gradient, or a non-finite ELBO, never converges
    healthy = inner.finite & jnp.isfinite(value)
    error = jnp.where(healthy, stopping_error(history, n_stable), jnp.inf)
    return new, RVMInfo(error, value)


_step_jit = jax.jit(_step, static_argnames=("n_inner", "n_samples", "estimator"))


def _loop_step(carry, args, *, n_inner, n_samples, estimator):
    """The fixed-point map: the RVM step with its key carried and split in the loop."""
    key, state = carry
    Phi, y, learning_rate, threshold = args
    key, sub = jax.random.split(key)
    state, info = _step(sub, state, Phi, y, n_inner=n_inner, learning_rate=learning_rate,
                       n_samples=n_samples, estimator=estimator, threshold=threshold)
    return (key, state), info


@partial(jax.jit, static_argnames=("bias", "covariance", "max_iter", "n_inner", "n_samples",
                                   "estimator", "window", "adjoint"))
def _fit(key, X, y, kernel, *, bias, covariance, max_iter, n_inner, learning_rate, n_samples,
         estimator, tol, alpha_init, init_scale, threshold, window, adjoint):
    basis = None if kernel is None else X
    Phi = _design_matrix(X, kernel, basis, bias=bias)
    y = y.astype(Phi.dtype)
    state = _init(Phi, alpha_init, init_scale, covariance=covariance, window=window)
    body = partial(_loop_step, n_inner=n_inner, n_samples=n_samples, estimator=estimator)
    res = fixed_point(body, (key, state), (Phi, y, learning_rate, threshold), tol=tol,
                      max_iter=max_iter, adjoint=adjoint)
    s = res.state[1]
    return RVMResult(
        mean=s.mean, covariance=_covariance_from_factor(s.factor), alpha=s.alpha,
        relevant=relevant_mask(s.alpha, threshold), elbo=s.elbo_history[-1],
        trace=res.trace.astype(Phi.dtype), n_iter=res.n_iter, converged=res.converged,
        basis=basis, kernel=kernel)


def fit(key, X, y, *, kernel=None, bias: bool = True, covariance: str = "diag",
        max_iter: int = 200, n_inner: int = 50, learning_rate=0.05, n_samples: int = 4,
        estimator: str = "local", tol=5e-4, window: int = 10, alpha_init=1.0, init_scale=1.0,
        threshold=1e-3, adjoint: Adjoint | None = None) -> RVMResult:
    """Fit a (kernel) relevance vector machine by variational inference with ARD.

    Alternates ``n_inner`` Adam steps on q(w) = N(μ, Σ) (the ELBO's Σᵢ E log σ(uᵢ) estimated
    by local reparameterization, ``n_samples`` draws per point, or by Gauss–Hermite with
    ``estimator="gh"``) with the closed-form update αⱼ = 1/(μⱼ² + Σⱼⱼ), for at most
    ``max_iter`` outer iterations: init + ``fixed_point`` + :func:`step`.

    Stopping rule: the ELBO after each α update is computed deterministically (Gauss–Hermite,
    so it is free of the q step's Monte Carlo noise, though q itself jitters). The fit stops,
    ``converged=True``, once over the last 2W iterations (W = ``window``)

        |Ē_new − Ē_old| / (W · |Ē_new|) ≤ tol    and    the relevant set is unchanged
                                                    for the last W iterations,

    Ē_old, Ē_new the mean ELBO over the older and the newer W (:func:`stopping_error`): the
    ELBO rises by at most a fraction ``tol`` per iteration on average and pruning has
    stopped. The α of pruned weights keep growing forever (≈ linearly) but add almost
    nothing to the ELBO, so they do not block convergence; a change of which weights are
    relevant does. Fewer than 2W iterations can never report convergence.

    Args:
        key: PRNG key (Monte Carlo draws).
        X: (n, d) inputs (standardize them; the prior is isotropic in the basis).
        y: (n,) labels in {−1, +1}.
        kernel: ``None`` (features as given) or a :class:`jaxml.kernels.Kernel`
            (``RBF(gamma)``, …): basis functions k(·, xᵢ) on the n training points.
        bias: prepend a constant basis function (its α is learnt like the others).
        covariance: ``"diag"`` (mean-field q) or ``"full"`` (Cholesky-parametrized q).
        tol: the stopping tolerance above (relative ELBO change per iteration).
        window: W above (static).
        max_iter, n_inner, n_samples: static loop sizes.
        learning_rate: Adam's step size in the q step (traced, finite, > 0).
        alpha_init: the initial prior precision (traced, > 0).
        init_scale, threshold: traced numbers (> 0; a ``vmap`` over them, or over
            learning_rate, tol and alpha_init, does not recompile).
        adjoint: how the outer loop is differentiated. ``Direct()`` (default, forward mode
            only) or ``Unrolled()``: ``jax.grad`` w.r.t. X and the traced numbers through
            the iterations actually taken, with the key fixed (the derivative of the
            algorithm, not of an optimum: the q step is a finite run of Adam with Monte
            Carlo draws). ``Implicit()`` is refused (``TypeError``): the outer step has no
            smooth fixed point (Adam's update is not differentiable at a zero gradient, and
            the pruned αⱼ grow without bound), so the implicit function theorem does not
            apply.

    Returns:
        :class:`RVMResult`; m = (1 +) d without a kernel, (1 +) n with one, the bias first.

    Notes:
        Cost per Adam step is O(n m) for the diagonal q and O(n m²) for the full one. The EM
        α update grows an irrelevant αⱼ about linearly (αⱼ ≈ k hⱼ after k updates, hⱼ its
        likelihood curvature), so the pruned α keep growing after the stop, which is
        harmless: they are already past the ``threshold``. With a kernel and a bias, the
        relevance vectors are ``model.basis[model.relevant[1:]]``.

    Raises:
        ValueError: labels outside {−1, +1} or only one class (at run time when traced),
            mismatched lengths, NaN/inf, numbers ≤ 0 (at run time when traced), bad options.
        TypeError: a kernel that is not a :class:`jaxml.kernels.Kernel`,
            ``adjoint=Implicit()``.

    A q step that meets a non-finite loss or gradient stops updating q and the fit never
    reports ``converged=True``. An all-zero row of Φ (e.g. ``bias=False`` and a zero input)
    is valid: its predictor variance is 0 and √ is taken with a zero slope there.
    """
    X = check_matrix(X, "X")
    y = check_labels(y, "y", [-1, 1])
    check_same_length(X, "X", y, "y")
    y = check_value(y, "y", lambda xp, v: ~(xp.any(v == 1) & xp.any(v == -1)),
                    "must contain both labels -1 and +1")
    if kernel is not None and not isinstance(kernel, Kernel):
        raise TypeError(f"kernel must be None or a jaxml.kernels.Kernel (e.g. RBF(gamma)), "
                        f"got {type(kernel).__name__}")
    _check_options(covariance=covariance, estimator=estimator)
    if isinstance(adjoint, Implicit):
        raise TypeError(
            "rvm.fit has no implicit derivative: its outer step (Adam steps on q with fresh "
            "moments, Monte Carlo draws) has no smooth fixed point (Adam's update is not "
            "differentiable at a zero gradient, pruned α grow without bound); use "
            "adjoint=Unrolled() to differentiate the iterations taken")
    max_iter, tol = check_loop_options(max_iter, tol)
    for name, val in (("n_inner", n_inner), ("n_samples", n_samples), ("window", window)):
        check_int(val, name, 1, 10 ** 9)
    numbers = {}
    for name, val in (("learning_rate", learning_rate), ("alpha_init", alpha_init),
                      ("init_scale", init_scale), ("threshold", threshold)):
        if jnp.ndim(val) != 0:
            raise ValueError(f"{name} must be a scalar, got shape {jnp.shape(val)}")
        numbers[name] = check_positive(val, name)
    dtype = float_dtype(X)
    cast = lambda v: jnp.asarray(v, dtype)  # noqa: E731
    learning_rate, alpha_init, init_scale, threshold = (
        numbers[k] for k in ("learning_rate", "alpha_init", "init_scale", "threshold"))
    return _fit(key, X, y, kernel, bias=bool(bias), covariance=covariance,
                max_iter=max_iter, n_inner=int(n_inner), learning_rate=cast(learning_rate),
                n_samples=int(n_samples), estimator=estimator, tol=cast(tol), window=int(window),
                alpha_init=cast(alpha_init), init_scale=cast(init_scale),
                threshold=cast(threshold), adjoint=adjoint)


# ----------------------------------------------------------------------------- prediction

def _model_design(model: RVMResult, X: jax.Array) -> jax.Array:
    n_basis = X.shape[1] if model.kernel is None else model.basis.shape[0]
    bias = model.mean.shape[-1] == n_basis + 1
    return _design_matrix(X.astype(model.mean.dtype), model.kernel, model.basis, bias=bias)


def _decision_moments(model: RVMResult, X: jax.Array) -> tuple[jax.Array, jax.Array]:
    Phi = _model_design(model, X)
    keep = model.relevant.astype(Phi.dtype)
    cov = model.covariance * (keep if model.covariance.ndim == 1 else jnp.outer(keep, keep))
    return local_moments(model.mean * keep, cov, Phi, jnp.ones((), Phi.dtype))


@partial(jax.jit, static_argnames=("output", "n_nodes"))
def _predict_core(model: RVMResult, X: jax.Array, *, output: str, n_nodes: int):
    """The one compiled call behind :func:`decision_moments`, :func:`predict_proba` and
    :func:`predict` (``output``: ``"moments"``, ``"probit"``, ``"gh"`` or ``"label"``)."""
    m, s2 = _decision_moments(model, X)
    if output == "moments":
        return m, s2
    if output == "label":
        return jnp.where(m >= 0, 1, -1).astype(jnp.int32)
    if output == "probit":
        return jax.nn.sigmoid(m / jnp.sqrt(1.0 + jnp.pi * s2 / 8.0))
    return _gh_expect(jax.nn.sigmoid, m, s2, n_nodes)


def decision_moments(model: RVMResult, X: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Mean and variance of the latent f = wᵀφ(x) under q, pruned weights dropped.

    Args:
        model: a fitted :class:`RVMResult`. X: (n, d) inputs.

    Returns:
        (n,) means φᵀμ and (n,) variances φᵀΣφ over the relevant weights.
    """
    X = check_matrix(X, "X")
    return _predict_core(model, X, output="moments", n_nodes=0)


def predict_proba(model: RVMResult, X: jax.Array, *, method: str = "probit",
                  n_nodes: int = 32) -> jax.Array:
    """Predictive p(y = +1 | x) = E_q σ(wᵀφ(x)), shape (n,).

    ``method="probit"``: MacKay's approximation σ(m / √(1 + π s²/8)), m and s² the latent
    mean and variance; ``method="gh"``: Gauss–Hermite quadrature of E σ(f), f ~ N(m, s²).
    """
    if method not in ("probit", "gh"):
        raise ValueError(f"method must be 'probit' or 'gh', got {method!r}")
    X = check_matrix(X, "X")
    n_nodes = check_int(n_nodes, "n_nodes", 1, 1 << 16) if method == "gh" else 0
    return _predict_core(model, X, output=method, n_nodes=int(n_nodes))


def predict(model: RVMResult, X: jax.Array) -> jax.Array:
    """Labels in {−1, +1}: the sign of the posterior-mean decision φ(x)ᵀμ (the predictive
    probability crosses ½ exactly there under either approximation). Shape (n,)."""
    X = check_matrix(X, "X")
    return _predict_core(model, X, output="label", n_nodes=0)
