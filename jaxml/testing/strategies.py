r"""Hypothesis strategies for the inputs jaxml's algorithms meet (requires ``hypothesis``).

Every strategy draws NumPy arrays of the requested dtype (pass them to JAX as they are),
built so that the promised property holds by construction, and shrinks toward simple cases
(identity-like matrices, uniform points, sorted labels):

- :func:`matrices`: (…, n, d) arrays with condition number κ = σ_max/σ_min ≤ ``max_condition``
  (A = U·diag(σ)·Vᵀ with orthogonal U, V from Householder QR of drawn entries and
  σ ∈ [scale/max_condition, scale]);
- :func:`spd_matrices`: (…, n, n) symmetric positive-definite matrices Q·diag(λ)·Qᵀ with
  eigenvalues in [scale/max_condition, scale], exactly symmetric;
- :func:`simplex_points`: (…, n) points with xᵢ ≥ 0 and Σxᵢ = 1 (vertices and faces
  included unless ``interior=True``);
- :func:`labels`: (n_samples,) integer labels in 0..n_classes−1 with every class present;
- :func:`degenerate_data`: (n, d) data with duplicated and constant columns, and which
  columns they are.

Sizes may be ints or strategies of ints (``labels(st.integers(5, 30), 3)``).

    from hypothesis import given
    from jaxml.testing import strategies as jst

    @given(jst.spd_matrices(4, max_condition=1e3))
    def test_cholesky_solve(A): ...
"""

from typing import NamedTuple

import numpy as np

try:
    from hypothesis import assume
    from hypothesis import strategies as st
    from hypothesis.extra import numpy as hnp
except ImportError as e:  # pragma: no cover - exercised only without the test extra
    raise ImportError("jaxml.testing.strategies needs hypothesis: pip install hypothesis "
                      "(the rest of jaxml.testing works without it)") from e

__all__ = ["DegenerateData", "matrices", "spd_matrices", "simplex_points", "labels",
           "degenerate_data"]


def _size(draw, value, name: str, low: int = 1) -> int:
    v = draw(value) if isinstance(value, st.SearchStrategy) else value
    if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < low:
        raise ValueError(f"{name} must be an int ≥ {low} (or a strategy of them), got {v!r}")
    return int(v)


def _check_condition(max_condition) -> float:
    c = float(max_condition)
    if not (np.isfinite(c) and c >= 1.0):
        raise ValueError(f"max_condition must be a finite number ≥ 1, got {max_condition!r}")
    return c


def _check_float_dtype(dtype) -> np.dtype:
    dt = np.dtype(dtype)
    if dt.kind != "f":
        raise TypeError(f"dtype must be a floating dtype, got {dt}")
    return dt


def _orthogonal(draw, n: int) -> np.ndarray:
    """An (n, n) orthogonal matrix: Q of the Householder QR of drawn entries (orthogonal for
    any entries, the identity when they shrink to zero)."""
    raw = draw(hnp.arrays(np.float64, (n, n),
                          elements=st.floats(-1, 1, allow_nan=False, allow_subnormal=False)))
    q, r = np.linalg.qr(raw)
    return q * np.where(np.diag(r) < 0, -1.0, 1.0)


def _spectrum(draw, k: int, max_condition: float, dtype) -> np.ndarray:
    """k values in [1/κ', 1], κ' = κ shrunk by the rounding margin of ``dtype``, largest 1."""
    eps = float(np.finfo(dtype).eps)
    kappa = max(1.0, max_condition * (1 - 64 * eps * max_condition * k))
    u = draw(hnp.arrays(np.float64, (k,), elements=st.floats(0, 1, allow_subnormal=False)))
    s = kappa ** (-u)
    s[0] = 1.0
    return s


def _cond(a: np.ndarray) -> np.ndarray:
    return np.linalg.cond(np.asarray(a, np.float64))


@st.composite
def matrices(draw, shape, *, dtype=np.float64, max_condition: float = 100.0,
             scale: float = 1.0) -> np.ndarray:
    """Arrays of shape (…, n, d) whose every matrix has condition number ≤ ``max_condition``.

    Args:
        shape: (…, n, d), ints or strategies of ints (at least 2 dimensions).
        dtype: a floating dtype (float64, float32).
        max_condition: κ bound (≥ 1); keep it below ~1/(10·√ε·n) in float32.
        scale: the largest singular value.

    Returns:
        an ndarray of ``dtype``; np.linalg.cond of each (…) matrix ≤ max_condition.
    """
    dt = _check_float_dtype(dtype)
    kappa = _check_condition(max_condition)
    dims = [_size(draw, s, "shape entries") for s in shape]
    if len(dims) < 2:
        raise ValueError(f"shape must have at least 2 dimensions, got {tuple(shape)}")
    *batch, n, d = dims
    k = min(n, d)
    out = np.empty(tuple(batch) + (n, d), dt)
    for idx in np.ndindex(*batch):
        u, v = _orthogonal(draw, n), _orthogonal(draw, d)
        s = _spectrum(draw, k, kappa, dt)
        a = (u[:, :k] * (scale * s)) @ v[:, :k].T
        out[idx] = a.astype(dt)
        assume(_cond(out[idx]) <= kappa)      # a safety net: the margin makes this hold
    return out


@st.composite
def spd_matrices(draw, n, *, batch_shape=(), dtype=np.float64, max_condition: float = 100.0,
                 scale: float = 1.0) -> np.ndarray:
    """Symmetric positive-definite (…, n, n) matrices with eigenvalues in
    [scale/max_condition, scale].

    Args:
        n: the order, int or strategy of ints.
        batch_shape: leading dimensions (ints or strategies).
        dtype: a floating dtype.
        max_condition: bound on λ_max/λ_min (≥ 1).
        scale: the largest eigenvalue.

    Returns:
        an ndarray of ``dtype``, exactly symmetric; Cholesky succeeds on each matrix.
    """
    dt = _check_float_dtype(dtype)
    kappa = _check_condition(max_condition)
    n = _size(draw, n, "n")
    batch = [_size(draw, b, "batch_shape entries") for b in batch_shape]
    out = np.empty(tuple(batch) + (n, n), dt)
    for idx in np.ndindex(*batch):
        q = _orthogonal(draw, n)
        lam = scale * _spectrum(draw, n, kappa, dt)
        a = (q * lam) @ q.T
        a = ((a + a.T) / 2).astype(dt)
        out[idx] = np.triu(a) + np.triu(a, 1).T       # exactly symmetric after rounding
        w = np.linalg.eigvalsh(np.asarray(out[idx], np.float64))
        assume(w[0] > 0 and w[-1] <= kappa * w[0])
    return out


@st.composite
def simplex_points(draw, n, *, batch_shape=(), dtype=np.float64,
                   interior: bool = False) -> np.ndarray:
    """Points of the probability simplex {x ∈ ℝⁿ : xᵢ ≥ 0, Σxᵢ = 1}.

    Args:
        n: the dimension, int or strategy of ints.
        batch_shape: leading dimensions.
        dtype: a floating dtype.
        interior: ``True``: every xᵢ > 0 (for logs); ``False``: vertices and faces too.

    Returns:
        (…, n) ndarray of ``dtype``, entries ≥ 0 (> 0 when interior), each row summing to 1
        within n·ε.
    """
    dt = _check_float_dtype(dtype)
    n = _size(draw, n, "n")
    batch = tuple(_size(draw, b, "batch_shape entries") for b in batch_shape)
    low = 1e-3 if interior else 0.0
    w = draw(hnp.arrays(np.float64, batch + (n,),
                        elements=st.floats(low, 1.0, allow_subnormal=False)))
    w = np.where(w.sum(-1, keepdims=True) > 0, w, 1.0)       # all zero: the barycentre
    x = (w / w.sum(-1, keepdims=True)).astype(dt)
    # one correction so the row sums to 1 in dtype: move the rounding into the largest entry
    j = np.argmax(x, axis=-1)[..., None]
    rest = x.sum(-1, keepdims=True, dtype=np.float64) - np.take_along_axis(x, j, -1)
    np.put_along_axis(x, j, (1.0 - rest).astype(dt), -1)
    return x


@st.composite
def labels(draw, n_samples, n_classes, *, dtype=np.int32) -> np.ndarray:
    """Integer labels in 0..n_classes−1 where every class appears at least once.

    Args:
        n_samples: int or strategy of ints, ≥ n_classes.
        n_classes: int or strategy of ints, ≥ 1.
        dtype: an integer dtype.

    Returns:
        (n_samples,) ndarray of ``dtype``.
    """
    k = _size(draw, n_classes, "n_classes")
    n = _size(draw, n_samples, "n_samples", low=k)
    rest = draw(hnp.arrays(np.int64, (n - k,), elements=st.integers(0, k - 1)))
    y = np.concatenate([np.arange(k), rest])
    perm = draw(st.permutations(range(n)))
    return y[np.asarray(perm, int)].astype(dtype)


class DegenerateData(NamedTuple):
    """What :func:`degenerate_data` draws.

    Attributes:
        X: (n, d) the data.
        constant: indices of the constant columns.
        duplicates: (column, copy_of) pairs: ``X[:, column] == X[:, copy_of]``.
    """

    X: np.ndarray
    constant: tuple
    duplicates: tuple


@st.composite
def degenerate_data(draw, n_samples, n_features, *, n_constant=1, n_duplicated=1,
                    dtype=np.float64, max_abs: float = 10.0) -> DegenerateData:
    """Data with constant and duplicated columns (rank-deficient XᵀX, zero variances).

    Args:
        n_samples: rows (int or strategy), ≥ 2.
        n_features: columns (int or strategy), ≥ n_constant + n_duplicated + 1.
        n_constant: how many columns are constant (int or strategy).
        n_duplicated: how many columns copy another, non-constant column (int or strategy).
        dtype: a floating dtype.
        max_abs: bound on the entries.

    Returns:
        :class:`DegenerateData` ``(X, constant, duplicates)``.
    """
    dt = _check_float_dtype(dtype)
    n = _size(draw, n_samples, "n_samples", low=2)
    n_const = _size(draw, n_constant, "n_constant", low=0)
    n_dup = _size(draw, n_duplicated, "n_duplicated", low=0)
    d = _size(draw, n_features, "n_features", low=n_const + n_dup + 1)
    elems = st.floats(-max_abs, max_abs, allow_nan=False, allow_subnormal=False, width=64)
    X = draw(hnp.arrays(np.float64, (n, d), elements=elems)).astype(dt)
    order = np.asarray(draw(st.permutations(range(d))), int)
    const_cols = tuple(sorted(int(c) for c in order[:n_const]))
    dup_cols = [int(c) for c in order[n_const:n_const + n_dup]]
    free = [int(c) for c in order[n_const + n_dup:]]
    for c in const_cols:
        X[:, c] = dt.type(draw(elems))
    pairs = []
    for c in dup_cols:
        src = free[draw(st.integers(0, len(free) - 1))]
        X[:, c] = X[:, src]
        pairs.append((c, src))
    return DegenerateData(X, const_cols, tuple(sorted(pairs)))
