r"""B independent fixed-point solves in one shared loop, the batching rule of any vmapped fit.

``jax.vmap`` of a ``lax.while_loop`` batches its whole carry, so the loop's trace write
becomes a scatter that copies the (B, max_iter) trace at every step. :func:`batched_solver`
builds ``solve(problem, tol) -> LoopResult`` that runs :func:`jaxml._core.fixed_point` on one
problem and, under ``jax.vmap``, a custom batching rule: the loop counter stays scalar, each
step applies ``vmap(step)`` to all members, freezes those already within ``tol`` (as ``vmap``
of the loop would), and writes one trace column in place. Same steps, same results as
``vmap`` of the single solve, without the per-step trace copy.

The step follows the loop's convention ``step(state, problem) -> (state, info)`` with
``info.error`` and ``info.value``; ``init(problem) -> state``.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
from jax.custom_batching import custom_vmap

from jaxml._core.loop import LoopResult, StepInfo, fixed_point


class BatchState(NamedTuple):
    """Carry of the batched loop: B solver states and their own counters and traces.

    Attributes:
        state: the B solver states (leading axis B).
        n_iter: (B,) steps each member took.
        error: (B,) each member's last error.
        trace: (B, max_iter) each member's values, NaN where it did not step.
        col: () the shared step counter (the trace column).
    """

    state: Any
    n_iter: jax.Array
    error: jax.Array
    trace: jax.Array
    col: jax.Array


def _batch_step(b: BatchState, problem, step, axes, tol):
    B = tol.shape[0]
    dt = tol.dtype
    done = b.error <= tol
    new, info = jax.vmap(step, in_axes=(0, axes))(b.state, problem)
    keep = lambda old, nw: jnp.where(done.reshape((B,) + (1,) * (old.ndim - 1)), old, nw)  # noqa: E731
    state = jax.tree_util.tree_map(keep, b.state, new)
    err = jnp.where(done, b.error, info.error.astype(dt))
    val = info.value.astype(dt)
    trace = b.trace.at[:, b.col].set(jnp.where(done, jnp.nan, val))
    out = BatchState(state, b.n_iter + (~done).astype(jnp.int32), err, trace, b.col + 1)
    return out, StepInfo(jnp.max(err - tol), jnp.nanmean(jnp.where(done, jnp.nan, val)))


def iterate_batched(step: Callable, state: Any, problem: Any, axes: Any, tol: jax.Array,
                    max_iter: int) -> LoopResult:
    """Run B solves of ``step`` in one loop (see the module docstring).

    Args:
        step: ``(state, problem) -> (state, info)`` for one problem.
        state: the B initial states (leading axis B on every leaf).
        problem: the problems; ``axes`` (a pytree of 0 / None like ``problem``) says which
            leaves are batched.
        tol: (B,) tolerances. max_iter: static bound.

    Returns:
        a batched :class:`LoopResult` (``n_iter``, ``converged``, ``error`` (B,), ``trace``
        (B, max_iter)), equal to ``vmap`` of ``fixed_point`` over the B problems.
    """
    B = tol.shape[0]
    dt = tol.dtype
    init = BatchState(state, jnp.zeros((B,), jnp.int32), jnp.full((B,), jnp.inf, dt),
                      jnp.full((B, max_iter), jnp.nan, dt), jnp.int32(0))

    def wrapped(b, prob):
        return _batch_step(b, prob, step, axes, tol)

    b = fixed_point(wrapped, init, problem, tol=0.0, max_iter=max_iter).state
    return LoopResult(b.state, b.n_iter, b.error <= tol, b.error, b.trace)


@lru_cache(maxsize=None)
def batched_solver(init: Callable, step: Callable, max_iter: int) -> Callable:
    """``solve(problem, tol) -> LoopResult``: :func:`fixed_point` over ``step`` from
    ``init(problem)``; under ``vmap`` it runs :func:`iterate_batched` (same results, no
    per-step trace copy). Cached per (init, step, max_iter), so jitted fits reuse it."""

    @custom_vmap
    def solve(problem, tol):
        return fixed_point(step, init(problem), problem, tol=tol, max_iter=max_iter)

    @solve.def_vmap
    def _rule(axis_size, in_batched, problem, tol):
        prob_b, tol_b = in_batched
        axes = jax.tree_util.tree_map(lambda b: 0 if b else None, prob_b)
        state = jax.vmap(init, in_axes=(axes,), axis_size=axis_size)(problem)
        tol = tol if tol_b else jnp.broadcast_to(tol, (axis_size,))
        res = iterate_batched(step, state, problem, axes, tol, max_iter)
        return res, jax.tree_util.tree_map(lambda _: True, res)

    return solve
