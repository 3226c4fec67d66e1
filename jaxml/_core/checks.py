r"""Input checks: one mechanism, eager at the Python boundary and at run time under a trace.

Every check names the argument it rejects. Shapes and dtypes are static, so those checks
always run in Python. Value checks (finiteness, signs, ranges, label sets) run

* **eagerly** when the value is concrete: in NumPy, before any JAX operation (inside a
  ``jit`` trace even a concrete array turns into a tracer once a JAX operation touches it);
* **at run time** when the value is traced (the caller wrapped jaxml in ``jit``, ``vmap``,
  ``grad``): through ``equinox.error_if``, which raises from the compiled program with the
  same message (an ``EquinoxRuntimeError``, a ``RuntimeError``), under ``vmap`` too.

Run-time checks cost a reduction and a branch per checked value; switch them off for speed
with ``jaxml.config.runtime_checks(False)`` (a context manager) or
``jaxml.config.set_runtime_checks(False)``; the switch is read when a function is traced.
Eager checks always run.

Every value check returns the value it checked: use the returned array, so that the run-time
check stays on the data path (``C = check_positive(C, "C")``).

A run-time check tied to an input makes the checked array a computed value, which XLA then
writes out before its first use: a copy of X per checked matrix (measured: the 100 000 × 256
float64 covariance under ``jit``, 289 ms with the check on X against 189 ms without). A
public function decorated with :func:`checks_on_outputs` instead raises each boundary
check's error on a scalar token that the checked array passes an ``optimization_barrier``
with (so the check still runs first, and nothing is copied), and ties the tokens to the
function's outputs (one ``branched_error_if``, the first failing check's message): the same
errors under ``jit``/``vmap``/``grad``, at the cost of the reductions alone (204 ms).
"""

from __future__ import annotations

import collections
import contextlib
import functools
import operator
import threading
from typing import Any, Callable, Sequence

import equinox as eqx
import jax
import jax.extend.core as jex_core
import jax.numpy as jnp
import numpy as np
from jax import lax

_RUNTIME_CHECKS = {"enabled": True}


def set_runtime_checks(enabled: bool) -> None:
    """Turn run-time (traced) value checks on or off; eager checks always run."""
    _RUNTIME_CHECKS["enabled"] = bool(enabled)


def runtime_checks_enabled() -> bool:
    """Whether traced value checks are compiled into functions traced from now on."""
    return _RUNTIME_CHECKS["enabled"]


@contextlib.contextmanager
def runtime_checks(enabled: bool):
    """``with runtime_checks(False): ...`` traces without run-time value checks."""
    old = _RUNTIME_CHECKS["enabled"]
    set_runtime_checks(enabled)
    try:
        yield
    finally:
        set_runtime_checks(old)


def is_concrete(x) -> bool:
    """True when ``x`` holds values now (not a tracer inside ``jit``/``vmap``/``grad``)."""
    return not isinstance(x, jax.core.Tracer)


def float_dtype(*arrays):
    """The floating dtype the result should have: that of the inputs, ints promoted."""
    dt = jnp.result_type(*arrays)
    if not jnp.issubdtype(dt, jnp.floating):
        dt = jnp.result_type(float)
    return dt


_COMPILED_CHECKS: dict = {}


def _compiled_check(bad: Callable):
    """``jax.jit(lambda v: jnp.any(bad(jnp, v)))``, one per check (its code and the values it
    closes over), so that a check of a device array is one fused reduction and one dispatch,
    compiled once per shape, instead of several eager operations. None when the closure
    holds something unhashable (then the check runs op by op)."""
    try:
        key = (bad.__code__, tuple((type(v), v) for v in
                                   (c.cell_contents for c in bad.__closure__ or ())))
        fn = _COMPILED_CHECKS.get(key)
    except (TypeError, ValueError, AttributeError):
        return None
    if fn is None:
        fn = _COMPILED_CHECKS[key] = jax.jit(lambda v: jnp.any(bad(jnp, v)))
    return fn


_NUMPY_CHECK_MAX = 1 << 20


def _on_one_cpu(x: jax.Array) -> bool:
    try:
        devices = x.devices()
        return len(devices) == 1 and next(iter(devices)).platform == "cpu"
    except Exception:  # noqa: BLE001  deleted or abstract arrays: the device path decides
        return False


def _any_now(bad: Callable, x) -> bool:
    """Whether ``bad`` holds anywhere in the concrete ``x``: on the device for a JAX array (no
    copy to the host; eagerly even inside a trace), in NumPy otherwise."""
    if isinstance(x, jax.Array):
        if not x.size:
            return False
        if x.size <= _NUMPY_CHECK_MAX and _on_one_cpu(x):
            return _any_now(bad, np.asarray(x))     # a view, no copy: NumPy dispatches faster
        fn = _compiled_check(bad)
        with jax.ensure_compile_time_eval():
            return bool(fn(x) if fn is not None else jnp.any(bad(jnp, x)))
    v = np.asarray(x)
    return bool(v.size and np.any(bad(np, v)))


class _Deferred:
    """The run-time checks collected at one public function's boundary, in its trace."""

    def __init__(self):
        self.trace = jex_core.get_opaque_trace_state()
        self.checks: list[tuple[jax.Array, str]] = []


_SCOPES = threading.local()


def _scope() -> _Deferred | None:
    """The innermost :func:`checks_on_outputs` scope, if it is open in the current trace
    (a check made inside a nested trace, e.g. a ``vmap`` inside the function, is not
    deferred: it stays tied to its value)."""
    stack = getattr(_SCOPES, "stack", None)
    if not stack or stack[-1].trace != jex_core.get_opaque_trace_state():
        return None
    return stack[-1]


def _defer(scope: _Deferred, x, pred, message: str):
    """``x`` for the function body, ordered after the check: the error is raised on a
    scalar token and ``x`` passes an ``optimization_barrier`` with it (no copy), so the
    check still runs before any computation on ``x`` (whose own checks would otherwise
    fire first with a less telling message). The token's output joins the predicates
    tied to the function's outputs, which keeps it from being removed as unused."""
    token = eqx.error_if(jnp.zeros((), bool), pred, message)
    x, token = lax.optimization_barrier((x, token))
    scope.checks.append((pred | token, message))
    return x


def _tie(out, checks):
    """``out`` with every array leaf tied to the collected checks: one error naming the
    first that fails."""
    leaves, treedef = jax.tree_util.tree_flatten(out)
    where = [i for i, v in enumerate(leaves) if isinstance(v, (jax.Array, np.ndarray))]
    if not where:
        return out
    preds = jnp.stack([jnp.asarray(p, bool) for p, _ in checks])
    tied = eqx.branched_error_if([leaves[i] for i in where], jnp.any(preds),
                                 jnp.argmax(preds), [m for _, m in checks])
    for i, v in zip(where, tied):
        leaves[i] = v
    return jax.tree_util.tree_unflatten(treedef, leaves)


def checks_on_outputs(fn: Callable) -> Callable:
    """Decorate a public function so that the run-time checks its boundary makes on traced
    values are tied to its outputs rather than to its inputs (see the module docstring):
    the same errors, without a copy of each checked input. Eager checks are unchanged."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        stack = _SCOPES.__dict__.setdefault("stack", [])
        scope = _Deferred()
        stack.append(scope)
        try:
            out = fn(*args, **kwargs)
        finally:
            stack.pop()
        return _tie(out, scope.checks) if scope.checks else out
    return wrapper


def check_value(x, name: str, bad: Callable[[Any, Any], Any], message: str):
    """Return ``x``; raise ``ValueError(f"{name} {message}")`` where ``bad(xp, x)`` holds.

    ``bad(xp, v)`` is written once for both namespaces: ``xp`` is NumPy for a concrete ``v``
    (checked now) and ``jax.numpy`` for a traced one (checked at run time, unless switched
    off).
    """
    if is_concrete(x):
        if _any_now(bad, x):
            raise ValueError(f"{name} {message}")
        return x
    if not runtime_checks_enabled():
        return x
    pred, text = jnp.any(bad(jnp, x)), f"{name} {message}"
    scope = _scope()
    return eqx.error_if(x, pred, text) if scope is None else _defer(scope, x, pred, text)


def keep_checks(x, *checked):
    """``x``, made to depend on the already ``checked`` values so that their run-time checks
    run even where the computation does not use them (an unused checked value would be
    removed from the compiled program with its check). Nothing changes for concrete values
    or with run-time checks off."""
    traced = [a for a in jax.tree_util.tree_leaves(checked) if not is_concrete(a)]
    if not traced or not runtime_checks_enabled():
        return x
    if _scope() is not None:
        return x        # the checks are tied to the function's outputs
    pred = jnp.any(jnp.stack([jnp.any(jnp.isnan(jnp.asarray(a, float))) for a in traced]))
    return eqx.error_if(x, pred, "a checked argument is NaN")


def _raw_dtype(x, name: str):
    if isinstance(x, (jax.Array, np.ndarray, np.generic)):
        return x.dtype
    if isinstance(x, (bool, int, float)):
        return np.asarray(x).dtype
    if isinstance(x, complex):
        return np.dtype(complex)
    try:
        return np.asarray(x).dtype
    except (TypeError, ValueError) as e:
        raise TypeError(f"{name} must be array-like, got {type(x).__name__}") from e


def check_real_dtype(x, name: str):
    """Raise ``TypeError`` unless ``x`` holds real numbers (floating, integer or bool):
    complex, string and object data are rejected by name. Returns the dtype."""
    dt = _raw_dtype(x, name)
    if dt.kind == "c":
        raise TypeError(f"{name} must be real, got complex dtype {dt}")
    if dt.kind not in "biuf" and dt != jnp.bfloat16:
        raise TypeError(f"{name} must hold real numbers (floating or integer), got dtype {dt}")
    return dt


def check_ndim(x, name: str, ndim: int | Sequence[int] | None) -> None:
    if ndim is None:
        return
    allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
    if np.ndim(x) not in allowed:
        want = " or ".join(str(a) for a in allowed)
        raise ValueError(f"{name} must have {want} dimension(s), got shape {np.shape(x)}")


def _not_finite(xp, v):
    """Whether NaN or ±inf is anywhere in ``v`` (a scalar). A finite sum proves every entry
    finite (one NaN or inf makes the sum NaN or inf), and a sum is the cheapest reduction;
    only a non-finite sum (or an overflow) pays for the elementwise test."""
    total = xp.sum(v)
    if xp is np:
        return not np.isfinite(total) and not np.all(np.isfinite(v))
    return jax.lax.cond(jnp.isfinite(total), lambda: jnp.zeros((), bool),
                        lambda: ~jnp.all(jnp.isfinite(v)))


def check_finite(x, name: str):
    """``x`` unchanged; NaN or ±inf anywhere in it is an error naming ``name``."""
    if check_real_dtype(x, name).kind in "biu":
        return x                    # integers and booleans are finite
    return check_value(x, name, _not_finite, "contains NaN or inf")


def as_float_array(x, name: str, *, ndim: int | Sequence[int] | None = None, dtype=None,
                   finite: bool = True) -> jax.Array:
    """``x`` as a floating JAX array of the given rank, finite unless ``finite=False``.

    Raises:
        TypeError: ``x`` is not array-like, or complex, string or object data.
        ValueError: wrong rank, or NaN/inf in ``x`` (at run time when traced).
    """
    dt = check_real_dtype(x, name)
    check_ndim(x, name, ndim)
    if finite:
        x = check_finite(x, name)
    if dtype is not None:
        return jnp.asarray(x, dtype=dtype)
    arr = jnp.asarray(x)            # float64 becomes float32 quietly when x64 is off
    return arr if jnp.issubdtype(arr.dtype, jnp.floating) else arr.astype(float_dtype(arr))


def check_matrix(X, name: str = "X", *, dtype=None, min_rows: int = 1, min_cols: int = 1,
                 finite: bool = True) -> jax.Array:
    """A finite (n, d) floating array with n ≥ ``min_rows`` and d ≥ ``min_cols``."""
    X = as_float_array(X, name, ndim=2, dtype=dtype, finite=finite)
    n, d = X.shape
    if n < min_rows:
        raise ValueError(f"{name} must have at least {min_rows} row(s), got shape {X.shape}")
    if d < min_cols:
        raise ValueError(f"{name} must have at least {min_cols} column(s), got shape {X.shape}")
    return X


def check_vector(x, name: str, *, dtype=None, min_size: int = 1, finite: bool = True) -> jax.Array:
    """A finite (n,) floating array with n ≥ ``min_size``."""
    x = as_float_array(x, name, ndim=1, dtype=dtype, finite=finite)
    if x.shape[0] < min_size:
        raise ValueError(f"{name} must have at least {min_size} entries, got shape {x.shape}")
    return x


def check_same_length(a, a_name: str, b, b_name: str) -> None:
    if np.shape(a)[0] != np.shape(b)[0]:
        raise ValueError(
            f"{a_name} and {b_name} must have the same number of rows, "
            f"got {np.shape(a)[0]} and {np.shape(b)[0]}")


def check_nonnegative(x, name: str, *, finite: bool = True):
    """``x`` unchanged; every entry must be ≥ 0 (and finite unless ``finite=False``)."""
    check_real_dtype(x, name)
    if finite:
        return check_value(x, name, lambda xp, v: ~(xp.isfinite(v) & (v >= 0)),
                           "must be finite and non-negative")
    return check_value(x, name, lambda xp, v: ~(v >= 0), "must be non-negative")


def check_positive(x, name: str, *, finite: bool = True):
    """``x`` unchanged; every entry must be > 0 (and finite unless ``finite=False``)."""
    check_real_dtype(x, name)
    if finite:
        return check_value(x, name, lambda xp, v: ~(xp.isfinite(v) & (v > 0)),
                           "must be finite and positive")
    return check_value(x, name, lambda xp, v: ~(v > 0), "must be positive")


def check_in_range(x, name: str, low=None, high=None, *, low_open: bool = False,
                   high_open: bool = False):
    """``x`` unchanged; every entry finite and within the (closed unless ``*_open``) range."""
    check_real_dtype(x, name)

    def bad(xp, v):
        ok = xp.isfinite(v)
        if low is not None:
            ok = ok & ((v > low) if low_open else (v >= low))
        if high is not None:
            ok = ok & ((v < high) if high_open else (v <= high))
        return ~ok

    lo = "" if low is None else ("(" if low_open else "[") + f"{low}, "
    hi = "" if high is None else f"{high}" + (")" if high_open else "]")
    return check_value(x, name, bad, f"must be finite and in {lo or '(-inf, '}{hi or 'inf)'}")


def check_int(x, name: str, low: int = 0, high: int = 2**31 - 1) -> int:
    """A static integer in [low, high] (Python, NumPy and 0-d integer arrays accepted;
    bools and floats rejected). Returns a Python ``int``."""
    if isinstance(x, (bool, np.bool_)) or isinstance(x, jax.core.Tracer):
        raise TypeError(f"{name} must be a static int, got {type(x).__name__}")
    try:
        v = operator.index(x)
    except TypeError as e:
        raise TypeError(f"{name} must be an int, got {type(x).__name__}") from e
    if not low <= v <= high:
        raise ValueError(f"{name} must be in [{low}, {high}], got {v}")
    return v


def check_int_in_range(x, name: str, low: int, high: int) -> int:
    """Alias of :func:`check_int` (kept for its callers)."""
    return check_int(x, name, low, high)


def check_labels(y, name: str, allowed) -> jax.Array:
    """``y`` (n,) with every label in ``allowed`` (checked at run time when traced)."""
    check_real_dtype(y, name)
    check_ndim(y, name, 1)
    allowed_np = np.asarray(allowed)
    if is_concrete(y):
        v = np.asarray(y)
        bad = ~np.isin(v, allowed_np)
        if np.any(bad):
            raise ValueError(
                f"{name} must take values in {allowed_np.tolist()}, "
                f"got {np.unique(v[bad]).tolist()[:5]}")
        return jnp.asarray(y)
    return check_value(y, name, lambda xp, v: ~xp.isin(v, xp.asarray(allowed_np)),
                       f"must take values in {allowed_np.tolist()}")


def check_class_labels(y, name: str, n_classes: int) -> jax.Array:
    """Integer class labels (n,) in ``0..n_classes-1`` (integral floats accepted)."""
    dt = check_real_dtype(y, name)
    check_ndim(y, name, 1)
    if not jnp.issubdtype(dt, jnp.integer):
        if is_concrete(y) and np.all(np.asarray(y) == np.round(np.asarray(y))):
            y = np.asarray(y).astype(np.int32)
        else:
            raise TypeError(f"{name} must hold integer class labels, got dtype {dt}")
    y = check_value(y, name, lambda xp, v: (v < 0) | (v >= n_classes),
                    f"must lie in 0..{n_classes - 1}")
    return jnp.asarray(y)


def check_callable(f, name: str) -> Callable:
    """Raise ``TypeError`` unless ``f`` is callable."""
    if not callable(f):
        raise TypeError(f"{name} must be callable, got {type(f).__name__}")
    return f


_PASSED: collections.OrderedDict = collections.OrderedDict()
_PASSED_MAX = 512


def _signature(tree):
    """A hashable key for what an abstract (shape) check of ``tree`` can depend on: its tree
    structure and, per leaf, the shape and dtype of an array or the leaf itself. None when
    something in it is unhashable."""
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    key = (treedef, tuple(("array", tuple(v.shape), str(v.dtype))
                          if hasattr(v, "shape") and hasattr(v, "dtype") else (type(v), v)
                          for v in leaves))
    try:
        hash(key)
    except TypeError:
        return None
    return key


def check_once(check: Callable, *args) -> None:
    """Run the shape check ``check(*args)`` (an abstract check: ``jax.eval_shape``, shapes and
    dtypes, nothing that reads values) unless it already passed for arguments of the same
    structure, shapes and dtypes (the same callables): a plain call then pays a dictionary
    look-up, not a trace, every time. The most recent 512 passes are remembered; failures
    always re-run."""
    key = _signature((check, args))
    if key is not None and key in _PASSED:
        _PASSED.move_to_end(key)
        return
    check(*args)
    if key is not None:
        _PASSED[key] = None
        if len(_PASSED) > _PASSED_MAX:
            _PASSED.popitem(last=False)


def check_returns(f, name: str, *example_args, shape: tuple = ()) -> None:
    """Raise unless ``f(*example_args)`` returns a real floating array of ``shape`` (checked
    abstractly with ``jax.eval_shape``: nothing runs; once per function, argument shapes and
    ``shape``, see :func:`check_once`)."""
    check_callable(f, name)
    check_once(_check_returns, f, name, example_args, tuple(shape))


def _check_returns(f, name: str, example_args, shape: tuple) -> None:
    try:
        out = jax.eval_shape(f, *example_args)
    except Exception as e:  # noqa: BLE001  the user's function failed on a valid input
        raise TypeError(f"{name} failed on an input of the expected shape: {e}") from e
    if not hasattr(out, "shape") or tuple(out.shape) != tuple(shape):
        got = getattr(out, "shape", type(out).__name__)
        raise ValueError(f"{name} must return an array of shape {tuple(shape)}, got {got}")
    if not jnp.issubdtype(out.dtype, jnp.floating):
        raise TypeError(f"{name} must return floating values, got dtype {out.dtype}")


def check_loop_options(max_iter, tol, *, allow_zero_tol: bool = True,
                       max_iter_name: str = "max_iter", tol_name: str = "tol") -> tuple[int, Any]:
    """The shared loop's options: ``max_iter`` a positive integer (NumPy integers accepted),
    ``tol`` a finite number ≥ 0 (> 0 with ``allow_zero_tol=False``). Returns
    ``(int(max_iter), tol)``. Errors name ``max_iter_name``/``tol_name`` (e.g. an inner
    loop's ``e_step_max_iter``/``e_step_tol``)."""
    max_iter = check_int(max_iter, max_iter_name, 1, 2**31 - 1)
    if np.ndim(tol) != 0:
        raise ValueError(f"{tol_name} must be a scalar, got shape {np.shape(tol)}")
    tol = (check_nonnegative(tol, tol_name) if allow_zero_tol
           else check_positive(tol, tol_name))
    return max_iter, tol


def host_function(fn: Callable) -> Callable:
    """Mark ``fn`` as a host function: it runs a Python loop over host data (an iterable of
    chunks, a memory map), so it is not traceable (no ``jit``/``vmap`` around it). Sets
    ``fn.__jaxml_host__ = True`` and returns ``fn`` unchanged."""
    fn.__jaxml_host__ = True
    return fn


def is_host_function(fn) -> bool:
    """Whether ``fn`` was marked with :func:`host_function`."""
    return bool(getattr(fn, "__jaxml_host__", False))
