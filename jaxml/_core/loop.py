r"""The one bounded iteration loop every iterative fit in jaxml runs on.

A fit declares its **step**, the fixed-point map it iterates,

    step(state, args) -> (state, info),

where ``args`` holds the fit's differentiable inputs (data, hyperparameters) and ``info`` is
a NamedTuple with at least ``error`` (the number the stopping rule reads: a gradient-mapping
norm, a KKT violation, a relative change) and ``value`` (the objective recorded in the
trace). :func:`fixed_point` runs it until ``error ≤ tol`` or ``max_iter`` steps and returns a
:class:`LoopResult` with ``converged`` read from the last error actually computed.

How the loop is differentiated is a typed option, as in optimistix:

* :class:`Direct` — ``lax.while_loop``: cheapest; forward mode (``jvp``) goes through it,
  reverse mode does not.
* :class:`Unrolled` — ``lax.scan`` over exactly ``max_iter`` steps with the state frozen once
  converged, so ``jax.grad`` differentiates the iterations actually taken (memory grows with
  ``max_iter``).

Every loop is bounded by the static ``max_iter``.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

Step = Callable[[Any, Any], tuple[Any, Any]]


class StepInfo(NamedTuple):
    """The least a step reports: the stopping rule's ``error`` and the traced ``value``."""

    error: jax.Array
    value: jax.Array


class LoopResult(NamedTuple):
    """What a run of the loop returns.

    Attributes:
        state: the final state (a pytree).
        n_iter: () int32, the number of steps taken.
        converged: () bool, ``error ≤ tol`` after the last step.
        error: () the last error computed (``inf`` if no step ran).
        trace: (max_iter,) the ``value`` of every step; entries past ``n_iter`` are NaN.
    """

    state: Any
    n_iter: jax.Array
    converged: jax.Array
    error: jax.Array
    trace: jax.Array


class Adjoint:
    """How :func:`fixed_point` is differentiated. Instances are hashable static options."""

    def __eq__(self, other):
        return type(self) is type(other) and vars(self) == vars(other)

    def __hash__(self):
        return hash((type(self), tuple(sorted(vars(self).items()))))

    def __repr__(self):
        return f"{type(self).__name__}()"


class Direct(Adjoint):
    """``lax.while_loop``: stops as soon as ``error ≤ tol``; forward-mode differentiable."""


class Unrolled(Adjoint):
    """``lax.scan`` over ``max_iter`` steps, state frozen once converged: reverse-mode
    differentiable through the steps taken (memory O(max_iter · state))."""


def _as_info(info) -> tuple[jax.Array, jax.Array]:
    try:
        return info.error, info.value
    except AttributeError as e:
        raise TypeError("a step must return (state, info) with info.error and info.value, "
                        f"got info of type {type(info).__name__}") from e


def _value_dtype(step: Step, state: Any, args: Any):
    _, info = jax.eval_shape(step, state, args)
    err, val = _as_info(info)
    return jnp.result_type(err.dtype, val.dtype, jnp.float32)


def _while(step: Step, state, args, tol, max_iter: int, dtype) -> LoopResult:
    def cond(carry):
        _, i, err, _ = carry
        return (i < max_iter) & ~(err <= tol)

    def body(carry):
        s, i, _, trace = carry
        s, info = step(s, args)
        err, val = _as_info(info)
        trace = trace.at[i].set(jnp.asarray(val, dtype))
        return s, i + 1, jnp.asarray(err, dtype), trace

    init = (state, jnp.int32(0), jnp.asarray(jnp.inf, dtype), jnp.full((max_iter,), jnp.nan, dtype))
    state, n_iter, err, trace = lax.while_loop(cond, body, init)
    return LoopResult(state, n_iter, err <= tol, err, trace)


def _scan(step: Step, state, args, tol, max_iter: int, dtype) -> LoopResult:
    def body(carry, _):
        s, i, err = carry
        done = err <= tol
        new_s, info = step(s, args)
        new_err, val = _as_info(info)
        s = jax.tree_util.tree_map(lambda old, new: jnp.where(done, old, new), s, new_s)
        err = jnp.where(done, err, jnp.asarray(new_err, dtype))
        val = jnp.where(done, jnp.nan, jnp.asarray(val, dtype))
        return (s, i + jnp.where(done, 0, 1).astype(jnp.int32), err), val

    init = (state, jnp.int32(0), jnp.asarray(jnp.inf, dtype))
    (state, n_iter, err), trace = lax.scan(body, init, None, length=max_iter)
    return LoopResult(state, n_iter, err <= tol, err, trace)


def fixed_point(step: Step, state: Any, args: Any = (), *, tol, max_iter: int,
                adjoint: Adjoint | None = None) -> LoopResult:
    """Iterate ``state ← step(state, args)`` until ``info.error ≤ tol`` or ``max_iter`` steps.

    Args:
        step: pure ``(state, args) -> (state, info)``; ``info.error`` and ``info.value`` are
            scalars.
        state: the initial state (a pytree of arrays).
        args: the step's other inputs (a pytree; the fit's data and hyperparameters).
        tol: stop once the error is at most ``tol`` (may be traced).
        max_iter: static bound on the number of steps.
        adjoint: :class:`Direct` (default) or :class:`Unrolled`.

    Returns:
        :class:`LoopResult`; ``trace[i]`` is ``info.value`` of step ``i``, NaN past ``n_iter``.
    """
    max_iter = int(max_iter)
    adjoint = Direct() if adjoint is None else adjoint
    dtype = _value_dtype(step, state, args)
    tol = jnp.asarray(tol, dtype)
    if isinstance(adjoint, Unrolled):
        return _scan(step, state, args, tol, max_iter, dtype)
    if isinstance(adjoint, Direct):
        return _while(step, state, args, tol, max_iter, dtype)
    raise TypeError(f"adjoint must be Direct() or Unrolled(), got {adjoint!r}")


# Transitional shims for chapters not yet moved to ``fixed_point`` (removed once none use them).
def run_loop(step, state, *, tol, max_iter: int, unroll: bool = False) -> LoopResult:
    def wrapped(s, _):
        s, err, val = step(s)
        return s, StepInfo(err, val)
    return fixed_point(wrapped, state, (), tol=tol, max_iter=max_iter,
                       adjoint=Unrolled() if unroll else Direct())


def iterate(step, state, *, tol, max_iter: int) -> LoopResult:
    return run_loop(step, state, tol=tol, max_iter=max_iter)
