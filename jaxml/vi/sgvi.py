"""Stochastic-gradient variational inference (black-box VI).

Maximize the ELBO 𝓛(λ) = E_{q_λ}[log p(x, z) − log q_λ(z)] over the unconstrained parameters
λ of a variational family with an optax optimizer, one unbiased gradient estimate per step:

    λₜ₊₁ = λₜ + optax step(∇̂_λ 𝓛(λₜ; ε⁽ᵗ⁾₁…ₛ)),

run for a fixed number of steps in one ``lax.scan`` (through :func:`jaxml._core.train`), so a
whole fit is one compiled call that ``jit``/``vmap`` compose with. The estimator (pathwise,
sticking-the-landing, score-function, analytic KL, …) is any option of :mod:`jaxml.vi.elbo`.
The fit returns the library's one training result, :class:`TrainResult`: ``params`` is the
fitted family q, ``trace`` the loss −𝓛̂ at every step, ``finite`` the health flag.

*Variational EM.* With ``theta0`` the model's own parameters θ (any pytree) are learned
jointly with q, maximizing 𝓛(λ, θ) = E_{q_λ}[log p(x, z; θ) − log q_λ(z)] over both (the
E step and the M step become simultaneous gradient steps); ``params`` is then the pair
``(q, theta)``. Since 𝓛(λ*, θ) = log p(x; θ) − KL(q_λ* ‖ p(z | x; θ)), this is type-II
maximum likelihood (evidence maximization) when the family holds the exact posterior.

*Stochastic VI.* With ``data`` (a pytree of row-aligned arrays, N rows) and
``batch_size`` B each step reads a random minibatch of B rows (drawn without replacement)
and the likelihood, a sum over rows, is scaled by N/B:

    𝓛̂ = (N/B) Σ_{i∈batch} log p(xᵢ | z; θ) + log p(z; θ) − log q_λ(z),

an unbiased estimate of the full-data ELBO (Hoffman et al. 2013), so the prior and the
entropy are counted once.

Cost: n_steps × (S evaluations of the target and its gradient + one optimizer update).

Reference: R. Ranganath, S. Gerrish, D. M. Blei, "Black Box Variational Inference" (AISTATS
2014); A. Kucukelbir et al., "Automatic Differentiation Variational Inference", JMLR (2017);
M. D. Hoffman, D. M. Blei, C. Wang, J. Paisley, "Stochastic Variational Inference", JMLR (2013).
"""

from __future__ import annotations

from functools import partial
from typing import Any, Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import optax

from jaxml._core import (
    TrainInfo,
    TrainResult,
    TrainState,
    as_float_array,
    check_callable,
    check_int,
    check_positive,
    check_returns,
    train,
    train_init,
    train_step,
)
from jaxml.vi.elbo import (
    ElboEstimator,
    Reparameterization,
    ScoreFunction,
    ScoreFunctionLOO,
    check_target,
)
from jaxml.vi.families import VariationalFamily

__all__ = ["TrainState", "TrainInfo", "TrainResult", "init", "step", "fit", "fit_sgvi"]


def _optimizer(optimizer, learning_rate):
    if optimizer is None:
        return optax.adam(learning_rate)
    if not isinstance(optimizer, optax.GradientTransformation):
        raise TypeError(f"optimizer must be an optax.GradientTransformation, got "
                        f"{type(optimizer).__name__}")
    return optimizer


def _check_learning_rate(optimizer, learning_rate):
    """``learning_rate`` finite and > 0 when it is used (no optimizer given)."""
    if optimizer is None:
        if jnp.ndim(learning_rate) != 0:
            raise ValueError(f"learning_rate must be a scalar, got shape "
                             f"{jnp.shape(learning_rate)}")
        return check_positive(learning_rate, "learning_rate")
    _optimizer(optimizer, learning_rate)
    return learning_rate


class _Model(eqx.Module):
    """The user's callables and the layout of a (variational-EM / minibatch) fit (static)."""

    log_density: Callable | None = eqx.field(static=True)
    log_likelihood: Callable | None = eqx.field(static=True)
    log_prior: Callable | None = eqx.field(static=True)
    has_theta: bool = eqx.field(static=True)
    n_rows: int | None = eqx.field(static=True)
    batch_size: int | None = eqx.field(static=True)

    def target(self, theta, batch):
        """The one-point target z -> () the estimator reads, for this θ and minibatch."""
        th = (theta,) if self.has_theta else ()
        if self.log_density is not None:
            return lambda z: self.log_density(z, *th)
        b = () if self.n_rows is None else (batch,)
        scale = 1.0 if self.n_rows is None else self.n_rows / self.batch_size

        def f(z):
            value = scale * self.log_likelihood(z, *th, *b)
            if self.log_prior is not None:
                value = value + self.log_prior(z, *th)
            return value
        return f


def _minibatch(key, data, model: _Model):
    if model.n_rows is None:
        return None
    idx = jax.random.choice(key, model.n_rows, (model.batch_size,), replace=False)
    return jax.tree_util.tree_map(lambda a: a[idx], data)


def _loss(estimator: ElboEstimator, model: _Model, n_samples: int, data=None):
    """The training loss (params, key) -> −ELBO surrogate; params = q or (q, θ)."""
    def loss(params, key):
        q, theta = params if model.has_theta else (params, None)
        if model.n_rows is None:
            return -estimator.surrogate(key, model.target(theta, None), q, n_samples)
        k_batch, k_draw = jax.random.split(key)
        target = model.target(theta, _minibatch(k_batch, data, model))
        return -estimator.surrogate(k_draw, target, q, n_samples)
    return loss


def _plain(log_density, log_likelihood) -> _Model:
    """The model of a plain fit: the estimator's one target, no θ, no minibatches."""
    if log_density is not None:
        return _Model(log_density, None, None, False, None, None)
    return _Model(None, log_likelihood, None, False, None, None)


def _check_data(data, batch_size):
    if data is None:
        if batch_size is not None:
            raise TypeError("batch_size needs data= (the rows to draw minibatches from)")
        return None, None, None
    leaves = jax.tree_util.tree_leaves(data)
    if not leaves:
        raise ValueError("data must hold at least one array")
    data = jax.tree_util.tree_map(lambda a: as_float_array(a, "data") if jnp.issubdtype(
        jnp.result_type(a), jnp.inexact) else jnp.asarray(a), data)
    leaves = jax.tree_util.tree_leaves(data)
    if any(a.ndim < 1 for a in leaves):
        raise ValueError("data must hold arrays with a leading row axis")
    n = leaves[0].shape[0]
    if n < 1 or any(a.shape[0] != n for a in leaves):
        raise ValueError(f"data must hold row-aligned arrays with n >= 1 rows, got leading "
                         f"sizes {[a.shape[0] for a in leaves]}")
    batch_size = n if batch_size is None else check_int(batch_size, "batch_size", 1, n)
    return data, n, batch_size


def _check_theta(theta0):
    def leaf(v):
        v = jnp.asarray(v) if not hasattr(v, "dtype") else v
        if jnp.issubdtype(v.dtype, jnp.inexact):
            return as_float_array(v, "theta0")
        return v
    return jax.tree_util.tree_map(leaf, theta0)


def _model(log_density, log_likelihood, log_prior, q0, estimator, n_samples, theta0, data,
           batch_size) -> tuple[_Model, Any, Any]:
    """Check a variational-EM / minibatch fit; return (model, data, θ0)."""
    data, n, batch_size = _check_data(data, batch_size)
    has_theta = theta0 is not None
    theta0 = _check_theta(theta0) if has_theta else None
    check_target(None if estimator.target == "log_likelihood" else (log_density or
                 log_likelihood), q0, estimator, n_samples,
                 log_likelihood=log_likelihood if estimator.target == "log_likelihood" else None,
                 check_output=False)
    if has_theta and isinstance(estimator, (ScoreFunction, ScoreFunctionLOO)):
        raise TypeError(f"{type(estimator).__name__} carries no gradient in θ (its f is held "
                        "fixed); learn theta0 with a pathwise estimator (e.g. "
                        "Reparameterization())")
    split = log_likelihood is not None
    if estimator.target == "log_likelihood":
        if log_prior is not None:
            raise TypeError(f"{type(estimator).__name__} holds the prior itself: "
                            "log_prior must be None")
    elif split:
        if log_density is not None:
            raise TypeError("pass either log_density or log_likelihood= and log_prior=, "
                            "not both")
        if log_prior is None:
            raise TypeError("log_likelihood= needs log_prior= with this estimator (the "
                            "target is log p(x | z) + log p(z))")
        check_callable(log_prior, "log_prior")
    if data is not None and not split:
        raise TypeError("minibatches (data=) need the likelihood split out: pass "
                        "log_likelihood=(z[, theta], batch) (and log_prior=) instead of "
                        "log_density, so that only the likelihood is scaled by N/B")
    if log_prior is not None and not split:
        raise TypeError("log_prior= goes with log_likelihood=")
    model = _Model(None if split else log_density, log_likelihood if split else None,
                   log_prior, has_theta, n, batch_size)
    z = jax.ShapeDtypeStruct((q0.dim,), q0.dtype)
    th = (theta0,) if has_theta else ()
    batch = () if data is None else (jax.tree_util.tree_map(
        lambda a: jax.ShapeDtypeStruct((batch_size,) + a.shape[1:], a.dtype), data),)
    if split:
        if estimator.target == "log_likelihood" and hasattr(estimator, "design"):
            raise TypeError("LocalReparameterization reads the linear predictors: it is not "
                            "offered with theta0/data")
        check_returns(log_likelihood, "log_likelihood", z, *th, *batch, shape=())
        if log_prior is not None:
            check_returns(log_prior, "log_prior", z, *th, shape=())
    else:
        check_returns(log_density, "log_density", z, *th, shape=())
    return model, data, theta0


def init(q0: VariationalFamily, *, optimizer: optax.GradientTransformation | None = None,
         learning_rate=1e-2, theta0: Any = None) -> TrainState:
    """The starting :class:`TrainState`: ``params`` = ``q0`` (or ``(q0, theta0)`` for
    variational EM), ``optimizer.init(params)`` (default optimizer: Adam(learning_rate)),
    ``finite`` = True."""
    learning_rate = _check_learning_rate(optimizer, learning_rate)
    params = q0 if theta0 is None else (q0, _check_theta(theta0))
    return train_init(params, _optimizer(optimizer, learning_rate))[0]


def step(key: jax.Array, state: TrainState, log_density: Callable | None, *,
         optimizer: optax.GradientTransformation | None = None, learning_rate=1e-2,
         estimator: ElboEstimator = Reparameterization(), n_samples: int = 1,
         log_likelihood: Callable | None = None, log_prior: Callable | None = None,
         data: Any = None, batch_size: int | None = None) -> tuple[TrainState, TrainInfo]:
    """One SGVI step (:func:`jaxml._core.train_step` on −ELBO).

    Args:
        key: PRNG key for this step's S draws (and minibatch).
        state: :class:`TrainState` from :func:`init` (``state.params`` is q, or (q, θ)
            when :func:`init` was given ``theta0``).
        log_density, log_likelihood, log_prior, data, batch_size, estimator, n_samples: as
            in :func:`fit`.
        optimizer, learning_rate: must match :func:`init`.

    Returns:
        ``(state, info)``; ``info.value`` () is the loss −ELBO estimate before the update,
        ``info.error`` 0 (inf once a loss or gradient was not finite).
    """
    params = state.params
    has_theta = isinstance(params, tuple) and len(params) == 2 and isinstance(
        params[0], VariationalFamily)
    q = params[0] if has_theta else params
    learning_rate = _check_learning_rate(optimizer, learning_rate)
    if has_theta or data is not None or log_prior is not None:
        model, data, _ = _model(log_density, log_likelihood, log_prior, q, estimator,
                                n_samples, params[1] if has_theta else None, data, batch_size)
    else:
        check_target(log_density, q, estimator, n_samples, log_likelihood=log_likelihood)
        model = _plain(log_density, log_likelihood)
    opt = _optimizer(optimizer, learning_rate)
    static = eqx.partition(params, eqx.is_inexact_array)[1]
    return train_step(key, state, _loss(estimator, model, int(n_samples), data), static, opt)


@partial(jax.jit, static_argnames=("model", "optimizer", "n_steps", "n_samples", "progress"))
def _fit(key, q0, theta0, data, estimator, learning_rate, *, model, optimizer, n_steps,
         n_samples, progress):
    opt = _optimizer(optimizer, learning_rate)
    params = (q0, theta0) if model.has_theta else q0
    return train(key, _loss(estimator, model, n_samples, data), params, optimizer=opt,
                 n_steps=n_steps, progress=progress, desc="sgvi")


def _hashable(x) -> bool:
    try:
        hash(x)
    except TypeError:
        return False
    return True


def fit(key, log_density: Callable | None, q0: VariationalFamily, *, n_steps: int = 1000,
        optimizer: optax.GradientTransformation | None = None, learning_rate=1e-2,
        estimator: ElboEstimator = Reparameterization(), n_samples: int = 1,
        log_likelihood: Callable | None = None, log_prior: Callable | None = None,
        theta0: Any = None, data: Any = None, batch_size: int | None = None,
        progress: bool = False) -> TrainResult:
    """Fit ``q0``'s family to a target by stochastic-gradient ascent on the ELBO.

    Args:
        key: PRNG key; step t uses its own split for the S draws (and its minibatch).
        log_density: ``z (d,) -> ()`` the unnormalised log posterior log p(x, z) (prior
            included), or ``(z, theta) -> ()`` with ``theta0``; ``None`` with the split
            target (``log_likelihood=`` and ``log_prior=``) and with
            :class:`~jaxml.vi.AnalyticKL` / :class:`~jaxml.vi.LocalReparameterization`.
        q0: the initial family, e.g. ``MeanFieldGaussian.init(d)``.
        n_steps: number of optimizer steps (static).
        optimizer: an optax optimizer (minimizing −ELBO); default ``optax.adam(learning_rate)``
            (``learning_rate`` may then be traced, e.g. ``vmap``-ed over).
        learning_rate: Adam's step size when no optimizer is given (finite, > 0).
        estimator: the gradient estimator (default: pathwise on the plain MC ELBO).
        n_samples: S draws per step (static).
        log_likelihood: log p(x | z) summed over the data: ``z (d,) -> ()``, with ``theta0``
            ``(z, theta) -> ()``, with ``data`` ``(z[, theta], batch) -> ()`` summed over the
            batch's rows. Required with ``data``; with AnalyticKL-type estimators it is the
            only target.
        log_prior: ``z (d,) -> ()`` or ``(z, theta) -> ()`` log p(z; θ), the unscaled term
            next to ``log_likelihood`` (estimators reading ``log_density`` only).
        theta0: initial model parameters θ (any pytree; its floating leaves are learned
            jointly with q: variational EM). A pathwise estimator is required.
        data: a pytree of arrays with a common leading axis of N rows (minibatch SVI).
        batch_size: B, rows per step (static, 1 ≤ B ≤ N; default N); the likelihood is
            scaled by N/B.
        progress: show a tqdm bar (updated from inside the compiled loop).

    Returns:
        :class:`TrainResult`: ``params`` the fitted q (same family type), or the pair
        ``(q, theta)`` with ``theta0``; ``trace`` (n_steps,) the loss −ELBO estimate at every
        step (before its update); ``n_iter``; ``finite`` (False once a loss, gradient or
        parameter was not finite: the fit stopped there and ``params`` is the last finite
        iterate); ``opt_state``.

    Raises:
        TypeError: a target that does not match the estimator or the layout (see above), a
            callable that is not callable.
        ValueError: a target that does not return a scalar, learning_rate ≤ 0, NaN or inf
            (at run time when traced), data rows not aligned, batch_size outside 1..N.
    """
    check_int(n_steps, "n_steps", 1, 2**31 - 1)
    if not isinstance(q0, VariationalFamily):
        raise TypeError(f"q0 must be a VariationalFamily, got {type(q0).__name__}")
    learning_rate = _check_learning_rate(optimizer, learning_rate)
    if theta0 is not None or data is not None or log_prior is not None:
        model, data, theta0 = _model(log_density, log_likelihood, log_prior, q0, estimator,
                                     n_samples, theta0, data, batch_size)
    else:
        if batch_size is not None:
            raise TypeError("batch_size needs data= (the rows to draw minibatches from)")
        check_target(log_density, q0, estimator, n_samples, log_likelihood=log_likelihood)
        model = _plain(log_density, log_likelihood)
    kw = dict(optimizer=optimizer, n_steps=int(n_steps), n_samples=int(n_samples),
              progress=bool(progress))
    core = _fit if _hashable(model) and _hashable(optimizer) else _fit.__wrapped__
    return core(key, q0, theta0, data, estimator, learning_rate, model=model, **kw)


fit_sgvi = fit
