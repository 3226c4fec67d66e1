"""Input checks at the Python boundary: clear errors naming the argument.

Shape checks always run (shapes are static, even under ``jit``/``vmap``). Value checks
(finiteness, signs, label sets) run only on concrete arrays: inside a trace the values are
unknown, and numerical trouble is handled by the algorithm instead.
"""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np


def is_concrete(x) -> bool:
    """True when ``x`` holds values now (not a tracer inside ``jit``/``vmap``/``grad``)."""
    return not isinstance(x, jax.core.Tracer)


def float_dtype(*arrays):
    """The floating dtype the result should have: that of the inputs, ints promoted."""
    dt = jnp.result_type(*arrays)
    if not jnp.issubdtype(dt, jnp.floating):
        dt = jnp.result_type(float)
    return dt


def as_float_array(x, name: str, *, ndim: int | Sequence[int] | None = None, dtype=None,
                   finite: bool = True) -> jax.Array:
    """``x`` as a floating JAX array of the given rank, finite if concrete.

    Raises:
        TypeError: ``x`` is not array-like or not numeric.
        ValueError: wrong rank, or NaN/inf in ``x``.
    """
    try:
        arr = jnp.asarray(x)
    except TypeError as e:
        raise TypeError(f"{name} must be array-like, got {type(x).__name__}") from e
    if not (jnp.issubdtype(arr.dtype, jnp.number) or arr.dtype == jnp.bool_):
        raise TypeError(f"{name} must be numeric, got dtype {arr.dtype}")
    arr = arr.astype(dtype if dtype is not None else float_dtype(arr))
    check_ndim(arr, name, ndim)
    if finite:
        check_finite(arr, name)
    return arr


def check_ndim(x, name: str, ndim: int | Sequence[int] | None) -> None:
    if ndim is None:
        return
    allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
    if jnp.ndim(x) not in allowed:
        want = " or ".join(str(a) for a in allowed)
        raise ValueError(f"{name} must have {want} dimension(s), got shape {jnp.shape(x)}")


def check_finite(x, name: str) -> None:
    """Raise if a concrete ``x`` holds NaN or inf (tested in NumPy, so it also works on a
    concrete array closed over by a function being traced)."""
    if is_concrete(x) and not np.all(np.isfinite(np.asarray(x))):
        raise ValueError(f"{name} contains NaN or inf")


def check_matrix(X, name: str = "X", *, dtype=None) -> jax.Array:
    """A finite (n, d) floating array."""
    return as_float_array(X, name, ndim=2, dtype=dtype)


def check_vector(x, name: str, *, dtype=None) -> jax.Array:
    """A finite (n,) floating array."""
    return as_float_array(x, name, ndim=1, dtype=dtype)


def check_same_length(a, a_name: str, b, b_name: str) -> None:
    if jnp.shape(a)[0] != jnp.shape(b)[0]:
        raise ValueError(
            f"{a_name} and {b_name} must have the same number of rows, "
            f"got {jnp.shape(a)[0]} and {jnp.shape(b)[0]}")


def check_nonnegative(x, name: str) -> None:
    """Raise unless every (concrete) entry of ``x`` is >= 0 and not NaN."""
    if is_concrete(x):
        v = np.asarray(x)
        if np.any(np.isnan(v)) or np.any(v < 0):
            raise ValueError(f"{name} must be non-negative, got {x}")


def check_positive(x, name: str) -> None:
    """Raise unless every (concrete) entry of ``x`` is > 0."""
    if is_concrete(x):
        v = np.asarray(x)
        if np.any(np.isnan(v)) or np.any(v <= 0):
            raise ValueError(f"{name} must be positive, got {x}")


def check_int_in_range(x, name: str, low: int, high: int) -> None:
    """Raise unless ``low <= x <= high`` for a Python/static integer."""
    if not isinstance(x, (int, np.integer)) or isinstance(x, bool):
        raise TypeError(f"{name} must be an int, got {type(x).__name__}")
    if not low <= x <= high:
        raise ValueError(f"{name} must be in [{low}, {high}], got {x}")


def check_labels(y, name: str, allowed) -> jax.Array:
    """Raise unless every (concrete) label of ``y`` lies in ``allowed``."""
    y = jnp.asarray(y)
    check_ndim(y, name, 1)
    if is_concrete(y):
        bad = ~np.isin(np.asarray(y), np.asarray(allowed))
        if np.any(bad):
            raise ValueError(
                f"{name} must take values in {list(np.asarray(allowed).tolist())}, "
                f"got {np.unique(np.asarray(y)[bad]).tolist()[:5]}")
    return y


def check_class_labels(y, name: str, n_classes: int) -> jax.Array:
    """Integer class labels in ``0..n_classes-1``."""
    y = jnp.asarray(y)
    check_ndim(y, name, 1)
    if not jnp.issubdtype(y.dtype, jnp.integer):
        if is_concrete(y) and np.all(np.asarray(y) == np.round(np.asarray(y))):
            y = y.astype(jnp.int32)
        else:
            raise TypeError(f"{name} must hold integer class labels, got dtype {y.dtype}")
    if is_concrete(y):
        v = np.asarray(y)
        if v.size and (v.min() < 0 or v.max() >= n_classes):
            raise ValueError(f"{name} must lie in 0..{n_classes - 1}, got range [{v.min()}, {v.max()}]")
    return y


def check_loop_options(max_iter, tol, *, allow_zero_tol: bool = True) -> tuple[int, object]:
    """The shared loop's options: ``max_iter`` a positive integer (NumPy integers accepted),
    ``tol`` a finite number ≥ 0 (> 0 with ``allow_zero_tol=False``). Returns
    ``(int(max_iter), tol)``."""
    check_int_in_range(max_iter, "max_iter", 1, 2**31 - 1)
    if is_concrete(tol):
        v = np.asarray(tol)
        if v.dtype.kind not in "biuf" or v.ndim != 0:
            raise TypeError(f"tol must be a real number, got {tol!r}")
        if not np.isfinite(v) or v < 0 or (v == 0 and not allow_zero_tol):
            want = "non-negative" if allow_zero_tol else "positive"
            raise ValueError(f"tol must be a finite {want} number, got {tol!r}")
    return int(max_iter), tol
