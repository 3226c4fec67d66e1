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


class TrainState(NamedTuple):
    """State of :func:`train_step`: the trainable leaves, the optimizer state, health.

    Attributes:
        params: the inexact-array leaves being trained (``eqx.partition`` of the model).
        opt_state: the optax state.
        finite: () bool, every loss and gradient so far was finite.
    """

    params: Any
    opt_state: Any
    finite: jax.Array


class TrainInfo(NamedTuple):
    """What one :func:`train_step` reports: the loss (``value``) and whether it and its
    gradient were finite (``error`` is 0 if so, else inf: the shared loop's vocabulary)."""

    value: jax.Array
    error: jax.Array


class TrainResult(NamedTuple):
    """The one result every gradient-trained fit returns (flows, vae, bayes_layers, vi.sgvi).

    Attributes:
        params: the trained parameters or model (same structure as given, e.g. an
            ``eqx.Module`` or a variational family).
        trace: (n_steps,) the loss at every step (before that step's update); NaN from the
            first non-finite step on.
        n_iter: () int32, the steps taken with a finite loss and gradient (``n_steps`` on a
            healthy run).
        finite: () bool, every loss, gradient and parameter stayed finite. A step whose loss
            or gradient is not finite is skipped (the parameters are kept) and every later
            step too, so ``params`` is the last finite iterate and ``finite=False`` says so.
        opt_state: the optimizer state after the last step.
    """

    params: Any
    trace: jax.Array
    n_iter: jax.Array
    finite: jax.Array
    opt_state: Any


def _all_finite(tree) -> jax.Array:
    leaves = [jnp.all(jnp.isfinite(x)) for x in jax.tree_util.tree_leaves(tree)
              if eqx.is_inexact_array(x)]
    return jnp.all(jnp.stack(leaves)) if leaves else jnp.asarray(True)


def train_init(params: Any, optimizer: optax.GradientTransformation) -> tuple[TrainState, Any]:
    """``(state, static)``: the trainable leaves of ``params`` with a fresh optimizer state,
    and the fixed rest (activation functions, sizes) for :func:`train_step`."""
    dynamic, static = eqx.partition(params, eqx.is_inexact_array)
    return TrainState(dynamic, optimizer.init(dynamic), jnp.asarray(True)), static


def train_step(key: jax.Array, state: TrainState, loss_fn: Callable[..., jax.Array], static: Any,
               optimizer: optax.GradientTransformation, x: Any = None) -> tuple[TrainState, TrainInfo]:
    """One optax step on ``loss_fn(model, key)`` (or ``loss_fn(model, key, x)``).

    A non-finite loss or gradient leaves the parameters unchanged and clears
    ``state.finite``; once cleared, later steps change nothing.
    """
    def loss(dyn):
        model = eqx.combine(dyn, static)
        return loss_fn(model, key) if x is None else loss_fn(model, key, x)

    value, grads = jax.value_and_grad(loss)(state.params)
    updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
    new_params = optax.apply_updates(state.params, updates)
    ok = state.finite & jnp.isfinite(value) & _all_finite(grads) & _all_finite(new_params)
    keep = lambda new, old: jnp.where(ok, new, old)  # noqa: E731
    params = jax.tree_util.tree_map(keep, new_params, state.params)
    opt_state = jax.tree_util.tree_map(keep, opt_state, state.opt_state)
    info = TrainInfo(jnp.where(ok, value, jnp.nan), jnp.where(ok, 0.0, jnp.inf).astype(value.dtype))
    return TrainState(params, opt_state, ok), info


def train(key: jax.Array, loss_fn: Callable[..., jax.Array], params: Any, *,
          optimizer: optax.GradientTransformation, n_steps: int, xs: Any = None,
          progress: bool = False, desc: str = "train") -> TrainResult:
    """Minimize ``loss_fn(params, key)`` with ``optimizer`` for ``n_steps`` steps.

    Each step draws a fresh key (for Monte Carlo samples or minibatches) and applies
    :func:`train_step`: ``jax.value_and_grad`` of the loss with respect to the inexact-array
    leaves of ``params`` (other leaves, e.g. activation functions in an ``eqx.Module``, are
    held fixed) and the optax update. With ``xs`` (a pytree whose leaves have leading axis
    ``n_steps``, e.g. a KL-weight schedule) step ``t`` calls ``loss_fn(params, key_t, xs[t])``.
    Pure and jittable; ``n_steps`` is static; a non-finite step stops the updates and is
    reported by ``finite=False`` (see :class:`TrainResult`).
    """
    state, static = train_init(params, optimizer)

    def body(s, inputs):
        k, x = inputs
        return train_step(k, s, loss_fn, static, optimizer, x)

    keys = jax.random.split(key, int(n_steps))
    state, info = scan_with_progress(body, state, (keys, xs), progress=progress, desc=desc)
    n_iter = jnp.sum(jnp.isfinite(info.value)).astype(jnp.int32)
    return TrainResult(eqx.combine(state.params, static), info.value, n_iter, state.finite,
                       state.opt_state)
