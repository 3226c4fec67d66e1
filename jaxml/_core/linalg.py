"""Small linear-algebra helpers shared by the chapters."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax
from jax.scipy.linalg import cho_solve, solve_triangular

from jaxml._core.fold import fold_rows


def symmetrize(A: jax.Array) -> jax.Array:
    """(A + Aᵀ)/2 over the last two axes."""
    return 0.5 * (A + jnp.swapaxes(A, -1, -2))


def add_jitter(A: jax.Array, jitter) -> jax.Array:
    """A + jitter·I over the last two axes."""
    return A + jitter * jnp.eye(A.shape[-1], dtype=A.dtype)


def safe_cholesky(A: jax.Array, jitter=0.0) -> jax.Array:
    """Lower Cholesky factor of the symmetrized ``A + jitter·I``."""
    return jnp.linalg.cholesky(add_jitter(symmetrize(A), jitter))


def cholesky_solve(L: jax.Array, B: jax.Array) -> jax.Array:
    """Solve (L Lᵀ) X = B given the lower factor L (n, n); B is (n,) or (n, m)."""
    return cho_solve((L, True), B)


def logdet_from_cholesky(L: jax.Array) -> jax.Array:
    """log det(L Lᵀ) = 2 Σ log Lᵢᵢ, over the last two axes."""
    return 2.0 * jnp.sum(jnp.log(jnp.diagonal(L, axis1=-2, axis2=-1)), axis=-1)


def whiten(L: jax.Array, x: jax.Array) -> jax.Array:
    """L⁻¹ x for lower-triangular L (n, n) and x (n,) or (n, m)."""
    return solve_triangular(L, x, lower=True)


def psd_solve(A: jax.Array, B: jax.Array, jitter=0.0) -> jax.Array:
    """Solve (A + jitter·I) X = B for symmetric positive (semi)definite A by Cholesky."""
    return cholesky_solve(safe_cholesky(A, jitter), B)


def eps(dtype) -> jax.Array:
    """Machine epsilon of ``dtype``."""
    return jnp.finfo(dtype).eps


def _strip_edges(d: int, compute_dtype) -> tuple[int, ...]:
    """Column edges of the upper block strips a block's Gram is multiplied in (static).

    Float32 products with d ≥ 256 take 4 strips Z[:, a:b]ᵀ Z[:, a:]: 62.5% of the flops
    of ZᵀZ (the blocks below the diagonal are mirrored, never multiplied), and faster on
    XLA:CPU (measured, 2 cores, min of 8 interleaved: 100 000 × 256 float32, 74 vs 103 ms;
    100 000 × 500 cast to float32, 243 vs 284 ms; 5000 × 1000, 44 vs 57 ms; blocks of
    1024 rows). Float64 products and narrower matrices gained nothing (within noise at
    d = 128 and 256, slower at d = 64) and stay one product.
    """
    parts = 4 if (jnp.dtype(compute_dtype) == jnp.float32 and d >= 256) else 1
    return tuple(round(i * d / parts) for i in range(parts + 1))


def _block_product(Z, compute_dtype, out_dtype):
    """The upper block strips (Z[:, a:b]ᵀ Z[:, a:] for consecutive ``_strip_edges``) of
    ZᵀZ for one cached block Z (b, d), cast to ``compute_dtype`` for the products and
    returned in ``out_dtype`` (a tuple; :func:`_from_strips` assembles them). A single
    float64 product is multiplied as (d, b)·(b, d) from a transposed copy, which XLA:CPU's
    float64 GEMM runs ~1.5× faster than ``Z.T @ Z``."""
    hi = lax.Precision.HIGHEST
    Z = Z.astype(compute_dtype)
    e = _strip_edges(Z.shape[1], compute_dtype)
    if len(e) == 2 and compute_dtype == jnp.float64:
        Zt = lax.optimization_barrier(Z.T)
        return (jnp.matmul(Zt, Zt.T, precision=hi).astype(out_dtype),)
    return tuple(jnp.matmul(Z[:, a:b].T, Z[:, a:], precision=hi).astype(out_dtype)
                 for a, b in zip(e, e[1:]))


def _from_strips(strips: tuple, compute_dtype) -> jax.Array:
    """The exactly symmetric (d, d) matrix whose upper block strips are ``strips``: the
    diagonal blocks symmetrized, the blocks below them the transposes of those above."""
    d = strips[0].shape[1]
    e = _strip_edges(d, compute_dtype)
    rows = []
    for i, (a, b) in enumerate(zip(e, e[1:])):
        below = [strips[j][:, a - e[j]:b - e[j]].T for j in range(i)]
        rows.append(jnp.concatenate(below + [symmetrize(strips[i][:, :b - a]),
                                             strips[i][:, b - a:]], axis=1))
    return rows[0] if len(rows) == 1 else jnp.concatenate(rows, axis=0)


def _gram_block(compute_dtype, block, d: int) -> tuple:
    """(compute dtype, rows per block): by default 1024 for float64 products and for
    strips, 4096 for a single float32 product (the fastest measured on XLA:CPU)."""
    compute_dtype = jnp.dtype(compute_dtype)
    if block is None:
        one = len(_strip_edges(d, compute_dtype)) == 2
        block = 4096 if (one and compute_dtype != jnp.float64) else 1024
    return compute_dtype, block


def blocked_gram(X: jax.Array, *, center=None, compute_dtype=None, block=None) -> jax.Array:
    """(X − 1cᵀ)ᵀ(X − 1cᵀ) (d, d) for X (n, d), summed over blocks of ``block`` rows
    (default: see ``_gram_block``, the fastest measured on XLA:CPU).

    Each block is centred (by ``center`` (d,), if given) and cast to ``compute_dtype``
    (default X's) while in cache, so neither a centred nor a cast copy of X is ever
    written; the blocks' products are summed in X's dtype (float32 products summed in
    float64 carry only one block's rounding). Float64 blocks are multiplied as
    (d, b)·(b, d) from a transposed copy of the block, which XLA:CPU's float64 GEMM ran
    ~1.5× faster than ``X.T @ X`` when measured first (0.44 s vs 0.84 s at 100 000 × 500,
    0.14 s vs 0.24 s at 100 000 × 256, blocks of 1024 rows; with jax 0.10.2 on the loaded
    2-core CPU the two and a ``scan`` over (b, d) blocks were within 15% of each other in
    process CPU time; an ``einsum('bni,bnj->ij')`` over a reshaped X was ~1.4× slower).
    Wide float32 products skip the blocks below the diagonal (``_strip_edges``).
    Exactly symmetric. Precision is
    ``HIGHEST`` (no TF32 on GPUs).
    """
    compute_dtype, block = _gram_block(X.dtype if compute_dtype is None else compute_dtype,
                                       block, X.shape[1])

    def product(rows, mask):
        Z = rows if center is None else rows - center
        Z = jnp.where(mask[:, None], Z, 0)                    # rows seen before: 0
        return _block_product(Z, compute_dtype, X.dtype)

    return _from_strips(fold_rows(product, X, block=block), compute_dtype)


def shifted_scatter(X: jax.Array, *, block=None, compute_dtype=None,
                    with_trace: bool = False) -> tuple[jax.Array, ...]:
    r"""Mean x̄ (d,) and centred scatter Σᵢ(xᵢ − x̄)(xᵢ − x̄)ᵀ (d, d) of X (n, d) in ONE pass.

    The rows are shifted by s, the mean of ≤ 1024 rows taken at an even stride through X
    (not by x̄, which would cost a pass of its own); each block of ``block`` rows (default
    as :func:`blocked_gram`) is shifted in cache and folded into Σ(x − s) and
    Σ(x − s)(x − s)ᵀ. Then, with δ = x̄ − s = Σ(x − s)/n,

        Σ(x − x̄)(x − x̄)ᵀ = Σ(x − s)(x − s)ᵀ − n δδᵀ.

    s is a mean of m evenly spaced rows, so n‖δ‖² ≤ (n/m)·Σ‖x − x̄‖² and the subtraction
    loses at most log₁₀(n/m) digits of the total scatter (for rows in random order, n‖δ‖²
    is about the total scatter/m: nothing is lost); scikit-learn's ``XᵀX − n x̄x̄ᵀ`` loses
    log₁₀(1 + ‖x̄‖²/variance). Exactly symmetric; differentiable (s is a constant of the
    formula: its gradient is stopped).

    ``compute_dtype`` (default X's) is the products' dtype, as in :func:`blocked_gram`
    (float32 products of float64 rows: the blocks are cast in cache, summed in float64).
    ``with_trace=True`` also returns the total scatter Σ‖x − x̄‖² = Σ‖x − s‖² − n‖δ‖²,
    summed in X's dtype in the same pass (exact where the products are float32).
    """
    n = X.shape[0]
    compute_dtype, block = _gram_block(X.dtype if compute_dtype is None else compute_dtype,
                                       block, X.shape[1])
    stride = max(1, n // 1024)
    shift = lax.stop_gradient(jnp.mean(X[::stride][:1024], axis=0))

    def moments(rows, mask):
        Z = jnp.where(mask[:, None], rows - shift, 0)
        squares = jnp.sum(Z * Z) if with_trace else jnp.zeros((), X.dtype)
        return jnp.sum(Z, axis=0), squares, _block_product(Z, compute_dtype, X.dtype)

    sums, squares, G = fold_rows(moments, X, block=block)
    delta = sums / n
    scatter = _from_strips(G, compute_dtype) - n * jnp.outer(delta, delta)
    if with_trace:
        return shift + delta, scatter, squares - n * jnp.dot(delta, delta)
    return shift + delta, scatter


def max_eigenvalue(matvec, d: int, dtype, *, n_iter: int = 60) -> jax.Array:
    """λ_max of a symmetric PSD operator ``matvec`` on ℝᵈ by ``n_iter`` power iterations.

    A lower estimate (the Rayleigh quotient of the last iterate); solvers that use it as a
    Lipschitz constant scale it up and guard the step (backtracking or doubling).
    """
    v0 = jnp.ones((d,), dtype) + jnp.linspace(0.0, 1.0, d, dtype=dtype)
    tiny = jnp.finfo(dtype).tiny

    def body(_, v):
        u = matvec(v)
        return u / jnp.maximum(jnp.linalg.norm(u), tiny)

    v = lax.fori_loop(0, n_iter, body, v0 / jnp.linalg.norm(v0))
    return jnp.dot(v, matvec(v))


# From n·d² = 2³⁰ multiply-adds, a float64 fit that forms XᵀX (n ≥ d) pays for forming it
# from float32 products and refining the float64 answer (linear.ridge, linear.lasso_path,
# pca.fit): XLA:CPU's float32 GEMM is several times faster than its float64 one.
MIXED_PRECISION_MIN_WORK = 2 ** 30


def mixed_precision_pays(X) -> bool:
    """Whether X (n, d) is float64 with n ≥ d and n·d² ≥ 2³⁰: large enough that a Gram
    matrix from float32 products plus float64 refinement beats the float64 product.

    Static: reads only ``X.shape`` and ``X.dtype``.
    """
    n, d = X.shape
    return jnp.dtype(X.dtype) == jnp.float64 and n >= d and n * d * d >= MIXED_PRECISION_MIN_WORK


def refine_top_eigenpairs(matvec, W: jax.Array, mu: jax.Array, k: int, *, max_iter: int = 4):
    r"""The k largest eigenpairs of a symmetric operator A, refined in A's precision from an
    approximate eigendecomposition A ≈ W diag(μ) Wᵀ (e.g. of a float32 copy of A), and certified.

    ``matvec`` maps V (d, k) to A V (d, k) in the working precision (float64): the one
    exact application of A per round. Each round runs Rayleigh–Ritz on span V
    (Vᵀ A V = Q Θ Qᵀ, V ← V Q) and forms the residuals R = A V − V Θ. The pairs are
    certified when every ‖rᵢ‖ ≤ d ε ‖A‖ (ε of the working dtype, ‖A‖ ≥ maxᵢ |θᵢ|): the
    backward error of a dense ``eigh`` in the same dtype, so |θᵢ − λᵢ| ≤ ‖rᵢ‖²/gapᵢ and the
    angle between vᵢ and its exact eigenvector is ≤ ‖rᵢ‖/gapᵢ (Davis–Kahan), the same
    answer as ``eigh`` of A. Otherwise every vᵢ takes one step on the correction equation
    (A − θᵢ I) δᵢ = −rᵢ outside span V, preconditioned by the approximate spectrum
    (the Jacobi–Davidson correction with A replaced by W diag(μ) Wᵀ):

        vᵢ ← vᵢ − Σ_{j > k} wⱼ (wⱼᵀ rᵢ) / (μⱼ − θᵢ),

    then V is re-orthonormalised (QR). With E = A − W diag(μ) Wᵀ the error contracts by
    about ‖E‖ / (θ_k − μ_{k+1}) per round (≈ 1e-6 for a float32 copy and a gap of 1% of
    ‖A‖: from float32 accuracy to the certificate in two corrections). The rounds stop at
    the certificate, after ``max_iter`` applications of A, when the largest residual has
    not shrunk tenfold in a round (a gap at k too small for the approximation), or at a
    non-finite residual; ``certified`` then is False and the caller falls back to a dense
    float64 eigendecomposition.

    Args:
        matvec: (d, k) → (d, k), V ↦ A V.
        W: (d, d) approximate eigenvectors, columns ordered by decreasing ``mu``, in the
            working dtype (cast a float32 decomposition up).
        mu: (d,) approximate eigenvalues, decreasing, in the working dtype.
        k: the number of pairs (static), k < d.
        max_iter: applications of A at most (static).

    Returns:
        (theta (k,) decreasing Ritz values, V (d, k) orthonormal Ritz vectors,
        residual (k,) ‖rᵢ‖, certified () bool).

    References: G. L. G. Sleijpen & H. A. van der Vorst, *A Jacobi–Davidson iteration
    method for linear eigenvalue problems*, SIAM J. Matrix Anal. Appl. 17 (1996);
    B. N. Parlett, *The Symmetric Eigenvalue Problem*, §11 (1998); T. Ogita & K. Aishima,
    *Iterative refinement for symmetric eigenvalue decomposition*, Japan J. Ind. Appl.
    Math. 35 (2018).
    """
    d = W.shape[0]
    V, P, mu_rest = W[:, :k], W[:, k:], mu[k:]
    dtype = V.dtype
    eps = jnp.finfo(dtype).eps
    hi = lax.Precision.HIGHEST

    def correct(V, theta, R):
        # one preconditioned correction of every Ritz vector, outside the top k of W
        floor = jnp.sqrt(eps) * jnp.max(jnp.abs(theta))            # no division by ~0
        gap = jnp.minimum(mu_rest[:, None] - theta[None, :], -floor)
        coef = jnp.matmul(P.T, R, precision=hi) / gap
        return jnp.linalg.qr(V - jnp.matmul(P, coef, precision=hi))[0]

    def round_(c):   # correct the last Ritz pairs (after the first round), apply A, Rayleigh–Ritz
        V, theta, res, _, t, _, R = c
        V = lax.cond(t > 0, lambda: correct(V, theta, R), lambda: V)
        Y = matvec(V)
        theta, Q = jnp.linalg.eigh(symmetrize(jnp.matmul(V.T, Y, precision=hi)))
        theta, Q = theta[::-1], Q[:, ::-1]
        V, Y = jnp.matmul(V, Q, precision=hi), jnp.matmul(Y, Q, precision=hi)
        R = Y - V * theta
        new = jnp.linalg.norm(R, axis=0)
        done = jnp.all(new <= d * eps * jnp.max(jnp.abs(theta)))
        return V, theta, new, jnp.max(res), t + 1, done, R

    def keep_going(c):
        _, _, res, prev, t, done, _ = c
        improving = jnp.max(res) <= 0.1 * prev          # (inf before the first two rounds)
        finite = (t == 0) | jnp.all(jnp.isfinite(res))
        return ~done & (t < max_iter) & improving & finite

    inf = jnp.asarray(jnp.inf, dtype)
    init = (V, mu[:k].astype(dtype), jnp.full((k,), inf), inf, 0, jnp.asarray(False),
            jnp.zeros_like(V))
    V, theta, res, _, _, done, _ = lax.while_loop(keep_going, round_, init)
    return theta, V, res, done & jnp.all(jnp.isfinite(res))
