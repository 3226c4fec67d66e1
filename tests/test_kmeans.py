"""jaxml.kmeans against scikit-learn's KMeans(algorithm="lloyd") and k-means' own properties."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sklearn.cluster import KMeans
from sklearn.datasets import load_iris, make_blobs

from jaxml import kmeans
from jaxml.testing import check_jvp, check_monotone


@pytest.fixture(scope="module")
def iris():
    return load_iris().data


@pytest.fixture(scope="module")
def blobs():
    X, _ = make_blobs(600, 5, centers=6, cluster_std=2.5, random_state=0)
    return X


def _sklearn(X, init, **kw):
    return KMeans(init.shape[0], init=init, n_init=1, algorithm="lloyd", **kw).fit(X)


@pytest.mark.parametrize("data,k,seed", [("iris", 3, 0), ("iris", 3, 1), ("blobs", 8, 2)])
def test_matches_sklearn_from_same_init(data, k, seed, request):
    X = request.getfixturevalue(data)
    init = np.asarray(kmeans.plusplus_init(jax.random.key(seed), X, k))
    r = kmeans.fit(None, X, k, init=init)
    sk = _sklearn(X, init)
    np.testing.assert_allclose(r.centroids, sk.cluster_centers_, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(r.inertia, sk.inertia_, rtol=1e-10)
    np.testing.assert_array_equal(r.labels, sk.labels_)
    assert int(r.n_iter) == sk.n_iter_
    assert bool(r.converged)


def test_matches_sklearn_with_loose_tol_and_few_iterations(blobs):
    init = np.asarray(kmeans.plusplus_init(jax.random.key(4), blobs, 8))
    for kw in [dict(tol=1e-1), dict(max_iter=2, tol=0.0)]:
        r = kmeans.fit(None, blobs, 8, init=init, **kw)
        sk = _sklearn(blobs, init, **kw)
        assert int(r.n_iter) == sk.n_iter_
        np.testing.assert_allclose(r.centroids, sk.cluster_centers_, rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(r.inertia, sk.inertia_, rtol=1e-10)


def test_not_converged_is_reported(blobs):
    init = np.asarray(kmeans.plusplus_init(jax.random.key(4), blobs, 8))
    r = kmeans.fit(None, blobs, 8, init=init, max_iter=1, tol=0.0)
    assert int(r.n_iter) == 1 and not bool(r.converged)


def test_empty_cluster_relocated_like_sklearn(iris):
    init = iris[[0, 60, 120]].copy()
    init = np.vstack([init, np.full((1, 4), 100.0)])      # nothing is near this centroid
    r = kmeans.fit(None, iris, 4, init=init)
    sk = _sklearn(iris, init)
    np.testing.assert_allclose(r.centroids, sk.cluster_centers_, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(r.inertia, sk.inertia_, rtol=1e-10)
    assert np.all(np.isfinite(r.centroids))
    assert len(np.unique(r.labels)) == 4


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_blocked_assignment_and_many_empty_clusters():
    # k = 512 makes the row blocks 512 long: 3 full blocks and a remainder of 464 rows.
    rng = np.random.default_rng(0)
    X, C = rng.normal(size=(2000, 3)), rng.normal(size=(512, 3))
    d2 = ((X[:, None, :] - C[None]) ** 2).sum(-1)
    np.testing.assert_array_equal(kmeans.predict(C, X), d2.argmin(1))
    # Random centroids leave many clusters empty at once; they are re-seeded at the
    # farthest points. scikit-learn pairs empty clusters and far points in argpartition
    # order, so compare the fitted centroids as a set.
    r = kmeans.fit(None, X, 512, init=C)
    sk = _sklearn(X, C)
    a, b = np.asarray(r.centroids), sk.cluster_centers_
    np.testing.assert_allclose(a[np.lexsort(a.T)], b[np.lexsort(b.T)], rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(r.inertia, sk.inertia_, rtol=1e-10)
    assert int(r.n_iter) == sk.n_iter_


def test_inertia_never_increases_under_manual_steps(blobs):
    X = jnp.asarray(blobs)
    c0 = X[:7] + 1.0                                     # a poor start: many steps
    state = kmeans.init_state(X, c0)
    step = jax.jit(kmeans.step)
    previous = np.inf
    for _ in range(15):
        state, info = step(state, X)
        assert float(info.value) == float(state.inertia)
        d2 = ((blobs[:, None, :] - np.asarray(state.centroids)[None]) ** 2).sum(-1)
        now = d2.min(1).sum()
        assert now <= previous * (1 + 1e-12)
        assert float(state.inertia) >= now * (1 - 1e-12)   # the mean update only helps
        previous = now


@given(arrays(np.float64, (40, 2), elements=st.floats(-10, 10, width=32)),
       st.sampled_from([1, 4]), st.integers(0, 2**31 - 1))
def test_trace_non_increasing_property(X, k, seed):
    r = kmeans.fit(jax.random.key(seed), X, k)
    trace = np.asarray(r.trace)[: int(r.n_iter)]
    check_monotone(trace, increasing=False, rtol=1e-9, atol=1e-9)
    assert float(r.inertia) <= trace[-1] + 1e-9 * (1 + trace[-1])
    # final inertia and labels are consistent with the final centroids (numpy oracle)
    d2 = ((X[:, None, :] - np.asarray(r.centroids)[None]) ** 2).sum(-1)
    np.testing.assert_allclose(r.inertia, d2.min(1).sum(), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(d2[np.arange(40), r.labels], d2.min(1), rtol=1e-9, atol=1e-9)


def test_plusplus_picks_rows_and_spreads_out():
    # Two far-apart groups: D²-sampling puts the second centroid in the other group
    # with probability 1 − O(1e-8), for plain (1 trial) and greedy k-means++.
    rng = np.random.default_rng(1)
    X = np.vstack([rng.normal(size=(50, 2)), rng.normal(size=(50, 2)) + 1e4])
    for trials in (1, None):
        for s in range(10):
            c = np.asarray(kmeans.plusplus_init(jax.random.key(s), X, 2, n_local_trials=trials))
            assert all((np.abs(X - row).sum(1) == 0).any() for row in c)
            assert (c[:, 0] > 5e3).sum() == 1


def test_jit_and_vmap_over_datasets(blobs):
    Xs = jnp.stack([jnp.asarray(blobs[i::3][:150]) for i in range(3)])     # (3, 150, 5)
    keys = jax.random.split(jax.random.key(0), 3)
    batched = jax.jit(jax.vmap(lambda key, X: kmeans.fit(key, X, 4)))(keys, Xs)
    for i in range(3):
        single = kmeans.fit(keys[i], Xs[i], 4)
        np.testing.assert_allclose(batched.centroids[i], single.centroids, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(batched.inertia[i], single.inertia, rtol=1e-9)
        assert int(batched.n_iter[i]) == int(single.n_iter)
        sk = _sklearn(np.asarray(Xs[i]), np.asarray(kmeans.plusplus_init(keys[i], Xs[i], 4)))
        np.testing.assert_allclose(batched.inertia[i], sk.inertia_, rtol=1e-9)


def test_vmap_over_tol(blobs):
    init = np.asarray(kmeans.plusplus_init(jax.random.key(4), blobs, 8))
    tols = jnp.array([1e-1, 1e-4])
    r = jax.vmap(lambda t: kmeans.fit(None, blobs, 8, init=init, tol=t))(tols)
    for i, t in enumerate([1e-1, 1e-4]):
        assert int(r.n_iter[i]) == _sklearn(blobs, init, tol=t).n_iter_


def test_float32_stays_float32(blobs):
    X32 = blobs.astype(np.float32)
    init = X32[:8]
    r = kmeans.fit(None, X32, 8, init=init)
    assert r.centroids.dtype == jnp.float32 and r.inertia.dtype == jnp.float32
    assert kmeans.plusplus_init(jax.random.key(0), X32, 3).dtype == jnp.float32
    r64 = kmeans.fit(None, blobs, 8, init=init.astype(np.float64))
    np.testing.assert_allclose(r.inertia, r64.inertia, rtol=1e-4)


def test_predict_matches_labels(iris):
    r = kmeans.fit(jax.random.key(0), iris, 3)
    np.testing.assert_array_equal(kmeans.predict(r, iris), r.labels)
    np.testing.assert_array_equal(kmeans.predict(r.centroids, iris), r.labels)


def test_bad_input(iris):
    key = jax.random.key(0)
    with pytest.raises(ValueError, match="n_clusters"):
        kmeans.fit(key, iris[:5], 6)
    with pytest.raises(ValueError, match="n_clusters"):
        kmeans.plusplus_init(key, iris[:5], 6)
    with pytest.raises(ValueError, match="X"):
        kmeans.fit(key, iris[:, 0], 2)
    bad = iris.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="X"):
        kmeans.fit(key, bad, 2)
    with pytest.raises(ValueError, match="init"):
        kmeans.fit(key, iris, 3, init=iris[:2])
    with pytest.raises(ValueError, match="key"):
        kmeans.fit(None, iris, 3)
    with pytest.raises(ValueError, match="tol"):
        kmeans.fit(key, iris, 3, tol=-1.0)
    with pytest.raises(ValueError, match="features"):
        kmeans.predict(iris[:3], iris[:, :2])


def test_checks_fire_eagerly_and_under_jit_and_vmap(iris):
    import jaxml
    with pytest.raises(ValueError, match="n_clusters"):
        kmeans.fit(jax.random.key(0), iris[:3], 4)
    with pytest.raises(ValueError, match="X"):
        kmeans.fit(jax.random.key(0), np.zeros((0, 4)), 1)
    for bad in (np.inf, np.nan):
        with pytest.raises(ValueError, match="tol"):
            kmeans.fit(jax.random.key(0), iris, 3, tol=bad)
    init = iris[:3]
    with pytest.raises(Exception, match="tol must"):
        jax.jit(lambda t: kmeans.fit(None, iris, 3, init=init, tol=t).centroids)(-1.0)
    bad = iris.copy()
    bad[5, 0] = np.nan
    with pytest.raises(Exception, match="X must|X contains"):
        jax.vmap(lambda X: kmeans.fit(None, X, 3, init=init).centroids)(
            np.stack([iris, bad])).block_until_ready()
    with jaxml.config.runtime_checks(False):            # unchecked NaN: never "converged"
        r = jax.jit(lambda X: kmeans.fit(None, X, 3, init=init, max_iter=5))(bad)
    assert not bool(r.converged)


def test_implicit_gradient_matches_finite_differences_and_unrolled(iris):
    from jaxml._core import Unrolled
    init = iris[[0, 50, 100]]
    W = np.random.default_rng(0).normal(size=(3, 4))

    def f(X, adjoint=None):
        r = kmeans.fit(None, X, 3, init=init, tol=0.0, max_iter=50, adjoint=adjoint)
        return jnp.sum(r.centroids * W) + 0.1 * r.inertia

    g = jax.grad(f)(iris)
    V = np.random.default_rng(1).normal(size=iris.shape)
    # step 1e-6: small enough that no label changes (labels are locally constant)
    check_jvp(f, lambda X, v: jnp.vdot(g, v), iris, V, step=1e-6, fd_rtol=1e-6, autodiff=False,
              richardson=False, batched=False)
    np.testing.assert_allclose(jax.grad(lambda X: f(X, Unrolled()))(iris), g, atol=1e-12)
    gb = jax.jit(jax.vmap(jax.grad(f)))(np.stack([iris, iris + 0.01 * V]))
    np.testing.assert_allclose(gb[0], g, atol=1e-12)
