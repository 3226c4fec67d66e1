r"""First-order solvers on the shared bounded loop, and KKT residuals by autodiff.

All three solvers are instances of the proximal-gradient iteration (one implementation, in
``jaxml._core.prox``) for min_x f(x) + g(x) with f smooth:

    x_{k+1} = prox_{t g}(y_k − t ∇f(y_k)),

with y_k = x_k (ISTA; plain / projected gradient descent) or the FISTA extrapolation
y_k = x_k + ((θ_{k−1} − 1)/θ_k)(x_k − x_{k−1}), θ_k = (1 + √(1 + 4θ_{k−1}²))/2. Gradient
descent is g = 0 (prox = identity); projected gradient descent is g = ι_C (prox = the
projection onto C).

**Step size.** A number is used as a fixed step. ``learning_rate=None`` backtracks
(Armijo / Beck–Teboulle sufficient decrease) from the previous step: the trial step t is
shrunk by ½ until

    f(x⁺) ≤ f(y) + ∇f(y)ᵀ(x⁺ − y) + ‖x⁺ − y‖²/(2t),

which for plain gradient descent is the Armijo condition f(y − t∇f) ≤ f(y) − (t/2)‖∇f‖².
At most ``max_backtrack`` halvings per iteration (bounded). The step is nonincreasing over
the run (each iteration starts from the last accepted step), so after at most log₂(L t₀)
halvings in total it settles at some t ≥ 1/(2L) for an L-smooth f — the setting of the
convergence proofs (a growing trial step can cycle between 1/L and 2/L on quadratics). The
initial trial step is 1; pass ``learning_rate`` when the scale is known.

**Stopping criterion.** The norm of the *gradient mapping*

    G_t(y) = (y − prox_{tg}(y − t∇f(y))) / t,

which is ∇f(y) for gradient descent and is zero exactly at the minimizers of f + g (for
convex problems). The solver stops when ‖G_t(y_k)‖₂ ≤ ``tol`` (absolute), and
``converged`` is read from the last value. FISTA uses adaptive restart (O'Donoghue & Candès
2015): momentum is reset whenever it points uphill.

Each solver is :func:`proximal_gradient_init` + the shared loop + :func:`proximal_gradient_step`
(public: run the step yourself in your own ``scan``), and returns :class:`OptResult`.
By default (``adjoint=None``, i.e. ``Implicit()``) ``jax.grad`` of a solution with respect to
what f and the prox close over comes from the implicit function theorem at the fixed point
x = prox_t(x − t∇f(x)) (``jaxml._core.prox.implicit_solution``; one extra step forward);
``adjoint=Unrolled()`` runs a fixed ``max_iter`` steps under ``lax.scan`` (state frozen once
converged) so ``jax.grad`` differentiates the iterations themselves. ``x0`` may be any pytree of arrays; the
dtype of ``x0`` is kept. Cost: one gradient per step (plus one f and prox per backtracking
trial), O(d) memory beyond f.

References:
    Beck & Teboulle, "A fast iterative shrinkage-thresholding algorithm for linear inverse
    problems", SIAM J. Imaging Sci. 2 (2009).
    Nocedal & Wright, *Numerical Optimization* (2006), §3.1 (Armijo), §12 (KKT conditions).
    O'Donoghue & Candès, "Adaptive restart for accelerated gradient schemes", FoCM 15 (2015).
"""

from __future__ import annotations

from functools import partial
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
from jax import lax
from jax.flatten_util import ravel_pytree

from jaxml._core import (Adjoint, Direct, Implicit, check_loop_options, check_positive,
                         fixed_point, float_dtype)
from jaxml._core.prox import ProxInfo as OptInfo
from jaxml._core.prox import ProxState as OptState
from jaxml._core.prox import implicit_solution, prox_gradient_step, prox_init

__all__ = [
    "OptResult", "OptState", "OptInfo", "KKTResiduals", "gradient_descent",
    "projected_gradient_descent", "proximal_gradient", "proximal_gradient_init",
    "proximal_gradient_step", "identity_prox", "kkt_residuals",
    "FritzJohnResiduals", "fritz_john_residuals",
]


class OptResult(NamedTuple):
    """Result of a first-order solver.

    Attributes:
        x: the solution, same pytree structure / dtype as ``x0``.
        value: () f(x) (the smooth part only for ``proximal_gradient``).
        n_iter: () int32, iterations taken.
        converged: () bool, final gradient-mapping norm ``<= tol``.
        error: () the final gradient-mapping norm.
        learning_rate: () the last step size used.
        trace: (max_iter,) f at the point each step was taken from; NaN past ``n_iter``.
    """

    x: Any
    value: jax.Array
    n_iter: jax.Array
    converged: jax.Array
    error: jax.Array
    learning_rate: jax.Array
    trace: jax.Array


def identity_prox(v, t):
    """The prox of g = 0 (gradient descent): v."""
    return v


def _ravel(x0):
    flat, unravel = ravel_pytree(x0)
    if not jnp.issubdtype(flat.dtype, jnp.floating):
        flat = flat.astype(float_dtype(flat))
    return flat, unravel


def proximal_gradient_init(x0, *, learning_rate=None) -> OptState:
    """The solver state at ``x0`` (a pytree): x = x_prev = x0, θ = 1, step = ``learning_rate``
    (1 when ``None``: the first trial step of the backtracking search)."""
    flat, unravel = _ravel(x0)
    x = unravel(flat)
    return prox_init(x, jnp.asarray(1.0 if learning_rate is None else learning_rate, flat.dtype))


def proximal_gradient_step(state: OptState, f: Callable, prox: Callable = identity_prox, *,
                           accelerated: bool = True, line_search: bool = True,
                           restart: bool = True,
                           max_backtrack: int = 40) -> tuple[OptState, OptInfo]:
    """One proximal-gradient (ISTA / FISTA) step: x⁺ = prox_{tg}(y − t∇f(y)).

    Args:
        state: :class:`OptState` (x, x_prev: pytrees like ``x0``; theta (); step ()).
        f: smooth part, pytree -> scalar. prox: ``prox(v, t)`` (default: identity, gradient
            descent; ``lambda v, t: project(v)`` for projected gradient).
        accelerated: FISTA extrapolation (else ISTA / plain gradient).
        line_search: backtrack from ``state.step`` (else a fixed step ``state.step``).
        restart: adaptive restart of the momentum. max_backtrack: bound on halvings.

    Returns:
        (state, info): ``info.error`` the gradient-mapping norm, ``info.value`` f(y) at the
        point the step was taken from, ``info.step`` the step size used.
    """
    flat, unravel = _ravel(state.x)
    dt = flat.dtype
    flat_prev = ravel_pytree(state.x_prev)[0].astype(dt)
    new, info = _flat_step(OptState(flat, flat_prev, state.theta, state.step), f, prox, unravel,
                           accelerated=accelerated, line_search=line_search, restart=restart,
                           max_backtrack=max_backtrack)
    return OptState(unravel(new.x), unravel(new.x_prev), new.theta, new.step), info


def _flat_step(state, f, prox, unravel, *, accelerated, line_search, restart, max_backtrack):
    dt = state.x.dtype
    vg = jax.value_and_grad(lambda v: f(unravel(v)))
    return prox_gradient_step(
        state, (), value_and_grad=lambda v, _: vg(v),
        prox=lambda v, t, _: ravel_pytree(prox(unravel(v), t))[0].astype(dt),
        accelerated=accelerated, line_search=line_search, restart=restart,
        max_backtrack=max_backtrack)


def _validate(tol, max_iter, learning_rate):
    max_iter, tol = check_loop_options(max_iter, tol, allow_zero_tol=False)
    if learning_rate is not None:
        learning_rate = check_positive(learning_rate, "learning_rate")
    return max_iter, tol, learning_rate


def _solve(f, prox, x0, *, accelerated, learning_rate, tol, max_iter, adjoint, max_backtrack,
           restart=True) -> OptResult:
    """init + fixed_point + step on the flattened problem."""
    max_iter, tol, learning_rate = _validate(tol, max_iter, learning_rate)
    flat, unravel = _ravel(x0)
    implicit = adjoint is None or isinstance(adjoint, Implicit)
    if not implicit:
        state = proximal_gradient_init(flat, learning_rate=learning_rate)

        def step(s, _):
            return _flat_step(s, f, prox, unravel, accelerated=accelerated,
                              line_search=learning_rate is None, restart=restart,
                              max_backtrack=max_backtrack)

        res = fixed_point(step, state, (), tol=tol, max_iter=max_iter, adjoint=adjoint)
        x = res.state.x
        return OptResult(unravel(x), f(unravel(x)), res.n_iter, res.converged, res.error,
                         res.state.step, res.trace)
    # Implicit: the solver runs on stop-gradient copies of everything f and prox close over
    # (closure conversion hoists the differentiable values), then the fixed point
    # x = prox_t(x − t∇f(x)) carries the derivative (jaxml._core.prox.implicit_solution).
    dt = flat.dtype
    sg = partial(jax.tree_util.tree_map, lax.stop_gradient)
    f_flat = lambda v: f(unravel(v))  # noqa: E731
    p_flat = lambda v, t: ravel_pytree(prox(unravel(v), t))[0].astype(dt)  # noqa: E731
    f_conv, f_consts = jax.closure_convert(f_flat, flat)
    p_conv, p_consts = jax.closure_convert(p_flat, flat, jnp.ones((), dt))
    f_consts, p_consts = tuple(f_consts), tuple(p_consts)
    f_stop = lambda v: f_conv(v, *sg(f_consts))  # noqa: E731
    p_stop = lambda v, t: p_conv(v, t, *sg(p_consts))  # noqa: E731
    lr = None if learning_rate is None else lax.stop_gradient(learning_rate)
    state = proximal_gradient_init(sg(flat), learning_rate=lr)

    def step(s, _):
        return _flat_step(s, f_stop, p_stop, lambda v: v, accelerated=accelerated,
                          line_search=lr is None,
                          restart=restart, max_backtrack=max_backtrack)

    res = fixed_point(step, state, (), tol=tol, max_iter=max_iter, adjoint=Direct())
    t = res.state.step

    def T(v, theta):
        fc, pc = theta
        return p_conv(v - t * jax.grad(f_conv)(v, *fc), t, *pc)

    x = implicit_solution(T, res.state.x, (f_consts, p_consts), res.converged,
                          adjoint=adjoint)
    return OptResult(unravel(x), f(unravel(x)), res.n_iter, res.converged, res.error,
                     t, res.trace)


def proximal_gradient(f: Callable, prox: Callable, x0, *, accelerated: bool = True,
                      learning_rate=None, tol=1e-6, max_iter: int = 1000,
                      adjoint: Adjoint | None = None, restart: bool = True,
                      max_backtrack: int = 40) -> OptResult:
    """Minimize f(x) + g(x) by FISTA (``accelerated=True``) or ISTA.

    Args:
        f: smooth part, pytree -> scalar (differentiated by ``jax.grad``).
        prox: ``prox(v, t)`` = argmin_z g(z) + ‖z − v‖²/(2t), same pytree as ``x0`` (e.g.
            ``lambda v, t: soft_threshold(v, t * lam)``).
        x0: initial point (pytree of arrays).
        accelerated: FISTA momentum (with adaptive restart when ``restart``).
        learning_rate: fixed step (``<= 1/L`` for an L-smooth ``f``) or ``None`` to backtrack.
        tol: stop when the gradient-mapping norm is ``<= tol``.
        max_iter: static bound on iterations.
        adjoint: how the fit is differentiated. ``None`` (default) or
            ``jaxml._core.Implicit()``: the while loop runs on stop-gradient values and the
            solution carries the implicit derivative of its fixed point
            x = prox_t(x − t∇f(x)) with respect to everything ``f`` and ``prox`` close over
            (``jax.grad``/``jvp``/``vmap``/``jit``; memory flat in ``max_iter``; NaN when
            the fit did not converge). Where the prox is not differentiable (a coordinate
            exactly at a kink, the edge of an active set) it is the derivative of the active
            branch. ``Direct()``: the plain while loop (forward mode only); ``Unrolled()``:
            ``lax.scan`` over ``max_iter`` steps, reverse mode through the iterations.
        max_backtrack: bound on step halvings per iteration.

    Returns:
        :class:`OptResult`; ``value`` is f(x) (add g(x) yourself).
    """
    return _solve(f, prox, x0, accelerated=accelerated, learning_rate=learning_rate, tol=tol,
                  max_iter=max_iter, adjoint=adjoint, max_backtrack=max_backtrack,
                  restart=restart)


def projected_gradient_descent(f: Callable, x0, project: Callable, *, learning_rate=None,
                               tol=1e-6, max_iter: int = 1000, adjoint: Adjoint | None = None,
                               max_backtrack: int = 40) -> OptResult:
    """Minimize f over a closed convex set C: x⁺ = P_C(x − t∇f(x)).

    Args:
        f: pytree -> scalar, smooth. x0: initial point (pytree).
        project: Euclidean projection onto C, same pytree in and out (e.g.
            ``lambda w: project_l1_ball(w, 2.0)``).
        learning_rate: fixed step or ``None`` (backtracking).
        tol: stop when ‖x − P_C(x − t∇f(x))‖/t ≤ ``tol``.
        max_iter: static bound. adjoint: as :func:`proximal_gradient`.

    Returns:
        :class:`OptResult`.
    """
    return _solve(f, lambda v, t: project(v), x0, accelerated=False,
                  learning_rate=learning_rate, tol=tol, max_iter=max_iter, adjoint=adjoint,
                  max_backtrack=max_backtrack)


def gradient_descent(f: Callable, x0, *, learning_rate=None, tol=1e-6, max_iter: int = 1000,
                     adjoint: Adjoint | None = None, max_backtrack: int = 40) -> OptResult:
    """Minimize a smooth f by x⁺ = x − t∇f(x).

    Args:
        f: pytree -> scalar. x0: initial point (pytree of arrays).
        learning_rate: fixed step ``t`` or ``None`` for Armijo backtracking
            (f(x − t∇f) ≤ f(x) − (t/2)‖∇f‖², trial step halved until accepted, at most
            ``max_backtrack`` times per iteration).
        tol: stop when ‖∇f(x)‖₂ ≤ ``tol``.
        max_iter: static bound. adjoint: as :func:`proximal_gradient`.

    Returns:
        :class:`OptResult`.
    """
    return _solve(f, identity_prox, x0, accelerated=False, learning_rate=learning_rate,
                  tol=tol, max_iter=max_iter, adjoint=adjoint, max_backtrack=max_backtrack)


# ----------------------------------------------------------------------------- KKT
class KKTResiduals(NamedTuple):
    r"""Residuals of the KKT conditions of min f(x) s.t. h(x) ≤ 0, e(x) = 0.

    Attributes (all () scalars, max-abs norms; 0 at a KKT point):
        stationarity: ‖∇f + J_hᵀλ + J_eᵀμ‖_∞.
        primal: max(maxᵢ hᵢ(x)_+, maxⱼ |eⱼ(x)|).
        dual: maxᵢ (-λᵢ)_+.
        complementary: maxᵢ |λᵢ hᵢ(x)|.
        lam: (m,) the inequality multipliers used. mu: (p,) the equality multipliers used.
    """

    stationarity: jax.Array
    primal: jax.Array
    dual: jax.Array
    complementary: jax.Array
    lam: jax.Array
    mu: jax.Array

    @property
    def max(self) -> jax.Array:
        """The largest of the four residuals."""
        return jnp.max(jnp.stack([self.stationarity, self.primal, self.dual, self.complementary]))


def _as_constraint(fn, flat_unravel, x):
    if fn is None:
        return None
    return lambda v: jnp.atleast_1d(fn(flat_unravel(v))).astype(x.dtype).ravel()


def kkt_residuals(f: Callable, x, *, ineq: Callable | None = None, eq: Callable | None = None,
                  lam=None, mu=None, active_tol=None) -> KKTResiduals:
    r"""KKT residuals of min f(x) s.t. ``ineq(x) <= 0``, ``eq(x) == 0`` at ``x``.

    Gradients and constraint Jacobians come from ``jax.grad`` / ``jax.jacobian``. When a
    multiplier is not given it is estimated: the least-squares multipliers
    argmin ‖∇f + J_hᵀ λ + J_eᵀμ‖₂ over the equality
    constraints and the *active* inequalities (hᵢ(x) ≥ - ``active_tol``, default
    √ε (1 + ‖x‖)), inactive ones set to 0. The estimate is reported
    unclipped, so a negative λᵢ (a wrongly active constraint) shows in ``dual``.

    Args:
        f: pytree -> scalar objective.
        x: the candidate point (pytree).
        ineq: pytree -> (m,) (or scalar) inequality constraint values, feasible when ``<= 0``.
        eq: pytree -> (p,) (or scalar) equality constraint values.
        lam: (m,) inequality multipliers, or ``None`` to estimate.
        mu: (p,) equality multipliers, or ``None`` to estimate.

    Returns:
        :class:`KKTResiduals`.
    """
    flat, unravel = _ravel(x)
    dt = flat.dtype
    fflat = lambda v: f(unravel(v))  # noqa: E731
    g = jax.grad(fflat)(flat)
    h = _as_constraint(ineq, unravel, flat)
    e = _as_constraint(eq, unravel, flat)
    hv = h(flat) if h else jnp.zeros((0,), dt)
    ev = e(flat) if e else jnp.zeros((0,), dt)
    Jh = jax.jacobian(h)(flat) if h else jnp.zeros((0, flat.size), dt)
    Je = jax.jacobian(e)(flat) if e else jnp.zeros((0, flat.size), dt)
    m, p = hv.shape[0], ev.shape[0]
    if active_tol is None:
        active_tol = jnp.sqrt(jnp.finfo(dt).eps) * (1 + jnp.max(jnp.abs(flat), initial=0.0))
    if lam is None or mu is None:
        active = jnp.concatenate([hv >= -active_tol, jnp.ones((p,), bool)])
        J = jnp.concatenate([Jh, Je], axis=0) * active[:, None]
        if m + p > 0:
            est = jnp.linalg.lstsq(J.T, -g)[0] * active
        else:
            est = jnp.zeros((0,), dt)
        lam = est[:m] if lam is None else jnp.asarray(lam, dt).ravel()
        mu = est[m:] if mu is None else jnp.asarray(mu, dt).ravel()
    else:
        lam = jnp.asarray(lam, dt).ravel()
        mu = jnp.asarray(mu, dt).ravel()
    if lam.shape != (m,):
        raise ValueError(f"lam must have shape ({m},), got {lam.shape}")
    if mu.shape != (p,):
        raise ValueError(f"mu must have shape ({p},), got {mu.shape}")
    stat = g + Jh.T @ lam + Je.T @ mu
    zero = jnp.zeros((), dt)
    amax = lambda v: jnp.max(v, initial=zero) if v.size else zero  # noqa: E731
    return KKTResiduals(
        stationarity=amax(jnp.abs(stat)),
        primal=jnp.maximum(amax(jnp.maximum(hv, 0.0)), amax(jnp.abs(ev))),
        dual=amax(jnp.maximum(-lam, 0.0)),
        complementary=amax(jnp.abs(lam * hv)),
        lam=lam, mu=mu)


# ----------------------------------------------------------------------------- Fritz John
class FritzJohnResiduals(NamedTuple):
    r"""Fritz John multipliers of min f(x) s.t. h(x) ≤ 0, e(x) = 0 at a point, and residuals.

    Attributes:
        stationarity: () ‖λ₀∇f + J_hᵀλ + J_eᵀμ‖₂ (0 where the Fritz John conditions hold).
        holds: () bool, ``stationarity <= tol * scale``, scale = the largest gradient norm.
        lam0: () λ₀ ≥ 0, the objective's multiplier; λ₀ > 0 makes λ/λ₀, μ/λ₀ KKT
            multipliers, λ₀ = 0 with ``holds`` means the constraint qualification fails.
        lam: (m,) λ ≥ 0 (0 on the inactive constraints), λ₀ + Σλᵢ = 1.
        mu: (p,) the equality multipliers (least squares given λ₀, λ).
        primal: () max(maxᵢ hᵢ(x)₊, maxⱼ |eⱼ(x)|).
        complementary: () maxᵢ |λᵢ hᵢ(x)|.
        n_iter: () int32, FISTA steps. converged: () bool.
        trace: (max_iter,) ½ stationarity² (of the projected gradients) per step.
    """

    stationarity: jax.Array
    holds: jax.Array
    lam0: jax.Array
    lam: jax.Array
    mu: jax.Array
    primal: jax.Array
    complementary: jax.Array
    n_iter: jax.Array
    converged: jax.Array
    trace: jax.Array


def fritz_john_residuals(f: Callable, x, *, ineq: Callable | None = None,
                         eq: Callable | None = None, active_tol=None, tol=None,
                         max_iter: int = 5000) -> FritzJohnResiduals:
    r"""Fritz John multipliers and residuals of min f(x) s.t. ``ineq(x) <= 0``, ``eq(x) == 0``.

    The Fritz John conditions need no constraint qualification: at a local minimizer there
    are (λ₀, λ, μ) ≠ 0 with λ₀, λ ≥ 0, λᵢ hᵢ(x) = 0 and

        λ₀ ∇f(x) + Σᵢ λᵢ ∇hᵢ(x) + Σⱼ μⱼ ∇eⱼ(x) = 0.

    With λ₀ + Σᵢ λᵢ = 1 (the simplex; inactive constraints, hᵢ(x) < −``active_tol``, get
    λᵢ = 0) and Π the projection onto the orthogonal complement of span{∇eⱼ}, the
    multipliers are found as the point of conv{Π∇f, Π∇hᵢ : i active} nearest to 0
    (:func:`jaxml.convex.convex_combination`, FISTA with a duality-gap certificate); μ
    then solves the least-squares problem for the rest. When λ₀ > 0, λ/λ₀ and μ/λ₀ are KKT
    multipliers (compare :func:`kkt_residuals`). When the conditions hold only with
    λ₀ = 0 — as at the minimizer (1, 0) of the Kuhn–Tucker example
    min −x₁ s.t. x₂ − (1 − x₁)³ ≤ 0, −x₂ ≤ 0 — the constraint gradients are positively
    dependent, no KKT multipliers exist and the constraint qualification fails. (Several
    multiplier vectors may exist; the one returned is the solver's, so λ₀ = 0 alone does
    not prove that every one has λ₀ = 0.) Linearly dependent equality gradients satisfy
    the conditions with μ ≠ 0 and λ₀ = λ = 0; that case is not separately reported.

    Args:
        f: pytree -> scalar objective.
        x: the candidate point (pytree).
        ineq: pytree -> (m,) (or scalar) inequality constraint values, feasible when ``<= 0``.
        eq: pytree -> (p,) (or scalar) equality constraint values.
        active_tol: hᵢ(x) ≥ −``active_tol`` counts as active (default √ε (1 + ‖x‖_∞)).
        tol: relative tolerance of the stationarity (of the largest gradient norm); default
            as :func:`jaxml.convex.convex_combination` (1e-6 in float64, 3e-3 in float32).
        max_iter: static bound on FISTA steps.

    Returns:
        :class:`FritzJohnResiduals`.

    References:
        John, "Extremum problems with inequalities as subsidiary conditions" (1948);
        Kuhn & Tucker, "Nonlinear programming" (1951); Mangasarian, *Nonlinear
        Programming* (1969), §7 (Fritz John and Kuhn–Tucker conditions).
    """
    flat = _ravel(x)[0]
    eps = float(jnp.finfo(flat.dtype).eps)
    if tol is None:
        tol = max(1e-6, (80 * eps) ** 0.5)
    max_iter, tol = check_loop_options(max_iter, tol, allow_zero_tol=False)
    if active_tol is None:
        active_tol = eps ** 0.5 * (1 + jnp.max(jnp.abs(flat), initial=0.0))
    return _fritz_john(x, active_tol, tol, f=f, ineq=ineq, eq=eq, max_iter=max_iter)


@partial(jax.jit, static_argnames=("f", "ineq", "eq", "max_iter"))
def _fritz_john(x, active_tol, tol, *, f, ineq, eq, max_iter) -> FritzJohnResiduals:
    from jaxml import convex   # the chapter's public API (convex imports no optim)

    flat, unravel = _ravel(x)
    dt = flat.dtype
    parts = [lambda v: jnp.atleast_1d(f(unravel(v))).astype(dt)]
    parts += [c for c in (_as_constraint(ineq, unravel, flat), _as_constraint(eq, unravel, flat))
              if c is not None]
    sizes = [jax.eval_shape(c, flat).shape[0] for c in parts]
    m = sizes[1] if ineq is not None else 0

    def stacked(v):                                              # (f, h, e) as one vector
        return jnp.concatenate([c(v) for c in parts])

    values, J = stacked(flat), jax.jacobian(stacked)(flat)
    hv, ev, Je = values[1:1 + m], values[1 + m:], J[1 + m:]
    G = J[:1 + m]                                                # (1 + m, n): ∇f, ∇hᵢ
    Je_pinv = jnp.linalg.pinv(Je.T) if Je.shape[0] else jnp.zeros((0, flat.size), dt)
    G_perp = G - (G @ Je_pinv.T) @ Je if Je.shape[0] else G    # rows projected off span Je
    where = jnp.concatenate([jnp.ones((1,), bool), hv >= -active_tol])
    res = convex.convex_combination(G_perp, jnp.zeros(flat.size, dt), where=where, tol=tol,
                                    max_iter=max_iter)
    combo = res.weights @ G
    mu = -(Je_pinv @ combo) if Je.shape[0] else jnp.zeros((0,), dt)
    lam = res.weights[1:]
    zero = jnp.zeros((), dt)
    amax = lambda v: jnp.max(v, initial=zero) if v.size else zero  # noqa: E731
    stationarity = jnp.linalg.norm(combo + Je.T @ mu)
    norms = jnp.linalg.norm(jnp.concatenate([jnp.where(where[:, None], G, 0.0), Je]), axis=1)
    return FritzJohnResiduals(
        stationarity=stationarity, holds=stationarity <= tol * jnp.max(norms),
        lam0=res.weights[0], lam=lam, mu=mu,
        primal=jnp.maximum(amax(jnp.maximum(hv, 0.0)), amax(jnp.abs(ev))),
        complementary=amax(jnp.abs(lam * hv)),
        n_iter=res.n_iter, converged=res.converged, trace=res.trace)
