r"""The SVM dual by accelerated projected gradient (monotone FISTA).

Minimizes f = −D over the dual's feasible set {0 ≤ α ≤ C, yᵀα = 0} (see
:mod:`jaxml.svm.dual`): each step extrapolates, z = α + β(α − α_prev) (the FISTA momentum of
:mod:`jaxml._core.prox`), moves along ∇D(z), projects with
:func:`jaxml.convex.project_box_hyperplane`, and accepts the point only if D does not
decrease (the monotone variant: a rejected step keeps α and restarts the momentum; a
rejected plain gradient step doubles L). ∇D is affine, so ∇D(z) is extrapolated with α and
never recomputed: one Gram matvec, O(n²), per step. Stops when the KKT violation
m(α) − M(α) ≤ tol, the rule SMO uses, so both give the same answer.

Reference: A. Beck & M. Teboulle, "A fast iterative shrinkage-thresholding algorithm",
SIAM J. Imaging Sci. (2009) (FISTA, monotone variant).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxml._core.checks import checks_on_outputs, runtime_checks
from jaxml._core.linalg import max_eigenvalue
from jaxml._core.loop import Adjoint
from jaxml._core.numerics import HIGHEST
from jaxml._core.prox import extrapolate, momentum
from jaxml.convex import project_box_hyperplane
from jaxml.kernels import Kernel, Linear
from jaxml.svm import dual as svm_dual
from jaxml.svm.dual import DualInfo, DualProblem, SVMModel

__all__ = ["PGDState", "pgd_init", "pgd_step", "fit_pgd"]


class PGDState(NamedTuple):
    """State of monotone FISTA on the dual.

    Attributes:
        alpha: (n,) current iterate (feasible). grad: (n,) ∇D(alpha).
        alpha_prev: (n,) the previous iterate. grad_prev: (n,) ∇D(alpha_prev).
        theta: () FISTA momentum θ (0 at the start and after a rejected step).
        L: () step 1/L, L ≥ λ_max(Q), Q = (yyᵀ)⊙K.
        dual: () D(alpha). infeasible: () bool (hard-margin certificate).
    """

    alpha: jax.Array
    grad: jax.Array
    alpha_prev: jax.Array
    grad_prev: jax.Array
    theta: jax.Array
    L: jax.Array
    dual: jax.Array
    infeasible: jax.Array


def lipschitz(problem: DualProblem, n_power: int = 50) -> jax.Array:
    """λ_max(Q) of Q = (yyᵀ)⊙K by power iteration, times 1.05 (the step backs off if it
    overshoots), floored at eps·max Kₜₜ."""
    K, y = problem.K, problem.y

    def Q(v):
        return y * jnp.matmul(K, y * v, precision=HIGHEST)

    lam = max_eigenvalue(Q, y.shape[0], K.dtype, n_iter=n_power)
    return jnp.maximum(1.05 * lam, jnp.finfo(K.dtype).eps * jnp.max(problem.diag))


def pgd_init(problem: DualProblem) -> PGDState:
    """α = α_prev = 0 (feasible), ∇D = 1, θ = 0, L from power iteration."""
    zero = jnp.zeros_like(problem.y)
    one = jnp.ones_like(problem.y)
    dt = problem.y.dtype
    return PGDState(zero, one, zero, one, jnp.asarray(0.0, dt), lipschitz(problem),
                    jnp.asarray(0.0, dt), jnp.asarray(False))


def pgd_step(state: PGDState, problem: DualProblem) -> tuple[PGDState, DualInfo]:
    """One monotone-FISTA step: z = α + β(α − α_prev), u = P(z + ∇D(z)/L); accept u if
    D(u) ≥ D(α), else keep α, restart the momentum (and double L if even a plain gradient
    step failed, i.e. the power-iteration estimate of λ_max(Q) was too low).

    Args:
        state: :class:`PGDState`. problem: :class:`jaxml.svm.DualProblem`.

    Returns:
        (state, info): ``info.error`` the KKT violation at the new α (−inf once the
        hard-margin certificate fires, which stops the loop), ``info.value`` D(α).
    """
    K, y, C = problem.K, problem.y, problem.C
    theta_new, beta = momentum(state.theta)
    z, grad_z = extrapolate((state.alpha, state.grad), (state.alpha_prev, state.grad_prev), beta)
    with runtime_checks(False):     # inside the loop: no per-iteration run-time checks
        u = project_box_hyperplane(z + grad_z / state.L, y, jnp.zeros((), z.dtype), C, 0.0)
    # Snap rounding-level values onto the bounds: the bisection's multiplier is only exact
    # to the float precision, which otherwise leaves αₜ ~ 1e-9 (float32) that a KKT check
    # counts as free; the shift of yᵀα is at rounding level too.
    snap = 16.0 * jnp.finfo(u.dtype).eps * jnp.max(u)
    u = jnp.where(u <= snap, 0.0, jnp.where(u >= C - snap, C, u))
    grad_u = svm_dual.dual_gradient(u, K, y)
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
    alpha = jnp.where(accept, u, state.alpha)
    grad = jnp.where(accept, grad_u, state.grad)
    dual = jnp.where(accept, state.dual + gain, state.dual)
    # rejected: x_prev = x and θ = 0, so the next two steps carry no momentum
    theta = jnp.where(accept, theta_new, 0.0)
    # θ > 0 ⇔ this step's θ⁺ > 1 ⇔ it was not a plain gradient step from a restart
    L = jnp.where(accept | (state.theta > 0.0), state.L, 2.0 * state.L)
    infeasible = svm_dual.hard_margin_infeasible(dual, jnp.sum(alpha), problem)
    err = jnp.where(infeasible, -jnp.inf, svm_dual.violation_from_gradient(alpha, grad, y, C))
    new = PGDState(alpha, grad, state.alpha, state.grad, theta, L, dual, infeasible)
    return new, DualInfo(err, dual)


@checks_on_outputs
def fit_pgd(X, y, *, C=1.0, kernel: Kernel = Linear(), tol=1e-3, max_iter: int | None = None,
            min_margin=svm_dual.DEFAULT_MIN_MARGIN, adjoint: Adjoint | None = None) -> SVMModel:
    """Solve the SVM dual by accelerated (monotone FISTA) projected gradient.

    Each step moves along ∇D and projects onto {0 ≤ α ≤ C, yᵀα = 0} with
    :func:`jaxml.convex.project_box_hyperplane`; stops when the KKT violation
    m(α) − M(α) ≤ tol (the same rule as :func:`jaxml.svm.fit`, so the same answer).
    O(n²) per step: slower than SMO on large n, but every step is a dense, batched op.

    Args:
        X: (n, d) training points. y: (n,) labels in {−1, +1}.
        C: box bound (``jnp.inf`` = hard margin), may be traced (vmap over C).
        kernel: a :class:`jaxml.kernels.Kernel`. tol: KKT tolerance.
        max_iter: static bound on steps (default max(100 000, 20 n)).
        min_margin: relative margin of the hard-margin separability certificate.
        adjoint: ``None``/``Implicit()`` (default), ``Direct()`` or ``Unrolled()``, as in
            :func:`jaxml.svm.fit` (the same implicit derivative at the solution).

    Returns:
        :class:`jaxml.svm.SVMModel` (``alpha`` (n,), ``b``, ``support`` (n,), ``n_iter``,
        ``converged``, ``trace`` (max_iter,) of D(α), …).
    """
    return svm_dual.fit_checked(X, y, C, tol, kernel, max_iter, min_margin,
                                init=pgd_init, step=pgd_step, adjoint=adjoint)
