"""The shared optax training loop: a fixed-length ``lax.scan`` with a loss trace and an
optional tqdm progress bar (updated from inside the compiled loop by ``jax.debug.callback``).

Used by stochastic-gradient VI, normalizing flows, the VAE and Bayesian layers, so every
"fit by gradient steps" in jaxml behaves the same way: pure, jittable, bounded.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax

_BARS: dict = {}


def _update_bar(tag: str, n: int, i) -> None:
    i = int(np.asarray(i).ravel()[0])
    bar = _BARS.get(tag)
    if bar is None or i == 0:
        if bar is not None:
            bar.close()
        from tqdm.auto import tqdm  # optional: only needed when a bar is asked for

        bar = _BARS[tag] = tqdm(total=n, desc=tag, leave=False)
    bar.update(i + 1 - bar.n)
    if i + 1 >= n:
        bar.close()
        _BARS.pop(tag, None)


def scan_with_progress(f: Callable, init: Any, xs: Any = None, *, length: int | None = None,
                       progress: bool = False, desc: str = "steps", every: int | None = None):
    """``lax.scan(f, init, xs, length)``; with ``progress=True`` a tqdm bar follows the steps.

    The bar is updated every ``every`` steps (default: 100 updates in all) through
    ``jax.debug.callback``, so it works under ``jit``; tqdm is imported only then.
    """
    if not progress:
        return lax.scan(f, init, xs, length=length)
    n = length if length is not None else len(jax.tree_util.tree_leaves(xs)[0])
    every = every or max(1, n // 100)

    def g(carry, x):
        carry, i = carry
        carry, y = f(carry, x)
        lax.cond((i % every == 0) | (i == n - 1),
                 lambda: jax.debug.callback(lambda j: _update_bar(desc, n, j), i),
                 lambda: None)
        return (carry, i + 1), y

    (carry, _), ys = lax.scan(g, (init, jnp.int32(0)), xs, length=length)
    return carry, ys


class TrainResult(NamedTuple):
    """Result of :func:`train`.

    Attributes:
        params: the trained parameters (same structure as given, e.g. an ``eqx.Module``).
        opt_state: the optimizer state after the last step.
        losses: (n_steps,) the loss at every step (before that step's update).
    """

    params: Any
    opt_state: Any
    losses: jax.Array


def train(loss_fn: Callable[..., jax.Array], params: Any, key: jax.Array, *,
          optimizer: optax.GradientTransformation, n_steps: int, xs: Any = None,
          progress: bool = False, desc: str = "train") -> TrainResult:
    """Minimize ``loss_fn(params, key)`` with ``optimizer`` for ``n_steps`` steps.

    Each step draws a fresh key (for Monte Carlo samples or minibatches), takes
    ``jax.value_and_grad`` of the loss with respect to the inexact-array leaves of ``params``
    (other leaves, e.g. activation functions in an ``eqx.Module``, are held fixed) and
    applies the optax update. With ``xs`` (a pytree whose leaves have leading axis
    ``n_steps``, e.g. a KL-weight schedule) step ``t`` calls ``loss_fn(params, key_t, xs[t])``.
    Pure and jittable; ``n_steps`` is static.
    """
    dynamic, static = eqx.partition(params, eqx.is_inexact_array)
    opt_state = optimizer.init(dynamic)

    def loss(dyn, k, x):
        model = eqx.combine(dyn, static)
        return loss_fn(model, k) if xs is None else loss_fn(model, k, x)

    def step(carry, inputs):
        dyn, state = carry
        value, grads = jax.value_and_grad(loss)(dyn, *inputs)
        updates, state = optimizer.update(grads, state, dyn)
        return (optax.apply_updates(dyn, updates), state), value

    keys = jax.random.split(key, int(n_steps))
    (dynamic, opt_state), losses = scan_with_progress(step, (dynamic, opt_state), (keys, xs),
                                                      progress=progress, desc=desc)
    return TrainResult(eqx.combine(dynamic, static), opt_state, losses)
