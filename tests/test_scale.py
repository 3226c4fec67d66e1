"""Streamed and minibatch fits (issue 19): streamed fits equal the in-memory fit; minibatch
k-means matches scikit-learn's MiniBatchKMeans."""

import jax
import numpy as np
import pytest

from jaxml import data, kmeans


@pytest.fixture(scope="module")
def blobs():
    from sklearn.datasets import make_blobs
    X, _ = make_blobs(n_samples=1003, centers=4, n_features=3, random_state=0)
    return X


def test_streamed_kmeans_equals_in_memory_fit(blobs, tmp_path):
    X, init = blobs, blobs[:4]
    a = kmeans.fit(None, X, 4, init=init)
    np.save(tmp_path / "x.npy", X)
    sources = [data.chunks([X[s:s + 200] for s in range(0, 1003, 200)]),     # last chunk short
               data.chunks(np.load(tmp_path / "x.npy", mmap_mode="r"), chunk_size=128)]
    for source in sources:
        b = kmeans.fit_streamed(None, source, 4, init=init)
        np.testing.assert_array_equal(b.labels, a.labels)
        np.testing.assert_allclose(b.centroids, a.centroids, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(b.inertia, a.inertia, rtol=1e-12)
        assert int(b.n_iter) == int(a.n_iter) and bool(b.converged)
        np.testing.assert_allclose(b.trace, a.trace, rtol=1e-12)


def test_streamed_fit_rejects_inconsistent_chunks(blobs):
    with pytest.raises(ValueError, match="chunk 1"):
        kmeans.fit_streamed(None, data.chunks([blobs[:10], blobs[10:20, :2]]), 2,
                            init=blobs[:2])
    with pytest.raises(ValueError, match="chunk 1"):
        kmeans.fit_streamed(None, data.chunks([blobs[:10], blobs[10:20].astype(np.float32)]),
                            2, init=blobs[:2])


def test_minibatch_kmeans_inertia_within_2_percent_of_sklearn():
    from sklearn.cluster import MiniBatchKMeans
    from sklearn.datasets import make_blobs
    X, _ = make_blobs(n_samples=3000, centers=6, n_features=4, random_state=1, cluster_std=2.0)
    init = np.asarray(kmeans.plusplus_init(jax.random.key(3), X, 6))      # shared seeding
    r = kmeans.fit_minibatch(jax.random.key(0), X, 6, init=init, batch_size=256, max_iter=10)
    sk = MiniBatchKMeans(6, init=init, n_init=1, batch_size=256, max_iter=10, random_state=0,
                         max_no_improvement=None, reassignment_ratio=0.0).fit(X)
    assert abs(float(r.inertia) / sk.inertia_ - 1.0) < 0.02
    assert int(r.n_iter) == 10 * -(-3000 // 256)
    assert r.trace.shape == (int(r.n_iter),) and np.all(np.isfinite(r.trace))
    np.testing.assert_allclose(float(np.sum(r.counts)), 256 * int(r.n_iter))
    # the step by hand, in the user's own loop
    state = kmeans.MiniBatchState(jax.numpy.asarray(init), jax.numpy.zeros(6),
                                  jax.numpy.asarray(0, jax.numpy.int32))
    state, info = kmeans.minibatch_step(jax.random.key(1), state, X, batch_size=64)
    assert float(state.counts.sum()) == 64 and float(info.error) > 0


@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_online_em_reaches_the_batch_em_likelihood(covariance_type):
    from sklearn.datasets import make_blobs

    from jaxml import gmm
    X, _ = make_blobs(n_samples=4000, centers=4, n_features=3, random_state=0)
    p0 = gmm.init(jax.random.key(0), X, 4, covariance_type=covariance_type)
    batch = gmm.fit(None, X, 4, init_params=p0, tol=1e-8, max_iter=200)
    online = gmm.fit_online(jax.random.key(1), X, 4, init_params=p0, batch_size=200,
                            max_iter=5)
    assert int(online.n_iter) == 100 and online.trace.shape == (100,)
    # per-point log-likelihood within 0.01 nats of the batch EM optimum
    assert float(online.lower_bound) > float(batch.lower_bound) - 0.01
    np.testing.assert_allclose(np.sort(np.asarray(online.weights)),
                               np.sort(np.asarray(batch.weights)), atol=0.02)


def test_online_lda_held_out_perplexity_within_5_percent_of_sklearn():
    from sklearn.decomposition import LatentDirichletAllocation

    from jaxml import lda
    rng = np.random.default_rng(0)
    K, V, D = 4, 40, 300
    topics = rng.dirichlet(np.full(V, 0.1), K)
    theta = rng.dirichlet(np.full(K, 0.3), D + 100)
    counts = np.stack([rng.multinomial(60, t @ topics) for t in theta]).astype(float)
    train, test = counts[:D], counts[D:]
    init = lda.sklearn_initial_topics(K, V, 0)      # scikit-learn's start for random_state=0
    r = lda.fit_online(jax.random.key(0), train, K, batch_size=64, max_iter=4,
                       init_topic_word=init)
    sk = LatentDirichletAllocation(K, learning_method="online", batch_size=64, max_iter=4,
                                   random_state=0).fit(train)
    assert int(r.n_iter) == 4 * 5 and r.trace.shape == (20,)
    ratio = float(lda.perplexity(r, test)) / sk.perplexity(test)
    assert abs(ratio - 1.0) < 0.05, ratio


def _gmm_start(X, k, covariance_type):
    """Hand-made starting parameters (first k rows as means, the data's spread)."""
    from jaxml import gmm
    d = X.shape[1]
    var = np.var(X, axis=0)
    cov = {"full": np.broadcast_to(np.diag(var), (k, d, d)), "tied": np.diag(var),
           "diag": np.broadcast_to(var, (k, d)), "spherical": np.full(k, var.mean())}
    return gmm.GMMParams(np.full(k, 1.0 / k), X[:k].copy(), np.array(cov[covariance_type]),
                         covariance_type)


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
def test_streamed_gmm_equals_in_memory_fit(blobs, covariance_type):
    from jaxml import gmm
    X = blobs[:, :2]
    p0 = _gmm_start(X, 3, covariance_type)
    a = gmm.fit(None, X, 3, init_params=p0, max_iter=8, tol=0.0)
    chunks = data.chunks([X[s:s + 300] for s in range(0, len(X), 300)])   # last chunk short
    b = gmm.fit_streamed(None, chunks, 3, init_params=p0, max_iter=8, tol=0.0)
    assert b.covariance_type == covariance_type and int(b.n_iter) == int(a.n_iter) == 8
    for field in ("weights", "means", "covariances", "lower_bound", "trace"):
        np.testing.assert_allclose(getattr(b, field), getattr(a, field), rtol=1e-10,
                                   atol=1e-12, err_msg=field)
    assert bool(b.converged) == bool(a.converged)


def test_streamed_gmm_stops_like_fit_and_rejects_inconsistent_chunks(blobs):
    from jaxml import gmm
    X = blobs[:, :2]
    p0 = _gmm_start(X, 3, "diag")
    a = gmm.fit(None, X, 3, init_params=p0, max_iter=100, tol=1e-4)
    b = gmm.fit_streamed(None, data.chunks(X, chunk_size=256), 3, init_params=p0,
                         max_iter=100, tol=1e-4)
    assert bool(a.converged) and bool(b.converged) and int(b.n_iter) == int(a.n_iter) < 100
    np.testing.assert_allclose(b.lower_bound, a.lower_bound, rtol=1e-12)
    with pytest.raises(ValueError, match="chunk 1"):
        gmm.fit_streamed(None, data.chunks([X[:10], blobs[10:20]]), 2,
                         init_params=_gmm_start(X, 2, "diag"))
    with pytest.raises(ValueError, match="chunk 2"):
        gmm.fit_streamed(None, data.chunks([X[:10], X[10:20], X[20:30].astype(np.float32)]),
                         2, init_params=_gmm_start(X, 2, "diag"))


@pytest.fixture(scope="module")
def corpus():
    rng = np.random.default_rng(0)
    K, V, D = 3, 20, 50
    topics = rng.dirichlet(np.full(V, 0.1), K)
    theta = rng.dirichlet(np.full(K, 0.3), D)
    return np.stack([rng.multinomial(30, t @ topics) for t in theta]).astype(float)


def test_streamed_lda_equals_in_memory_fit(corpus):
    from jaxml import lda
    a = lda.fit(jax.random.key(0), corpus, 3, max_iter=4, tol=0.0)
    chunks = data.chunks(lambda: (corpus[s:s + 20] for s in range(0, 50, 20)))  # 20, 20, 10
    b = lda.fit_streamed(jax.random.key(0), chunks, 3, max_iter=4, tol=0.0)
    assert int(b.n_iter) == int(a.n_iter) == 4
    for field in ("topic_word", "doc_topic", "elbo", "trace"):
        np.testing.assert_allclose(getattr(b, field), getattr(a, field), rtol=1e-10,
                                   err_msg=field)
    np.testing.assert_array_equal(b.e_step_n_iter, a.e_step_n_iter)
    # the ELBO recorded is the model's: recomputed from the returned parameters
    np.testing.assert_allclose(
        lda.elbo(corpus, b.doc_topic, b.topic_word, alpha=1 / 3, eta=1 / 3), b.elbo, rtol=1e-12)
    with pytest.raises(ValueError, match="chunk 1"):
        lda.fit_streamed(jax.random.key(0), data.chunks([corpus[:20], corpus[20:, :19]]), 3)


# ----------------------------------------------------------------------------- streamed fits
# of the sufficient-statistic chapters: a list of (X, y) chunk pairs (last one short) and two
# memory-mapped .npy files read in step; each equals the in-memory fit and an outside oracle.

@pytest.fixture(scope="module")
def xy_sources(tmp_path_factory):
    rng = np.random.default_rng(7)
    X = rng.normal(size=(203, 4)) * np.array([1.0, 3.0, 0.5, 2.0]) + 1.0
    y = rng.integers(0, 3, 203)
    d = tmp_path_factory.mktemp("streamed")
    np.save(d / "x.npy", X)
    np.save(d / "y.npy", y)
    pairs = [(X[s:s + 64], y[s:s + 64]) for s in range(0, 203, 64)]
    mm = data.chunks(np.load(d / "x.npy", mmap_mode="r"), chunk_size=50,
                     y=np.load(d / "y.npy", mmap_mode="r"))
    return X, y, [data.chunks(pairs), mm]


def _x_only(source):
    return data.chunks(lambda: (x for (x, _), _m in source), chunk_size=source.chunk_size)


def test_streamed_pca_and_gaussian_mle_equal_in_memory(xy_sources):
    from sklearn.decomposition import PCA

    from jaxml import gaussian, pca
    X, _, sources = xy_sources
    a, m = pca.fit(X, 2), gaussian.mle(X)
    sk = PCA(2).fit(X)
    for source in sources:
        b = pca.fit_streamed(_x_only(source), 2)
        for f in a._fields:
            np.testing.assert_allclose(getattr(b, f), getattr(a, f), rtol=1e-12, atol=1e-13)
        np.testing.assert_allclose(b.explained_variance, sk.explained_variance_, rtol=1e-12)
        g = gaussian.mle_streamed(_x_only(source))
        np.testing.assert_allclose(g.mean, m.mean, rtol=1e-13)
        np.testing.assert_allclose(g.cov, m.cov, rtol=1e-12, atol=1e-13)
        np.testing.assert_allclose(g.cov, np.cov(X.T, bias=True), rtol=1e-12, atol=1e-13)


def test_streamed_ridge_and_least_squares_equal_in_memory(xy_sources):
    from sklearn.linear_model import Ridge

    from jaxml import linear
    X, y, _ = xy_sources
    t = X @ np.array([1.0, -2.0, 0.5, 0.3]) + 0.1 * y
    w_ls, w_r = linear.least_squares(X, t), linear.ridge(X, t, 0.7)
    np.testing.assert_allclose(w_ls, np.linalg.lstsq(X, t, rcond=None)[0], rtol=1e-12)
    np.testing.assert_allclose(w_r, Ridge(0.7, fit_intercept=False).fit(X, t).coef_, rtol=1e-10)
    for source in (data.chunks([(X[s:s + 64], t[s:s + 64]) for s in range(0, 203, 64)]),
                   data.chunks(X, chunk_size=50, y=t)):
        np.testing.assert_allclose(linear.least_squares_streamed(source), w_ls, rtol=1e-12)
        np.testing.assert_allclose(linear.ridge_streamed(source, 0.7), w_r, rtol=1e-12)


def test_streamed_least_squares_is_a_tsqr_not_the_normal_equations():
    """κ(X) = 1e10: the chunk-wise QR keeps lstsq's answer; XᵀX (κ² = 1e20) loses it all."""
    from jaxml import linear
    rng = np.random.default_rng(8)
    U, _ = np.linalg.qr(rng.normal(size=(300, 5)))
    V, _ = np.linalg.qr(rng.normal(size=(5, 5)))
    X = U @ np.diag(np.logspace(0, -10, 5)) @ V.T
    t = X @ rng.normal(size=5)
    w_lstsq = np.linalg.lstsq(X, t, rcond=None)[0]
    w_normal = np.linalg.solve(X.T @ X, X.T @ t)

    def rel(w):
        return np.linalg.norm(np.asarray(w) - w_lstsq) / np.linalg.norm(w_lstsq)

    assert rel(w_normal) > 1e-2                    # the normal equations fail here
    assert rel(linear.least_squares_streamed(data.chunks(X, chunk_size=64, y=t))) < 1e-5
    assert rel(linear.least_squares(X, t)) < 1e-5


def test_streamed_naive_bayes_equals_in_memory(xy_sources):
    from sklearn.naive_bayes import GaussianNB, MultinomialNB

    from jaxml import naive_bayes as nb
    X, y, sources = xy_sources
    C = np.round(np.abs(X) * 3)
    a, am = nb.fit_gaussian(X, y, 3), nb.fit_multinomial(C, y, 3, alpha=0.5)
    np.testing.assert_allclose(a.var, GaussianNB().fit(X, y).var_, rtol=1e-12)
    np.testing.assert_allclose(am.feature_log_prob,
                               MultinomialNB(alpha=0.5).fit(C, y).feature_log_prob_, rtol=1e-12)
    for source in sources:
        b = nb.fit_gaussian_streamed(source, 3)
        for f in a._fields:
            np.testing.assert_allclose(getattr(b, f), getattr(a, f), rtol=1e-12, atol=1e-14)
    bm = nb.fit_multinomial_streamed(data.chunks(C, chunk_size=50, y=y), 3, alpha=0.5)
    for f in am._fields:
        np.testing.assert_allclose(getattr(bm, f), getattr(am, f), rtol=1e-12)


def test_streamed_supervised_fits_reject_inconsistent_chunks(xy_sources):
    from jaxml import linear
    from jaxml import naive_bayes as nb
    X, y, _ = xy_sources
    t = y.astype(float)
    with pytest.raises(ValueError, match="chunk 1"):        # width
        linear.ridge_streamed(data.chunks([(X[:10], t[:10]), (X[10:20, :2], t[10:20])]), 1.0)
    with pytest.raises(ValueError, match="chunk 1"):        # dtype of y
        linear.least_squares_streamed(
            data.chunks([(X[:10], t[:10]), (X[10:20], t[10:20].astype(np.float32))]))
    with pytest.raises(ValueError, match="chunk 1"):        # y shorter than X
        linear.least_squares_streamed(data.chunks(X[:20], chunk_size=8, y=t[:12]))
    with pytest.raises(ValueError, match="non-negative"):
        nb.fit_multinomial_streamed(data.chunks(-X, chunk_size=50, y=y), 3)
    with pytest.raises(ValueError, match=r"\(X, y\)"):
        linear.ridge_streamed(data.chunks(X, chunk_size=50), 1.0)
