"""A plain call (no ``jax.jit`` around it) compiles once: its second call, on new data of the
same shapes, traces nothing, so it runs at the jitted call's speed (the house contract: checks
in Python, then one cached compiled core). Counted with a ``jax.monitoring`` listener on
JAX's trace event, which fires on every ``jit`` cache miss, eager operations included."""

import contextlib
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxml import bayes_layers, flows, kmeans, linear, mcmc, naive_bayes, rvm, svm, vae
from jaxml._core import check_returns

_TRACE_EVENT = "/jax/core/compile/jaxpr_trace_duration"
_COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"


@contextlib.contextmanager
def count_traces(kind=_TRACE_EVENT):
    events = []

    def listener(event, duration, **kwargs):
        if event == kind:
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


def _gaussian_log_density(w):
    return -0.5 * jnp.sum(w ** 2)


_HMC = mcmc.HMC(_gaussian_log_density, step_size=0.3, n_steps=2)   # new starts, same target
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
    "mcmc.sample": lambda X, y: mcmc.sample(jax.random.key(2), _HMC, 0.1 * X[:2],
                                            n_samples=5, n_chains=2, n_warmup=25),
    "rvm.step": lambda X, y: rvm.step(jax.random.key(3), rvm.init(X), X, y.astype(X.dtype),
                                      n_inner=2, n_samples=1),
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


def _rvm_model(d):
    """A fitted-looking RVM on d features with a bias (the numbers need not come from a fit)."""
    rng = np.random.default_rng(d)
    m = d + 1
    return rvm.RVMResult(
        mean=jnp.asarray(rng.normal(size=m)), covariance=jnp.asarray(rng.uniform(0.1, 1, m)),
        alpha=jnp.ones(m), relevant=jnp.asarray(rng.uniform(size=m) < 0.7),
        elbo=jnp.zeros(()), trace=jnp.zeros(3), n_iter=jnp.int32(3),
        converged=jnp.bool_(True), basis=None, kernel=None)


def _bnn(X):
    return bayes_layers.BayesianMLP((X.shape[1], 5, 2), key=jax.random.key(4))


# name -> (X -> the call to count, set up outside the count)
ONE_PROGRAM = {
    "rvm.predict": lambda X: partial(rvm.predict, _rvm_model(X.shape[1]), X),
    "rvm.predict_proba": lambda X: partial(rvm.predict_proba, _rvm_model(X.shape[1]), X,
                                           method="gh", n_nodes=9),
    "rvm.decision_moments": lambda X: partial(rvm.decision_moments, _rvm_model(X.shape[1]), X),
    "vae.VAE": lambda X: partial(vae.VAE, jax.random.key(5), X.shape[1], 2, width=5, depth=2,
                                 likelihood="heteroscedastic"),
    "vae.Autoencoder": lambda X: partial(vae.Autoencoder, jax.random.key(6), X.shape[1], 2,
                                         width=5),
    "bayes_layers.BayesianMLP": lambda X: partial(_bnn, X),
    "bayes_layers.kl_divergence": lambda X: partial(bayes_layers.kl_divergence, _bnn(X)),
    "bayes_layers.sparsity": lambda X: partial(bayes_layers.sparsity, _bnn(X), 2.5),
    "bayes_layers.prune": lambda X: partial(bayes_layers.prune, _bnn(X), 2.5),
    "bayes_layers.kl_schedule": lambda X: partial(bayes_layers.kl_schedule, X.shape[0],
                                                  kl_weight=0.5, warmup_steps=3),
    "bayes_layers.negative_log_likelihood": lambda X: partial(
        bayes_layers.negative_log_likelihood, X, jnp.zeros(X.shape[0], jnp.int32)),
    "rvm.design_matrix": lambda X: partial(rvm.design_matrix, X),
    "rvm.init": lambda X: partial(rvm.init, X, covariance="full", window=3),
    "rvm.local_moments": lambda X: partial(rvm.local_moments, jnp.ones(7), jnp.ones(7), X,
                                           jnp.ones(X.shape[0])),
    "rvm.gauss_hermite_log_sigmoid": lambda X: partial(rvm.gauss_hermite_log_sigmoid, X,
                                                       X ** 2, n_nodes=5),
    "rvm.optimal_alpha": lambda X: partial(rvm.optimal_alpha, X[0], X[1] ** 2),
    "rvm.relevant_mask": lambda X: partial(rvm.relevant_mask, X[0] ** 2, 1e-3),
    "rvm.stopping_error": lambda X: partial(rvm.stopping_error, X[:, 0], jnp.int32(30)),
    "rvm.expected_log_likelihood": lambda X: partial(
        rvm.expected_log_likelihood, jax.random.key(7), jnp.zeros(7), jnp.ones(7), X,
        jnp.ones(X.shape[0]), n_samples=2),
    "rvm.elbo": lambda X: partial(rvm.elbo, None, jnp.zeros(7), jnp.ones(7), jnp.ones(7), X,
                                  jnp.ones(X.shape[0])),
    "rvm.kl_divergence": lambda X: partial(rvm.kl_divergence, X[0], jnp.eye(7) + X[:7].T @ X[:7],
                                           jnp.ones(7)),
    "mcmc.hmc_init": lambda X: partial(mcmc.hmc_init, X[0], _gaussian_log_density),
    "mcmc.hmc.leapfrog": lambda X: partial(
        mcmc.hmc.leapfrog, mcmc.hmc_init(X[0], _gaussian_log_density), X[1],
        _gaussian_log_density, 0.1, jnp.ones(7), 3),
    "mcmc.rmh_init": lambda X: partial(mcmc.rmh_init, X[0], _gaussian_log_density),
    "mcmc.normal_gamma_init": lambda X: partial(mcmc.normal_gamma_init, jnp.array([0.0, 1.0]),
                                                X[:, 0]),
    "mcmc.mixture_init": lambda X: partial(mcmc.mixture_init, X[:3], X),
}


@pytest.mark.parametrize("name", list(ONE_PROGRAM))
def test_first_plain_call_compiles_one_program(name):
    """Eager code compiles one program per operation and shape on its first call; a plain
    call of the house pattern compiles its one core (shapes here used by no other test)."""
    n = 23 + list(ONE_PROGRAM).index(name)      # each case its own shapes: no shared cache
    call = ONE_PROGRAM[name](_data(2, n=n, d=7)[0])
    with count_traces(_COMPILE_EVENT) as compiles:
        jax.block_until_ready(call())
    assert len(compiles) <= 1, f"{name}: {len(compiles)} programs compiled by one plain call"
    with count_traces() as again:
        jax.block_until_ready(ONE_PROGRAM[name](_data(3, n=n, d=7)[0])())
    assert not again, f"{name}: {len(again)} trace(s) on a second plain call"


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
