"""A plain call (no ``jax.jit`` around it) compiles once: its second call, on new data of the
same shapes, traces nothing, so it runs at the jitted call's speed (the house contract: checks
in Python, then one cached compiled core). Counted with a ``jax.monitoring`` listener on
JAX's trace event, which fires on every ``jit`` cache miss, eager operations included."""

import contextlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxml import flows, kmeans, linear, naive_bayes, svm
from jaxml._core import check_returns

_TRACE_EVENT = "/jax/core/compile/jaxpr_trace_duration"


@contextlib.contextmanager
def count_traces():
    events = []

    def listener(event, duration, **kwargs):
        if event == _TRACE_EVENT:
            events.append(event)

    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        yield events
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)


def _data(seed, n=40, d=3):
    rng = np.random.default_rng(seed)
    X = jnp.asarray(rng.normal(size=(n, d)))
    return X, jnp.asarray(np.where(X[:, 0] + 0.3 * rng.normal(size=n) > 0, 1, -1))


def _log_density(x):
    return -flows.U1(x)


_FLOW = flows.planar_flow(jax.random.key(0), 2, 2, dtype=jnp.float64)

FITS = {
    "linear.ridge": lambda X, y: linear.ridge(X, y, 1.0),
    "linear.lasso_path": lambda X, y: linear.lasso_path(X, y, jnp.array([0.5, 0.1]),
                                                        max_iter=20),
    "svm.fit": lambda X, y: svm.fit(X, y, C=1.0, kernel=svm.RBF(0.5), max_iter=50),
    "naive_bayes.fit_gaussian": lambda X, y: naive_bayes.fit_gaussian(X, (y > 0).astype(int), 2),
    "kmeans.fit": lambda X, y: kmeans.fit(jax.random.key(0), X, 3, max_iter=5),
    "flows.fit": lambda X, y: flows.fit(jax.random.key(1), _FLOW, log_density=_log_density,
                                        n_samples=8, n_steps=2),
}


@pytest.mark.parametrize("name", list(FITS))
def test_second_plain_call_does_not_trace(name):
    fit = FITS[name]
    with count_traces() as first:
        jax.block_until_ready(fit(*_data(0)))
    assert first, "the listener saw no trace on the first call: the test could not fail"
    with count_traces() as second:
        jax.block_until_ready(fit(*_data(1)))     # new values, same shapes
    assert not second, f"{name}: {len(second)} trace(s) on a second plain call"


def test_check_returns_traces_once_per_function_and_shape():
    def f(x):
        return jnp.sum(x ** 2)

    point = jax.ShapeDtypeStruct((3,), jnp.float64)
    check_returns(f, "f", point)
    with count_traces() as again:
        check_returns(f, "f", point)
    assert not again
    with count_traces() as other_shape:     # a new shape is checked again, and still fails
        with pytest.raises(ValueError, match="f must return an array of shape"):
            check_returns(lambda x: x, "f", point)
    assert other_shape
