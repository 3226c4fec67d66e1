r"""First-order solvers on the shared bounded loop, and KKT residuals by autodiff.

All three solvers are instances of the proximal-gradient iteration for
:math:`\min_x f(x) + g(x)` with :math:`f` smooth:

.. math::  x_{k+1} = \mathrm{prox}_{t g}\big(y_k - t \nabla f(y_k)\big),

with :math:`y_k = x_k` (ISTA; plain / projected gradient descent) or the FISTA
extrapolation :math:`y_k = x_k + \frac{\theta_{k-1} - 1}{\theta_k}(x_k - x_{k-1})`,
:math:`\theta_k = (1 + \sqrt{1 + 4\theta_{k-1}^2})/2`. Gradient descent is :math:`g = 0`
(prox = identity); projected gradient descent is :math:`g = \iota_C` (prox = projection).

**Step size.** A number is used as a fixed step. ``learning_rate=None`` backtracks
(Armijo / Beck–Teboulle sufficient decrease) from the previous step: the trial step
:math:`t` is shrunk by ``0.5`` until

.. math:: f(x^+) \le f(y) + \nabla f(y)^\top (x^+ - y) + \tfrac{1}{2t}\|x^+ - y\|^2,

which for plain gradient descent is the Armijo condition
:math:`f(y - t\nabla f) \le f(y) - \tfrac{t}{2}\|\nabla f\|^2`. At most ``max_backtrack``
halvings per iteration (bounded). The step is nonincreasing over the run (each iteration
starts from the last accepted step), so after at most :math:`\log_2(L t_0)` halvings in total it
settles at some :math:`t \ge 1/(2L)` for an L-smooth :math:`f` — the setting of the convergence
proofs (a growing trial step can cycle between :math:`1/L` and :math:`2/L` on quadratics).
The initial trial step is ``1.0``; pass ``learning_rate`` when the scale is known.

**Stopping criterion.** The norm of the *gradient mapping*

.. math:: G_t(y) = \frac{y - \mathrm{prox}_{tg}(y - t\nabla f(y))}{t},

which is :math:`\nabla f(y)` for gradient descent and is zero exactly at the minimizers of
:math:`f + g` (for convex problems). The solver stops when :math:`\|G_t(y_k)\|_2 \le` ``tol``
(absolute), and ``converged`` is read from the last value. FISTA uses adaptive restart
(O'Donoghue & Candès 2015): momentum is reset whenever it points uphill.

Each solver returns :class:`OptResult`; ``unroll=True`` runs a fixed ``max_iter`` steps
under ``lax.scan`` (state frozen once converged) so ``jax.grad`` can go through the fit.
``x0`` may be any pytree of arrays; the dtype of ``x0`` is kept.

References:
    Beck & Teboulle, "A fast iterative shrinkage-thresholding algorithm for linear inverse
    problems", SIAM J. Imaging Sci. 2 (2009).
    Nocedal & Wright, *Numerical Optimization* (2006), §3.1 (Armijo), §12 (KKT conditions).
    O'Donoghue & Candès, "Adaptive restart for accelerated gradient schemes", FoCM 15 (2015).
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
from jax import lax
from jax.flatten_util import ravel_pytree

from jaxml._core import check_positive, float_dtype, run_loop

__all__ = [
    "OptResult", "OptState", "KKTResiduals", "gradient_descent", "projected_gradient_descent",
    "proximal_gradient", "kkt_residuals",
]

_SHRINK = 0.5


class OptResult(NamedTuple):
    """Result of a first-order solver.

    Attributes:
        x: the solution, same pytree structure / dtype as ``x0``.
        value: () :math:`f(x)` (the smooth part only for ``proximal_gradient``).
        n_iter: () int32, iterations taken.
        converged: () bool, final gradient-mapping norm ``<= tol``.
        error: () the final gradient-mapping norm.
        learning_rate: () the last step size used.
        trace: (max_iter,) :math:`f` at the point each step was taken from; NaN past ``n_iter``.
    """

    x: Any
    value: jax.Array
    n_iter: jax.Array
    converged: jax.Array
    error: jax.Array
    learning_rate: jax.Array
    trace: jax.Array


class OptState(NamedTuple):
    """Loop state: current iterate, previous iterate, momentum θ, step size."""

    x: jax.Array
    x_prev: jax.Array
    theta: jax.Array
    t: jax.Array


def _identity_prox(v, t):
    return v


def _ravel(x0):
    flat, unravel = ravel_pytree(x0)
    if not jnp.issubdtype(flat.dtype, jnp.floating):
        flat = flat.astype(float_dtype(flat))
    return flat, unravel


def _backtrack(f, prox, y, fy, gy, t0, max_backtrack: int):
    """Largest t = t0·0.5^k (k < max_backtrack) meeting the sufficient-decrease condition.

    Runs on stop-gradient values (the step size is a discrete choice), bounded.
    """
    y, fy, gy, t0 = (lax.stop_gradient(v) for v in (y, fy, gy, t0))

    def trial(t):
        xp = prox(y - t * gy, t)
        dx = xp - y
        ok = f(xp) <= fy + jnp.dot(gy, dx) + jnp.dot(dx, dx) / (2 * t) + 10 * jnp.finfo(y.dtype).eps * jnp.abs(fy)
        return ok

    def cond(c):
        t, k, ok = c
        return (~ok) & (k < max_backtrack)

    def body(c):
        t, k, _ = c
        t = t * _SHRINK
        return t, k + 1, trial(t)

    t, _, _ = lax.while_loop(cond, body, (t0, jnp.int32(0), trial(t0)))
    return t


def _proximal_core(f, prox, x0, *, accelerated, learning_rate, tol, max_iter, unroll,
                   max_backtrack, restart=True, error_fn=None):
    """Shared ISTA/FISTA loop on a flat vector. Returns (LoopResult, unravel)."""
    x0, unravel = _ravel(x0)
    dt = x0.dtype
    fflat = lambda v: f(unravel(v))  # noqa: E731
    pflat = lambda v, t: ravel_pytree(prox(unravel(v), t))[0].astype(dt)  # noqa: E731
    vg = jax.value_and_grad(fflat)
    fixed = learning_rate is not None
    t_init = jnp.asarray(1.0 if learning_rate is None else learning_rate, dt)

    def step(s: OptState):
        if accelerated:
            theta_new = 0.5 * (1 + jnp.sqrt(1 + 4 * s.theta ** 2))
            y = s.x + ((s.theta - 1) / theta_new) * (s.x - s.x_prev)
        else:
            theta_new, y = s.theta, s.x
        fy, gy = vg(y)
        if fixed:
            t = s.t
        else:
            t = _backtrack(fflat, pflat, y, fy, gy, s.t, max_backtrack)
        x_new = pflat(y - t * gy, t)
        gmap = (y - x_new) / t
        err = jnp.sqrt(jnp.dot(gmap, gmap)) if error_fn is None else error_fn(x_new, y, gy)
        if accelerated and restart:
            uphill = jnp.dot(y - x_new, x_new - s.x) > 0
            theta_new = jnp.where(uphill, jnp.ones_like(theta_new), theta_new)
        return OptState(x_new, s.x, theta_new, t), err, fy

    state = OptState(x0, x0, jnp.ones((), dt), t_init)
    res = run_loop(step, state, tol=tol, max_iter=max_iter, unroll=unroll)
    return res, unravel, fflat


def _validate(tol, max_iter, learning_rate):
    check_positive(tol, "tol")
    if not isinstance(max_iter, int) or isinstance(max_iter, bool) or max_iter < 1:
        raise ValueError(f"max_iter must be a positive int, got {max_iter!r}")
    if learning_rate is not None:
        check_positive(learning_rate, "learning_rate")


def _finish(res, unravel, fflat) -> OptResult:
    x = res.state.x
    return OptResult(unravel(x), fflat(x), res.n_iter, res.converged, res.error, res.state.t,
                     res.trace)


def proximal_gradient(f: Callable, prox: Callable, x0, *, accelerated: bool = True,
                      learning_rate=None, tol=1e-6, max_iter: int = 1000, unroll: bool = False,
                      restart: bool = True, max_backtrack: int = 40) -> OptResult:
    r"""Minimize :math:`f(x) + g(x)` by FISTA (``accelerated=True``) or ISTA.

    Args:
        f: smooth part, pytree -> scalar (differentiated by ``jax.grad``).
        prox: ``prox(v, t)`` = :math:`\arg\min_z g(z) + \frac{1}{2t}\|z - v\|^2`, same pytree as
            ``x0`` (e.g. ``lambda v, t: soft_threshold(v, t * lam)``).
        x0: initial point (pytree of arrays).
        accelerated: FISTA momentum (with adaptive restart when ``restart``).
        learning_rate: fixed step (``<= 1/L`` for an L-smooth ``f``) or ``None`` to backtrack.
        tol: stop when the gradient-mapping norm is ``<= tol``.
        max_iter: static bound on iterations. unroll: scan (differentiable) instead of while.
        max_backtrack: bound on step halvings per iteration.

    Returns:
        :class:`OptResult`; ``value`` is :math:`f(x)` (add :math:`g(x)` yourself).
    """
    _validate(tol, max_iter, learning_rate)
    res, unravel, fflat = _proximal_core(
        f, prox, x0, accelerated=accelerated, learning_rate=learning_rate, tol=tol,
        max_iter=max_iter, unroll=unroll, max_backtrack=max_backtrack, restart=restart)
    return _finish(res, unravel, fflat)


def projected_gradient_descent(f: Callable, x0, project: Callable, *, learning_rate=None,
                               tol=1e-6, max_iter: int = 1000, unroll: bool = False,
                               max_backtrack: int = 40) -> OptResult:
    r"""Minimize :math:`f` over a closed convex set :math:`C`: :math:`x^+ = P_C(x - t\nabla f(x))`.

    Args:
        f: pytree -> scalar, smooth. x0: initial point (pytree).
        project: Euclidean projection onto :math:`C`, same pytree in and out (e.g.
            ``lambda w: project_l1_ball(w, 2.0)``).
        learning_rate: fixed step or ``None`` (backtracking).
        tol: stop when :math:`\|x - P_C(x - t\nabla f(x))\|/t \le` ``tol``.
        max_iter: static bound. unroll: differentiable ``lax.scan`` loop.
    """
    _validate(tol, max_iter, learning_rate)
    res, unravel, fflat = _proximal_core(
        f, lambda v, t: project(v), x0, accelerated=False, learning_rate=learning_rate,
        tol=tol, max_iter=max_iter, unroll=unroll, max_backtrack=max_backtrack)
    return _finish(res, unravel, fflat)


def gradient_descent(f: Callable, x0, *, learning_rate=None, tol=1e-6, max_iter: int = 1000,
                     unroll: bool = False, max_backtrack: int = 40) -> OptResult:
    r"""Minimize a smooth :math:`f` by :math:`x^+ = x - t\nabla f(x)`.

    Args:
        f: pytree -> scalar. x0: initial point (pytree of arrays).
        learning_rate: fixed step ``t`` or ``None`` for Armijo backtracking
            (:math:`f(x - t\nabla f) \le f(x) - \frac t2 \|\nabla f\|^2`, trial step halved until
            accepted, at most ``max_backtrack`` times per iteration).
        tol: stop when :math:`\|\nabla f(x)\|_2 \le` ``tol``.
        max_iter: static bound. unroll: differentiable ``lax.scan`` loop.
    """
    _validate(tol, max_iter, learning_rate)
    res, unravel, fflat = _proximal_core(
        f, _identity_prox, x0, accelerated=False, learning_rate=learning_rate, tol=tol,
        max_iter=max_iter, unroll=unroll, max_backtrack=max_backtrack)
    return _finish(res, unravel, fflat)


# ----------------------------------------------------------------------------- KKT
class KKTResiduals(NamedTuple):
    r"""Residuals of the KKT conditions of :math:`\min f(x)` s.t. :math:`h(x) \le 0,\ e(x) = 0`.

    Attributes (all () scalars, max-abs norms; 0 at a KKT point):
        stationarity: :math:`\|\nabla f + J_h^\top\lambda + J_e^\top\mu\|_\infty`.
        primal: :math:`\max(\max_i h_i(x)_+,\ \max_j |e_j(x)|)`.
        dual: :math:`\max_i (-\lambda_i)_+`.
        complementary: :math:`\max_i |\lambda_i h_i(x)|`.
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
    r"""KKT residuals of :math:`\min f(x)` s.t. ``ineq(x) <= 0``, ``eq(x) == 0`` at ``x``.

    Gradients and constraint Jacobians come from ``jax.grad`` / ``jax.jacobian``. When a
    multiplier is not given it is estimated: the least-squares multipliers
    :math:`\arg\min \|\nabla f + J_h^\top \lambda + J_e^\top\mu\|_2` over the equality
    constraints and the *active* inequalities (:math:`h_i(x) \ge -` ``active_tol``, default
    :math:`\sqrt{\epsilon}\,(1 + \|x\|)`), inactive ones set to 0. The estimate is reported
    unclipped, so a negative :math:`\lambda_i` (a wrongly active constraint) shows in ``dual``.

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
