r"""Stochastic-gradient variational inference (black-box VI).

Maximize the ELBO :math:`\mathcal L(\lambda) = \mathbb{E}_{q_\lambda}[\log p(x, z) -
\log q_\lambda(z)]` over the unconstrained parameters :math:`\lambda` of a variational family
with an optax optimizer, one unbiased gradient estimate per step:

.. math::

    \lambda_{t+1} = \lambda_t + \text{optax step}\big(\widehat{\nabla_\lambda \mathcal L}(\lambda_t;
        \varepsilon^{(t)}_{1..S})\big),

run for a fixed number of steps in one ``lax.scan`` (through :func:`jaxml._core.train`), so a
whole fit is one compiled call that ``jit``/``vmap`` compose with. The estimator (pathwise,
sticking-the-landing, score-function, ...) is any option of :mod:`jaxml.vi.elbo`.

Reference: R. Ranganath, S. Gerrish, D. M. Blei, "Black Box Variational Inference" (AISTATS
2014); A. Kucukelbir et al., "Automatic Differentiation Variational Inference", JMLR (2017);
M. D. Hoffman, D. M. Blei, C. Wang, J. Paisley, "Stochastic Variational Inference", JMLR (2013).
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxml._core.checks import check_int_in_range
from jaxml._core.train import train
from jaxml.vi.elbo import ElboEstimator, Reparameterization, _check_call
from jaxml.vi.families import VariationalFamily

__all__ = ["SGVIState", "SGVIResult", "init", "step", "fit", "fit_sgvi"]


class SGVIState(NamedTuple):
    """The variational family ``q`` and the optimizer state."""

    q: Any
    opt_state: Any


class SGVIResult(NamedTuple):
    """Result of :func:`fit`.

    Attributes:
        q: the fitted family (same type as the initial one).
        elbo: (n_steps,) the ELBO estimate at every step (before that step's update).
        opt_state: the final optimizer state.
        n_iter: () the number of steps taken (= n_steps).
    """

    q: Any
    elbo: jax.Array
    opt_state: Any
    n_iter: jax.Array


def _optimizer(optimizer, learning_rate):
    if optimizer is None:
        return optax.adam(learning_rate)
    if not isinstance(optimizer, optax.GradientTransformation):
        raise TypeError(f"optimizer must be an optax.GradientTransformation, got "
                        f"{type(optimizer).__name__}")
    return optimizer


def init(q0: VariationalFamily, *, optimizer: optax.GradientTransformation | None = None,
         learning_rate=1e-2) -> SGVIState:
    """The starting state: ``q0`` and ``optimizer.init(q0)`` (default: Adam(learning_rate))."""
    return SGVIState(q0, _optimizer(optimizer, learning_rate).init(q0))


def step(state: SGVIState, key, log_joint: Callable, *,
         optimizer: optax.GradientTransformation | None = None, learning_rate=1e-2,
         estimator: ElboEstimator = Reparameterization(), n_samples: int = 1
         ) -> tuple[SGVIState, jax.Array]:
    """One SGVI step: ``(new_state, elbo_estimate)``. ``optimizer`` must match :func:`init`."""
    _check_call(log_joint, state.q, estimator, n_samples)
    opt = _optimizer(optimizer, learning_rate)
    n = int(n_samples)
    elbo, grad = jax.value_and_grad(lambda q: estimator.surrogate(key, log_joint, q, n))(state.q)
    neg = jax.tree_util.tree_map(jnp.negative, grad)
    updates, opt_state = opt.update(neg, state.opt_state, state.q)
    return SGVIState(optax.apply_updates(state.q, updates), opt_state), elbo


def fit(key, log_joint: Callable, q0: VariationalFamily, *, n_steps: int = 1000,
        optimizer: optax.GradientTransformation | None = None, learning_rate=1e-2,
        estimator: ElboEstimator = Reparameterization(), n_samples: int = 1,
        progress: bool = False) -> SGVIResult:
    r"""Fit ``q0``'s family to ``log_joint`` by stochastic-gradient ascent on the ELBO.

    Args:
        key: PRNG key; step t uses its own split for the S draws.
        log_joint: ``z (d,) -> ()`` the unnormalized log posterior :math:`\log p(x, z)`
            (for :class:`~jaxml.vi.elbo.AnalyticKL`, the log-likelihood).
        q0: the initial family, e.g. ``MeanFieldGaussian.init(d)``.
        n_steps: number of optimizer steps (static).
        optimizer: an optax optimizer (minimizing −ELBO); default ``optax.adam(learning_rate)``
            (``learning_rate`` may then be traced, e.g. ``vmap``-ed over).
        estimator: the gradient estimator (default: pathwise on the plain MC ELBO).
        n_samples: S draws per step (static).
        progress: show a tqdm bar (updated from inside the compiled loop).

    Returns:
        :class:`SGVIResult` with the fitted ``q`` and the (n_steps,) ELBO trace.
    """
    _check_call(log_joint, q0, estimator, n_samples)
    check_int_in_range(n_steps, "n_steps", 1, 2**31 - 1)
    opt = _optimizer(optimizer, learning_rate)
    n = int(n_samples)

    def loss(q, k):
        return -estimator.surrogate(k, log_joint, q, n)

    res = train(loss, q0, key, optimizer=opt, n_steps=int(n_steps), progress=progress,
                desc="sgvi")
    return SGVIResult(res.params, -res.losses, res.opt_state, jnp.asarray(n_steps, jnp.int32))


fit_sgvi = fit
