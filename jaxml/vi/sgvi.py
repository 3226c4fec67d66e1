"""Stochastic-gradient variational inference (black-box VI).

Maximize the ELBO 𝓛(λ) = E_{q_λ}[log p(x, z) − log q_λ(z)] over the unconstrained parameters
λ of a variational family with an optax optimizer, one unbiased gradient estimate per step:

    λₜ₊₁ = λₜ + optax step(∇̂_λ 𝓛(λₜ; ε⁽ᵗ⁾₁…ₛ)),

run for a fixed number of steps in one ``lax.scan`` (through :func:`jaxml._core.train`), so a
whole fit is one compiled call that ``jit``/``vmap`` compose with. The estimator (pathwise,
sticking-the-landing, score-function, analytic KL, …) is any option of :mod:`jaxml.vi.elbo`.
The fit returns the library's one training result, :class:`TrainResult`: ``params`` is the
fitted family q, ``trace`` the loss −𝓛̂ at every step.

Cost: n_steps × (S evaluations of the target and its gradient + one optimizer update).

Reference: R. Ranganath, S. Gerrish, D. M. Blei, "Black Box Variational Inference" (AISTATS
2014); A. Kucukelbir et al., "Automatic Differentiation Variational Inference", JMLR (2017);
M. D. Hoffman, D. M. Blei, C. Wang, J. Paisley, "Stochastic Variational Inference", JMLR (2013).
"""

from __future__ import annotations

from functools import partial
from typing import Callable

import equinox as eqx
import jax
import optax

from jaxml._core import TrainInfo, TrainResult, TrainState, check_int_in_range, train, train_init, train_step
from jaxml.vi.elbo import ElboEstimator, Reparameterization, check_target
from jaxml.vi.families import VariationalFamily

__all__ = ["TrainState", "TrainInfo", "TrainResult", "init", "step", "fit", "fit_sgvi"]


def _optimizer(optimizer, learning_rate):
    if optimizer is None:
        return optax.adam(learning_rate)
    if not isinstance(optimizer, optax.GradientTransformation):
        raise TypeError(f"optimizer must be an optax.GradientTransformation, got "
                        f"{type(optimizer).__name__}")
    return optimizer


def _loss(estimator: ElboEstimator, target: Callable, n_samples: int):
    """The training loss (q, key) -> −ELBO surrogate."""
    def loss(q, key):
        return -estimator.surrogate(key, target, q, n_samples)
    return loss


def init(q0: VariationalFamily, *, optimizer: optax.GradientTransformation | None = None,
         learning_rate=1e-2) -> TrainState:
    """The starting :class:`TrainState`: ``params`` = ``q0``, ``optimizer.init(q0)``
    (default optimizer: Adam(learning_rate)), ``finite`` = True."""
    return train_init(q0, _optimizer(optimizer, learning_rate))[0]


def step(key: jax.Array, state: TrainState, log_density: Callable | None, *,
         optimizer: optax.GradientTransformation | None = None, learning_rate=1e-2,
         estimator: ElboEstimator = Reparameterization(), n_samples: int = 1,
         log_likelihood: Callable | None = None) -> tuple[TrainState, TrainInfo]:
    """One SGVI step (:func:`jaxml._core.train_step` on −ELBO).

    Args:
        key: PRNG key for this step's S draws.
        state: :class:`TrainState` from :func:`init` (``state.params`` is q).
        log_density, log_likelihood, estimator, n_samples: as in :func:`fit`.
        optimizer, learning_rate: must match :func:`init`.

    Returns:
        ``(state, info)``; ``info.value`` () is the loss −ELBO estimate before the update,
        ``info.error`` 0 (inf once a loss or gradient was not finite).
    """
    q = state.params
    target = check_target(log_density, q, estimator, n_samples, log_likelihood=log_likelihood)
    opt = _optimizer(optimizer, learning_rate)
    static = eqx.partition(q, eqx.is_inexact_array)[1]
    return train_step(key, state, _loss(estimator, target, int(n_samples)), static, opt)


@partial(jax.jit, static_argnames=("target", "optimizer", "n_steps", "n_samples", "progress"))
def _fit(key, q0, estimator, learning_rate, *, target, optimizer, n_steps, n_samples, progress):
    opt = _optimizer(optimizer, learning_rate)
    return train(key, _loss(estimator, target, n_samples), q0, optimizer=opt, n_steps=n_steps,
                 progress=progress, desc="sgvi")


def _hashable(x) -> bool:
    try:
        hash(x)
    except TypeError:
        return False
    return True


def fit(key, log_density: Callable | None, q0: VariationalFamily, *, n_steps: int = 1000,
        optimizer: optax.GradientTransformation | None = None, learning_rate=1e-2,
        estimator: ElboEstimator = Reparameterization(), n_samples: int = 1,
        log_likelihood: Callable | None = None, progress: bool = False) -> TrainResult:
    """Fit ``q0``'s family to a target by stochastic-gradient ascent on the ELBO.

    Args:
        key: PRNG key; step t uses its own split for the S draws.
        log_density: ``z (d,) -> ()`` the unnormalised log posterior log p(x, z) (prior
            included); ``None`` with :class:`~jaxml.vi.AnalyticKL` or
            :class:`~jaxml.vi.LocalReparameterization`, which take ``log_likelihood``.
        q0: the initial family, e.g. ``MeanFieldGaussian.init(d)``.
        n_steps: number of optimizer steps (static).
        optimizer: an optax optimizer (minimizing −ELBO); default ``optax.adam(learning_rate)``
            (``learning_rate`` may then be traced, e.g. ``vmap``-ed over).
        estimator: the gradient estimator (default: pathwise on the plain MC ELBO).
        n_samples: S draws per step (static).
        log_likelihood: ``z (d,) -> ()`` log p(x | z), only for the estimators that hold the
            prior (passing the wrong target raises ``TypeError``).
        progress: show a tqdm bar (updated from inside the compiled loop).

    Returns:
        :class:`TrainResult`: ``params`` the fitted q (same family type), ``trace``
        (n_steps,) the loss −ELBO estimate at every step (before its update), ``n_iter``,
        ``finite``, ``opt_state``.
    """
    target = check_target(log_density, q0, estimator, n_samples, log_likelihood=log_likelihood)
    check_int_in_range(n_steps, "n_steps", 1, 2**31 - 1)
    _optimizer(optimizer, learning_rate)
    kw = dict(optimizer=optimizer, n_steps=int(n_steps), n_samples=int(n_samples),
              progress=bool(progress))
    if _hashable(target) and _hashable(optimizer):
        return _fit(key, q0, estimator, learning_rate, target=target, **kw)
    return _fit.__wrapped__(key, q0, estimator, learning_rate, target=target, **kw)


fit_sgvi = fit
