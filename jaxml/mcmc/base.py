"""The kernel interface every sampler of :mod:`jaxml.mcmc` implements, and the boundary
checks they share.

A kernel is a structural choice (an ``eqx.Module``): it holds the target (``log_density``,
static) and its numbers (traced), and tells :func:`jaxml.mcmc.sample` how to start a chain,
how to move it, and how to tune itself during warm-up. Users add their own kernels by
subclassing :class:`MCMCKernel`.
"""

from __future__ import annotations

import abc
from functools import partial
from typing import Any, Callable, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from jaxml._core import as_float_array, check_in_range, check_positive, is_concrete

__all__ = ["MCMCKernel", "NoParams", "check_log_density", "checked_init",
           "check_position", "concrete_positive", "check_target_accept"]

LogDensity = Callable[[jax.Array], jax.Array]


class NoParams(NamedTuple):
    """The tunable parameters of a kernel that has none (Gibbs samplers)."""


class MCMCKernel(eqx.Module):
    """A Markov kernel: ``init`` a state from a position, ``step`` it, tune it in warm-up.

    Subclasses implement :meth:`init` and :meth:`step`; kernels with tunable parameters
    (a proposal scale, a step size) also override :meth:`init_params` and the three warm-up
    hooks. Every method is pure and is called inside ``jit``/``vmap`` by
    :func:`jaxml.mcmc.sample` (one chain at a time; ``sample`` vmaps over chains).
    """

    @property
    def position_ndim(self) -> int:
        """The rank of one chain's position (1: a (d,) vector)."""
        return 1

    def check(self, position: jax.Array) -> "MCMCKernel":
        """Boundary checks on one chain's starting position and on the kernel's numbers;
        returns the kernel to run (its numbers carrying their run-time checks when traced).
        ``None`` counts as ``self``."""
        return self

    @abc.abstractmethod
    def init(self, position: jax.Array) -> Any:
        """The chain's state at ``position``."""

    @abc.abstractmethod
    def step(self, key: jax.Array, state: Any, params: Any) -> tuple[Any, Any]:
        """One transition: ``(state, info)``."""

    def init_params(self, state: Any) -> Any:
        """The tunable parameters before warm-up (a NamedTuple of arrays)."""
        return NoParams()

    def warmup_init(self, state: Any, params: Any, n_warmup: int) -> Any:
        """The adaptation state at the start of warm-up."""
        return ()

    def warmup_update(self, adapt: Any, i: jax.Array, state: Any, info: Any, params: Any,
                      n_warmup: int) -> tuple[Any, Any]:
        """After warm-up step ``i``: the new adaptation state and the parameters to use next."""
        return adapt, params

    def warmup_final(self, adapt: Any, params: Any, n_warmup: int) -> Any:
        """The parameters used for sampling, once warm-up is over."""
        return params


def check_position(position, name: str = "position") -> jax.Array:
    """A finite, floating (d,) position."""
    return as_float_array(position, name, ndim=1)


@partial(jax.jit, static_argnums=0)
def _log_density_at(log_density, position):
    """log π at ``position``, compiled once per (log_density, shape): the boundary check of
    every plain call evaluates it without op-by-op dispatch or a fresh trace."""
    return log_density(position)


def check_log_density(log_density, position: jax.Array, *, finite: bool = True) -> None:
    """``log_density`` is callable, returns a scalar at ``position``, finite there (when
    ``position`` is concrete and ``finite``; ``finite=False`` leaves that to
    :func:`checked_init`, on the state a compiled init returns)."""
    if not callable(log_density):
        raise TypeError(f"log_density must be callable, got {type(log_density).__name__}")
    try:
        hash(log_density)
    except TypeError:                                   # an unhashable callable: uncached
        out, at = jax.eval_shape(log_density, position), log_density
    else:                                               # traced and compiled once per shape
        out = _log_density_at.eval_shape(log_density, position)
        at = partial(_log_density_at, log_density)
    if getattr(out, "shape", None) != ():
        raise ValueError(f"log_density must return a scalar, got shape {getattr(out, 'shape', None)}")
    if finite and is_concrete(position):
        _raise_if_not_finite(np.asarray(at(position)))


def _raise_if_not_finite(value):
    if not np.isfinite(value):
        raise ValueError(
            f"log_density is not finite at the initial position (got {value}); "
            "start the chain inside the support of the target")


def checked_init(init_core, position, log_density):
    """A public ``init``'s body: ``position`` checked (a finite (d,) vector), ``log_density``
    checked (callable, scalar), then ``init_core(position, log_density)`` (the kernel's
    jitted init) and the log density it returns checked finite when concrete."""
    position = check_position(position)
    check_log_density(log_density, position, finite=False)
    state = init_core(position, log_density)
    if is_concrete(state.log_density):
        _raise_if_not_finite(np.asarray(state.log_density))
    return state


def concrete_positive(x, name: str):
    """``x`` checked positive and finite (names the argument): now when concrete, at run time
    (``equinox.error_if``) when traced. Returns ``x``: use the returned value."""
    dt = np.asarray(x).dtype if is_concrete(x) else jnp.result_type(x)
    if dt.kind not in "biuf":
        raise TypeError(f"{name} must be a real number, got {x!r}")
    return check_positive(x, name)


def check_target_accept(target_accept):
    """``target_accept`` in (0, 1) (checked at run time when traced); returns it."""
    return check_in_range(target_accept, "target_accept", 0.0, 1.0, low_open=True,
                          high_open=True)
