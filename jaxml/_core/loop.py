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
* :class:`Implicit` — implicit differentiation at the solution. At a converged fixed point
  x* = T(x*, θ) of the step map T (θ = ``args`` and anything the step closes over), the
  implicit function theorem gives

      (I − ∂T/∂x) ẋ = (∂T/∂θ) θ̇,

  solved matrix-free by GMRES (bounded) inside ``lax.custom_linear_solve``, so both forward
  mode (``jvp``) and reverse mode (``grad``, whose adjoint system is
  (I − ∂T/∂x)ᵀ v = ḡ) work, and memory does not grow with ``max_iter``. Only the
  floating-point leaves of the state are differentiated (integer leaves such as labels are
  locally constant). If the forward loop did not converge, or the linear solve does not
  reach its tolerance, the derivative is NaN (the theorem does not apply there), never a
  silent wrong number. Where T is not differentiable (ties, the edge of an active set), the
  derivative is the one of the active branch.

Every loop is bounded by the static ``max_iter``.
"""

from __future__ import annotations

from functools import partial
from typing import Any, Callable, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.flatten_util import ravel_pytree

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


class Implicit(Adjoint):
    """Implicit differentiation at the converged fixed point (see the module docstring).

    The linear system is solved by GMRES from the first Neumann term, stopping as soon as
    the relative residual reaches ``tol`` (a contraction with rate ρ needs about
    log(tol)/log(ρ) matrix-vector products, each about one linearized step); the residual
    is then checked, and the derivative is NaN when it is above 10 · ``tol``.

    The adjoint tolerance is not tied to the fit's: the fits' stopping rules read
    different quantities (a log-likelihood change, a relative ELBO change, a gradient-map
    norm), and the solve is cheap to make tight (measured on ``gmm.fit``: 9 products at
    1e-4, 11 at 1e-10). The derivative is still only as accurate as the fitted solution:
    a loose fit ``tol`` gives the exact derivative of the map at an inexact fixed point.

    Args:
        tol: relative residual the GMRES solve must reach (floored at 1000 ε of the
            dtype: ~2e-13 in float64, ~1.2e-4 in float32).
        max_iter: GMRES restarts bound (the solve is bounded by ``max_iter · restart``
            matrix-vector products).
        restart: GMRES Krylov subspace size.
    """

    def __init__(self, *, tol: float = 1e-10, max_iter: int = 50, restart: int = 30):
        self.tol = float(tol)
        self.max_iter = int(max_iter)
        self.restart = int(restart)

    def __repr__(self):
        return f"Implicit(tol={self.tol}, max_iter={self.max_iter}, restart={self.restart})"


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
        adjoint: :class:`Direct` (default), :class:`Unrolled` or :class:`Implicit`.

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
    if isinstance(adjoint, Implicit):
        converted, consts = jax.closure_convert(step, state, args)
        return _implicit_loop(converted, max_iter, dtype, adjoint, state, (args, tuple(consts)), tol)
    raise TypeError(f"adjoint must be Direct(), Unrolled() or Implicit(), got {adjoint!r}")


def _call(converted, s, theta):
    args, consts = theta
    return converted(s, args, *consts)


@partial(jax.custom_jvp, nondiff_argnums=(0, 1, 2, 3))
def _implicit_loop(converted, max_iter: int, dtype, adjoint, state, theta, tol) -> LoopResult:
    return _while(partial(_call, converted), state, theta, tol, max_iter, dtype)


def _norm(tree) -> jax.Array:
    return jnp.sqrt(sum(jnp.sum(jnp.abs(v) ** 2) for v in jax.tree_util.tree_leaves(tree)))


def _adjoint_solve(adjoint: Implicit):
    """The solver of (I − J) x = b (and of its transpose) inside ``custom_linear_solve``.

    * b is scaled to unit norm first and x scaled back: the system is linear, and JAX's
      GMRES treats any residual under machine epsilon in ABSOLUTE terms as zero, so an
      unscaled right-hand side of size ~1e-17 (the rounding noise of a cotangent that is
      exactly 0 in exact arithmetic, e.g. of a normalised quantity) came back as x = 0 with
      a 100% residual, and the derivative turned NaN.
    * GMRES starts at x₀ = b, the first Neumann term (exact when J = 0; the initial residual
      costs the one matvec GMRES spends on A x₀ anyway), and stops inside a restart as soon
      as its residual estimate reaches ``tol`` (the "incremental" variant: the "batched"
      one always builds the whole ``restart``-dimensional Krylov space, 30 matvecs). The
      Krylov space after k matvecs contains the k-th Neumann iterate Σⱼ Jʲ b, so the
      solve never takes more matvecs than the fixed-point iteration x ← b + J x would.
    * The residual of the returned x is recomputed (one more matvec): above 10 · ``tol``
      the solve did not converge and x is NaN, never a silently wrong derivative. ``tol``
      is floored at 1000 ε of the dtype (float32: ~1.2e-4), which a float32 solve can
      reach.
    """
    def solve(matvec, b):
        size = sum(x.size for x in jax.tree_util.tree_leaves(b))
        b_norm = _norm(b)
        tol = max(adjoint.tol, 1000.0 * float(jnp.finfo(b_norm.dtype).eps))
        scale = jnp.where(b_norm > 0, b_norm, 1.0).astype(b_norm.dtype)
        b = jax.tree_util.tree_map(lambda v: v / scale, b)
        x, _ = jax.scipy.sparse.linalg.gmres(matvec, b, b, tol=tol, atol=0.0,
                                             restart=max(1, min(adjoint.restart, size)),
                                             maxiter=adjoint.max_iter,
                                             solve_method="incremental")
        r_norm = _norm(jax.tree_util.tree_map(jnp.subtract, matvec(x), b))
        ok = r_norm <= 10.0 * tol
        return jax.tree_util.tree_map(lambda v: jnp.where(ok, v * scale, jnp.nan), x)
    return solve


def _zero_tangent(x):
    x = jnp.asarray(x)
    if jnp.issubdtype(x.dtype, jnp.inexact):
        return jnp.zeros_like(x)
    return np.zeros(x.shape, dtype=jax.dtypes.float0)


@_implicit_loop.defjvp
def _implicit_loop_jvp(converted, max_iter, dtype, adjoint, primals, tangents):
    state0, theta, tol = primals
    _, theta_dot, _ = tangents
    res = _implicit_loop(converted, max_iter, dtype, adjoint, state0, theta, tol)
    x_diff, x_rest = eqx.partition(res.state, eqx.is_inexact_array)
    # one flat vector: leaves that get no tangent from θ are then zeros inside a linear
    # right-hand side, not constants that custom_linear_solve's transpose cannot take
    flat_x, unravel = ravel_pytree(x_diff)

    def T(v, th):
        new_state, _ = _call(converted, eqx.combine(unravel(v), x_rest), th)
        return ravel_pytree(eqx.partition(new_state, eqx.is_inexact_array)[0])[0]

    _, rhs = jax.jvp(lambda th: T(flat_x, th), (theta,), (theta_dot,))
    # ∂T/∂x linearized once at x*: the solver's matrix-vector products (and, in reverse
    # mode, their transposes) reuse its residuals instead of re-running the step's primal
    # computation (a whole E step, a Gram matrix) at every Krylov iteration
    _, jvp_x = jax.linearize(lambda d: T(d, theta), flat_x)

    def matvec(v):
        return v - jvp_x(v)

    solve = _adjoint_solve(adjoint)
    x_dot = lax.custom_linear_solve(matvec, rhs, solve, transpose_solve=solve)
    # a factor, not a select: NaN must reach the cotangent too when the fit did not converge
    x_dot = unravel(x_dot * jnp.where(res.converged, 1.0, jnp.nan).astype(x_dot.dtype))
    rest_dot = jax.tree_util.tree_map(_zero_tangent, x_rest)
    state_dot = eqx.combine(x_dot, rest_dot)
    out_dot = LoopResult(state_dot, _zero_tangent(res.n_iter), _zero_tangent(res.converged),
                         jnp.zeros_like(res.error), jnp.zeros_like(res.trace))
    return res, out_dot

