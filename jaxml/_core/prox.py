r"""The one proximal-gradient (ISTA / FISTA) iteration every first-order solver in jaxml uses.

For min_x f(x) + g(x) with f smooth and g "simple" (its prox is cheap),

    x_{k+1} = prox_{t g}(y_k − t ∇f(y_k)),

with y_k = x_k (ISTA; plain or projected gradient descent) or the FISTA extrapolation

    y_k = x_k + β_k (x_k − x_{k−1}),   β_k = (θ_k − 1)/θ_{k+1},   θ_{k+1} = (1 + √(1 + 4θ_k²))/2.

Gradient descent is g = 0 (prox = identity); projected gradient is g = ι_C (prox = the
projection onto C). The pieces, shared by ``jaxml.optim`` (generic f), ``jaxml.linear``
(the lasso in Gram form, the constrained least squares) and ``jaxml.svm`` (monotone FISTA on
the dual):

* :class:`ProxState` (x, x_prev, θ, step t): ``x`` may be any pytree — a solver that carries
  linear images of its iterate (the lasso's Gw, the SVM's ∇D) extrapolates them with the
  iterate, ``extrapolate((w, Gw), (w_prev, Gw_prev), β)``, since the extrapolation is linear;
* :func:`momentum` (θ ↦ θ⁺, β), :func:`extrapolate`, :func:`restart_momentum` (adaptive
  restart, O'Donoghue & Candès 2015: momentum reset to θ = 1 whenever it points uphill,
  ⟨y − x⁺, x⁺ − x⟩ > 0);
* :func:`backtrack` (Beck–Teboulle sufficient decrease, bounded halvings);
* :func:`implicit_solution` — attaches implicit-function-theorem derivatives to the answer
  of any fast solver: the solver runs on stop-gradient inputs, then the fixed-point map
  x = T(x, θ) (e.g. a projected-gradient step) is handed to
  :func:`jaxml._core.fixed_point` with ``adjoint=Implicit()`` starting AT the solution;
* :func:`prox_gradient_step` — the whole step for a value-and-gradient oracle and a prox,
  ``step(state, args) -> (state, ProxInfo)`` on :func:`jaxml._core.fixed_point`'s
  convention; its error is the gradient-mapping norm ‖G_t(y)‖ = ‖y − x⁺‖/t (zero exactly at
  the minimizers of f + g, for convex problems).

Reference: A. Beck & M. Teboulle, "A fast iterative shrinkage-thresholding algorithm for
linear inverse problems", SIAM J. Imaging Sci. 2 (2009); B. O'Donoghue & E. Candès,
"Adaptive restart for accelerated gradient schemes", Found. Comput. Math. 15 (2015).
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from jaxml._core.loop import Adjoint, Implicit, StepInfo, fixed_point
from jaxml._core.numerics import safe_norm

SHRINK = 0.5   # backtracking factor


class ProxState(NamedTuple):
    """State of the proximal-gradient iteration.

    Attributes:
        x: the current iterate (a pytree; e.g. (d,), or (w, Gw) with a carried image).
        x_prev: the previous iterate (same pytree).
        theta: () FISTA momentum θ (1 at the start and after a restart).
        step: () the step size t (1/L for an L-smooth f).
    """

    x: Any
    x_prev: Any
    theta: jax.Array
    step: jax.Array


class ProxInfo(NamedTuple):
    """What a proximal-gradient step reports.

    Attributes:
        error: () the gradient-mapping norm ‖y − x⁺‖₂ / t (the stopping rule).
        value: () f(y), the smooth part at the point the step was taken from.
        step: () the step size used.
    """

    error: jax.Array
    value: jax.Array
    step: jax.Array


def prox_init(x0: Any, step, *, theta=1.0) -> ProxState:
    """x = x_prev = x0, θ = ``theta``, t = ``step`` (in x0's dtype)."""
    dt = jax.tree_util.tree_leaves(x0)[0].dtype
    return ProxState(x0, x0, jnp.asarray(theta, dt), jnp.asarray(step, dt))


def momentum(theta: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(θ⁺, β): θ⁺ = (1 + √(1 + 4θ²))/2 and the extrapolation weight β = (θ − 1)/θ⁺."""
    theta_new = 0.5 * (1 + jnp.sqrt(1 + 4 * theta ** 2))
    return theta_new, (theta - 1) / theta_new


def extrapolate(x: Any, x_prev: Any, beta: jax.Array) -> Any:
    """y = x + β (x − x_prev), leaf by leaf (linear, so carried images extrapolate too)."""
    return jax.tree_util.tree_map(lambda a, b: a + beta * (a - b), x, x_prev)


def is_uphill(y: jax.Array, x_new: jax.Array, x: jax.Array) -> jax.Array:
    """O'Donoghue–Candès gradient restart test: ⟨y − x⁺, x⁺ − x⟩ > 0 (flat vectors)."""
    return jnp.dot(y - x_new, x_new - x) > 0


def restart_momentum(theta_new: jax.Array, restart: jax.Array) -> jax.Array:
    """θ⁺, or 1 (no momentum on the next step) where ``restart``."""
    return jnp.where(restart, jnp.ones_like(theta_new), theta_new)


def backtrack(f: Callable, prox: Callable, y, fy, gy, t0, max_backtrack: int) -> jax.Array:
    """Largest t = t0·½ᵏ (k ≤ ``max_backtrack``) meeting the sufficient-decrease condition

        f(x⁺) ≤ f(y) + ∇f(y)ᵀ(x⁺ − y) + ‖x⁺ − y‖²/(2t),   x⁺ = prox(y − t∇f(y), t).

    Runs on stop-gradient values (the step size is a discrete choice), bounded.
    ``y``, ``gy``: flat (d,) vectors; ``f`` and ``prox`` act on them.
    """
    y, fy, gy, t0 = (lax.stop_gradient(v) for v in (y, fy, gy, t0))
    slack = 10 * jnp.finfo(y.dtype).eps * jnp.abs(fy)

    def trial(t):
        xp = prox(y - t * gy, t)
        dx = xp - y
        return f(xp) <= fy + jnp.dot(gy, dx) + jnp.dot(dx, dx) / (2 * t) + slack

    def cond(c):
        _, k, ok = c
        return (~ok) & (k < max_backtrack)

    def body(c):
        t, k, _ = c
        t = t * SHRINK
        return t, k + 1, trial(t)

    t, _, _ = lax.while_loop(cond, body, (t0, jnp.int32(0), trial(t0)))
    return t


def prox_gradient_step(state: ProxState, args: Any, *, value_and_grad: Callable,
                       prox: Callable, accelerated: bool = True, line_search: bool = False,
                       restart: bool = True, max_backtrack: int = 40,
                       error_fn: Callable | None = None) -> tuple[ProxState, ProxInfo]:
    """One ISTA / FISTA step on flat (d,) iterates.

    Args:
        state: :class:`ProxState` with x, x_prev of shape (d,).
        args: passed to the oracles (the fit's data and hyperparameters).
        value_and_grad: ``(y, args) -> (f(y), ∇f(y))``.
        prox: ``(v, t, args) -> prox_{tg}(v)``.
        accelerated: FISTA extrapolation (else ISTA).
        line_search: backtrack from ``state.step`` (else ``state.step`` is fixed).
        restart: adaptive (gradient) restart of the momentum.
        max_backtrack: bound on step halvings per step.
        error_fn: ``(x⁺, y, ∇f(y), t, args) -> error``; default the gradient-mapping norm.

    Returns:
        (state, :class:`ProxInfo`).
    """
    if accelerated:
        theta_new, beta = momentum(state.theta)
        y = extrapolate(state.x, state.x_prev, beta)
    else:
        theta_new, y = state.theta, state.x
    fy, gy = value_and_grad(y, args)
    t = state.step
    if line_search:
        t = backtrack(lambda v: value_and_grad(v, args)[0], lambda v, s: prox(v, s, args),
                      y, fy, gy, t, max_backtrack)
    x_new = prox(y - t * gy, t, args)
    if error_fn is None:
        err = safe_norm(y - x_new) / t
    else:
        err = error_fn(x_new, y, gy, t, args)
    if accelerated and restart:
        theta_new = restart_momentum(theta_new, is_uphill(y, x_new, state.x))
    return ProxState(x_new, state.x, theta_new, t), ProxInfo(err, fy, t)


def implicit_solution(T: Callable, x: Any, args: Any, converged, *,
                      adjoint: Adjoint | None = None) -> Any:
    r"""``x`` unchanged, carrying the derivative of the fixed point x = T(x, args).

    A solver (SMO, FISTA with restarts and line search, a batched loop) finds x* on
    stop-gradient inputs; this attaches the implicit derivative

        ẋ = (I − ∂T/∂x)⁻¹ (∂T/∂θ) θ̇        at x*,

    through :func:`jaxml._core.fixed_point` with ``adjoint=Implicit()`` started at x* and
    run for one step of T (its stopping error is 0 when ``converged``, else ∞). The primal
    value returned is ``x`` itself (the one step of T only carries the tangent), so the
    forward cost is one evaluation of T. ``jax.grad``, ``jax.jvp``, ``vmap`` and ``jit``
    compose; the derivative is NaN where ``converged`` is False or the adjoint solve
    (GMRES) did not converge. T may close over differentiable values.

    Args:
        T: ``(x, args) -> x``, the solver's fixed-point map (pure, differentiable in both).
        x: the solver's answer, a pytree of floating arrays (its own derivative ignored).
        args: T's differentiable inputs (data, hyperparameters).
        converged: () bool, whether the solver converged.
        adjoint: an :class:`jaxml._core.Implicit` with its GMRES options (default
            ``Implicit()``).

    Returns:
        ``x``, differentiable with respect to ``args`` and whatever T closes over.
    """
    adjoint = Implicit() if adjoint is None else adjoint
    x0 = jax.tree_util.tree_map(lax.stop_gradient, x)

    def step(s, a):
        inner, ok = a
        err = jnp.where(ok, 0.0, jnp.inf)
        return T(s, inner), StepInfo(err, err)

    res = fixed_point(step, x0, (args, jnp.asarray(converged)), tol=0.0, max_iter=1,
                      adjoint=adjoint)
    # primal x; tangent that of the fixed point (x − x is exactly 0 for finite x)
    return jax.tree_util.tree_map(lambda a, r: a + (r - lax.stop_gradient(r)), x0, res.state)
