"""The one bounded iteration loop every iterative algorithm in jaxml runs on.

An algorithm supplies a pure ``step(state) -> (state, error, value)``: one update, the
error the stopping rule reads (a gradient norm, a KKT violation, a change in the
objective), and a scalar ``value`` recorded in a fixed-length trace for plotting.

``iterate`` runs ``step`` under ``lax.while_loop`` until ``error <= tol`` or ``max_iter``
steps: cheap, but not reverse-mode differentiable. ``iterate_unrolled`` runs exactly
``max_iter`` steps under ``lax.scan`` and freezes the state once converged, so ``jax.grad``
can go through a whole fit. Both report ``converged`` from the last error actually
computed, never assumed, and both are bounded.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

Step = Callable[[Any], tuple[Any, jax.Array, jax.Array]]


class LoopResult(NamedTuple):
    """What a run of the loop returns.

    Attributes:
        state: the final state (a pytree).
        n_iter: () int32, the number of steps taken.
        converged: () bool, ``error <= tol`` after the last step.
        error: () the last error computed (``inf`` if no step ran).
        trace: (max_iter,) the ``value`` of every step; entries past ``n_iter`` are NaN.
    """

    state: Any
    n_iter: jax.Array
    converged: jax.Array
    error: jax.Array
    trace: jax.Array


def _value_dtype(step: Step, state: Any):
    _, err, val = jax.eval_shape(step, state)
    return jnp.result_type(err.dtype, val.dtype, jnp.float32)


def iterate(step: Step, state: Any, *, tol, max_iter: int) -> LoopResult:
    """Run ``step`` until ``error <= tol`` or ``max_iter`` steps (``lax.while_loop``).

    Args:
        step: pure ``state -> (state, error, value)``; ``error`` and ``value`` are scalars.
        state: the initial state (a pytree of arrays).
        tol: stop once the error is at most ``tol`` (may be traced).
        max_iter: static bound on the number of steps.
    """
    max_iter = int(max_iter)
    dtype = _value_dtype(step, state)
    tol = jnp.asarray(tol, dtype)

    def cond(carry):
        _, i, err, _ = carry
        return (i < max_iter) & ~(err <= tol)

    def body(carry):
        s, i, _, trace = carry
        s, err, val = step(s)
        trace = trace.at[i].set(jnp.asarray(val, dtype))
        return s, i + 1, jnp.asarray(err, dtype), trace

    init = (state, jnp.int32(0), jnp.asarray(jnp.inf, dtype), jnp.full((max_iter,), jnp.nan, dtype))
    state, n_iter, err, trace = lax.while_loop(cond, body, init)
    return LoopResult(state, n_iter, err <= tol, err, trace)


def iterate_unrolled(step: Step, state: Any, *, tol, max_iter: int) -> LoopResult:
    """Same contract as :func:`iterate`, reverse-mode differentiable (``lax.scan``).

    Runs ``max_iter`` scan steps; once the error is at most ``tol`` the state is frozen
    (later steps are computed but discarded), so the result equals :func:`iterate`'s and
    ``jax.grad`` flows through the steps that were taken.
    """
    max_iter = int(max_iter)
    dtype = _value_dtype(step, state)
    tol = jnp.asarray(tol, dtype)

    def body(carry, _):
        s, i, err = carry
        done = err <= tol
        new_s, new_err, val = step(s)
        s = jax.tree_util.tree_map(lambda old, new: jnp.where(done, old, new), s, new_s)
        err = jnp.where(done, err, jnp.asarray(new_err, dtype))
        val = jnp.where(done, jnp.nan, jnp.asarray(val, dtype))
        return (s, i + jnp.where(done, 0, 1).astype(jnp.int32), err), val

    init = (state, jnp.int32(0), jnp.asarray(jnp.inf, dtype))
    (state, n_iter, err), trace = lax.scan(body, init, None, length=max_iter)
    return LoopResult(state, n_iter, err <= tol, err, trace)


def run_loop(step: Step, state: Any, *, tol, max_iter: int, unroll: bool = False) -> LoopResult:
    """:func:`iterate` or, with ``unroll=True``, :func:`iterate_unrolled`."""
    return (iterate_unrolled if unroll else iterate)(step, state, tol=tol, max_iter=max_iter)
