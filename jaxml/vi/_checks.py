"""Private input conversion for jaxml.vi.

``as_float_array`` with the finiteness check done in NumPy on concrete values: a concrete
array closed over by a ``jit``-traced function stays concrete, but any ``jnp`` operation on
it inside the trace returns a tracer, so the check must not go through ``jnp``.
"""

from __future__ import annotations

import jax
import numpy as np
from jax import lax

from jaxml._core.checks import as_float_array, is_concrete


def as_float(x, name: str, *, ndim=None, dtype=None) -> jax.Array:
    """A floating array of rank ``ndim``; ValueError naming ``name`` on concrete NaN/inf."""
    arr = as_float_array(x, name, ndim=ndim, dtype=dtype, finite=False)
    if is_concrete(arr) and not np.all(np.isfinite(np.asarray(arr))):
        raise ValueError(f"{name} contains NaN or inf")
    return arr


def staged(x):
    """``x`` unchanged in value; inside a ``jit`` trace a tracer, so downstream checks that
    run ``jnp`` operations on concrete values (``jaxml._core.checks.check_finite``) skip it."""
    return None if x is None else lax.stop_gradient(x)
