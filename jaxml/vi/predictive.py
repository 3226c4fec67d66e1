"""The posterior predictive distribution from a variational q or from MCMC draws.

    p(ỹ | X̃, data) = ∫ p(ỹ | X̃, z) p(z | data) dz ≈ (1/S) Σₛ p(ỹ | X̃, zₛ),

zₛ drawn from q (a ``jaxml.vi`` family) or taken from a sampler's output
(``jaxml.mcmc.sample(...).draws``, chains pooled). ``predict(key, z, X)`` returns one
predictive draw ỹ ~ p(ỹ | X, z), or, ignoring ``key``, any deterministic function of z
(class probabilities, a regression mean) whose average is then the posterior-predictive
mean of that quantity. Cost: S calls of ``predict``, vectorized with ``vmap``.

Reference: A. Gelman et al., Bayesian Data Analysis, 3rd ed. (2013), §1.3 and ch. 6.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

from jaxml._core import (
    as_float_array, check_callable, check_finite, check_int_in_range, check_real_dtype,
)

__all__ = ["PosteriorPredictive", "posterior_predictive"]


class PosteriorPredictive(NamedTuple):
    """Result of :func:`posterior_predictive`: ``draws`` (S, ...) one ``predict`` output per
    posterior draw; ``mean`` (...) their average."""

    draws: jax.Array
    mean: jax.Array


def _predict_all(key, z, predict, X):
    keys = jax.random.split(key, z.shape[0])
    draws = jax.vmap(lambda k, zi: predict(k, zi, X))(keys, z)
    return PosteriorPredictive(draws, jnp.mean(draws, axis=0))


def _from_q(key, q, predict, X, n_samples):
    k_q, k_p = jax.random.split(key)
    return _predict_all(k_p, q.sample(k_q, n_samples), predict, X)


_from_samples_jit = jax.jit(_predict_all, static_argnames=("predict",))
_from_q_jit = jax.jit(_from_q, static_argnames=("predict", "n_samples"))


def posterior_predictive(key: jax.Array, q_or_samples, predict: Callable, X, *,
                         n_samples: int = 1000) -> PosteriorPredictive:
    """Posterior-predictive draws of ``predict`` at inputs ``X``.

    Args:
        key: PRNG key.
        q_or_samples: a distribution with ``sample(key, n) -> (n, d)`` (every ``jaxml.vi``
            family), or posterior draws (S, d), or MCMC draws (n_chains, n_samples, d)
            (pooled over chains).
        predict: ``predict(key, z (d,), X) -> array``, a draw from p(ỹ | X, z) (or a
            deterministic function of z).
        X: the inputs, passed through to ``predict`` (any array, e.g. (m, p) features).
        n_samples: S, draws taken from q (static, ≥ 1; ignored for given samples).

    Returns:
        :class:`PosteriorPredictive` ``(draws (S, ...), mean (...))``.

    Raises:
        TypeError: ``predict`` not callable, or failing on one draw (checked abstractly).
        ValueError: NaN/inf in X or in the samples (at run time when traced).
    """
    check_callable(predict, "predict")
    check_real_dtype(X, "X")
    X = check_finite(jnp.asarray(X), "X")
    if hasattr(q_or_samples, "sample"):
        check_int_in_range(n_samples, "n_samples", 1, 2**31 - 1)
        z_shape = jax.eval_shape(lambda k: q_or_samples.sample(k, 1), key)
        _check_predict(predict, key, jax.ShapeDtypeStruct(z_shape.shape[1:], z_shape.dtype), X)
        return _from_q_jit(key, q_or_samples, predict, X, int(n_samples))
    z = as_float_array(q_or_samples, "q_or_samples", ndim=(2, 3))
    if z.ndim == 3:
        z = z.reshape(-1, z.shape[-1])
    _check_predict(predict, key, jax.ShapeDtypeStruct(z.shape[1:], z.dtype), X)
    return _from_samples_jit(key, z, predict, X)


def _check_predict(predict, key, z, X) -> None:
    """``predict(key, z, X)`` must run on one draw and return real floating or integer
    arrays (checked abstractly: nothing runs)."""
    try:
        out = jax.eval_shape(predict, key, z, X)
    except Exception as e:  # noqa: BLE001  the user's function failed on a valid input
        raise TypeError(f"predict failed on (key, z {z.shape}, X {X.shape}): {e}") from e
    for leaf in jax.tree_util.tree_leaves(out):
        if not (jnp.issubdtype(leaf.dtype, jnp.floating) or jnp.issubdtype(leaf.dtype, jnp.integer)
                or leaf.dtype == jnp.bool_):
            raise TypeError(f"predict must return real arrays, got dtype {leaf.dtype}")
