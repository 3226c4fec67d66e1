r"""Sequential minimal optimization (SMO) for the SVM dual, with second-order working-set
selection (Fan, Chen & Lin 2005, as in libsvm), and one-vs-rest multiclass.

The dual (see :mod:`jaxml.svm.dual`) is max D(α) = Σα − ½(α⊙y)ᵀK(α⊙y) over
{0 ≤ α ≤ C, yᵀα = 0}. With vₜ = yₜ∇D(α)ₜ, each step

1. picks i = argmax_{t ∈ I_up} vₜ (the most violating "up" variable, m = vᵢ);
2. picks j among t ∈ I_low with vₜ < m by the largest second-order gain bₜ²/aₜ, where
   bₜ = m − vₜ > 0 and aₜ = Kᵢᵢ + Kₜₜ − 2Kᵢₜ (τ = 1e-12 when aₜ ≤ 0);
3. moves along d = (αᵢ += yᵢ s, αⱼ −= yⱼ s), which keeps yᵀα = 0 and changes the dual by
   s·bᵢⱼ − ½ s² aᵢⱼ: the analytic step s = min(bᵢⱼ/aᵢⱼ, room to the box for i and j);
4. updates the gradient with two Gram rows, ∇D −= s·y⊙(K[i] − K[j]): O(n) per step.

It stops when m(α) − M(α) ≤ tol (the maximal KKT violation). The Gram matrix is computed
once (n² floats; no kernel cache, no shrinking), and the loop is the shared bounded
``lax.while_loop``. The dual objective never decreases (each step maximizes D along d).

References: J. Platt, "Sequential minimal optimization" (1998); R.-E. Fan, P.-H. Chen &
C.-J. Lin, "Working set selection using second order information for training support
vector machines", JMLR 6:1889–1918 (2005); C.-C. Chang & C.-J. Lin, "LIBSVM" (2011).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxml._core.loop import Adjoint
from jaxml.kernels import Kernel, Linear
from jaxml.svm import dual as svm_dual
from jaxml.svm.dual import DualInfo, DualProblem, SVMModel

__all__ = ["SMOState", "smo_init", "smo_step", "fit"]

TAU = 1e-12


class SMOState(NamedTuple):
    """SMO state.

    Attributes:
        alpha: (n,) feasible dual variables.
        grad: (n,) ∇D(alpha), kept up to date with two Gram rows per step.
        i: () int32, argmax of yₜ∇Dₜ over I_up (the next step's first index).
        m: () that maximum. gap: () the KKT violation m − M.
        dual: () D(alpha), accumulated from the exact per-step increments.
        sum_alpha: () Σα. infeasible: () bool (hard-margin certificate).
    """

    alpha: jax.Array
    grad: jax.Array
    i: jax.Array
    m: jax.Array
    gap: jax.Array
    dual: jax.Array
    sum_alpha: jax.Array
    infeasible: jax.Array


def smo_init(problem: DualProblem) -> SMOState:
    """α = 0, ∇D = 1 (feasible start), and its first selection."""
    y, C = problem.y, problem.C
    alpha = jnp.zeros_like(y)
    grad = jnp.ones_like(y)
    i, m, M = svm_dual.kkt_extremes(alpha, grad, y, C)
    zero = jnp.zeros((), y.dtype)
    return SMOState(alpha, grad, i, m, m - M, zero, zero, jnp.asarray(False))


def _second_order_j(state: SMOState, problem: DualProblem, Ki):
    """j = argmax over {t ∈ I_low : vₜ < m} of bₜ²/aₜ; returns (j, b_ij, a_ij, any)."""
    y, C, alpha = problem.y, problem.C, state.alpha
    v = y * state.grad
    low = jnp.where(y > 0, alpha > 0, alpha < C)
    bt = state.m - v
    at = problem.diag[state.i] + problem.diag - 2.0 * Ki
    at = jnp.where(at > 0, at, TAU)
    cand = low & (bt > 0)
    j, best = svm_dual.first_argmax(jnp.where(cand, bt * bt / at, -jnp.inf))
    # scalars re-read from their sources (slicing the fused vectors makes XLA recompute them)
    b_ij = state.m - y[j] * state.grad[j]
    a_ij = problem.diag[state.i] + problem.diag[j] - 2.0 * Ki[j]
    return j, b_ij, jnp.where(a_ij > 0, a_ij, TAU), best > -jnp.inf


def smo_step(state: SMOState, problem: DualProblem) -> tuple[SMOState, DualInfo]:
    """One SMO pair update (second-order working set, analytic step, O(n) gradient update).

    Args:
        state: :class:`SMOState`. problem: :class:`jaxml.svm.DualProblem` (K (n, n), y (n,),
            C ()).

    Returns:
        (state, info): the new state; ``info.error`` its KKT violation m − M (−inf once the
        hard-margin certificate fires, which stops the loop), ``info.value`` D(α) after the
        step.
    """
    K, y, C = problem.K, problem.y, problem.C
    alpha, i = state.alpha, state.i
    Ki = K[i]
    j, b_ij, a_ij, ok = _second_order_j(state, problem, Ki)
    yi, yj, ai, aj = y[i], y[j], alpha[i], alpha[j]
    room_i = jnp.where(yi > 0, C - ai, ai)
    room_j = jnp.where(yj > 0, aj, C - aj)
    s = jnp.minimum(b_ij / a_ij, jnp.minimum(room_i, room_j))
    s = jnp.where(ok, s, 0.0)
    new_i = jnp.where(s >= room_i, jnp.where(yi > 0, C, 0.0), ai + yi * s)
    new_j = jnp.where(s >= room_j, jnp.where(yj > 0, 0.0, C), aj - yj * s)
    new_i = jnp.where(ok, new_i, ai)
    new_j = jnp.where(ok, new_j, aj)
    alpha = alpha.at[i].set(new_i).at[j].set(new_j)
    grad = state.grad - s * y * (Ki - K[j])
    dual = state.dual + s * (b_ij - 0.5 * s * a_ij)
    sum_alpha = state.sum_alpha + (new_i - ai) + (new_j - aj)
    i_next, m, M = svm_dual.kkt_extremes(alpha, grad, y, C)
    infeasible = state.infeasible | svm_dual.hard_margin_infeasible(dual, sum_alpha, problem)
    gap = m - M
    new = SMOState(alpha, grad, i_next, m, gap, dual, sum_alpha, infeasible)
    return new, DualInfo(jnp.where(infeasible, -jnp.inf, gap), dual)


def fit(X, y, *, C=1.0, kernel: Kernel = Linear(), tol=1e-3, max_iter: int | None = None,
        min_margin=svm_dual.DEFAULT_MIN_MARGIN, adjoint: Adjoint | None = None) -> SVMModel:
    """Fit a binary SVM by SMO on its dual.

    Args:
        X: (n, d) training points.
        y: (n,) labels in {−1, +1} (ValueError otherwise, or if one class is missing).
        C: box bound > 0, may be traced (``jax.vmap`` over C); ``jnp.inf`` is the hard
            margin.
        kernel: ``Linear()``, ``RBF(gamma)``, ``Polynomial(degree, gamma, coef0)``; its
            numeric parameters may be traced (vmap over gamma).
        tol: stop when the maximal KKT violation m(α) − M(α) ≤ tol (libsvm's ``eps``).
        max_iter: static bound on pair updates (default max(100 000, 20 n)).
        min_margin: relative margin below which a hard-margin problem is certified not
            separable (see :mod:`jaxml.svm.dual`).
        adjoint: how ``jax.grad``/``jvp`` go through the fit. ``None`` (default) or
            ``jaxml._core.Implicit()``: SMO runs on stop-gradient inputs and α carries the
            implicit derivative of the dual's projected-gradient fixed point
            α = Π(α + t∇D(α)) with respect to X, C and the kernel's parameters (e.g.
            ``gamma``); ``b`` is differentiated through its formula (the mean of yₜ∇D(α)ₜ
            over free support vectors). The active set (which αₜ sit at 0 or C) is locally
            constant; where it is not (a point exactly on its margin with αₜ at a bound, a
            tie) the derivative does not exist and the one returned is that of the active
            branch. NaN when the fit did not converge (or the adjoint GMRES solve did not);
            memory flat in ``max_iter``; one extra O(n²) step forward. Derivatives are as
            accurate as the fit: use a small ``tol`` (e.g. 1e-8) when they matter.
            ``Direct()``: the plain loop (forward mode through SMO's steps);
            ``Unrolled()``: ``lax.scan`` over ``max_iter`` steps (reverse mode through them).

    Returns:
        :class:`jaxml.svm.SVMModel` with ``alpha`` (n,), ``b``, ``support`` (n,),
        ``dual_objective``, ``kkt_violation``, ``n_iter``, ``converged``, ``infeasible``
        (hard margin, not separable: then ``converged`` is False) and the objective trace.
    """
    return svm_dual.fit_checked(X, y, C, tol, kernel, max_iter, min_margin,
                                init=smo_init, step=smo_step, adjoint=adjoint)
