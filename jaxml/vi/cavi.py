"""Coordinate-ascent variational inference (CAVI) and two textbook models.

Mean-field VI posits q(z) = Πⱼ qⱼ(zⱼ); holding the other factors fixed, the ELBO is
maximized in qⱼ by

    log q*ⱼ(zⱼ) = E₋ⱼ[log p(x, z)] + const,

so cycling through the factors never decreases the ELBO. :func:`coordinate_ascent` is the
generic driver: a sequence of coordinate updates ``state -> state`` and an ELBO function,
iterated on the shared bounded loop (``jaxml._core.fixed_point``) until the relative ELBO
change |𝓛ₜ − 𝓛ₜ₋₁| / (1 + |𝓛ₜ|) is at most ``tol``. Each model has a public sweep,
``step(state, x, *, prior) -> (CAVIState, CAVIInfo)``, and its fit is init + loop + step.
Results hold the final ELBO in ``elbo`` () and its history in ``trace``.

Models:

- :func:`normal_gamma_cavi` — xₙ ~ N(μ, τ⁻¹), μ | τ ~ N(μ₀, (λ₀τ)⁻¹), τ ~ Gam(a₀, b₀)
  with q(μ)q(τ) (Bishop, PRML §10.1.3, eqs. 10.26–10.30); the exact posterior and log
  evidence are :func:`normal_gamma_posterior` and :func:`normal_gamma_log_evidence`.
- :func:`mixture_cavi` — Bayesian mixture of unit-variance Gaussians, μₖ ~ N(0, σ²I),
  cᵢ ~ Cat(1/K), xᵢ | cᵢ, μ ~ N(μ_cᵢ, I), with q(μₖ) = N(mₖ, sₖ²I), q(cᵢ) = Cat(φᵢ)
  (Blei, Kucukelbir & McAuliffe 2017, §3).

Cost per sweep: O(N) for the Normal-Gamma model, O(n K d) for the mixture.

Reference: C. M. Bishop, *Pattern Recognition and Machine Learning* (2006), §10.1;
D. M. Blei, A. Kucukelbir, J. D. McAuliffe, "Variational Inference: A Review for
Statisticians", JASA 112 (2017), §2.4 and §3.
"""

from __future__ import annotations

from functools import partial
from typing import Any, Callable, NamedTuple, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree
from jax.scipy.special import digamma, gammaln, logsumexp, xlogy

from jaxml._core import (
    LOG_2PI,
    Adjoint,
    Implicit,
    as_float_array,
    check_int_in_range,
    check_loop_options,
    check_positive,
    check_returns,
    fixed_point,
    float_dtype,
)

__all__ = [
    "CAVIState", "CAVIInfo", "CAVIResult", "coordinate_ascent",
    "NormalGammaPrior", "NormalGammaQ", "NormalGammaPosterior", "NormalGammaCAVIResult",
    "normal_gamma_update_mu", "normal_gamma_update_tau", "normal_gamma_elbo",
    "normal_gamma_step", "normal_gamma_cavi", "normal_gamma_posterior",
    "normal_gamma_log_evidence", "MixtureQ", "MixtureCAVIResult", "mixture_update_assignments",
    "mixture_update_means", "mixture_elbo", "mixture_step", "mixture_cavi",
]


# ------------------------------------------------------------------------ the driver

class CAVIState(NamedTuple):
    """State of a CAVI iteration.

    Attributes:
        q: the variational parameters (a pytree).
        elbo: () the ELBO at ``q`` (the stopping rule compares consecutive values).
    """

    q: Any
    elbo: jax.Array


class CAVIInfo(NamedTuple):
    """What one CAVI sweep reports: ``error`` () the relative ELBO change
    |𝓛ₜ − 𝓛ₜ₋₁| / (1 + |𝓛ₜ|), ``value`` () the ELBO 𝓛ₜ after the sweep."""

    error: jax.Array
    value: jax.Array


class CAVIResult(NamedTuple):
    """Result of every CAVI fit (:func:`coordinate_ascent` and the models' fits).

    Attributes:
        q: the final variational parameters (a pytree).
        elbo: () the ELBO at ``q``.
        trace: (max_iter,) the ELBO after every sweep (NaN past ``n_iter``).
        n_iter: () sweeps taken. converged: () relative ELBO change <= tol.
    """

    q: Any
    elbo: jax.Array
    trace: jax.Array
    n_iter: jax.Array
    converged: jax.Array


def _advance(state: CAVIState, q: Any, value: jax.Array) -> tuple[CAVIState, CAVIInfo]:
    """The new state and the relative ELBO change the stopping rule reads."""
    value = jnp.asarray(value, state.elbo.dtype)
    err = jnp.abs(value - state.elbo) / (1.0 + jnp.abs(value))
    return CAVIState(q, value), CAVIInfo(err, value)


def _adjoint(adjoint: Adjoint | None) -> Adjoint:
    """The CAVI fits differentiate implicitly unless told otherwise (same forward loop)."""
    return Implicit() if adjoint is None else adjoint


def _loop(step, q0, elbo0, args, tol, max_iter: int, adjoint):
    """Run ``step`` on the shared loop from (q0, elbo0); tol floored at 8 eps of the ELBO.

    Returns the loop result with ``converged`` cleared when the final ELBO is not finite."""
    elbo0 = jnp.asarray(elbo0)
    tol = jnp.maximum(jnp.asarray(tol, elbo0.dtype), 8 * jnp.finfo(elbo0.dtype).eps)
    # The loop runs on one flat vector of the state's floating leaves (the rest, e.g.
    # integer leaves of a user's state, rides along): the implicit adjoint then solves one
    # linear system in that vector, whichever inputs carry a tangent.
    diff, rest = eqx.partition(CAVIState(q0, elbo0), eqx.is_inexact_array)
    flat0, unravel = ravel_pytree(diff)

    def flat_step(carry, a):
        v, r = carry
        new, info = step(eqx.combine(unravel(v), r), a)
        d, r = eqx.partition(new, eqx.is_inexact_array)
        return (ravel_pytree(d)[0].astype(v.dtype), r), info

    res = fixed_point(flat_step, (flat0, rest), args, tol=tol, max_iter=max_iter,
                      adjoint=adjoint)
    state = eqx.combine(unravel(res.state[0]), res.state[1])
    return res._replace(state=state,
                        converged=res.converged & jnp.isfinite(state.elbo))


def coordinate_ascent(updates: Sequence[Callable[[Any], Any]], elbo_fn: Callable[[Any], Any],
                      state: Any, *, tol=1e-10, max_iter: int = 200,
                      adjoint: Adjoint | None = None) -> CAVIResult:
    """Generic CAVI: apply ``updates`` in order each sweep until the ELBO stops changing.

    Args:
        updates: coordinate updates, each ``state -> state`` (one factor q*ⱼ).
        elbo_fn: ``state -> ()`` the ELBO.
        state: the initial variational parameters (a pytree of arrays).
        tol: stop when |𝓛ₜ − 𝓛ₜ₋₁| ≤ ``tol`` · (1 + |𝓛ₜ|) (may be traced). It is floored at 8
            machine epsilons of the ELBO's dtype, the change roundoff alone can produce
            (float32 fits stop).
        max_iter: static bound on the number of sweeps.
        adjoint: how the loop is differentiated: ``jaxml._core.Implicit()`` by default
            (implicit differentiation at the converged sweep's fixed point, memory flat in
            ``max_iter``; the same ``while_loop`` forward as ``Direct()``; NaN when the
            loop or the adjoint's linear solve did not converge), or ``Unrolled()``
            (reverse mode through the sweeps taken).

    Returns:
        :class:`CAVIResult`: ``state``, ``elbo`` (), ``trace`` (max_iter,), ``n_iter``,
        ``converged`` (False if the ELBO is not finite).

    Raises:
        TypeError: ``updates`` or ``elbo_fn`` not callable.
        ValueError: ``elbo_fn`` does not return a scalar; bad ``tol``/``max_iter``.
    """
    updates = tuple(updates)
    if not updates or not all(callable(u) for u in updates):
        raise TypeError("updates must be a non-empty sequence of callables state -> state")
    check_returns(elbo_fn, "elbo_fn", state, shape=())
    max_iter, tol = check_loop_options(max_iter, tol)
    adjoint = _adjoint(adjoint)
    try:
        hash((updates, elbo_fn))
        core = _coordinate_ascent
    except TypeError:  # unhashable callables (e.g. modules holding arrays): not cached
        core = _coordinate_ascent.__wrapped__
    return core(state, tol, updates=updates, elbo_fn=elbo_fn, max_iter=max_iter,
                adjoint=adjoint)


@partial(jax.jit, static_argnames=("updates", "elbo_fn", "max_iter", "adjoint"))
def _coordinate_ascent(state, tol, *, updates, elbo_fn, max_iter, adjoint):
    def step(s: CAVIState, _):
        q = s.q
        for u in updates:
            q = u(q)
        return _advance(s, q, elbo_fn(q))

    res = _loop(step, state, elbo_fn(state), (), tol, max_iter, adjoint)
    return CAVIResult(res.state.q, res.state.elbo, res.trace, res.n_iter, res.converged)


# ---------------------------------------------------------- Normal-Gamma (Bishop 10.1.3)

class NormalGammaPrior(NamedTuple):
    """p(μ | τ) = N(mu0, (lambda0 τ)⁻¹), p(τ) = Gam(a0, b0) (shape a0, rate b0); all ()."""

    mu0: jax.Array
    lambda0: jax.Array
    a0: jax.Array
    b0: jax.Array


class NormalGammaQ(NamedTuple):
    """The mean-field factors q(μ) = N(mu, 1/mu_precision), q(τ) = Gam(a, b) (shape a,
    rate b); all ().

    ``mu_precision`` is the *absolute* precision of q(μ) (Bishop's λ_N in §10.1.3, which
    includes E[τ]); compare :class:`NormalGammaPosterior`'s ``lambda_n``, a precision in
    units of τ.
    """

    mu: jax.Array
    mu_precision: jax.Array
    a: jax.Array
    b: jax.Array


class NormalGammaPosterior(NamedTuple):
    """The exact posterior p(μ, τ | x) = N(μ | mu, (lambda_n τ)⁻¹) Gam(τ | a, b); all ().

    ``lambda_n`` = lambda0 + N scales the precision τ (the posterior counterpart of the
    prior's ``lambda0``); it is not the precision of μ itself (compare
    :class:`NormalGammaQ`'s ``mu_precision``).
    """

    mu: jax.Array
    lambda_n: jax.Array
    a: jax.Array
    b: jax.Array


class NormalGammaCAVIResult(CAVIResult):
    """Result of :func:`normal_gamma_cavi`: a :class:`CAVIResult` with ``q`` a
    :class:`NormalGammaQ`.

    Attributes:
        elbo: () the ELBO at ``q``; trace (max_iter,), n_iter, converged as in CAVIResult.
    """

    __slots__ = ()


def _ng_prior(x, mu0, lambda0, a0, b0):
    x = as_float_array(x, "x", ndim=1)
    if x.shape[0] < 1:
        raise ValueError("x must hold at least one observation")
    mu0 = as_float_array(mu0, "mu0", ndim=0)
    lambda0, a0, b0 = (check_positive(v, name) for v, name in
                       ((lambda0, "lambda0"), (a0, "a0"), (b0, "b0")))
    dt = float_dtype(x)
    prior = NormalGammaPrior(*(jnp.asarray(v, dt) for v in (mu0, lambda0, a0, b0)))
    return x, prior


def normal_gamma_update_mu(q: NormalGammaQ, x: jax.Array, prior: NormalGammaPrior
                           ) -> NormalGammaQ:
    """Bishop (10.26)–(10.27): μ_N = (λ₀μ₀ + N x̄) / (λ₀ + N), mu_precision = (λ₀ + N) E[τ],
    E[τ] = a/b. x: (N,)."""
    n = x.shape[0]
    mu = (prior.lambda0 * prior.mu0 + jnp.sum(x)) / (prior.lambda0 + n)
    prec = (prior.lambda0 + n) * q.a / q.b
    return q._replace(mu=mu, mu_precision=prec)


def normal_gamma_update_tau(q: NormalGammaQ, x: jax.Array, prior: NormalGammaPrior
                            ) -> NormalGammaQ:
    """Bishop (10.29)–(10.30): a_N = a₀ + (N+1)/2,
    b_N = b₀ + ½ E_μ[Σₙ (xₙ − μ)² + λ₀(μ − μ₀)²]. x: (N,)."""
    n = x.shape[0]
    var = 1.0 / q.mu_precision
    e_sq = jnp.sum((x - q.mu) ** 2) + n * var
    e_prior = (q.mu - prior.mu0) ** 2 + var
    a = prior.a0 + 0.5 * (n + 1)
    b = prior.b0 + 0.5 * (e_sq + prior.lambda0 * e_prior)
    return q._replace(a=jnp.broadcast_to(a, q.a.shape).astype(q.a.dtype), b=b)


def normal_gamma_elbo(q: NormalGammaQ, x: jax.Array, prior: NormalGammaPrior) -> jax.Array:
    """The exact ELBO E_q[log p(x, μ, τ)] + H[q(μ)] + H[q(τ)], x: (N,); returns ().

    With E τ = a/b, E log τ = ψ(a) − log b, E(xₙ − μ)² = (xₙ − μ_N)² + 1/λ_N
    (λ_N = ``mu_precision``):

        (N+1)/2 · (E log τ − log 2π) + ½ log λ₀
        − (E τ)/2 · [Σₙ E(xₙ − μ)² + λ₀ E(μ − μ₀)²]
        + a₀ log b₀ − log Γ(a₀) + (a₀ − 1) E log τ − b₀ E τ
        + ½ (1 + log 2π − log λ_N)
        + a − log b + log Γ(a) + (1 − a) ψ(a).
    """
    n = x.shape[0]
    e_tau = q.a / q.b
    e_log_tau = digamma(q.a) - jnp.log(q.b)
    var = 1.0 / q.mu_precision
    e_sq = jnp.sum((x - q.mu) ** 2) + n * var
    e_prior = (q.mu - prior.mu0) ** 2 + var
    e_log_p = (0.5 * (n + 1) * (e_log_tau - LOG_2PI) + 0.5 * jnp.log(prior.lambda0)
               - 0.5 * e_tau * (e_sq + prior.lambda0 * e_prior)
               + prior.a0 * jnp.log(prior.b0) - gammaln(prior.a0)
               + (prior.a0 - 1.0) * e_log_tau - prior.b0 * e_tau)
    h_mu = 0.5 * (1.0 + LOG_2PI - jnp.log(q.mu_precision))
    h_tau = q.a - jnp.log(q.b) + gammaln(q.a) + (1.0 - q.a) * digamma(q.a)
    return e_log_p + h_mu + h_tau


def normal_gamma_step(state: CAVIState, x: jax.Array, *, prior: NormalGammaPrior
                      ) -> tuple[CAVIState, CAVIInfo]:
    """One CAVI sweep for the Normal-Gamma model: q(μ) then q(τ), then the ELBO.

    Args:
        state: :class:`CAVIState` with ``q`` a :class:`NormalGammaQ`.
        x: (N,) observations. prior: :class:`NormalGammaPrior`.

    Returns:
        ``(state, info)``: the new state and :class:`CAVIInfo` (relative ELBO change, ELBO).
    """
    q = normal_gamma_update_mu(state.q, x, prior)
    q = normal_gamma_update_tau(q, x, prior)
    return _advance(state, q, normal_gamma_elbo(q, x, prior))


def _ng_step(state, args):
    x, prior = args
    return normal_gamma_step(state, x, prior=prior)


@partial(jax.jit, static_argnames=("max_iter", "adjoint"))
def _normal_gamma_fit(x, prior, q0, tol, *, max_iter, adjoint):
    res = _loop(_ng_step, q0, normal_gamma_elbo(q0, x, prior), (x, prior), tol, max_iter,
                adjoint)
    return NormalGammaCAVIResult(res.state.q, res.state.elbo, res.trace, res.n_iter,
                                 res.converged)


def normal_gamma_cavi(x, *, mu0=0.0, lambda0=1.0, a0=1.0, b0=1.0, init: NormalGammaQ | None = None,
                      tol=1e-12, max_iter: int = 100,
                      adjoint: Adjoint | None = None) -> NormalGammaCAVIResult:
    """CAVI for the univariate Gaussian with unknown mean and precision (Bishop §10.1.3).

    Each sweep (:func:`normal_gamma_step`) updates q(μ) then q(τ); the fit is
    init + ``fixed_point`` + step. The prior hyperparameters are traced scalars.

    Args:
        x: (N,) observations.
        mu0, lambda0, a0, b0: the Normal-Gamma prior (lambda0, a0, b0 > 0).
        init: starting :class:`NormalGammaQ`; default q(μ) = N(mu0, 1/lambda0), q(τ) = the
            prior Gam(a0, b0).
        tol, max_iter: stopping rule of :func:`coordinate_ascent`.
        adjoint: how the loop is differentiated: ``Implicit()`` by default (``jax.grad``
            w.r.t. x and the prior through the converged fixed point; the updates are
            smooth, so the derivative exists wherever the fit converged; NaN when the fit
            or the adjoint's linear solve did not converge), ``Unrolled()``, or
            ``Direct()``.

    Returns:
        :class:`NormalGammaCAVIResult`: ``q``, ``elbo`` () final ELBO, ``trace`` (max_iter,),
        ``n_iter``, ``converged`` (False if the ELBO is not finite).

    Raises:
        ValueError: NaN/inf in x or the prior; lambda0, a0 or b0 ≤ 0 (at run time when
            traced); bad ``tol``/``max_iter``.
    """
    x, prior = _ng_prior(x, mu0, lambda0, a0, b0)
    max_iter, tol = check_loop_options(max_iter, tol)
    if init is None:
        init = NormalGammaQ(prior.mu0, prior.lambda0, prior.a0, prior.b0)
    else:
        if not isinstance(init, NormalGammaQ):
            raise TypeError(f"init must be a NormalGammaQ, got {type(init).__name__}")
        init = NormalGammaQ(as_float_array(init.mu, "init.mu", ndim=0),
                            *(check_positive(v, f"init.{f}") for v, f in
                              zip(init[1:], NormalGammaQ._fields[1:])))
    init = NormalGammaQ(*(jnp.asarray(v, x.dtype) for v in init))
    return _normal_gamma_fit(x, prior, init, tol, max_iter=max_iter,
                             adjoint=_adjoint(adjoint))


def normal_gamma_posterior(x, *, mu0=0.0, lambda0=1.0, a0=1.0, b0=1.0) -> NormalGammaPosterior:
    """The exact conjugate posterior (Bishop §2.3.6; Murphy 2007, "Conjugate Bayesian analysis
    of the Gaussian distribution", §3), x: (N,):

        λ_N = λ₀ + N,  μ_N = (λ₀μ₀ + N x̄) / λ_N,  a_N = a₀ + N/2,
        b_N = b₀ + ½ Σₙ (xₙ − x̄)² + λ₀ N (x̄ − μ₀)² / (2λ_N).

    The posterior mean of μ is ``mu``, of τ is ``a / b``.
    """
    x, p = _ng_prior(x, mu0, lambda0, a0, b0)
    n = x.shape[0]
    xbar = jnp.mean(x)
    lambda_n = p.lambda0 + n
    mu = (p.lambda0 * p.mu0 + n * xbar) / lambda_n
    a = p.a0 + 0.5 * n
    b = (p.b0 + 0.5 * jnp.sum((x - xbar) ** 2)
         + p.lambda0 * n * (xbar - p.mu0) ** 2 / (2.0 * lambda_n))
    return NormalGammaPosterior(mu, lambda_n, a, b)


def normal_gamma_log_evidence(x, *, mu0=0.0, lambda0=1.0, a0=1.0, b0=1.0) -> jax.Array:
    """() log p(x) = log Γ(a_N) − log Γ(a₀) + a₀ log b₀ − a_N log b_N + ½ log(λ₀/λ_N)
    − (N/2) log 2π, x: (N,)."""
    x, p = _ng_prior(x, mu0, lambda0, a0, b0)
    post = normal_gamma_posterior(x, mu0=mu0, lambda0=lambda0, a0=a0, b0=b0)
    n = x.shape[0]
    return (gammaln(post.a) - gammaln(p.a0) + p.a0 * jnp.log(p.b0) - post.a * jnp.log(post.b)
            + 0.5 * jnp.log(p.lambda0 / post.lambda_n) - 0.5 * n * LOG_2PI)


# ------------------------------------------------- mixture of unit-variance Gaussians

class MixtureQ(NamedTuple):
    """q(μₖ) = N(mₖ, s2ₖ I), q(cᵢ) = Cat(phiᵢ).

    Attributes:
        m: (K, d) means. s2: (K,) variances. phi: (n, K) assignment probabilities.
    """

    m: jax.Array
    s2: jax.Array
    phi: jax.Array


class MixtureCAVIResult(CAVIResult):
    """Result of :func:`mixture_cavi`: a :class:`CAVIResult` with ``q`` a :class:`MixtureQ`
    (``m`` always (K, d), with d = 1 for 1-D data).

    Attributes:
        elbo: () the ELBO at ``q``; trace (max_iter,), n_iter, converged as in CAVIResult.
    """

    __slots__ = ()


def mixture_update_assignments(q: MixtureQ, x: jax.Array) -> MixtureQ:
    """Blei et al. (2017) eq. (17): φᵢₖ ∝ exp{E[μₖ]ᵀxᵢ − ½ E‖μₖ‖²},
    E‖μₖ‖² = ‖mₖ‖² + d sₖ². x: (n, d)."""
    d = x.shape[1]
    logits = x @ q.m.T - 0.5 * (jnp.sum(q.m ** 2, axis=1) + d * q.s2)
    return q._replace(phi=jnp.exp(logits - logsumexp(logits, axis=1, keepdims=True)))


def mixture_update_means(q: MixtureQ, x: jax.Array, prior_var) -> MixtureQ:
    """Blei et al. (2017) eq. (18): mₖ = Σᵢ φᵢₖ xᵢ / (1/σ² + Σᵢ φᵢₖ),
    sₖ² = 1 / (1/σ² + Σᵢ φᵢₖ). x: (n, d)."""
    nk = jnp.sum(q.phi, axis=0)
    s2 = 1.0 / (1.0 / prior_var + nk)
    return q._replace(m=(q.phi.T @ x) * s2[:, None], s2=s2)


def mixture_elbo(q: MixtureQ, x: jax.Array, prior_var) -> jax.Array:
    """The exact ELBO of the Bayesian mixture (Blei et al. 2017, eq. 21), x: (n, d); returns ():

        Σₖ E log p(μₖ) + Σᵢ [E log p(cᵢ) + E log p(xᵢ | cᵢ, μ)] − Σᵢ E log q(cᵢ)
        − Σₖ E log q(μₖ),

    with E log p(μₖ) = −(d/2) log 2πσ² − (‖mₖ‖² + d sₖ²)/(2σ²), E log p(cᵢ) = −log K,
    E log p(xᵢ | cᵢ, μ) = Σₖ φᵢₖ (−(d/2) log 2π − ½(‖xᵢ − mₖ‖² + d sₖ²)),
    −E log q(μₖ) = (d/2)(1 + log 2π sₖ²).
    """
    n, d = x.shape
    k = q.m.shape[0]
    e_mu_sq = jnp.sum(q.m ** 2, axis=1) + d * q.s2                       # (K,)
    e_log_p_mu = jnp.sum(-0.5 * d * (LOG_2PI + jnp.log(prior_var)) - 0.5 * e_mu_sq / prior_var)
    sq = (jnp.sum(x ** 2, axis=1)[:, None] - 2.0 * x @ q.m.T + e_mu_sq[None, :])  # (n, K)
    e_log_lik = jnp.sum(q.phi * (-0.5 * d * LOG_2PI - 0.5 * sq))
    e_log_p_c = -n * jnp.log(jnp.asarray(k, x.dtype))
    h_c = -jnp.sum(xlogy(q.phi, q.phi))
    h_mu = jnp.sum(0.5 * d * (1.0 + LOG_2PI + jnp.log(q.s2)))
    return e_log_p_mu + e_log_lik + e_log_p_c + h_c + h_mu


def mixture_step(state: CAVIState, x: jax.Array, *, prior_var) -> tuple[CAVIState, CAVIInfo]:
    """One CAVI sweep for the Bayesian mixture: every q(cᵢ), then every q(μₖ), then the ELBO.

    Args:
        state: :class:`CAVIState` with ``q`` a :class:`MixtureQ`.
        x: (n, d) observations. prior_var: () σ².

    Returns:
        ``(state, info)``: the new state and :class:`CAVIInfo` (relative ELBO change, ELBO).
    """
    q = mixture_update_assignments(state.q, x)
    q = mixture_update_means(q, x, prior_var)
    return _advance(state, q, mixture_elbo(q, x, prior_var))


def _mixture_step(state, args):
    x, prior_var = args
    return mixture_step(state, x, prior_var=prior_var)


@partial(jax.jit, static_argnames=("n_components", "max_iter", "adjoint"))
def _mixture_fit(key, x, q0, prior_var, tol, *, n_components, max_iter, adjoint):
    n = x.shape[0]
    if q0 is None:
        k = n_components
        idx = jax.random.choice(key, n, (k,), replace=False)
        q0 = MixtureQ(x[idx], jnp.ones(k, x.dtype), jnp.full((n, k), 1.0 / k, x.dtype))
    res = _loop(_mixture_step, q0, mixture_elbo(q0, x, prior_var), (x, prior_var), tol,
                max_iter, adjoint)
    return MixtureCAVIResult(res.state.q, res.state.elbo, res.trace, res.n_iter, res.converged)


def mixture_cavi(key, x, n_components: int, *, prior_var=1.0, init: MixtureQ | None = None,
                 tol=1e-10, max_iter: int = 200,
                 adjoint: Adjoint | None = None) -> MixtureCAVIResult:
    """CAVI for the Bayesian mixture of unit-variance Gaussians (Blei et al. 2017, Alg. 2).

    Each sweep (:func:`mixture_step`) updates every q(cᵢ) then every q(μₖ); the ELBO never
    decreases. The fit is init + ``fixed_point`` + step.

    Args:
        key: PRNG key for the default initialization (mₖ at K distinct random data points,
            s2ₖ = 1, phi uniform); only needed without ``init`` (pass ``None`` then).
        x: (n, d) observations, or (n,) for scalar data, treated as (n, 1).
        n_components: K (static, 1 <= K <= n).
        prior_var: σ², the prior variance of the component means (traced, > 0).
        init: a :class:`MixtureQ` to start from instead (``m`` (K, d); (K,) accepted for 1-D
            x).
        tol, max_iter: stopping rule of :func:`coordinate_ascent`.
        adjoint: how the loop is differentiated: ``Implicit()`` by default (``jax.grad``
            w.r.t. x and ``prior_var`` through the converged fixed point; the assignments
            move smoothly, there is no hard tie; NaN when the fit or the adjoint's linear
            solve did not converge), ``Unrolled()``, or ``Direct()``.

    Returns:
        :class:`MixtureCAVIResult`; ``q.m`` is (K, d) (d = 1 for 1-D x), ``q.s2`` (K,),
        ``q.phi`` (n, K); ``converged`` is False if the ELBO is not finite.

    Raises:
        ValueError: NaN/inf in x or init; prior_var ≤ 0 (at run time when traced);
            n_components outside 1..n; bad ``tol``/``max_iter``.
    """
    x = as_float_array(x, "x", ndim=(1, 2))
    x2 = x[:, None] if x.ndim == 1 else x
    n, d = x2.shape
    n_components = check_int_in_range(n_components, "n_components", 1, 2**31 - 1)
    if n < n_components:
        raise ValueError(f"x must have at least n_components = {n_components} points (rows), "
                         f"got shape {x.shape}")
    prior_var = check_positive(prior_var, "prior_var")
    if jnp.ndim(prior_var) != 0:
        raise ValueError(f"prior_var must be a scalar, got shape {jnp.shape(prior_var)}")
    max_iter, tol = check_loop_options(max_iter, tol)
    prior_var = jnp.asarray(prior_var, x.dtype)
    k = int(n_components)
    if init is None:
        if key is None:
            raise TypeError("mixture_cavi needs a key for its random initialization when no "
                            "init is given")
    else:
        if not isinstance(init, MixtureQ):
            raise TypeError(f"init must be a MixtureQ, got {type(init).__name__}")
        m = as_float_array(init.m, "init.m", dtype=x.dtype)
        s2 = check_positive(as_float_array(init.s2, "init.s2", dtype=x.dtype), "init.s2")
        phi = as_float_array(init.phi, "init.phi", dtype=x.dtype)
        if m.size != k * d or s2.size != k or phi.size != n * k:
            raise ValueError(f"init must hold m ({k}, {d}), s2 ({k},) and phi ({n}, {k}), got "
                             f"{m.shape}, {s2.shape}, {phi.shape}")
        init = MixtureQ(m.reshape(k, d), s2.reshape(k), phi.reshape(n, k))
        key = None
    return _mixture_fit(key, x2, init, prior_var, tol, n_components=k, max_iter=max_iter,
                        adjoint=_adjoint(adjoint))
