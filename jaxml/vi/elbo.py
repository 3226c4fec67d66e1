"""The evidence lower bound, its Monte Carlo estimates and their gradients.

For a model p(x, z) and a variational family q_λ(z),

    log p(x) = E_q[log p(x, z) − log q_λ(z)] + KL(q_λ ‖ p(z | x)) ≥ 𝓛(λ) = ELBO.

**Targets.** Every estimator reads one of two targets, and each has its own name:

- ``log_density(z)`` — the unnormalised log posterior log p(x, z) (the log joint: prior
  included) of one latent vector z (d,), returning a scalar (the data are closed over). All
  estimators except the analytic-KL ones take it.
- ``log_likelihood=`` — log p(x | z) alone, for :class:`AnalyticKL` and
  :class:`LocalReparameterization`, which hold the Gaussian prior themselves and subtract
  KL(q ‖ prior) in closed form. These estimators *refuse* a ``log_density`` (a log joint
  there would count the prior twice) and the others refuse a ``log_likelihood``: the
  mistake raises a ``TypeError`` instead of giving a wrong ELBO.

The target is ``vmap``-ed over the S = ``n_samples`` draws. Every estimator is a typed
option with one method, ``surrogate``, a scalar whose *value* is the ELBO estimate and whose
*gradient* with respect to the family's parameters is that estimator's gradient estimate;
:func:`elbo_and_grad` returns both. All gradient estimates are unbiased for ∇_λ𝓛.

- :class:`Reparameterization` — the plain Monte Carlo ELBO
  𝓛̂ = (1/S) Σₛ [log p(x, zₛ) − log q_λ(zₛ)], zₛ = g_λ(εₛ), differentiated along the path.
- :class:`AnalyticEntropy` — (1/S) Σₛ log p(x, zₛ) + H[q_λ].
- :class:`AnalyticKL` — with a Gaussian prior p(z) = N(m₀, S₀) held by the estimator and the
  ``log_likelihood`` log p(x | z): (1/S) Σₛ log p(x | zₛ) − KL(q_λ ‖ p(z)) (Kingma &
  Welling's estimator B).
- :class:`LocalReparameterization` — the same for a likelihood that reads z only through
  the linear predictors u = Φz (n,) and is a sum of one term per uᵢ: each uᵢ ~ N(φᵢᵀμ,
  φᵢᵀΣφᵢ) is drawn independently (Kingma, Salimans & Welling 2015), or integrated by
  Gauss–Hermite quadrature with ``n_nodes`` set.
- :class:`StickingTheLanding` — the pathwise gradient of (1/S) Σₛ [log p(x, zₛ) − log q_λ̄(zₛ)]
  with λ̄ = ``stop_gradient(λ)``: drops the score term E_q[∇_λ log q_λ(z)] = 0, so the
  gradient variance vanishes when q equals the posterior (Roeder, Wu & Duvenaud 2017).
- :class:`ScoreFunction` — the log-derivative trick, no reparameterization needed:
  (1/S) Σₛ ∇_λ log q_λ(zₛ) fₛ, fₛ = log p(x, zₛ) − log q_λ(zₛ) (Ranganath, Gerrish & Blei
  2014).
- :class:`ScoreFunctionLOO` — the same with the leave-one-out baseline
  bₛ = (1/(S−1)) Σ_{t≠s} f_t, independent of zₛ, so the estimate stays unbiased:
  (1/S) Σₛ ∇_λ log q_λ(zₛ)(fₛ − bₛ) (Kool, van Hoof & Welling 2019; needs S ≥ 2).

A new estimator subclasses :class:`ElboEstimator` (set ``target = "log_likelihood"`` when it
holds the prior itself) and implements ``surrogate``.

Reference: D. M. Blei, A. Kucukelbir, J. D. McAuliffe, "Variational Inference: A Review for
Statisticians" (2017); S. Mohamed, M. Rosca, M. Figurnov, A. Mnih, "Monte Carlo Gradient
Estimation in Machine Learning", JMLR (2020); D. P. Kingma, T. Salimans, M. Welling,
"Variational dropout and the local reparameterization trick", NeurIPS (2015).
"""

from __future__ import annotations

import abc
from typing import Any, Callable, ClassVar, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxml._core.checks import as_float_array, check_callable, check_int_in_range, check_returns
from jaxml.vi.families import FullRankGaussian, MeanFieldGaussian, VariationalFamily

__all__ = [
    "ElboEstimator", "Reparameterization", "AnalyticEntropy", "AnalyticKL",
    "LocalReparameterization", "StickingTheLanding", "ScoreFunction", "ScoreFunctionLOO",
    "ElboGrad", "check_target", "gauss_hermite_nodes", "elbo_surrogate", "elbo_and_grad",
    "monte_carlo_elbo",
]

LogDensity = Callable[[jax.Array], jax.Array]


def _batch(f: LogDensity, z: jax.Array) -> jax.Array:
    """(S, d) -> (S,): the user's one-sample target over the draws.

    With a single draw the function is called directly: a ``vmap`` over a batch of one turns
    the user's matrix-vector products into (n, d) x (d, 1) matrix products with transposes,
    several times slower on CPU.
    """
    if z.shape[0] == 1:
        return jnp.reshape(f(z[0]), (1,))
    return jax.vmap(f)(z)


def _safe_sqrt(v: jax.Array) -> jax.Array:
    """√v with a zero (not infinite) derivative at v = 0: a predictor variance φᵢᵀΣφᵢ is
    exactly 0 for an all-zero row φᵢ, and √'s infinite slope there would turn the gradient
    NaN."""
    pos = v > 0
    return jnp.where(pos, jnp.sqrt(jnp.where(pos, v, 1.0)), 0.0)


class ElboEstimator(eqx.Module):
    """An ELBO estimator: ``surrogate(key, target, q, n_samples)`` is a scalar whose value is
    the ELBO estimate and whose gradient in ``q`` is the gradient estimate.

    ``target`` (a class attribute) names what the estimator's callable is:
    ``"log_density"`` (the unnormalised log posterior log p(x, z), the default) or
    ``"log_likelihood"`` (log p(x | z) alone, for estimators holding the prior themselves).
    """

    target: ClassVar[str] = "log_density"
    min_samples: ClassVar[int] = 1

    @abc.abstractmethod
    def surrogate(self, key: jax.Array, log_density: LogDensity, q: VariationalFamily,
                  n_samples: int) -> jax.Array:
        """() the surrogate objective (see the class docstring)."""

    def check(self, q: Any, n_samples: int) -> None:
        """Raise at the Python boundary if this estimator cannot be used with ``q``."""
        check_int_in_range(n_samples, "n_samples", self.min_samples, 2**31 - 1)


class Reparameterization(ElboEstimator):
    """Plain Monte Carlo ELBO with the pathwise (reparameterization) gradient."""

    def surrogate(self, key, log_density, q, n_samples):
        z = q.sample(key, n_samples)
        return jnp.mean(_batch(log_density, z) - q.log_prob(z))


class AnalyticEntropy(ElboEstimator):
    """Monte Carlo E_q[log p(x, z)] plus the closed-form entropy; pathwise gradient."""

    def surrogate(self, key, log_density, q, n_samples):
        z = q.sample(key, n_samples)
        return jnp.mean(_batch(log_density, z)) + q.entropy()


class AnalyticKL(ElboEstimator):
    """Monte Carlo E_q[log p(x | z)] minus the closed-form KL(q ‖ N(prior_mean, prior_cov)).

    The Gaussian prior lives here, so this estimator takes the **log-likelihood**
    log p(x | z) through ``log_likelihood=`` (of :func:`elbo_and_grad`,
    :func:`jaxml.vi.fit_sgvi`, …) and refuses a ``log_density``: a full log joint would count
    the prior twice. ``AnalyticKL()`` is the standard-normal prior N(0, I).

    Attributes:
        prior_mean: (d,) or None. prior_cov: (d, d) or None (both None: N(0, I)).
    """

    target: ClassVar[str] = "log_likelihood"
    prior_mean: jax.Array | None = None
    prior_cov: jax.Array | None = None

    def __init__(self, prior_mean=None, prior_cov=None):
        if (prior_mean is None) != (prior_cov is None):
            raise ValueError("give both prior_mean and prior_cov, or neither (N(0, I))")
        if prior_mean is not None:
            prior_mean = as_float_array(prior_mean, "prior_mean", ndim=1)
            prior_cov = as_float_array(prior_cov, "prior_cov", ndim=2)
            d = prior_mean.shape[0]
            if prior_cov.shape != (d, d):
                raise ValueError(f"prior_cov must have shape ({d}, {d}), got {prior_cov.shape}")
        self.prior_mean, self.prior_cov = prior_mean, prior_cov

    def check(self, q, n_samples):
        super().check(q, n_samples)
        if not isinstance(q, (MeanFieldGaussian, FullRankGaussian)):
            raise TypeError(f"{type(self).__name__} needs a Gaussian family (MeanFieldGaussian "
                            f"or FullRankGaussian), got {type(q).__name__}")
        if self.prior_mean is not None and self.prior_mean.shape[0] != q.dim:
            raise ValueError(f"prior_mean has dimension {self.prior_mean.shape[0]} but q has "
                             f"dimension {q.dim}")

    def kl(self, q) -> jax.Array:
        """() KL(q ‖ prior) in closed form (through :mod:`jaxml.gaussian`)."""
        return q.kl_to_gaussian(self.prior_mean, self.prior_cov)

    def expected_log_likelihood(self, key, log_likelihood, q, n_samples):
        """() the Monte Carlo estimate of E_q[log p(x | z)] (pathwise gradient)."""
        return jnp.mean(_batch(log_likelihood, q.sample(key, n_samples)))

    def surrogate(self, key, log_likelihood, q, n_samples):
        return self.expected_log_likelihood(key, log_likelihood, q, n_samples) - self.kl(q)


def gauss_hermite_nodes(n_nodes: int, dtype=None) -> tuple[jax.Array, jax.Array]:
    """Gauss–Hermite rule for a standard normal: E f(ε) ≈ Σₖ wₖ f(tₖ), ε ~ N(0, 1).

    tₖ = √2 xₖ and wₖ = hₖ/√π from the physicists' Hermite nodes xₖ and weights hₖ; exact
    for polynomials f of degree < 2·``n_nodes``. So E f(u), u ~ N(m, v), is
    Σₖ wₖ f(m + √v tₖ).

    Returns:
        (n_nodes,) nodes tₖ and (n_nodes,) weights wₖ (summing to 1).
    """
    x, h = np.polynomial.hermite.hermgauss(int(n_nodes))
    dtype = dtype or jnp.result_type(float)
    return jnp.asarray(np.sqrt(2.0) * x, dtype), jnp.asarray(h / np.sqrt(np.pi), dtype)


class LocalReparameterization(AnalyticKL):
    """Local reparameterization for a likelihood of the linear predictors u = Φz.

    For ``log_likelihood(u)`` with u = Φz (n,) a **sum of one term per uᵢ** (a GLM:
    Σᵢ ℓᵢ(uᵢ)), E_q[log p(x | z)] only needs the marginals uᵢ ~ N(mᵢ, vᵢ), mᵢ = φᵢᵀμ,
    vᵢ = φᵢᵀΣφᵢ. They are drawn independently, uᵢ = mᵢ + √vᵢ εᵢ (one εᵢ per row and draw:
    lower variance than sampling z, whose single draw couples all n terms), or, with
    ``n_nodes`` set, integrated by ``n_nodes``-point Gauss–Hermite quadrature
    (deterministic: the key is ignored). Minus the closed-form KL(q ‖ N(prior_mean,
    prior_cov)) as in :class:`AnalyticKL`; the target is ``log_likelihood=``, called on
    (n,) predictors (``vmap``-ed over draws or nodes).

    Attributes:
        design: (n, d) Φ, the rows φᵢ. design_sq: (n, d) Φ∘Φ (computed from ``design``).
        prior_mean, prior_cov: as in :class:`AnalyticKL`.
        n_nodes: None (Monte Carlo) or the number of Gauss–Hermite nodes (static).
    """

    design: jax.Array
    design_sq: jax.Array
    n_nodes: int | None = eqx.field(static=True, default=None)

    def __init__(self, design, prior_mean=None, prior_cov=None, *, n_nodes: int | None = None):
        super().__init__(prior_mean, prior_cov)
        self.design = as_float_array(design, "design", ndim=2)
        self.design_sq = self.design * self.design      # Φ∘Φ, once, for the diagonal q
        if n_nodes is not None:
            check_int_in_range(n_nodes, "n_nodes", 1, 10_000)
            n_nodes = int(n_nodes)
        self.n_nodes = n_nodes

    def check(self, q, n_samples):
        super().check(q, n_samples)
        if self.design.shape[1] != q.dim:
            raise ValueError(f"design has {self.design.shape[1]} columns but q has dimension "
                             f"{q.dim}")

    def moments(self, q) -> tuple[jax.Array, jax.Array]:
        """(n,) means Φμ and (n,) variances φᵢᵀΣφᵢ of the predictors under q."""
        Phi = self.design.astype(q.dtype)
        if isinstance(q, MeanFieldGaussian):
            return Phi @ q.loc, self.design_sq.astype(q.dtype) @ q.variance()
        return Phi @ q.loc, jnp.sum((Phi @ q.scale_tril) ** 2, axis=1)

    def expected_log_likelihood(self, key, log_likelihood, q, n_samples):
        m, v = self.moments(q)
        if self.n_nodes is not None:
            t, w = gauss_hermite_nodes(self.n_nodes, m.dtype)
            u = m + _safe_sqrt(v) * t[:, None]                         # (n_nodes, n)
            return jnp.sum(w * jax.vmap(log_likelihood)(u))
        eps = jax.random.normal(key, (int(n_samples),) + m.shape, m.dtype)
        return jnp.mean(_batch(log_likelihood, m + _safe_sqrt(v) * eps))


class StickingTheLanding(ElboEstimator):
    """Pathwise gradient with the parameters inside log q held fixed (stop-gradient)."""

    def surrogate(self, key, log_density, q, n_samples):
        z = q.sample(key, n_samples)
        q_fixed = lax.stop_gradient(q)
        return jnp.mean(_batch(log_density, z) - q_fixed.log_prob(z))


def _score_surrogate(f: jax.Array, weights: jax.Array, log_q: jax.Array) -> jax.Array:
    """Value mean(f); gradient mean(weights · ∇ log q) (f and weights carry no gradient)."""
    g = jnp.mean(weights * log_q)
    return jnp.mean(f) + g - lax.stop_gradient(g)


def _score_terms(key, log_density, q, n_samples):
    z = lax.stop_gradient(q.sample(key, n_samples))
    log_q = q.log_prob(z)
    f = lax.stop_gradient(_batch(log_density, z) - log_q)
    return f, log_q


class ScoreFunction(ElboEstimator):
    """Score-function (log-derivative, REINFORCE) gradient, no baseline."""

    def surrogate(self, key, log_density, q, n_samples):
        f, log_q = _score_terms(key, log_density, q, n_samples)
        return _score_surrogate(f, f, log_q)


class ScoreFunctionLOO(ElboEstimator):
    """Score-function gradient with the leave-one-out baseline (unbiased; n_samples >= 2)."""

    min_samples: ClassVar[int] = 2

    def surrogate(self, key, log_density, q, n_samples):
        f, log_q = _score_terms(key, log_density, q, n_samples)
        baseline = (jnp.sum(f) - f) / (n_samples - 1)
        return _score_surrogate(f, f - baseline, log_q)


class ElboGrad(NamedTuple):
    """Result of :func:`elbo_and_grad`.

    Attributes:
        elbo: () the ELBO estimate.
        grad: the gradient estimate, a pytree like ``q`` (same family type).
    """

    elbo: jax.Array
    grad: Any


def check_target(log_density: LogDensity | None, q: VariationalFamily,
                 estimator: ElboEstimator, n_samples: int, *,
                 log_likelihood: LogDensity | None = None,
                 check_output: bool = True) -> LogDensity:
    """Check an ELBO call at the Python boundary; return the callable ``estimator`` reads.

    The callable must return a scalar for one point ((d,) latent vector, or (n,) linear
    predictors for :class:`LocalReparameterization`), checked abstractly (``check_output``;
    callers that wrap the target with more arguments check it themselves).

    ``estimator.target == "log_density"``: ``log_density`` is required and ``log_likelihood``
    must be None. ``"log_likelihood"`` (:class:`AnalyticKL`, :class:`LocalReparameterization`):
    the reverse, since the estimator holds the prior. Either mistake raises ``TypeError``.
    """
    if not isinstance(estimator, ElboEstimator):
        raise TypeError(f"estimator must be an ElboEstimator (e.g. Reparameterization()), got "
                        f"{type(estimator).__name__}")
    name = type(estimator).__name__
    if estimator.target == "log_likelihood":
        if log_density is not None:
            raise TypeError(
                f"{name} holds the prior and subtracts KL(q ‖ prior) itself: pass the "
                "log-likelihood log p(x | z) as log_likelihood= and log_density=None (a log "
                "joint would count the prior twice)")
        target, tname = log_likelihood, "log_likelihood"
    else:
        if log_likelihood is not None:
            raise TypeError(
                f"{name} reads the unnormalised log posterior log p(x, z) (prior included) as "
                "log_density; log_likelihood= is only for AnalyticKL and "
                "LocalReparameterization")
        target, tname = log_density, "log_density"
    check_callable(target, tname)
    if not isinstance(q, VariationalFamily):
        raise TypeError(f"q must be a VariationalFamily, got {type(q).__name__}")
    estimator.check(q, n_samples)
    if check_output:
        size = (estimator.design.shape[0] if isinstance(estimator, LocalReparameterization)
                else q.dim)
        check_returns(target, tname, jax.ShapeDtypeStruct((size,), q.dtype), shape=())
    return target


def elbo_surrogate(key, log_density: LogDensity | None, q: VariationalFamily, *,
                   estimator: ElboEstimator = Reparameterization(), n_samples: int = 1,
                   log_likelihood: LogDensity | None = None) -> jax.Array:
    """() the estimator's surrogate: value = ELBO estimate, gradient = gradient estimate.

    Arguments as in :func:`elbo_and_grad`. Maximize it (or minimize its negative) with any
    optimizer; :func:`jaxml.vi.fit_sgvi` does exactly that.
    """
    f = check_target(log_density, q, estimator, n_samples, log_likelihood=log_likelihood)
    return estimator.surrogate(key, f, q, int(n_samples))


def elbo_and_grad(key, log_density: LogDensity | None, q: VariationalFamily, *,
                  estimator: ElboEstimator = Reparameterization(), n_samples: int = 1,
                  log_likelihood: LogDensity | None = None) -> ElboGrad:
    """ELBO estimate and its gradient with respect to the parameters of ``q``, in one call.

    Args:
        key: PRNG key for the ``n_samples`` draws from ``q``.
        log_density: ``z (d,) -> ()`` the unnormalised log posterior log p(x, z); ``None``
            with :class:`AnalyticKL` / :class:`LocalReparameterization`.
        q: a :class:`~jaxml.vi.families.VariationalFamily` (its array fields are the
            parameters λ).
        estimator: one of the estimator options of this module.
        n_samples: S, the number of Monte Carlo draws (static).
        log_likelihood: ``z (d,) -> ()`` log p(x | z) alone (``u (n,) -> ()`` for
            :class:`LocalReparameterization`); only with the estimators that hold the prior.

    Returns:
        :class:`ElboGrad` ``(elbo, grad)``: () and a pytree like ``q``.

    Raises:
        TypeError: the target does not match the estimator (see :func:`check_target`).
    """
    f = check_target(log_density, q, estimator, n_samples, log_likelihood=log_likelihood)
    n = int(n_samples)
    value, grad = jax.value_and_grad(lambda p: estimator.surrogate(key, f, p, n))(q)
    return ElboGrad(value, grad)


def monte_carlo_elbo(key, log_density: LogDensity, q: VariationalFamily, *,
                     n_samples: int = 1000) -> jax.Array:
    """() the plain Monte Carlo ELBO (1/S) Σₛ [log p(x, zₛ) − log q(zₛ)], zₛ ~ q."""
    return elbo_surrogate(key, log_density, q, estimator=Reparameterization(),
                          n_samples=n_samples)
