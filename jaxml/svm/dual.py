r"""The SVM dual problem and the fitted model: objective, hand-derived gradient, KKT
certificate, intercept, decision function, margin — everything the solvers share.

The solvers live beside it: :mod:`jaxml.svm.smo` (SMO), :mod:`jaxml.svm.pgd` (accelerated
projected gradient), :mod:`jaxml.svm.ovr` (one-vs-rest). Each declares
``init(problem) -> state`` and ``step(state, problem) -> (state, DualInfo)`` and is run by
:func:`fit_binary` on the shared loop (one problem) or its batched rule (under ``vmap``).

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
"""

from __future__ import annotations

from functools import partial
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxml._core.batched import batched_solver
from jaxml._core.checks import (check_labels, check_loop_options, check_matrix, check_positive,
                                check_same_length, checks_on_outputs, is_concrete, runtime_checks)
from jaxml._core.loop import Adjoint, Direct, Implicit, LoopResult, Unrolled, fixed_point
from jaxml._core.prox import implicit_solution
from jaxml._core.numerics import HIGHEST, safe_norm
from jaxml.convex import project_box_hyperplane
from jaxml.kernels import Kernel, Linear, gram

__all__ = [
    "DualProblem", "DualInfo", "SVMModel", "dual_problem", "dual_objective", "dual_gradient",
    "kkt_violation", "intercept", "decision_function", "predict", "primal_weights",
    "margin_width",
]

# Shared with the solver modules (public here, not re-exported by ``jaxml.svm``):
# DEFAULT_MIN_MARGIN, index_sets, first_argmax, kkt_extremes, violation_from_gradient,
# intercept_from_gradient, hard_margin_infeasible, model_from_alpha, query_points,
# kernel_expansion, check_binary, default_max_iter, projected_gradient_map, solve_dual,
# fit_binary, fit_checked.

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


class DualInfo(NamedTuple):
    """What a solver step reports.

    Attributes:
        error: () the KKT violation m(α) − M(α) after the step (−inf once the hard-margin
            certificate fires, which stops the loop).
        value: () the dual objective D(α) after the step.
    """

    error: jax.Array
    value: jax.Array


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
    return jnp.sum(alpha) - 0.5 * jnp.dot(ay, jnp.matmul(K, ay, precision=HIGHEST))


def dual_gradient(alpha, K, y) -> jax.Array:
    """∇D(α) = 1 − y ⊙ (K (α⊙y)), derived by hand (tested against ``jax.grad``).

    Args:
        alpha: (n,). K: (n, n) symmetric. y: (n,) labels ±1.
    Returns:
        (n,) the gradient of :func:`dual_objective`.
    """
    return 1.0 - y * jnp.matmul(K, alpha * y, precision=HIGHEST)


def index_sets(alpha, y, C):
    """Masks (n,) of I_up and I_low (module docstring)."""
    pos = y > 0
    up = jnp.where(pos, alpha < C, alpha > 0)
    low = jnp.where(pos, alpha > 0, alpha < C)
    return up, low


def first_argmax(v):
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


def kkt_extremes(alpha, grad, y, C):
    """(i, m, M): argmax and max of vₜ = yₜ∇Dₜ over I_up, min over I_low."""
    up, low = index_sets(alpha, y, C)
    v = y * grad
    i, m = first_argmax(jnp.where(up, v, -jnp.inf))
    return i, m, jnp.min(jnp.where(low, v, jnp.inf))


def violation_from_gradient(alpha, grad, y, C):
    """max(0, m(α) − M(α)) from the gradient (n,) already at hand."""
    _, m, M = kkt_extremes(alpha, grad, y, C)
    return jnp.maximum(m - M, 0.0)


def kkt_violation(alpha, K, y, C) -> jax.Array:
    """Maximal KKT violation m(α) − M(α) ≥ 0 of the dual (0 at the optimum).

    Args:
        alpha: (n,) feasible dual variables. K: (n, n). y: (n,) ±1. C: () (``inf`` allowed).
    Returns:
        () max(0, max_{I_up} yₜ∇Dₜ − min_{I_low} yₜ∇Dₜ).
    """
    C = jnp.asarray(C, jnp.asarray(K).dtype)
    return violation_from_gradient(alpha, dual_gradient(alpha, K, y), y, C)


def intercept_from_gradient(alpha, grad, y, C):
    """libsvm's intercept (see :func:`intercept`) from the gradient (n,) already at hand."""
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
    return intercept_from_gradient(alpha, dual_gradient(alpha, K, y), y, jnp.asarray(C, K.dtype))


def hard_margin_infeasible(dual, sum_alpha, problem: DualProblem):
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


def model_from_alpha(alpha, problem: DualProblem, X, kernel, loop, infeasible) -> SVMModel:
    """Build the model from a solver's α: exact gradient, objective, violation, b."""
    K, y, C = problem.K, problem.y, problem.C
    grad = dual_gradient(alpha, K, y)
    return SVMModel(
        alpha=alpha,
        b=intercept_from_gradient(alpha, grad, y, C),
        support=alpha > 0,
        X=X, y=y, kernel=kernel, C=C,
        dual_objective=jnp.sum(alpha) - 0.5 * jnp.sum(alpha * (1.0 - grad)),
        kkt_violation=violation_from_gradient(alpha, grad, y, C),
        n_iter=loop.n_iter,
        converged=loop.converged & ~infeasible,
        infeasible=infeasible,
        trace=loop.trace,
    )


def query_points(X, X_train) -> jax.Array:
    """New points X (m, d) checked against the training features and cast to their dtype."""
    X = check_matrix(X, "X")
    if X.shape[1] != X_train.shape[1]:
        raise ValueError(f"X must have {X_train.shape[1]} features, got {X.shape[1]}")
    return X.astype(X_train.dtype)


@jax.jit
def kernel_expansion(kernel, X, X_train, coef, b):
    """Σᵢ coefᵢ k(xᵢ, x) + b for each row of X: coef (n,) → (m,), or (n, c) → (m, c)."""
    return jnp.matmul(kernel.gram(X, X_train), coef, precision=HIGHEST) + b


@checks_on_outputs
def decision_function(model: SVMModel, X) -> jax.Array:
    """f(x) = Σᵢ αᵢ yᵢ k(xᵢ, x) + b for each row of X (m, d) → (m,)."""
    X = query_points(X, model.X)
    return kernel_expansion(model.kernel, X, model.X, model.alpha * model.y, model.b)


@checks_on_outputs
def predict(model: SVMModel, X) -> jax.Array:
    """Labels ±1 (int32) of X (m, d): sign of :func:`decision_function` (0 ↦ −1, as sklearn)."""
    return jnp.where(decision_function(model, X) > 0, 1, -1).astype(jnp.int32)


def primal_weights(model: SVMModel) -> jax.Array:
    """w = Σᵢ αᵢ yᵢ xᵢ, shape (d,): the hyperplane normal (linear kernel only)."""
    if not isinstance(model.kernel, Linear):
        raise TypeError("primal_weights needs a Linear kernel; with "
                        f"{type(model.kernel).__name__} w lives in feature space")
    return jnp.matmul(model.alpha * model.y, model.X, precision=HIGHEST)


def margin_width(model: SVMModel) -> jax.Array:
    """2/‖w‖, the width of the band between the two margin hyperplanes.

    ‖w‖² = (α⊙y)ᵀ K (α⊙y) in feature space (= ‖Σ αᵢyᵢxᵢ‖² for the linear kernel).
    """
    return _margin_width(model)


@jax.jit
def _margin_width(model: SVMModel):
    ay = model.alpha * model.y
    if isinstance(model.kernel, Linear):
        return 2.0 / safe_norm(jnp.matmul(ay, model.X, precision=HIGHEST))
    w_sq = jnp.dot(ay, jnp.matmul(model.kernel.gram(model.X, model.X), ay, precision=HIGHEST))
    return 2.0 / jnp.sqrt(w_sq)


# -------------------------------------------------------------------------- input checks


def check_binary(X, y, C, tol, kernel):
    """Validate (X, y, C, tol, kernel) at the Python boundary; returns them checked but not
    cast (the jitted cores cast y, C and tol to X's dtype: no eager conversions here)."""
    if not isinstance(kernel, Kernel):
        raise TypeError(f"kernel must be a jaxml.svm Kernel, got {type(kernel).__name__}")
    X = check_matrix(X, "X")
    y = check_labels(y, "y", [-1, 1])
    check_same_length(X, "X", y, "y")
    if is_concrete(y):
        v = np.asarray(y)
        if v.min() == v.max():
            raise ValueError(f"y must contain both labels -1 and +1, got only [{int(v[0])}]")
    C = check_positive(C, "C", finite=False)            # C = inf: hard margin
    tol = check_positive(tol, "tol")
    return X, y, C, tol


def default_max_iter(n: int, max_iter) -> int:
    """``max_iter`` checked, or the default max(100 000, 20 n) for ``None``."""
    if max_iter is None:
        return max(100_000, 20 * n)
    return check_loop_options(max_iter, 0.0)[0]


# ------------------------------------------------------------------------------ the fit


def projected_gradient_map(alpha, K, y, C, t):
    """T(α) = Π(α + t∇D(α)), Π the projection onto {0 ≤ α ≤ C, yᵀα = 0}: the dual's
    fixed-point map (α* = T(α*) for any t > 0 exactly at the optimum)."""
    z = alpha + t * dual_gradient(alpha, K, y)
    with runtime_checks(False):     # inside the loop: no per-iteration run-time checks
        return project_box_hyperplane(z, y, jnp.zeros((), z.dtype), C, 0.0)


def solve_dual(problem: DualProblem, tol, *, init: Callable, step: Callable, max_iter: int,
               adjoint: Adjoint | None) -> LoopResult:
    """The shared loop over ``step`` from ``init(problem)``; with ``adjoint`` None/Implicit
    the loop runs on stop-gradient inputs and α carries the implicit derivative of
    α = :func:`projected_gradient_map` (α) with respect to K, C (and so X and the kernel's
    parameters); ``Direct()``: the plain loop; ``Unrolled()``: ``lax.scan`` of the steps."""
    if isinstance(adjoint, Unrolled):
        return fixed_point(step, init(problem), problem, tol=tol, max_iter=max_iter,
                           adjoint=adjoint)
    if isinstance(adjoint, Direct):
        return batched_solver(init, step, max_iter)(problem, tol)
    if adjoint is not None and not isinstance(adjoint, Implicit):
        raise TypeError(f"adjoint must be Direct(), Unrolled() or Implicit(), got {adjoint!r}")
    stop = partial(jax.tree_util.tree_map, jax.lax.stop_gradient)
    loop = batched_solver(init, step, max_iter)(stop(problem), stop(tol))
    # any t > 0 has the same fixed point; 1/mean(Kₜₜ) puts the spectrum of I − ∂T near 1
    t = jax.lax.stop_gradient(1.0 / jnp.maximum(jnp.mean(problem.diag),
                                                jnp.finfo(problem.K.dtype).tiny))
    alpha = implicit_solution(lambda a, th: projected_gradient_map(a, *th, t), loop.state.alpha,
                              (problem.K, problem.y, problem.C),
                              loop.converged & ~loop.state.infeasible, adjoint=adjoint)
    return loop._replace(state=loop.state._replace(alpha=alpha))


def fit_checked(X, y, C, tol, kernel, max_iter, min_margin, *, init: Callable, step: Callable,
                adjoint: Adjoint | None = None, group: int = 1) -> SVMModel:
    """The public binary fits' boundary: check (X, y, C, tol, kernel, max_iter, min_margin),
    then :func:`fit_binary` with the solver's ``init``/``step``. ``step`` may do ``group``
    solver steps per call (``max_iter`` and ``n_iter`` still count single steps)."""
    X, y, C, tol = check_binary(X, y, C, tol, kernel)
    max_iter = default_max_iter(X.shape[0], max_iter)
    min_margin = check_positive(min_margin, "min_margin")
    return fit_binary(X, y, C, tol, kernel, min_margin, init=init, step=step,
                      max_iter=max_iter, adjoint=adjoint, group=group)


@partial(jax.jit, static_argnames=("init", "step", "max_iter", "adjoint", "group"))
def fit_binary(X, y, C, tol, kernel, min_margin, *, init: Callable, step: Callable,
               max_iter: int, adjoint: Adjoint | None = None, group: int = 1) -> SVMModel:
    """Gram matrix, dual, the shared loop over ``step`` from ``init(problem)``, model.

    One compiled function per (solver, shapes, kernel type, max_iter, adjoint), reused
    across calls; under ``vmap`` (over C, a kernel parameter, the data) the solves share one
    loop (:func:`jaxml._core.batched.batched_solver`). The solver's state has fields
    ``alpha`` (n,) and ``infeasible`` (). Derivatives: see :func:`solve_dual`. With
    ``group`` > 1 each loop step is ``group`` solver steps: the loop runs at most
    ⌈max_iter/group⌉ of them and ``n_iter`` is group · (loop steps).
    """
    C, tol, min_margin = (jnp.asarray(v, X.dtype) for v in (C, tol, min_margin))
    problem = dual_problem(gram(kernel, X), y, C, min_margin=min_margin)
    loop = solve_dual(problem, tol, init=init, step=step, max_iter=-(-max_iter // group),
                      adjoint=adjoint)
    loop = loop._replace(n_iter=loop.n_iter * group)
    return model_from_alpha(loop.state.alpha, problem, X, kernel, loop, loop.state.infeasible)


