r"""Linear regression: least squares, ridge and lasso, penalized and constrained.

For data X ∈ ℝⁿˣᵈ, y ∈ ℝⁿ (no hidden
intercept: the objectives are exactly as written; center the data or add a ones column):

* least squares min_w J(w) = ½‖y - Xw‖², ∇J = Xᵀ(Xw - y);
  closed form w = X⁺ y (the minimum-norm solution when Xᵀ X is singular);
* ridge min_w ‖y - Xw‖² + α‖w‖₂² (scikit-learn's ``Ridge``),
  w = (Xᵀ X + α I)⁻¹ Xᵀ y = Xᵀ (X Xᵀ + α I)⁻¹ y;
* lasso min_w 1/(2n)‖y - Xw‖² + α‖w‖₁ (scikit-learn's ``Lasso``);
* their constrained forms min ‖y - Xw‖² s.t. ‖w‖₂ ≤ r or
  ‖w‖₁ ≤ r. By Lagrange duality each radius corresponds to a penalty: the KKT
  multiplier λ of the constraint gives ridge's α = λ (for the
  constraint written ‖w‖₂² ≤ r²) and lasso's α = λ / (2n)
  (for ‖w‖₁ ≤ r), so both forms trace the same coefficient path.

References:
    Hastie, Tibshirani & Friedman, *The Elements of Statistical Learning* (2009), §3.2, §3.4.
    Beck & Teboulle, SIAM J. Imaging Sci. 2 (2009) (FISTA).
    Friedman, Hastie & Tibshirani, "Regularization paths for generalized linear models via
    coordinate descent", J. Stat. Softw. 33 (2010) (duality-gap stopping, as scikit-learn).
"""

from __future__ import annotations

from functools import lru_cache, partial
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
from jax import lax

from jaxml import convex, optim
from jaxml._core import (
    HIGHEST,
    Adjoint,
    Direct,
    Implicit,
    StepInfo,
    as_float_array,
    check_int_in_range,
    check_loop_options,
    check_matrix,
    check_nonnegative,
    check_positive,
    check_same_length,
    check_vector,
    checks_on_outputs,
    fixed_point,
    float_dtype,
    host_function,
    is_concrete,
    max_eigenvalue,
    row_mesh,
    safe_norm,
)
from jaxml._core.batched import batched_solver
from jaxml._core.fold import Chunks, first_chunk, fold_chunks, qr_chunks, qr_rows
from jaxml._core.linalg import blocked_gram, cholesky_solve, symmetrize
from jaxml._core.prox import (ProxState, extrapolate, implicit_solution, is_uphill, momentum,
                              restart_momentum)

__all__ = [
    "squared_loss", "squared_loss_grad", "least_squares", "least_squares_gd", "ridge",
    "least_squares_streamed", "ridge_streamed",
    "ridge_constrained", "lasso", "lasso_path", "lasso_constrained", "loss_surface",
    "LassoResult", "LassoPathResult", "ConstrainedResult",
]


# ----------------------------------------------------------------------------- checks
def _data(X, y):
    """Checked (X (n, d), y (n,)) in one floating dtype."""
    X = check_matrix(X, "X")
    y = check_vector(y, "y")
    check_same_length(X, "X", y, "y")
    dt = float_dtype(X, y)
    return X.astype(dt), y.astype(dt)


def _nonneg_scalar(v, name, dtype):
    v = as_float_array(v, name, ndim=0, dtype=dtype)
    return check_nonnegative(v, name)


def _tol(tol, dtype):
    """``tol`` as a traced scalar of the data's dtype (one compilation for every value)."""
    return jnp.asarray(tol, dtype)


# ----------------------------------------------------------------------------- loss
def squared_loss(w, X, y) -> jax.Array:
    r"""J(w) = ½‖y - Xw‖₂².

    Args:
        w: (d,) weights. X: (n, d) design. y: (n,) targets.

    Returns:
        () the loss.
    """
    r = y - X @ w
    return 0.5 * jnp.dot(r, r)


def squared_loss_grad(w, X, y) -> jax.Array:
    r"""∇J(w) = Xᵀ(Xw - y) (hand-derived; equals ``jax.grad(squared_loss)``).

    Args:
        w: (d,) weights. X: (n, d) design. y: (n,) targets.

    Returns:
        (d,) the gradient.
    """
    return (X @ w - y) @ X


# ----------------------------------------------------------------------------- least squares
@checks_on_outputs
def least_squares(X, y) -> jax.Array:
    r"""Closed-form least squares w = X⁺ y, as accurate as a backward-stable solver.

    Never forms Xᵀ X. A column-pivoted Householder QR factorization X Π = Q R (LAPACK
    ``geqp3``) gives

        w = Π R⁻¹ Qᵀ y,

    followed by one step of iterative refinement w ← w + Π R⁻¹ Qᵀ (y − X w). Householder
    QR is backward stable column by column (‖δx_j‖ ≤ c ε ‖x_j‖), so the error follows the
    condition number of the best column scaling of X, not κ(X): a degree-10 polynomial
    fitted in raw powers (κ(X) ≈ 1e14–1e20) keeps the digits a column-pivoted QR keeps,
    where an SVD with the usual relative cut-off (``numpy.linalg.lstsq``) keeps none.
    (Equilibrating the columns first changes only the pivot order; measured on such
    designs it lost 0.5–1 digit, so it is not done.)

    Rank is read from the pivoted R, scale-invariantly: X is taken as rank-deficient when
    some pivot column is within rounding of the span of the columns before it,
    |R_kk| ≤ 10 max(n, d) ε ‖x_π(k)‖₂ (or when n < d). Then the result is the
    minimum-norm minimizer w = X⁺ y from an SVD of X, singular values below
    max(n, d) ε σ₁ treated as zero. The branch is a ``lax.cond`` (both run under
    ``vmap``).

    Differentiable in X and y (``jax.grad``, ``jax.jvp``) by the derivative of the
    pseudo-inverse at constant rank (Golub & Pereyra 1973), applied with the same factors:

        dw = X⁺(dy − dX w) + X⁺X⁺ᵀ dXᵀ r + (I − X⁺X) dXᵀ X⁺ᵀ w,   r = y − X w.

    Cost O(n d²) time, O(n d) memory.

    On rows sharded over a device mesh (see :mod:`jaxml.data`) the same solution comes
    from a tall-skinny QR: each shard reduces [X | y] to its R factor, the stacked R
    factors are reduced by one more QR, and the small problem min ‖R w − z‖ (same
    minimizers) is solved as above; one refinement pass does the same for [X | y − Xw].
    No XᵀX is formed, so sharding does not square the condition number. Its derivative
    uses the semi-normal form (XᵀX)⁺ = (RᵀR)⁺. :func:`least_squares_streamed` runs it
    over host chunks.

    Args:
        X: (n, d) design. y: (n,) targets.

    Returns:
        (d,) the weights, dtype of ``X``/``y``.

    References:
        Golub & Van Loan, *Matrix Computations* (2013), §5.4.1 (QR with column pivoting),
        §5.5 (rank-deficient least squares); Higham, *Accuracy and Stability of Numerical
        Algorithms* (2002), §20 (column scaling, iterative refinement).
        Golub & Pereyra, "The differentiation of pseudo-inverses and nonlinear least
        squares problems", SIAM J. Numer. Anal. 10 (1973).
    """
    X, y = _data(X, y)
    return _least_squares(X, y)


class _LSOperators(NamedTuple):
    """X⁺ and the products the derivative of X⁺ y needs, from one factorization of X."""

    pinv: Callable      # b (n,) ↦ X⁺ b
    pinv_t: Callable    # v (d,) ↦ X⁺ᵀ v
    gram_pinv: Callable  # u (d,) ↦ X⁺ X⁺ᵀ u  (= (XᵀX)⁻¹ u at full rank)
    null: Callable      # u (d,) ↦ (I − X⁺X) u  (0 at full rank)


def _ls_branch(ops: _LSOperators, X, y, tangents, *, refine: bool):
    """(w, dw) from the operators: w = X⁺y (refined once), dw its derivative (or None)."""
    w = ops.pinv(y)
    if refine:
        w = w + ops.pinv(y - jnp.dot(X, w, precision=HIGHEST))
    if tangents is None:
        return w, None
    dX, dy = tangents
    r = y - jnp.dot(X, w, precision=HIGHEST)
    dw = (ops.pinv(dy - jnp.dot(dX, w, precision=HIGHEST))
          + ops.gram_pinv(jnp.dot(r, dX, precision=HIGHEST))
          + ops.null(jnp.dot(ops.pinv_t(w), dX, precision=HIGHEST)))
    return w, dw


def _ls_svd_operators(X, m: int) -> _LSOperators:
    """Minimum-norm operators from the SVD of the unscaled X (cut-off m ε σ₁, m = max(n, d))."""
    U, s, Vt = jnp.linalg.svd(X, full_matrices=False)
    keep = s > m * jnp.finfo(X.dtype).eps * s[0]
    s_inv = jnp.where(keep, 1.0 / jnp.where(keep, s, 1.0), 0.0)
    dot = partial(jnp.dot, precision=HIGHEST)
    return _LSOperators(
        pinv=lambda b: dot(Vt.T, s_inv * dot(U.T, b)),
        pinv_t=lambda v: dot(U, s_inv * dot(Vt, v)),
        gram_pinv=lambda u: dot(Vt.T, s_inv ** 2 * dot(Vt, u)),
        null=lambda u: u - dot(Vt.T, jnp.where(keep, dot(Vt, u), 0.0)))


def _with_ls_operators(X, use: Callable, operands: tuple, *, n_rows: int | None = None):
    """``use(ops, refine, *operands)`` with X's operators: pivoted QR at full rank, else the
    SVD's minimum-norm ones (a ``lax.cond``). ``n_rows`` (default n): the row count of the
    problem X stands for (its R factor stands for a taller X) in the rank rule's max(n, d)."""
    n, d = X.shape
    m = max(n if n_rows is None else n_rows, d)

    def via_svd(*o):
        return use(_ls_svd_operators(X, m), False, *o)

    if n < d:
        return via_svd(*operands)
    dt = X.dtype
    Q, R, perm = jax.scipy.linalg.qr(X, mode="economic", pivoting=True)
    pivot_norms = safe_norm(X, axis=0)[perm]
    full_rank = jnp.all(jnp.abs(jnp.diagonal(R)) > 10 * m * jnp.finfo(dt).eps * pivot_norms)
    R = jnp.where(full_rank, R, jnp.eye(d, dtype=dt))   # finite in the branch not taken (vmap)
    inv_perm = jnp.argsort(perm)
    dot = partial(jnp.dot, precision=HIGHEST)
    tri = partial(jax.scipy.linalg.solve_triangular, R, lower=False)
    tri_t = partial(jax.scipy.linalg.solve_triangular, R, lower=False, trans="T")
    qr_ops = _LSOperators(
        pinv=lambda b: tri(dot(Q.T, b))[inv_perm],
        pinv_t=lambda v: dot(Q, tri_t(v[perm])),
        gram_pinv=lambda u: tri(tri_t(u[perm]))[inv_perm],
        null=jnp.zeros_like)

    def via_qr(*o):
        return use(qr_ops, True, *o)

    return lax.cond(full_rank, via_qr, via_svd, *operands)


def _least_squares_impl(X, y, tangents=None, *, n_rows: int | None = None):
    """(w, dw): pivoted QR at full rank, else the SVD's minimum-norm solution."""
    def use(ops, refine, X, y, tangents):
        return _ls_branch(ops, X, y, tangents, refine=refine)

    return _with_ls_operators(X, use, (X, y, tangents), n_rows=n_rows)


@jax.custom_jvp
def _least_squares_value(X, y):
    return _least_squares_impl(X, y)[0]


@_least_squares_value.defjvp
def _least_squares_jvp(primals, tangents):
    return _least_squares_impl(*primals, tangents)


# Tall-skinny QR (TSQR): X's rows reduced to the R factor of [X | b] by the _core QR fold
# (per row block, device shard or host chunk, then the stacked R factors), so the small
# (d, d) problem min ‖R w − z‖ has the objective of min ‖X w − b‖ up to a constant.
def _augment(rows, w):
    """Rows of [X | y − X w] (b, d + 1), in w's dtype."""
    X, y = rows
    X, y = X.astype(w.dtype), y.astype(w.dtype)
    return jnp.concatenate([X, (y - jnp.dot(X, w, precision=HIGHEST))[:, None]], axis=1)


def _small_solve(R_aug, n: int):
    """argmin_w ‖X w − b‖ (minimum norm) from R_aug (d+1, d+1), the R factor of [X | b]."""
    d = R_aug.shape[0] - 1
    return _least_squares_impl(R_aug[:d, :d], R_aug[:d, d], n_rows=n)[0]


def _tsqr_solve(X, y):
    """(w, R_aug): w = X⁺y from the TSQR of [X | y], refined once by the TSQR of
    [X | y − X w] (two passes over the rows)."""
    n = X.shape[0]
    zero = jnp.zeros(X.shape[1], X.dtype)
    R_aug = qr_rows(lambda r: _augment(r, zero), (X, y), block=None)
    w = _small_solve(R_aug, n)
    w = w + _small_solve(qr_rows(lambda r: _augment(r, w), (X, y), block=None), n)
    return w, R_aug


@jax.custom_jvp
def _least_squares_tsqr(X, y):
    return _tsqr_solve(X, y)[0]


@_least_squares_tsqr.defjvp
def _least_squares_tsqr_jvp(primals, tangents):
    # X⁺ = (XᵀX)⁺Xᵀ and XᵀX = RᵀR: the pseudo-inverse derivative (see least_squares) as
    # dw = (RᵀR)⁺(Xᵀ(dy − dX w) + dXᵀ r) + (I − R⁺R) dXᵀ X (RᵀR)⁺ w, r = y − X w
    # (the semi-normal form: only products with X and dX, which follow its sharding).
    X, y = primals
    dX, dy = tangents
    w, R_aug = _tsqr_solve(X, y)
    d = X.shape[1]
    dot = partial(jnp.dot, precision=HIGHEST)
    r = y - dot(X, w)
    u = dot(dy - dot(dX, w), X) + dot(r, dX)

    def use(ops, refine, u, w, X, dX):
        return ops.gram_pinv(u) + ops.null(dot(dot(X, ops.gram_pinv(w)), dX))

    dw = _with_ls_operators(R_aug[:d, :d], use, (u, w, X, dX), n_rows=X.shape[0])
    return w, dw


@jax.jit
def _least_squares(X, y):
    if row_mesh(X) is not None:          # rows sharded over a mesh: TSQR over the shards
        return _least_squares_tsqr(X, y)
    return _least_squares_value(X, y)


@host_function
def least_squares_streamed(data) -> jax.Array:
    r"""Least squares w = X⁺ y over (X, y) rows streamed from the host in chunks (TSQR).

    The tall-skinny QR of :func:`least_squares` over host chunks: each chunk of [X | y]
    is reduced on the device to its R factor and stacked under the running one for
    another QR, so device memory holds one chunk and X is never squared (no XᵀX: the
    error follows κ(X), not κ(X)²). The small problem min ‖R w − z‖ (R (d, d), z (d,)
    from the R factor of [X | y]) has the same minimizers as min ‖y − Xw‖ and is solved
    as :func:`least_squares` solves X (column-pivoted QR, the minimum-norm SVD solution
    when rank-deficient); one refinement pass reduces [X | y − Xw] the same way. Two
    passes over the data. Equals :func:`least_squares` on the concatenated rows to
    rounding. A host function (a Python loop over host data): no ``jit``/``vmap``/``grad``.

    Args:
        data: chunks of (X, y) row pairs, as :func:`jaxml.data.chunks` (``chunks(X, y=y)``
            for two arrays or memory-mapped ``.npy`` files, or a list / callable of
            ``(X_chunk (m, d), y_chunk (m,))`` tuples).

    Returns:
        (d,) the weights, in the floating dtype of X and y.

    References:
        Demmel, Grigori, Hoemmen & Langou, "Communication-optimal parallel and sequential
        QR and LU factorizations", SIAM J. Sci. Comput. 34 (2012).
    """
    source = data if isinstance(data, Chunks) else Chunks(data)
    X0, y0 = _first_pair(source)
    zero = jnp.zeros(X0.shape[1], float_dtype(X0, y0))
    R_aug, n = qr_chunks(_augment, source, args=(zero,))
    if not bool(jnp.all(jnp.isfinite(R_aug))):
        raise ValueError("X and y must be finite (some chunk holds NaN or inf)")
    w = _small_solve_jit(R_aug, n=n)
    R_ref, _ = qr_chunks(_augment, source, args=(w,))
    return w + _small_solve_jit(R_ref, n=n)


_small_solve_jit = jax.jit(_small_solve, static_argnames=("n",))


def _first_pair(source):
    """The checked first (X, y) chunk of a supervised chunk source."""
    first = first_chunk(source, pairs=True)
    X0 = check_matrix(first[0], "X (first chunk)")
    y0 = check_vector(first[1], "y (first chunk)")
    return X0, y0


def least_squares_gd(X, y, *, learning_rate=None, tol=1e-6, max_iter: int = 1000,
                     adjoint: Adjoint | None = None) -> optim.OptResult:
    r"""Least squares min_w ½‖y - Xw‖² by gradient descent.

    Uses :func:`jaxml.optim.gradient_descent` from w₀ = 0 (Armijo backtracking when
    ``learning_rate`` is ``None``; a fixed step must be < 2/λ_max(Xᵀ X)).
    Stops when ‖Xᵀ(Xw - y)‖₂ ≤ ``tol``.

    Args:
        X: (n, d) design. y: (n,) targets. learning_rate: () fixed step or ``None``.
        tol: gradient-norm tolerance. max_iter: static bound.
        adjoint: ``None``/``Implicit()`` (default: implicit derivative at the solution),
            ``Direct()`` or ``Unrolled()``, as in :func:`jaxml.optim.proximal_gradient`.

    Returns:
        :class:`jaxml.optim.OptResult` with ``x`` (d,), ``n_iter``, ``converged`` and
        ``trace`` (max_iter,) the loss per iteration.
    """
    X, y = _data(X, y)
    max_iter, tol = check_loop_options(max_iter, tol, allow_zero_tol=False)
    line_search = learning_rate is None
    if not line_search:
        learning_rate = as_float_array(learning_rate, "learning_rate", ndim=0, dtype=X.dtype)
        learning_rate = check_positive(learning_rate, "learning_rate")
    return _least_squares_gd(X, y, learning_rate, _tol(tol, X.dtype), max_iter=max_iter,
                             adjoint=adjoint)


@partial(jax.jit, static_argnames=("max_iter", "adjoint"))
def _least_squares_gd(X, y, learning_rate, tol, *, max_iter, adjoint):
    return optim.gradient_descent(lambda w: squared_loss(w, X, y), jnp.zeros(X.shape[1], X.dtype),
                                  learning_rate=learning_rate, tol=tol, max_iter=max_iter,
                                  adjoint=adjoint)


# ----------------------------------------------------------------------------- ridge
def _gram(A):
    """AᵀA (d, d) for A (n, d), exactly symmetric; large products via ``blocked_gram``
    (XLA:CPU's float64 GEMM is faster on transposed row blocks than on ``A.T @ A``)."""
    n, d = A.shape
    if n * d * d >= 2 ** 24:
        return blocked_gram(A)
    return symmetrize(A.T @ A)


def _psd_shift(A, alpha):
    """alpha floored at eps·trace(A) so that alpha = 0 on singular data stays finite."""
    return A + _shift(A, alpha) * jnp.eye(A.shape[0], dtype=A.dtype)


def _shift(A, alpha):
    # floored at the smallest normal number too: a zero design (trace 0) still factors
    return jnp.maximum(alpha, jnp.maximum(jnp.finfo(A.dtype).eps * jnp.trace(A),
                                          jnp.finfo(A.dtype).tiny))


def _ridge_from_gram(G, b, alpha):
    """(G + a I)⁻¹ b by Cholesky, G = XᵀX (d, d), b = Xᵀy (d,), a = alpha floored."""
    return cholesky_solve(jnp.linalg.cholesky(_psd_shift(G, alpha)), b)


def _ridge_direct(X, y, alpha):
    n, d = X.shape
    if n >= d:
        return _ridge_from_gram(_gram(X), y @ X, alpha)
    L = jnp.linalg.cholesky(_psd_shift(_gram(X.T), alpha))
    return cholesky_solve(L, y) @ X


# From n·d² = 2^30 multiply-adds, float64 ridge and lasso_path (n >= d) take the Gram
# matrix from float32 products and refine to the float64 answer.
_REFINE_MIN_WORK = 2 ** 30


def _refines(X) -> bool:
    """Whether X is large float64 with n >= d: worth float32 Gram products plus refinement."""
    n, d = X.shape
    return X.dtype == jnp.float64 and n >= d and n * d * d >= _REFINE_MIN_WORK


def _ridge_refined(X, y, alpha, *, max_iter: int = 30):
    r"""Float64 ridge by mixed-precision iterative refinement (the idea of LAPACK's dsgesv).

    The O(nd²) Gram matrix is formed from float32 products,
    G̃ ≈ Xᵀ X, and Cholesky-factored as the preconditioner
    P = G̃ + sI; preconditioned conjugate gradients then solve the exact
    float64 system (Xᵀ X + aI)w = Xᵀ y, each step applying the operator
    as Xᵀ(Xv) + av (two float64 passes over X, O(nd)). On well
    conditioned data P⁻¹A is within ~1e-6 of the identity and 2–3 steps reach
    dsgesv's stopping rule ‖r‖_∞ ≤ √d ε ‖A‖_∞‖w‖_∞
    (backward error as small as a float64 Cholesky's). If that has not happened after
    ``max_iter`` steps (conditioning beyond float32's reach), the float64 Gram is formed
    and factored instead: the answer is always the float64 one. ``a`` and the floor are
    :func:`ridge`'s; the preconditioner's shift s ≥ a is raised to
    √d ε₃₂ trG̃/d so P is positive definite.

    Wrapped in ``lax.custom_linear_solve``: ``grad``/``jvp`` come from the implicit
    function theorem (one more solve), ``vmap`` batches the loop.
    """
    n, d = X.shape
    G = blocked_gram(X, compute_dtype=jnp.float32)
    a = _shift(G, alpha)
    eps32 = jnp.finfo(jnp.float32).eps
    s = jnp.maximum(a, jnp.sqrt(d) * eps32 * jnp.trace(G) / d)
    L = jnp.linalg.cholesky(G + s * jnp.eye(d, dtype=X.dtype))
    threshold = jnp.sqrt(d) * jnp.finfo(X.dtype).eps * (jnp.max(jnp.sum(jnp.abs(G), 1)) + a)
    tiny = jnp.finfo(X.dtype).tiny

    def matvec(v):
        return (X @ v) @ X + a * v

    def precondition(r):
        return cholesky_solve(L, r)

    def pcg(matvec, b):
        def small(w, r):   # dsgesv's rule: the backward error of w is at float64 level
            return jnp.max(jnp.abs(r)) <= threshold * jnp.max(jnp.abs(w))

        def cond(c):
            w, r, _, _, _, k = c
            return (k < max_iter) & ~small(w, r) & jnp.all(jnp.isfinite(r))

        def body(c):
            w, r, z, p, rz, k = c
            Ap = matvec(p)
            step = rz / jnp.maximum(jnp.dot(p, Ap), tiny)
            w, r = w + step * p, r - step * Ap
            z_new = precondition(r)
            rz_new = jnp.dot(r, z_new)
            p = z_new + (rz_new / jnp.maximum(rz, tiny)) * p
            return w, r, z_new, p, rz_new, k + 1

        z = precondition(b)
        w, r, *_ = lax.while_loop(cond, body, (jnp.zeros_like(b), b, z, z, jnp.dot(b, z), 0))
        return lax.cond(small(w, r) & jnp.all(jnp.isfinite(w)), lambda: w,
                        lambda: cholesky_solve(jnp.linalg.cholesky(
                            _gram(X) + a * jnp.eye(d, dtype=X.dtype)), b))

    return lax.custom_linear_solve(matvec, y @ X, pcg, symmetric=True)


@checks_on_outputs
def ridge(X, y, alpha) -> jax.Array:
    r"""Ridge regression min_w ‖y - Xw‖² + α‖w‖² (scikit-learn's ``Ridge``
    with ``fit_intercept=False``).

    For n ≥ d, w = (Xᵀ X + α I)⁻¹Xᵀ y by Cholesky
    (O(nd²)); for d > n the dual form
    w = Xᵀ (XXᵀ + α I)⁻¹ y (O(n² d)). Large float64
    problems (nd² ≥ 2³⁰, n ≥ d) form the Gram matrix from float32
    products and refine to the float64 solution by preconditioned conjugate gradients,
    falling back to the float64 factorisation if refinement stalls (see
    ``_ridge_refined``): the same answer, from float32's faster matrix product.
    ``alpha`` is traced: ``jax.vmap(ridge, (None, None, 0))(X, y, alphas)`` sweeps
    penalties and ``jax.vmap(ridge, (0, 0, None))`` fits many datasets, without
    recompiling; ``jax.grad`` goes through it. For ``alpha = 0`` use
    :func:`least_squares` (here the shift is floored at
    ε tr(Xᵀ X) so singular data gives a finite answer). On a row-sharded X the Gram
    matrix is summed over the shards; over host chunks use :func:`ridge_streamed`.

    Args:
        X: (n, d) design. y: (n,) targets. alpha: () penalty ``>= 0``.

    Returns:
        (d,) the weights.
    """
    if not all(is_concrete(v) for v in (X, y, alpha)):
        return _ridge_checked(X, y, alpha)    # under vmap/grad: checks and core, one call
    return _ridge_checked.__wrapped__(X, y, alpha)


@jax.jit
def _ridge_checked(X, y, alpha):
    """Checks, then the jitted core: eager on concrete values; on traced ones (a plain
    ``vmap`` of :func:`ridge`) the run-time checks compile into one call with the core
    instead of running operation by operation."""
    X, y = _data(X, y)
    alpha = _nonneg_scalar(alpha, "alpha", X.dtype)
    return _ridge(X, y, alpha, refine=_refines(X))


@partial(jax.jit, static_argnames=("refine",))
def _ridge(X, y, alpha, *, refine: bool):
    return _ridge_refined(X, y, alpha) if refine else _ridge_direct(X, y, alpha)


def _gram_chunk(rows, mask, zero):
    """(XᵀX (d, d), Xᵀy (d,)) of a chunk's unmasked rows, in ``zero``'s dtype."""
    X, y = rows
    X = jnp.where(mask[:, None], X.astype(zero.dtype), 0)
    y = jnp.where(mask, y.astype(zero.dtype), 0)
    return (jnp.matmul(X.T, X, precision=HIGHEST), jnp.matmul(y, X, precision=HIGHEST))


@jax.jit
def _ridge_gram_solve(G, b, alpha):
    return _ridge_from_gram(symmetrize(G), b, alpha)


@host_function
def ridge_streamed(data, alpha) -> jax.Array:
    r"""Ridge regression over (X, y) rows streamed from the host in chunks.

    One pass sums G = Σ_chunks XᵀX (d, d) and b = Σ_chunks Xᵀy (d,) with the ``_core``
    chunk fold (device memory: one chunk), then w = (G + α I)⁻¹ b by Cholesky, as
    :func:`ridge` does for n ≥ d (with the same floor on α). Equals :func:`ridge` on the
    concatenated rows to rounding (when d > n, :func:`ridge` takes the dual form
    Xᵀ(XXᵀ + αI)⁻¹y, which streaming cannot hold; the two agree to the conditioning of
    XᵀX + αI). A host function: no ``jit``/``vmap``/``grad``.

    Args:
        data: chunks of (X, y) row pairs, as :func:`jaxml.data.chunks`
            (``chunks(X, y=y)``, or a list / callable of ``(X_chunk (m, d), y_chunk (m,))``).
        alpha: () penalty ``>= 0``.

    Returns:
        (d,) the weights, in the floating dtype of X and y.
    """
    source = data if isinstance(data, Chunks) else Chunks(data)
    X0, y0 = _first_pair(source)
    dt = float_dtype(X0, y0)
    alpha = _nonneg_scalar(alpha, "alpha", dt)
    G, b = fold_chunks(_gram_chunk, source, args=(jnp.zeros((), dt),))
    if not (bool(jnp.all(jnp.isfinite(G))) and bool(jnp.all(jnp.isfinite(b)))):
        raise ValueError("X and y must be finite (some chunk holds NaN or inf)")
    return _ridge_gram_solve(G, b, alpha)


# ----------------------------------------------------------------------------- constrained
class ConstrainedResult(NamedTuple):
    r"""Result of a constrained least-squares fit min ‖y - Xw‖² s.t. a norm ball.

    Attributes:
        w: (d,) the solution.
        multiplier: () the KKT multiplier λ ≥ 0 of the norm constraint
            (0 when the constraint is inactive); see the fitting function for its scale.
        value: () ‖y - Xw‖².
        n_iter: () iterations. converged: () bool. error: () final relative gradient mapping.
        trace: (max_iter,) objective ‖y - Xw‖² per iteration (NaN-padded).
    """

    w: jax.Array
    multiplier: jax.Array
    value: jax.Array
    n_iter: jax.Array
    converged: jax.Array
    error: jax.Array
    trace: jax.Array


def _constrained_ls(X, y, radius, ball, *, tol, max_iter, adjoint) -> ConstrainedResult:
    """Check, then the jitted core for the ``ball`` ("l1" or "l2")."""
    X, y = _data(X, y)
    r = _nonneg_scalar(radius, "radius", X.dtype)
    max_iter, tol = check_loop_options(max_iter, tol)
    return _constrained_core(X, y, r, _tol(tol, X.dtype), ball=ball, max_iter=max_iter,
                             adjoint=adjoint)


def _l2_multiplier(w, grad, r):
    ww = jnp.dot(w, w)
    return jnp.where(ww > 0, jnp.maximum(-jnp.dot(w, grad) / (2 * jnp.where(ww > 0, ww, 1.0)),
                                         0.0), 0.0)


def _l1_multiplier(w, grad, r):
    on_boundary = jnp.sum(jnp.abs(w)) >= r * (1 - 1e3 * jnp.finfo(w.dtype).eps)
    return jnp.where(on_boundary, jnp.max(jnp.abs(grad)), 0.0)


_BALLS = {"l2": (convex.project_l2_ball, _l2_multiplier),
          "l1": (convex.project_l1_ball, _l1_multiplier)}


@partial(jax.jit, static_argnames=("ball", "max_iter", "adjoint"))
def _constrained_core(X, y, r, tol, *, ball, max_iter, adjoint) -> ConstrainedResult:
    """Accelerated projected gradient (:func:`jaxml.optim.proximal_gradient`, the shared
    FISTA) on f(w) = ‖y − Xw‖² s.t. w in the ball of radius r, in Gram form with step 1/L
    exactly; the ball's projection and the constraint's KKT multiplier come from ``ball``."""
    project, multiplier = _BALLS[ball]
    G = _gram(X)
    b = y @ X
    yy = jnp.dot(y, y)
    tiny = jnp.finfo(X.dtype).tiny
    L = jnp.maximum(2.0 * jnp.linalg.eigvalsh(G)[-1], tiny)           # X = 0: any step
    nb = safe_norm(b)
    scale = jnp.where(nb > tiny, 2.0 * nb, 1.0)  # |grad f(0)|; Xᵀy = 0: w = 0 is optimal
    f = lambda w: (w @ (G @ w) - 2.0 * (b @ w) + yy) / scale  # noqa: E731
    res = optim.proximal_gradient(f, lambda v, t: project(v, r), jnp.zeros(X.shape[1], X.dtype),
                                  learning_rate=scale / L, tol=tol, max_iter=max_iter,
                                  adjoint=adjoint)
    grad = 2.0 * (G @ res.x - b)
    return ConstrainedResult(res.x, multiplier(res.x, grad, r), res.value * scale, res.n_iter,
                             res.converged, res.error, res.trace * scale)


@checks_on_outputs
def ridge_constrained(X, y, radius, *, tol=1e-8, max_iter: int = 5000,
                      adjoint: Adjoint | None = None) -> ConstrainedResult:
    r"""Constrained ridge min_w ‖y - Xw‖² s.t. ‖w‖₂ ≤ r.

    Accelerated projected gradient (FISTA with projection onto the L2 ball, step
    1/L, L = 2λ_max(Xᵀ X)), stopping when the gradient-mapping
    norm relative to ‖∇f(0)‖ = 2‖Xᵀ y‖ is ``<= tol``.

    The multiplier is that of the constraint written ‖w‖₂² ≤ r²:
    ∇f(w) + 2λ w = 0, estimated as
    λ = max(0, -wᵀ∇f(w) / (2‖w‖²)). Then ``ridge(X, y, λ)``
    returns the same ``w`` (the penalized/constrained correspondence).

    Args:
        X: (n, d) design. y: (n,) targets. radius: () ``r >= 0``.
        tol, max_iter: stopping rule and static bound.
        adjoint: ``None``/``Implicit()`` (default: implicit derivative of the projected
            gradient fixed point; undefined where w sits exactly on a kink of the ball's
            boundary or the constraint is just active), ``Direct()``, ``Unrolled()``.

    Returns:
        :class:`ConstrainedResult`.
    """
    return _constrained_ls(X, y, radius, "l2", tol=tol, max_iter=max_iter, adjoint=adjoint)


@checks_on_outputs
def lasso_constrained(X, y, radius, *, tol=1e-8, max_iter: int = 5000,
                      adjoint: Adjoint | None = None) -> ConstrainedResult:
    r"""Constrained lasso min_w ‖y - Xw‖² s.t. ‖w‖₁ ≤ r.

    Accelerated projected gradient with the exact sort-based projection onto the L1 ball
    (step 1/L, L = 2λ_max(Xᵀ X)), stopping when the relative
    gradient-mapping norm is ``<= tol``.

    KKT: 0 ∈ ∇f(w) + λ ∂‖w‖₁, so on the boundary
    λ = ‖∇f(w)‖_∞ (and 0 inside the ball). The matching penalized
    problem is scikit-learn's lasso with α = λ / (2n).

    Args:
        X: (n, d) design. y: (n,) targets. radius: () ``r >= 0``.
        tol, max_iter, adjoint: as :func:`ridge_constrained` (the implicit derivative does
            not exist where a coefficient sits exactly at a kink of the L1 ball).

    Returns:
        :class:`ConstrainedResult` (``multiplier`` = λ).
    """
    return _constrained_ls(X, y, radius, "l1", tol=tol, max_iter=max_iter, adjoint=adjoint)


# ----------------------------------------------------------------------------- lasso
class LassoResult(NamedTuple):
    r"""Result of :func:`lasso`.

    Attributes:
        w: (d,) coefficients.
        value: () the objective 1/(2n)‖y - Xw‖² + α‖w‖₁.
        duality_gap: () the final duality gap (same units as ``value``).
        n_iter: () iterations. converged: () bool, ``duality_gap <= tol·‖y‖²/n``.
        trace: (max_iter,) objective per iteration, NaN-padded.
    """

    w: jax.Array
    value: jax.Array
    duality_gap: jax.Array
    n_iter: jax.Array
    converged: jax.Array
    trace: jax.Array


class LassoPathResult(NamedTuple):
    """Result of :func:`lasso_path`: one row per alpha, in the order given.

    Attributes:
        coefs: (k, d). duality_gap: (k,). n_iter: (k,). converged: (k,) bool.
        trace: (k, max_iter) the objective of each fit per iteration, NaN past its
            ``n_iter`` (on the refined path: the float32 model's objective, round after
            round).
    """

    coefs: jax.Array
    duality_gap: jax.Array
    n_iter: jax.Array
    converged: jax.Array
    trace: jax.Array


class _LassoProblem(NamedTuple):
    """The lasso in Gram form: f(w) = ½ wᵀGw − bᵀw + yy/2, G = XᵀX/n, b = Xᵀy/n, yy = ‖y‖²/n."""

    b: jax.Array
    yy: jax.Array
    L0: jax.Array


def _gram_operator(X):
    """The operator v ↦ XᵀXv/n as (kind, data): the d×d Gram matrix when n ≥ d, else X
    itself (two products with X per application)."""
    n, d = X.shape
    if n >= d:
        return "gram", _gram(X) / n
    return "data", X


def _apply(kind: str, op, v):
    """Apply the Gram-form operator ``(kind, op)`` to v (d,)."""
    if kind == "gram":
        return op @ v
    if kind == "data":
        return (op @ v) @ op / op.shape[0]
    if kind == "f32":      # G̃v: float32 products with the float32 Gram matrix
        return jnp.matmul(op, v.astype(jnp.float32), precision=HIGHEST).astype(v.dtype)
    if kind == "model":    # v ↦ G w_a + G̃(v − w_a), the refined path's model
        Gw_a, w_a, G32 = op
        return Gw_a + _apply("f32", G32, v - w_a)
    raise ValueError(kind)


def _lasso_gap(w, Gw, b, yy, alpha):
    r"""Duality gap of (1/2n)‖y − Xw‖² + α‖w‖₁ from Gram quantities (O(d)).

    Dual point ν = s·r with s = min(1, α/‖Xᵀr/n‖∞) (the scaled residual, as in scikit-learn).
    """
    bw = jnp.dot(b, w)
    r2 = jnp.maximum(yy - 2 * bw + jnp.dot(w, Gw), 0.0)          # ‖r‖²/n
    dual_norm = jnp.max(jnp.abs(b - Gw))                           # ‖Xᵀr‖∞/n
    s = jnp.where(dual_norm > alpha, alpha / jnp.where(dual_norm > 0, dual_norm, 1.0), 1.0)
    yr = yy - bw                                                   # yᵀr/n
    primal = 0.5 * r2 + alpha * jnp.sum(jnp.abs(w))
    gap = 0.5 * r2 * (1 + s * s) + alpha * jnp.sum(jnp.abs(w)) - s * yr
    return jnp.maximum(gap, 0.0), primal


def _lasso_step(mv, state: ProxState, args) -> tuple[ProxState, StepInfo]:
    """One FISTA step (the shared :mod:`jaxml._core.prox` momentum and restart) on the
    lasso in Gram form: one operator product per iteration.

    ``state.x`` is the pair (w, Gw): the extrapolation is linear, so
    G y_k = G w_k + β (G w_k − G w_{k−1}) comes with y_k, and the objective and duality gap
    at the new iterate are O(d) from G w_{k+1}. ``state.step`` is 1/L, halved whenever the
    quadratic upper bound fails (the power-iteration L is a lower estimate). ``mv`` may be
    affine, v ↦ G w_a + G̃(v − w_a) (the refined path's model): everything here reads only
    differences of its values or the value itself. ``args`` = (problem, alpha).
    """
    prob, alpha = args
    b, yy = prob.b, prob.yy
    eps = jnp.finfo(b.dtype).eps
    scale = jnp.maximum(yy, jnp.finfo(b.dtype).tiny)
    (w, Gw), t = state.x, state.step
    theta_new, beta = momentum(state.theta)
    v, Gv = extrapolate(state.x, state.x_prev, beta)
    w_new = convex.soft_threshold(v - t * (Gv - b), t * alpha)
    Gw_new = mv(w_new)
    dv = w_new - v
    # f(w_new) − f(v) − gᵀdv = ½ dvᵀG dv = ½ dvᵀ(G w_new − G v): the upper bound holds iff
    # that curvature is at most L|dv|² (no difference of large f values is taken)
    curvature = jnp.dot(dv, Gw_new - Gv)
    bound_fails = 0.5 * curvature > 0.5 * jnp.dot(dv, dv) / t + 100 * eps * scale
    t_new = jnp.where(bound_fails, 0.5 * t, t)
    theta_new = restart_momentum(theta_new, is_uphill(v, w_new, w) | bound_fails)
    gap, primal = _lasso_gap(w_new, Gw_new, b, yy, alpha)
    return ProxState((w_new, Gw_new), state.x, theta_new, t_new), StepInfo(gap / scale, primal)


@lru_cache(maxsize=None)
def _lasso_loop(kind: str):
    """(init, step) of the lasso for the operator ``kind``, on the loop's convention
    ``step(state, problem)`` with problem = (op, prob, alpha, w0): module-level and cached,
    so :func:`jaxml._core.batched.batched_solver` reuses one solver per kind."""

    def init(problem):
        op, prob, _, w0 = problem
        Gw0 = _apply(kind, op, w0)
        return ProxState((w0, Gw0), (w0, Gw0), jnp.ones((), prob.b.dtype), 1.0 / prob.L0)

    def step(state, problem):
        op, prob, alpha, _ = problem
        return _lasso_step(partial(_apply, kind, op), state, (prob, alpha))

    return init, step


def _lasso_solve(kind: str, op, prob: _LassoProblem, alpha, w0, *, tol, max_iter,
                 adjoint=None):
    """The shared loop over :func:`_lasso_step` from w0; returns (LoopResult, gap, primal).

    With the default adjoint it runs :func:`jaxml._core.batched.batched_solver`, so a
    vmapped path (many alphas) shares one loop and writes its traces without copies. With
    ``None``/``Implicit()`` the loop runs on stop-gradient inputs and w carries the implicit
    derivative of the ISTA fixed point w = S_{tα}(w − t(Gw − b)) (S the soft threshold)."""
    init, step = _lasso_loop(kind)
    problem = (op, prob, alpha, w0)
    if adjoint is None or isinstance(adjoint, (Direct, Implicit)):
        implicit = not isinstance(adjoint, Direct)
        src = jax.tree_util.tree_map(lax.stop_gradient, (problem, tol)) if implicit else (
            problem, tol)
        res = batched_solver(init, step, max_iter)(*src)
        if implicit:
            t = lax.stop_gradient(res.state.step)

            def T(w, theta):
                op_, prob_, alpha_ = theta
                return convex.soft_threshold(w - t * (_apply(kind, op_, w) - prob_.b),
                                             t * alpha_)

            w = implicit_solution(T, res.state.x[0], (op, prob, alpha), res.converged,
                                  adjoint=adjoint)
            x = (w, _apply(kind, op, w))
            res = res._replace(state=res.state._replace(x=x))
    else:
        res = fixed_point(step, init(problem), problem, tol=tol, max_iter=max_iter,
                          adjoint=adjoint)
    w, Gw = res.state.x
    gap, primal = _lasso_gap(w, Gw, prob.b, prob.yy, alpha)
    return res, gap, primal


def _lasso_setup(X, y, kind=None, op=None):
    n, d = X.shape
    if kind is None:
        kind, op = _gram_operator(X)
    b = y @ X / n
    yy = jnp.dot(y, y) / n
    L0 = 1.05 * max_eigenvalue(partial(_apply, kind, op), d, X.dtype)
    L0 = jnp.maximum(L0, jnp.finfo(X.dtype).tiny)
    return kind, op, _LassoProblem(b, yy, L0)


_ROUND_REDUCTION = 1e-5   # each refinement round asks its model for this factor of gap


def _lasso_solve_refined(exact_mv, prob: _LassoProblem, G32, alpha, w0, Gw0, *, tol,
                         max_iter, round_iter: int = 100):
    r"""The lasso solved with float32 products of the Gram matrix, refined to float64.

    ``exact_mv`` is v ↦ Gv in float64, ``G32`` the Gram matrix in float32 for
    the same product in float32, G̃ v (relative error ~1e-7, about half the time on CPUs).
    Round j solves the lasso for the model f(wⱼ) + ∇f(wⱼ)ᵀ(w - wⱼ) +
    ½ (w - wⱼ)ᵀG̃(w - wⱼ) by :func:`_lasso_solve` from the anchor
    wⱼ, its operator v ↦ Gwⱼ + G̃(v - wⱼ): the model's
    gradient is exact at the anchor and its error, (G - G̃)(w - wⱼ) plus
    float32 rounding of the product, shrinks with the step, so each round can cut the gap
    by a factor of ~1e-6 and is asked for ``_ROUND_REDUCTION``. The round's solution is the
    next anchor, where the exact duality gap (the certificate of :func:`lasso`) is
    evaluated. A round also ends after ``round_iter`` iterations (on ill-conditioned data
    float32 rounding can keep its model gap above the target: the next anchor then
    resumes), and there are ``max_iter // round_iter`` rounds at most, so at most
    ``max_iter`` FISTA iterations in all. It stops once the exact gap is at most
    ``tol``·yy. ``Gw0`` is the exact Gw₀. Returns (w, Gw, gap, n_iter, converged,
    trace), the trace (max_iter,) holding each round's model objectives one after another.
    """
    round_iter = min(int(round_iter), int(max_iter))
    max_rounds = int(max_iter) // round_iter
    b, yy = prob.b, prob.yy
    scale = jnp.maximum(yy, jnp.finfo(b.dtype).tiny)

    def exact_gap(w, Gw):
        return _lasso_gap(w, Gw, b, yy, alpha)[0] / scale

    def cond(c):
        w, Gw, gap, n_iter, rounds, trace = c
        return (rounds < max_rounds) & ~(gap <= tol)

    def body(c):
        w_a, Gw_a, gap_a, n_iter, rounds, trace = c

        round_tol = jnp.maximum(tol, _ROUND_REDUCTION * gap_a)
        res, _, _ = _lasso_solve("model", (Gw_a, w_a, G32), prob, alpha, w_a, tol=round_tol,
                                 max_iter=round_iter, adjoint=Direct())
        w = res.state.x[0]
        Gw = exact_mv(w)
        # rounds start at n_iter ≤ (max_rounds − 1)·round_iter: the slice always fits
        trace = lax.dynamic_update_slice(trace, res.trace.astype(trace.dtype), (n_iter,))
        return w, Gw, exact_gap(w, Gw), n_iter + res.n_iter, rounds + 1, trace

    trace0 = jnp.full((int(max_iter),), jnp.nan, b.dtype)
    w, Gw, gap, n_iter, _, trace = lax.while_loop(
        cond, body, (w0, Gw0, exact_gap(w0, Gw0), jnp.int32(0), jnp.int32(0), trace0))
    return w, Gw, gap * scale, n_iter, gap <= tol, trace


@checks_on_outputs
def lasso(X, y, alpha, *, tol=1e-4, max_iter: int = 5000, w0=None,
          adjoint: Adjoint | None = None) -> LassoResult:
    r"""Lasso min_w 1/(2n)‖y - Xw‖² + α‖w‖₁ by FISTA (scikit-learn's
    ``Lasso(fit_intercept=False)``).

    FISTA with adaptive restart in Gram form (G = Xᵀ X/n formed once when
    n ≥ d, otherwise products with X), step 1/L with L from
    power iteration (guarded: doubled whenever the quadratic upper bound fails). Stops, like
    scikit-learn, when the duality gap (dual point = scaled residual) is at most
    ``tol``·‖y‖²/n; the gap certifies the objective is within that of the optimum.

    Args:
        X: (n, d) design. y: (n,) targets. alpha: () penalty ``>= 0`` (traced: vmap over it).
        tol: relative duality-gap tolerance (scikit-learn's ``tol``, default ``1e-4``).
        max_iter: static bound on iterations. w0: (d,) warm start (default zeros).
        adjoint: ``None``/``Implicit()`` (default): ``w`` carries the implicit derivative
            of the ISTA fixed point w = S_{tα}(w − t(Gw − b)) with respect to X, y and
            ``alpha`` (``jax.grad``/``jvp``/``vmap``/``jit``, memory flat in ``max_iter``;
            NaN when the fit did not converge; the support is locally constant, so the
            derivative is that of the active branch, and does not exist where a
            coefficient is exactly at the threshold). ``Direct()``: plain loop (forward
            mode only); ``Unrolled()``: reverse mode through the iterations.

    Returns:
        :class:`LassoResult`.
    """
    X, y = _data(X, y)
    alpha = _nonneg_scalar(alpha, "alpha", X.dtype)
    max_iter, tol = check_loop_options(max_iter, tol)
    w0 = jnp.zeros(X.shape[1], X.dtype) if w0 is None else check_vector(w0, "w0", dtype=X.dtype)
    if w0.shape != (X.shape[1],):
        raise ValueError(f"w0 must have shape ({X.shape[1]},), got {w0.shape}")
    return _lasso(X, y, alpha, w0, _tol(tol, X.dtype), max_iter=max_iter, adjoint=adjoint)


@partial(jax.jit, static_argnames=("max_iter", "adjoint"))
def _lasso(X, y, alpha, w0, tol, *, max_iter, adjoint) -> LassoResult:
    kind, op, prob = _lasso_setup(X, y)
    res, gap, primal = _lasso_solve(kind, op, prob, alpha, w0, tol=tol, max_iter=max_iter,
                                    adjoint=adjoint)
    return LassoResult(res.state.x[0], primal, gap, res.n_iter, res.converged, res.trace)


@checks_on_outputs
def lasso_path(X, y, alphas, *, tol=1e-4, max_iter: int = 5000,
               warm_start: bool = True, warm_block: int = 16) -> LassoPathResult:
    r"""Lasso solutions for many penalties in one compiled call.

    The Gram matrix, Xᵀ y and the step size are computed once. With
    ``warm_start=True`` the alphas are visited from largest to smallest in a ``lax.scan``
    over blocks of ``warm_block`` consecutive alphas, the fits of a block vmapped together
    (matrix-matrix products) and all started from the previous block's last, smallest-alpha
    solution (``warm_block=1`` is scikit-learn's ``lasso_path`` order: each fit from the
    previous one); with ``warm_start=False`` all alphas are solved simultaneously from zero
    by ``vmap`` (best on accelerators). Each fit stops on the duality gap as in
    :func:`lasso`, so the coefficients do not depend on the mode beyond ``tol``.
    Large float64 problems (nd² ≥ 2³⁰, n ≥ d) run FISTA on float32
    products with the Gram matrix and refine each fit in rounds against the float64 one,
    the exact duality gap certifying the result (see ``_lasso_solve_refined``); ``n_iter``
    then counts FISTA iterations over all rounds.

    ``jax.grad`` of the coefficients with respect to X, y and ``alphas`` comes from the
    implicit function theorem at each fit, as in :func:`lasso` (not on the refined path,
    whose rounds run on traced data: there reverse mode raises).

    Args:
        X: (n, d) design. y: (n,) targets. alphas: (k,) penalties ``>= 0``, any order.
        tol, max_iter: per fit, as in :func:`lasso`. warm_start, warm_block: static, see above.

    Returns:
        :class:`LassoPathResult` with ``coefs`` (k, d) in the order of ``alphas`` (note:
        scikit-learn's ``lasso_path`` returns the transpose), ``n_iter``, ``converged`` (k,)
        and ``trace`` (k, max_iter).
    """
    X, y = _data(X, y)
    alphas = check_nonnegative(check_vector(alphas, "alphas", dtype=X.dtype), "alphas")
    max_iter, tol = check_loop_options(max_iter, tol)
    check_int_in_range(warm_block, "warm_block", 1, 10**9)
    return _lasso_path(X, y, alphas, _tol(tol, X.dtype), max_iter=max_iter,
                       warm_start=bool(warm_start), warm_block=int(warm_block),
                       refine=_refines(X))


@partial(jax.jit, static_argnames=("max_iter", "warm_start", "warm_block", "refine"))
def _lasso_path(X, y, alphas, tol, *, max_iter, warm_start, warm_block,
                refine) -> LassoPathResult:
    d = X.shape[1]
    zeros = jnp.zeros(d, X.dtype)
    if refine:   # float32 model products, refined against exact ones (G w carried)
        n = X.shape[0]
        G32 = (blocked_gram(X, compute_dtype=jnp.float32)
               / n).astype(jnp.float32)

        def exact_mv(v):   # this orientation batches into the fastest GEMMs under vmap
            return (v @ X.T) @ X / n

        _, _, prob = _lasso_setup(X, y, "f32", G32)

        def solve(alpha, start):
            w, Gw, gap, n_iter, conv, trace = _lasso_solve_refined(
                exact_mv, prob, G32, alpha, *start, tol=tol, max_iter=max_iter)
            return (w, Gw), (w, gap, n_iter, conv, trace)
    else:
        kind, op, prob = _lasso_setup(X, y)

        def solve(alpha, start):
            res, gap, _ = _lasso_solve(kind, op, prob, alpha, start[0], tol=tol,
                                       max_iter=max_iter)
            w, Gw = res.state.x
            return (w, Gw), (w, gap, res.n_iter, res.converged, res.trace)

    if not warm_start:
        return LassoPathResult(*jax.vmap(lambda a: solve(a, (zeros, zeros))[1])(alphas))

    # largest alpha first, in blocks of `block` fits vmapped together (matrix-matrix
    # products), each block started from the previous block's last (smallest-alpha) fit
    k = alphas.shape[0]
    block = min(int(warm_block), k)
    n_blocks = -(-k // block)
    order = jnp.argsort(-alphas)
    padded = jnp.concatenate([order, jnp.full((n_blocks * block - k,), order[-1])])

    def one_block(start, idx):
        ends, out = jax.vmap(solve, (0, None))(alphas[idx], start)
        return jax.tree_util.tree_map(lambda a: a[-1], ends), out

    _, out = lax.scan(one_block, (zeros, zeros), padded.reshape(n_blocks, block))
    out = jax.tree_util.tree_map(lambda a: a.reshape((n_blocks * block,) + a.shape[2:])[:k], out)
    inv = jnp.argsort(order)
    return LassoPathResult(*(a[inv] for a in out))


# ----------------------------------------------------------------------------- surface
def loss_surface(X, y, w1, w2) -> jax.Array:
    r"""The loss J(w) = ½‖y - Xw‖² of a two-weight model over a grid.

    Evaluated in Gram form, J = ½(yᵀ y - 2 bᵀ w + wᵀ G w), so the
    grid costs O(n + grid) after one pass over the data.

    Args:
        X: (n, 2) design (two features). y: (n,) targets.
        w1: (a,) values of the first weight. w2: (c,) values of the second weight.

    Returns:
        (c, a) ``J[i, j] = J((w1[j], w2[i]))`` — ``meshgrid`` ("xy") layout, ready for
        ``plt.contour(w1, w2, J)``.
    """
    X, y = _data(X, y)
    if X.shape[1] != 2:
        raise ValueError(f"X must have exactly 2 columns for a two-weight surface, got {X.shape[1]}")
    w1 = as_float_array(w1, "w1", ndim=1, dtype=X.dtype)
    w2 = as_float_array(w2, "w2", ndim=1, dtype=X.dtype)
    return _loss_surface(X, y, w1, w2)


@jax.jit
def _loss_surface(X, y, w1, w2):
    G = X.T @ X
    b = y @ X
    A, B = jnp.meshgrid(w1, w2)
    quad = G[0, 0] * A * A + 2 * G[0, 1] * A * B + G[1, 1] * B * B
    return 0.5 * (jnp.dot(y, y) - 2 * (b[0] * A + b[1] * B) + quad)
