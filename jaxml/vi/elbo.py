r"""The evidence lower bound, its Monte Carlo estimates and their gradients.

For a model :math:`p(x, z)` and a variational family :math:`q_\lambda(z)`,

.. math::

    \log p(x) = \underbrace{\mathbb{E}_{q}[\log p(x, z) - \log q_\lambda(z)]}_{\mathcal L(\lambda)
        \;=\; \text{ELBO}} + \mathrm{KL}(q_\lambda \,\Vert\, p(z \mid x)) \;\ge\; \mathcal L(\lambda).

``log_joint(z)`` is any user function of one latent vector :math:`z` (d,) returning the
scalar :math:`\log p(x, z)` (the data are closed over); it is ``vmap``-ed over the
:math:`S` = ``n_samples`` draws. Every estimator below is a typed option with one method,
``surrogate``, a scalar whose *value* is the ELBO estimate and whose *gradient* with respect
to the family's parameters is that estimator's gradient estimate; :func:`elbo_and_grad`
returns both. All gradient estimates are unbiased for :math:`\nabla_\lambda\mathcal L`.

- :class:`Reparameterization` — the plain Monte Carlo ELBO
  :math:`\hat{\mathcal L} = \frac1S\sum_s [\log p(x, z_s) - \log q_\lambda(z_s)]`,
  :math:`z_s = g_\lambda(\varepsilon_s)`, differentiated along the path (pathwise gradient).
- :class:`AnalyticEntropy` — :math:`\frac1S\sum_s \log p(x, z_s) + \mathbb{H}[q_\lambda]`.
- :class:`AnalyticKL` — with a Gaussian prior :math:`p(z) = \mathcal N(m_0, S_0)` and
  ``log_joint`` the *log-likelihood* :math:`\log p(x\mid z)`:
  :math:`\frac1S\sum_s \log p(x\mid z_s) - \mathrm{KL}(q_\lambda \Vert p(z))` (Kingma & Welling's
  estimator B).
- :class:`StickingTheLanding` — the pathwise gradient of
  :math:`\frac1S\sum_s[\log p(x, z_s) - \log q_{\bar\lambda}(z_s)]` with
  :math:`\bar\lambda` = ``stop_gradient(λ)``: drops the score term
  :math:`\mathbb{E}_q[\nabla_\lambda \log q_\lambda(z)] = 0`, so the gradient variance vanishes
  when :math:`q` equals the posterior (Roeder, Wu & Duvenaud 2017).
- :class:`ScoreFunction` — the log-derivative trick, no reparameterization needed:
  :math:`\frac1S\sum_s \nabla_\lambda \log q_\lambda(z_s)\, f_s`,
  :math:`f_s = \log p(x, z_s) - \log q_\lambda(z_s)` (Ranganath, Gerrish & Blei 2014).
- :class:`ScoreFunctionLOO` — the same with the leave-one-out baseline
  :math:`b_s = \frac1{S-1}\sum_{t\ne s} f_t`, which is independent of :math:`z_s` and so keeps
  the estimate unbiased: :math:`\frac1S\sum_s \nabla_\lambda\log q_\lambda(z_s)(f_s - b_s)`
  (Kool, van Hoof & Welling 2019; needs :math:`S \ge 2`).

Reference: D. M. Blei, A. Kucukelbir, J. D. McAuliffe, "Variational Inference: A Review for
Statisticians" (2017); S. Mohamed, M. Rosca, M. Figurnov, A. Mnih, "Monte Carlo Gradient
Estimation in Machine Learning", JMLR (2020).
"""

from __future__ import annotations

import abc
from typing import Any, Callable, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import lax

from jaxml._core.checks import as_float_array, check_int_in_range
from jaxml.vi.families import FullRankGaussian, MeanFieldGaussian, VariationalFamily

__all__ = [
    "ElboEstimator", "Reparameterization", "AnalyticEntropy", "AnalyticKL",
    "StickingTheLanding", "ScoreFunction", "ScoreFunctionLOO", "ElboGrad",
    "elbo_surrogate", "elbo_and_grad", "monte_carlo_elbo",
]

LogJoint = Callable[[jax.Array], jax.Array]


def _log_joint_batch(log_joint: LogJoint, z: jax.Array) -> jax.Array:
    """(S, d) -> (S,): the user's one-sample ``log_joint`` over the draws.

    With a single draw the function is called directly: a ``vmap`` over a batch of one turns
    the user's matrix-vector products into (n, d) x (d, 1) matrix products with transposes,
    several times slower on CPU.
    """
    if z.shape[0] == 1:
        return jnp.reshape(log_joint(z[0]), (1,))
    return jax.vmap(log_joint)(z)


class ElboEstimator(eqx.Module):
    """An ELBO estimator: ``surrogate(key, log_joint, q, n_samples)`` is a scalar whose value
    is the ELBO estimate and whose gradient in ``q`` is the gradient estimate."""

    min_samples = 1

    @abc.abstractmethod
    def surrogate(self, key: jax.Array, log_joint: LogJoint, q: VariationalFamily,
                  n_samples: int) -> jax.Array:
        """() the surrogate objective (see the class docstring)."""

    def check(self, q: Any, n_samples: int) -> None:
        """Raise at the Python boundary if this estimator cannot be used with ``q``."""
        check_int_in_range(n_samples, "n_samples", self.min_samples, 2**31 - 1)


class Reparameterization(ElboEstimator):
    """Plain Monte Carlo ELBO with the pathwise (reparameterization) gradient."""

    def surrogate(self, key, log_joint, q, n_samples):
        z = q.sample(key, n_samples)
        return jnp.mean(_log_joint_batch(log_joint, z) - q.log_prob(z))


class AnalyticEntropy(ElboEstimator):
    """Monte Carlo E_q[log p(x, z)] plus the closed-form entropy; pathwise gradient."""

    def surrogate(self, key, log_joint, q, n_samples):
        z = q.sample(key, n_samples)
        return jnp.mean(_log_joint_batch(log_joint, z)) + q.entropy()


class AnalyticKL(ElboEstimator):
    r"""Monte Carlo E_q[log p(x | z)] minus the closed-form KL(q ‖ N(prior_mean, prior_cov)).

    With this estimator ``log_joint`` must be the log-likelihood :math:`\log p(x\mid z)`
    only; the Gaussian prior lives here. ``AnalyticKL()`` is the standard-normal prior.

    Attributes:
        prior_mean: (d,) or None. prior_cov: (d, d) or None (both None: N(0, I)).
    """

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
            raise TypeError("AnalyticKL needs a Gaussian family (MeanFieldGaussian or "
                            f"FullRankGaussian), got {type(q).__name__}")
        if self.prior_mean is not None and self.prior_mean.shape[0] != q.dim:
            raise ValueError(f"prior_mean has dimension {self.prior_mean.shape[0]} but q has "
                             f"dimension {q.dim}")

    def surrogate(self, key, log_likelihood, q, n_samples):
        z = q.sample(key, n_samples)
        return (jnp.mean(_log_joint_batch(log_likelihood, z))
                - q.kl_to_gaussian(self.prior_mean, self.prior_cov))


class StickingTheLanding(ElboEstimator):
    """Pathwise gradient with the parameters inside log q held fixed (stop-gradient)."""

    def surrogate(self, key, log_joint, q, n_samples):
        z = q.sample(key, n_samples)
        q_fixed = lax.stop_gradient(q)
        return jnp.mean(_log_joint_batch(log_joint, z) - q_fixed.log_prob(z))


def _score_surrogate(f: jax.Array, weights: jax.Array, log_q: jax.Array) -> jax.Array:
    """Value mean(f); gradient mean(weights · ∇ log q) (f and weights carry no gradient)."""
    g = jnp.mean(weights * log_q)
    return jnp.mean(f) + g - lax.stop_gradient(g)


def _score_terms(key, log_joint, q, n_samples):
    z = lax.stop_gradient(q.sample(key, n_samples))
    log_q = q.log_prob(z)
    f = lax.stop_gradient(_log_joint_batch(log_joint, z) - log_q)
    return f, log_q


class ScoreFunction(ElboEstimator):
    """Score-function (log-derivative, REINFORCE) gradient, no baseline."""

    def surrogate(self, key, log_joint, q, n_samples):
        f, log_q = _score_terms(key, log_joint, q, n_samples)
        return _score_surrogate(f, f, log_q)


class ScoreFunctionLOO(ElboEstimator):
    """Score-function gradient with the leave-one-out baseline (unbiased; n_samples >= 2)."""

    min_samples = 2

    def surrogate(self, key, log_joint, q, n_samples):
        f, log_q = _score_terms(key, log_joint, q, n_samples)
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


def _check_call(log_joint, q, estimator, n_samples):
    if not callable(log_joint):
        raise TypeError(f"log_joint must be callable, got {type(log_joint).__name__}")
    if not isinstance(q, VariationalFamily):
        raise TypeError(f"q must be a VariationalFamily, got {type(q).__name__}")
    if not isinstance(estimator, ElboEstimator):
        raise TypeError(f"estimator must be an ElboEstimator (e.g. Reparameterization()), got "
                        f"{type(estimator).__name__}")
    estimator.check(q, n_samples)


def elbo_surrogate(key, log_joint: LogJoint, q: VariationalFamily, *,
                   estimator: ElboEstimator = Reparameterization(), n_samples: int = 1
                   ) -> jax.Array:
    """() the estimator's surrogate: value = ELBO estimate, gradient = gradient estimate.

    Maximize it (or minimize its negative) with any optimizer; :func:`jaxml.vi.fit_sgvi`
    does exactly that.
    """
    _check_call(log_joint, q, estimator, n_samples)
    return estimator.surrogate(key, log_joint, q, int(n_samples))


def elbo_and_grad(key, log_joint: LogJoint, q: VariationalFamily, *,
                  estimator: ElboEstimator = Reparameterization(), n_samples: int = 1
                  ) -> ElboGrad:
    r"""ELBO estimate and its gradient with respect to the parameters of ``q``, in one call.

    Args:
        key: PRNG key for the ``n_samples`` draws from ``q``.
        log_joint: ``z (d,) -> ()`` the user's :math:`\log p(x, z)` (for :class:`AnalyticKL`:
            the log-likelihood :math:`\log p(x \mid z)`).
        q: a :class:`~jaxml.vi.families.VariationalFamily` (its array fields are the
            parameters :math:`\lambda`).
        estimator: one of the estimator options of this module.
        n_samples: S, the number of Monte Carlo draws (static).

    Returns:
        :class:`ElboGrad` ``(elbo, grad)``; ``grad`` has the structure of ``q``.
    """
    _check_call(log_joint, q, estimator, n_samples)
    n = int(n_samples)
    value, grad = jax.value_and_grad(lambda p: estimator.surrogate(key, log_joint, p, n))(q)
    return ElboGrad(value, grad)


def monte_carlo_elbo(key, log_joint: LogJoint, q: VariationalFamily, *,
                     n_samples: int = 1000) -> jax.Array:
    r"""() the plain Monte Carlo ELBO :math:`\frac1S\sum_s[\log p(x,z_s) - \log q(z_s)]`."""
    return elbo_surrogate(key, log_joint, q, estimator=Reparameterization(),
                          n_samples=n_samples)
