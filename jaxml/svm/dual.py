r"""The SVM dual: objective, hand-derived gradient, KKT certificate, intercept, fitted model,
and the dual solved by accelerated projected gradient.

The soft-margin primal, for labels yᵢ ∈ {−1, +1} and a feature map φ with k(x, z) = φ(x)ᵀφ(z),

    min_{w, b, ξ}  ½‖w‖² + C Σᵢ ξᵢ   s.t.  yᵢ(wᵀφ(xᵢ) + b) ≥ 1 − ξᵢ,  ξᵢ ≥ 0,

has the Lagrangian dual (w* = Σᵢ αᵢ yᵢ φ(xᵢ), and ∂/∂b gives Σᵢ αᵢ yᵢ = 0)

    max_α  D(α) = Σᵢ αᵢ − ½ Σᵢⱼ αᵢ αⱼ yᵢ yⱼ Kᵢⱼ   s.t.  0 ≤ αᵢ ≤ C,  yᵀα = 0,

with gradient ∇D(α) = 1 − y ⊙ (K (α ⊙ y)). ``C = inf`` is the hard margin (no slack).

KKT certificate (Keerthi et al. 2001; Fan, Chen & Lin 2005). With vₜ = yₜ ∇D(α)ₜ and

    I_up(α)  = {t : αₜ < C, yₜ = +1} ∪ {t : αₜ > 0, yₜ = −1},
    I_low(α) = {t : αₜ < C, yₜ = −1} ∪ {t : αₜ > 0, yₜ = +1},

α is optimal iff m(α) = max_{I_up} vₜ ≤ M(α) = min_{I_low} vₜ; the violation m(α) − M(α)
is the stopping rule of both solvers. For any b ∈ [M, m] every point then meets its margin
condition within the violation: αₜ = 0 ⇒ yₜ f(xₜ) ≥ 1, 0 < αₜ < C ⇒ yₜ f(xₜ) = 1,
αₜ = C ⇒ yₜ f(xₜ) ≤ 1, where f(x) = Σᵢ αᵢ yᵢ k(xᵢ, x) + b.

The intercept is libsvm's: the mean of vₜ over free support vectors (0 < αₜ < C), or the
midpoint of the bounds the KKT conditions leave when there are none.

A hard-margin dual is bounded iff the classes are separable in feature space; otherwise
D(α) grows without limit. Both solvers report it (``infeasible=True``, ``converged=False``)
from a certificate: if the classes were separable with geometric margin ρ (half-width), the
optimum would be D* = ½‖w*‖² = 1/(2ρ²), and every feasible α with s = Σ_{yᵢ=+1} αᵢ would
have ‖Σᵢ αᵢ yᵢ φ(xᵢ)‖ / s ≥ 2ρ (the distance between the class hulls). Reaching
D(α) > 1/(2ρ₀²) or ‖w_α‖/s < 2ρ₀ thus proves the margin is below ρ₀ = ``min_margin`` · (the
data's spread in feature space): numerically not separable.

References: C. Cortes & V. Vapnik, "Support-vector networks", Machine Learning (1995);
R.-E. Fan, P.-H. Chen & C.-J. Lin, "Working set selection using second order information
for training SVM", JMLR 6 (2005); C.-C. Chang & C.-J. Lin, "LIBSVM", ACM TIST (2011);
A. Beck & M. Teboulle, "A fast iterative shrinkage-thresholding algorithm", SIAM J.
Imaging Sci. (2009) (FISTA, monotone variant).
"""

from __future__ import annotations

from functools import lru_cache, partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.custom_batching import custom_vmap

from jaxml._core.checks import (
    check_labels,
    check_matrix,
    check_positive,
    check_same_length,
    is_concrete,
)
from jaxml._core.loop import LoopResult, iterate
from jaxml.kernels import Kernel, Linear, gram

__all__ = [
    "DualProblem", "SVMModel", "PGDState", "dual_problem", "dual_objective", "dual_gradient",
    "kkt_violation", "intercept", "decision_function", "predict", "primal_weights",
    "margin_width", "fit_pgd", "pgd_init", "pgd_step",
]

_HIGHEST = lax.Precision.HIGHEST
DEFAULT_MIN_MARGIN = 1e-3


# ----------------------------------------------------------------------------- the problem


class DualProblem(NamedTuple):
    """One SVM dual, with the data both solvers read at every step.

    Attributes:
        K: (n, n) Gram matrix.
        y: (n,) labels ±1 (float, dtype of K).
        C: () box bound; ``inf`` for the hard margin.
        diag: (n,) diagonal of K.
        min_margin: () absolute margin ρ₀ below which a hard-margin problem is declared
            not separable (``min_margin`` relative to the data's spread in feature space).
    """

    K: jax.Array
    y: jax.Array
    C: jax.Array
    diag: jax.Array
    min_margin: jax.Array


def dual_problem(K, y, C, *, min_margin=DEFAULT_MIN_MARGIN) -> DualProblem:
    """Bundle the dual of (K, y, C) for :func:`jaxml.svm.smo_step` / :func:`pgd_step`.

    Args:
        K: (n, n) symmetric PSD Gram matrix.
        y: (n,) labels ±1.
        C: () box bound (``jnp.inf``: hard margin). May be traced.
        min_margin: relative margin for the hard-margin separability certificate: the
            absolute ρ₀ is ``min_margin`` times the largest feature-space distance from the
            first point, maxⱼ ‖φ(xⱼ) − φ(x₀)‖ (between half and all of the data's diameter).
    """
    K = jnp.asarray(K)
    dt = K.dtype
    y = jnp.asarray(y, dt)
    diag = jnp.diagonal(K)
    spread = jnp.sqrt(jnp.max(jnp.maximum(diag + diag[0] - 2.0 * K[0], 0.0)))
    rho0 = jnp.asarray(min_margin, dt) * spread
    return DualProblem(K, y, jnp.asarray(C, dt), diag, rho0)


# ------------------------------------------------------------------------- objective, KKT


def dual_objective(alpha, K, y) -> jax.Array:
    """D(α) = Σᵢ αᵢ − ½ (α⊙y)ᵀ K (α⊙y)  (higher is better).

    Args:
        alpha: (n,) dual variables. K: (n, n) Gram matrix. y: (n,) labels ±1.
    Returns:
        () the dual objective.
    """
    ay = alpha * y
    return jnp.sum(alpha) - 0.5 * jnp.dot(ay, jnp.matmul(K, ay, precision=_HIGHEST))


def dual_gradient(alpha, K, y) -> jax.Array:
    """∇D(α) = 1 − y ⊙ (K (α⊙y)), derived by hand (tested against ``jax.grad``).

    Args:
        alpha: (n,). K: (n, n) symmetric. y: (n,) labels ±1.
    Returns:
        (n,) the gradient of :func:`dual_objective`.
    """
    return 1.0 - y * jnp.matmul(K, alpha * y, precision=_HIGHEST)


def _index_sets(alpha, y, C):
    """Masks (n,) of I_up and I_low (module docstring)."""
    pos = y > 0
    up = jnp.where(pos, alpha < C, alpha > 0)
    low = jnp.where(pos, alpha > 0, alpha < C)
    return up, low


def _argmax(v):
    """(index, value) of the first maximum of v (n,), NaN-free.

    A max reduction, then the smallest index attaining it (a min over an iota). XLA:CPU
    vectorizes these plain reductions but not the (value, index) reduction behind
    ``jnp.argmax``, which is ~3x slower per SMO step on long vectors. The iota is in v's
    float dtype (a float min) while that is exact, i.e. n ≤ 2²⁴.
    """
    n = v.shape[0]
    m = jnp.max(v)
    if n <= 2 ** 24:
        i = jnp.min(jnp.where(v == m, jnp.arange(n, dtype=v.dtype), jnp.inf)).astype(jnp.int32)
    else:
        i = jnp.min(jnp.where(v == m, jnp.arange(n, dtype=jnp.int32), n))
    return jnp.minimum(i, n - 1), m


def _extremes(alpha, grad, y, C):
    """(i, m, M): argmax and max of vₜ = yₜ∇Dₜ over I_up, min over I_low."""
    up, low = _index_sets(alpha, y, C)
    v = y * grad
    i, m = _argmax(jnp.where(up, v, -jnp.inf))
    return i, m, jnp.min(jnp.where(low, v, jnp.inf))


def _violation(alpha, grad, y, C):
    _, m, M = _extremes(alpha, grad, y, C)
    return jnp.maximum(m - M, 0.0)


def kkt_violation(alpha, K, y, C) -> jax.Array:
    """Maximal KKT violation m(α) − M(α) ≥ 0 of the dual (0 at the optimum).

    Args:
        alpha: (n,) feasible dual variables. K: (n, n). y: (n,) ±1. C: () (``inf`` allowed).
    Returns:
        () max(0, max_{I_up} yₜ∇Dₜ − min_{I_low} yₜ∇Dₜ).
    """
    return _violation(alpha, dual_gradient(alpha, K, y), y, jnp.asarray(C, jnp.asarray(K).dtype))


def _intercept_from_grad(alpha, grad, y, C):
    v = y * grad
    pos = y > 0
    at_upper = alpha >= C
    at_lower = alpha <= 0
    free = ~at_upper & ~at_lower
    n_free = jnp.sum(free)
    mean_free = jnp.sum(jnp.where(free, v, 0.0)) / jnp.maximum(n_free, 1)
    only_low = (at_upper & pos) | (at_lower & ~pos)     # in I_low only: b ≤ vₜ
    only_up = (at_upper & ~pos) | (at_lower & pos)      # in I_up only: b ≥ vₜ
    hi = jnp.min(jnp.where(only_low, v, jnp.inf))
    lo = jnp.max(jnp.where(only_up, v, -jnp.inf))
    return jnp.where(n_free > 0, mean_free, 0.5 * (hi + lo))


def intercept(alpha, K, y, C) -> jax.Array:
    """libsvm's intercept b: the mean of yₜ∇D(α)ₜ over free αₜ (0 < αₜ < C), else the
    midpoint of [max over I_up-only points, min over I_low-only points].

    Args:
        alpha: (n,). K: (n, n). y: (n,) ±1. C: ().
    Returns:
        () b, with decision f(x) = Σᵢ αᵢ yᵢ k(xᵢ, x) + b.
    """
    K = jnp.asarray(K)
    return _intercept_from_grad(alpha, dual_gradient(alpha, K, y), y, jnp.asarray(C, K.dtype))


def _hard_margin_infeasible(dual, sum_alpha, problem: DualProblem):
    """The non-separability certificate of the module docstring (False for finite C)."""
    rho0 = problem.min_margin
    w_sq = 2.0 * (sum_alpha - dual)                 # ‖w_α‖² = αᵀQα
    s = 0.5 * sum_alpha                             # Σ over one class
    too_high = dual * (2.0 * rho0 * rho0) > 1.0
    hulls_meet = (sum_alpha > 0) & (w_sq < 4.0 * rho0 * rho0 * s * s)
    return jnp.isinf(problem.C) & (too_high | hulls_meet)


# ---------------------------------------------------------------------------- the model


class SVMModel(NamedTuple):
    """A fitted binary SVM (a pytree: it crosses ``jit`` and batches under ``vmap``).

    Attributes:
        alpha: (n,) dual variables, 0 ≤ αᵢ ≤ C, yᵀα = 0.
        b: () intercept (libsvm's rule); decision f(x) = Σᵢ αᵢ yᵢ k(xᵢ, x) + b.
        support: (n,) bool, αᵢ > 0 (support vectors).
        X: (n, d) training points. y: (n,) training labels ±1 (float). kernel: the kernel.
        C: () the box bound (``inf`` = hard margin).
        dual_objective: () D(α) recomputed exactly at the returned α.
        kkt_violation: () m(α) − M(α) recomputed exactly at the returned α.
        n_iter: () int32 solver steps. converged: () bool, violation ≤ tol and feasible.
        infeasible: () bool, the hard-margin data were certified not separable (then the
            dual is unbounded and α, b are meaningless).
        trace: (max_iter,) dual objective after every step (NaN past ``n_iter``).
    """

    alpha: jax.Array
    b: jax.Array
    support: jax.Array
    X: jax.Array
    y: jax.Array
    kernel: Kernel
    C: jax.Array
    dual_objective: jax.Array
    kkt_violation: jax.Array
    n_iter: jax.Array
    converged: jax.Array
    infeasible: jax.Array
    trace: jax.Array


def _finish(alpha, problem: DualProblem, X, kernel, loop, infeasible) -> SVMModel:
    """Build the model from a solver's α: exact gradient, objective, violation, b."""
    K, y, C = problem.K, problem.y, problem.C
    grad = dual_gradient(alpha, K, y)
    return SVMModel(
        alpha=alpha,
        b=_intercept_from_grad(alpha, grad, y, C),
        support=alpha > 0,
        X=X, y=y, kernel=kernel, C=C,
        dual_objective=jnp.sum(alpha) - 0.5 * jnp.sum(alpha * (1.0 - grad)),
        kkt_violation=_violation(alpha, grad, y, C),
        n_iter=loop.n_iter,
        converged=loop.converged & ~infeasible,
        infeasible=infeasible,
        trace=loop.trace,
    )


def _query_points(X, X_train) -> jax.Array:
    """New points X (m, d) checked against the training features and cast to their dtype."""
    X = check_matrix(X, "X")
    if X.shape[1] != X_train.shape[1]:
        raise ValueError(f"X must have {X_train.shape[1]} features, got {X.shape[1]}")
    return X.astype(X_train.dtype)


@jax.jit
def _kernel_expansion(kernel, X, X_train, coef, b):
    """Σᵢ coefᵢ k(xᵢ, x) + b for each row of X: coef (n,) → (m,), or (n, c) → (m, c)."""
    return jnp.matmul(kernel.gram(X, X_train), coef, precision=_HIGHEST) + b


def decision_function(model: SVMModel, X) -> jax.Array:
    """f(x) = Σᵢ αᵢ yᵢ k(xᵢ, x) + b for each row of X (m, d) → (m,)."""
    X = _query_points(X, model.X)
    return _kernel_expansion(model.kernel, X, model.X, model.alpha * model.y, model.b)


def predict(model: SVMModel, X) -> jax.Array:
    """Labels ±1 (int32) of X (m, d): sign of :func:`decision_function` (0 ↦ −1, as sklearn)."""
    return jnp.where(decision_function(model, X) > 0, 1, -1).astype(jnp.int32)


def primal_weights(model: SVMModel) -> jax.Array:
    """w = Σᵢ αᵢ yᵢ xᵢ, shape (d,): the hyperplane normal (linear kernel only)."""
    if not isinstance(model.kernel, Linear):
        raise TypeError("primal_weights needs a Linear kernel; with "
                        f"{type(model.kernel).__name__} w lives in feature space")
    return jnp.matmul(model.alpha * model.y, model.X, precision=_HIGHEST)


def margin_width(model: SVMModel) -> jax.Array:
    """2/‖w‖, the width of the band between the two margin hyperplanes.

    ‖w‖² = (α⊙y)ᵀ K (α⊙y) in feature space (= ‖Σ αᵢyᵢxᵢ‖² for the linear kernel).
    """
    return _margin_width(model)


@jax.jit
def _margin_width(model: SVMModel):
    ay = model.alpha * model.y
    if isinstance(model.kernel, Linear):
        w_sq = jnp.sum(jnp.matmul(ay, model.X, precision=_HIGHEST) ** 2)
    else:
        w_sq = jnp.dot(ay, jnp.matmul(model.kernel.gram(model.X, model.X), ay,
                                      precision=_HIGHEST))
    return 2.0 / jnp.sqrt(w_sq)


# -------------------------------------------------------------------------- input checks


def _check_binary(X, y, C, tol, kernel):
    """Validate (X, y, C, tol, kernel) at the Python boundary; y → X's float dtype."""
    if not isinstance(kernel, Kernel):
        raise TypeError(f"kernel must be a jaxml.svm Kernel, got {type(kernel).__name__}")
    X = check_matrix(X, "X")
    y = check_labels(y, "y", [-1, 1])
    check_same_length(X, "X", y, "y")
    if is_concrete(y):
        vals = np.unique(np.asarray(y))
        if vals.size < 2:
            raise ValueError(f"y must contain both labels -1 and +1, got only {vals.tolist()}")
    y = y.astype(X.dtype)
    C = jnp.asarray(C, X.dtype)
    if is_concrete(C):
        check_positive(C, "C")
    tol = jnp.asarray(tol, X.dtype)
    if is_concrete(tol):
        check_positive(tol, "tol")
    return X, y, C, tol


def _default_max_iter(n: int, max_iter) -> int:
    if max_iter is None:
        return max(100_000, 20 * n)
    if not isinstance(max_iter, (int, np.integer)) or isinstance(max_iter, bool) or max_iter < 1:
        raise ValueError(f"max_iter must be a positive int, got {max_iter!r}")
    return int(max_iter)


# -------------------------------------------------- accelerated projected gradient (FISTA)


class PGDState(NamedTuple):
    """State of monotone FISTA on the dual (minimizing f = −D over box ∩ hyperplane).

    Attributes:
        alpha: (n,) current iterate (feasible). grad: (n,) ∇D(alpha).
        z: (n,) extrapolated point. grad_z: (n,) ∇D(z) (affine in z, so never recomputed).
        t: () FISTA momentum scalar. L: () step 1/L, L ≥ λ_max(Q), Q = (yyᵀ)⊙K.
        dual: () D(alpha). infeasible: () bool (hard-margin certificate).
    """

    alpha: jax.Array
    grad: jax.Array
    z: jax.Array
    grad_z: jax.Array
    t: jax.Array
    L: jax.Array
    dual: jax.Array
    infeasible: jax.Array


def _lipschitz(problem: DualProblem, n_power: int = 50) -> jax.Array:
    """λ_max(Q) by power iteration, times 1.05 (the step also backs off if it overshoots)."""
    K, y = problem.K, problem.y

    def body(_, v):
        w = y * jnp.matmul(K, y * v, precision=_HIGHEST)
        return w / jnp.maximum(jnp.linalg.norm(w), jnp.finfo(K.dtype).tiny)

    v0 = jnp.ones_like(y) / jnp.sqrt(y.shape[0]) + 0.01 * jnp.sin(jnp.arange(y.shape[0]))
    v = lax.fori_loop(0, n_power, body, v0.astype(K.dtype))
    lam = jnp.dot(v, y * jnp.matmul(K, y * v, precision=_HIGHEST))
    return jnp.maximum(1.05 * lam, jnp.finfo(K.dtype).eps * jnp.max(problem.diag))


def pgd_init(problem: DualProblem) -> PGDState:
    """α = 0 (feasible), ∇D = 1, L from power iteration."""
    zero = jnp.zeros_like(problem.y)
    one = jnp.ones_like(problem.y)
    dt = problem.y.dtype
    return PGDState(zero, one, zero, one, jnp.asarray(1.0, dt), _lipschitz(problem),
                    jnp.asarray(0.0, dt), jnp.asarray(False))


def _project(u, problem: DualProblem):
    from jaxml.convex import project_box_hyperplane  # another chapter; imported on use
    return project_box_hyperplane(u, problem.y, jnp.zeros((), u.dtype), problem.C, 0.0)


def pgd_step(state: PGDState, problem: DualProblem):
    """One monotone-FISTA step: u = P(z + ∇D(z)/L); accept u if D(u) ≥ D(α), else keep α,
    restart the momentum (and double L if even a plain gradient step failed, i.e. the
    power-iteration estimate of λ_max(Q) was too low).

    Returns:
        (state, error, value): the new state, the KKT violation at the new α (−inf once the
        hard-margin certificate fires, which stops the loop), and D(α).
    """
    K, y, C = problem.K, problem.y, problem.C
    u = _project(state.z + state.grad_z / state.L, problem)
    # Snap rounding-level values onto the bounds: the bisection's multiplier is only exact
    # to the float precision, which otherwise leaves αₜ ~ 1e-9 (float32) that a KKT check
    # counts as free; the shift of yᵀα is at rounding level too.
    snap = 16.0 * jnp.finfo(u.dtype).eps * jnp.max(u)
    u = jnp.where(u <= snap, 0.0, jnp.where(u >= C - snap, C, u))
    grad_u = dual_gradient(u, K, y)
    # D(u) − D(α) = ½ (u − α)ᵀ(∇D(u) + ∇D(α)) exactly (D is quadratic): no cancellation
    # of two large objective values, so float32 sees the small late-stage increases.
    d = u - state.alpha
    gain = 0.5 * jnp.sum(d * (grad_u + state.grad))
    # A "decrease" within rounding is no decrease: each ∇Dₜ carries an error up to
    # ~eps·(1 + max Kₜₜ·Σα) from the matvec, and the projection restores yᵀα = 0 (which
    # rounding lets drift) along y, changing D by up to |yᵀd|·max|∇D|. Without this
    # float32 rejects (and shrinks the step of) every late step, and stalls.
    eps = jnp.finfo(u.dtype).eps
    noise = (16.0 * eps * jnp.sum(jnp.abs(d)) * (1.0 + jnp.max(jnp.abs(problem.diag)) * jnp.sum(u))
             + 2.0 * jnp.abs(jnp.dot(y, d)) * jnp.max(jnp.abs(state.grad)))
    accept = gain >= -noise
    dual_u = state.dual + gain
    alpha = jnp.where(accept, u, state.alpha)
    grad = jnp.where(accept, grad_u, state.grad)
    dual = jnp.where(accept, dual_u, state.dual)
    t_next = 0.5 * (1.0 + jnp.sqrt(1.0 + 4.0 * state.t * state.t))
    beta = jnp.where(accept, (state.t - 1.0) / t_next, 0.0)
    z = alpha + beta * (alpha - state.alpha)
    grad_z = grad + beta * (grad - state.grad)
    t = jnp.where(accept, t_next, 1.0)
    L = jnp.where(accept | (state.t > 1.0), state.L, 2.0 * state.L)
    infeasible = _hard_margin_infeasible(dual, jnp.sum(alpha), problem)
    err = jnp.where(infeasible, -jnp.inf, _violation(alpha, grad, y, C))
    new = PGDState(alpha, grad, z, grad_z, t, L, dual, infeasible)
    return new, err, dual


def fit_pgd(X, y, *, C=1.0, kernel: Kernel = Linear(), tol=1e-3, max_iter: int | None = None,
            min_margin=DEFAULT_MIN_MARGIN) -> SVMModel:
    """Solve the SVM dual by accelerated (monotone FISTA) projected gradient.

    Each step moves along ∇D and projects onto {0 ≤ α ≤ C, yᵀα = 0} with
    :func:`jaxml.convex.project_box_hyperplane`; stops when the KKT violation
    m(α) − M(α) ≤ tol (the same rule as :func:`jaxml.svm.fit`, so the same answer).
    O(n²) per step: slower than SMO on large n, but every step is a dense, batched op.

    Args:
        X: (n, d) training points. y: (n,) labels in {−1, +1}.
        C: box bound (``jnp.inf`` = hard margin), may be traced (vmap over C).
        kernel: a :mod:`jaxml.svm.kernels` kernel. tol: KKT tolerance.
        max_iter: static bound on steps (default max(100 000, 20 n)).
        min_margin: relative margin of the hard-margin separability certificate.

    Returns:
        :class:`SVMModel`.
    """
    X, y, C, tol = _check_binary(X, y, C, tol, kernel)
    max_iter = _default_max_iter(X.shape[0], max_iter)
    return _fit_binary(_solve_pgd, X, y, C, tol, kernel, jnp.asarray(min_margin, X.dtype),
                       max_iter)


class _Batch(NamedTuple):
    """Carry of the batched loop: B solver states and their own counters and traces."""

    state: Any
    n_iter: jax.Array   # (B,) steps each member took
    error: jax.Array    # (B,) each member's last error
    trace: jax.Array    # (B, max_iter)
    col: jax.Array      # () the shared step counter (the trace column)


def _iterate_batched(step, state, problem, axes, tol, max_iter: int) -> LoopResult:
    """B independent solves in one shared loop (:func:`jaxml._core.loop.iterate`).

    ``jax.vmap`` of a ``lax.while_loop`` batches its whole carry, so the loop's trace write
    becomes a scatter that copies the (B, max_iter) trace at every step. Here the loop
    counter stays scalar: each step applies ``vmap(step)`` to all members, freezes those
    already within ``tol`` (as ``vmap`` of the loop would), and writes one trace column in
    place. Returns a batched :class:`LoopResult` equal to ``vmap`` of ``iterate``.
    """
    B = tol.shape[0]
    dt = tol.dtype

    def wrapped(b: _Batch):
        done = b.error <= tol
        new, err, val = jax.vmap(step, in_axes=(0, axes))(b.state, problem)
        keep = lambda old, nw: jnp.where(done.reshape((B,) + (1,) * (old.ndim - 1)), old, nw)  # noqa: E731
        state = jax.tree_util.tree_map(keep, b.state, new)
        err = jnp.where(done, b.error, err.astype(dt))
        trace = b.trace.at[:, b.col].set(jnp.where(done, jnp.nan, val.astype(dt)))
        out = _Batch(state, b.n_iter + (~done).astype(jnp.int32), err, trace, b.col + 1)
        return out, jnp.max(err - tol), jnp.nanmean(jnp.where(done, jnp.nan, val))

    init = _Batch(state, jnp.zeros((B,), jnp.int32), jnp.full((B,), jnp.inf, dt),
                  jnp.full((B, max_iter), jnp.nan, dt), jnp.int32(0))
    b = iterate(wrapped, init, tol=0.0, max_iter=max_iter).state
    return LoopResult(b.state, b.n_iter, b.error <= tol, b.error, b.trace)


@lru_cache(maxsize=None)
def _solver(init, step, max_iter: int):
    """``solve(problem, tol) -> LoopResult``: the shared loop over ``step``; under ``vmap``
    it runs :func:`_iterate_batched` (same results, no per-step trace copy)."""

    @custom_vmap
    def solve(problem: DualProblem, tol):
        return iterate(lambda s: step(s, problem), init(problem), tol=tol, max_iter=max_iter)

    @solve.def_vmap
    def _rule(axis_size, in_batched, problem, tol):
        prob_b, tol_b = in_batched
        axes = jax.tree_util.tree_map(lambda b: 0 if b else None, prob_b)
        state = jax.vmap(init, in_axes=(axes,), axis_size=axis_size)(problem)
        tol = tol if tol_b else jnp.broadcast_to(tol, (axis_size,))
        res = _iterate_batched(step, state, problem, axes, tol, max_iter)
        return res, jax.tree_util.tree_map(lambda _: True, res)

    return solve


def _solve_pgd(problem: DualProblem, tol, max_iter: int):
    return _solver(pgd_init, pgd_step, max_iter)(problem, tol)


@partial(jax.jit, static_argnums=(0, 7))
def _fit_binary(solve, X, y, C, tol, kernel, min_margin, max_iter) -> SVMModel:
    """Gram matrix, dual, ``solve(problem, tol, max_iter) -> LoopResult``, model: one
    compiled function per (solver, shapes, kernel type, max_iter), reused across calls."""
    problem = dual_problem(gram(kernel, X), y, C, min_margin=min_margin)
    loop = solve(problem, tol, max_iter)
    return _finish(loop.state.alpha, problem, X, kernel, loop, loop.state.infeasible)
