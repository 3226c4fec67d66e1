"""jaxml.lda against scikit-learn's LatentDirichletAllocation, explicit φ, and known topics.

Oracles: scikit-learn (``transform(normalize=False)``, ``score`` = its variational bound,
``perplexity``, held-out perplexity of its own batch fit); the update equations and the
ELBO written out with an explicit (D, V, K) ``φ`` in NumPy/SciPy on a small corpus; the
closed-form Dirichlet KL via ``scipy.stats.dirichlet.entropy``; the true topics of a
corpus sampled from the model (Hungarian matching).
"""

import jax
import jax.numpy as jnp
import lda as lda_data
import numpy as np
import pytest
import scipy.sparse as sp
from scipy.optimize import linear_sum_assignment
from scipy.special import digamma, gammaln, logsumexp
from scipy.stats import dirichlet
from sklearn.decomposition import LatentDirichletAllocation

from jaxml import lda
from jaxml.testing import check_monotone

K_SYN, V_SYN, D_SYN, ALPHA_SYN, ETA_SYN = 4, 40, 200, 0.3, 0.05
FIT_KW = dict(alpha=ALPHA_SYN, eta=ETA_SYN, max_iter=60, tol=1e-5)


# ----------------------------------------------------------------------------- fixtures


def sample_corpus(seed, n_docs=D_SYN, doc_len=80):
    """θ ~ Dir(α), then each document's counts ~ Mult(doc_len, θ_d β): z marginalised."""
    rng = np.random.default_rng(seed)
    # well-separated true topics: each puts most of its mass on its own block of words
    beta = 0.2 * rng.dirichlet(np.full(V_SYN, ETA_SYN), size=K_SYN)
    block = V_SYN // K_SYN
    for k in range(K_SYN):
        beta[k, k * block:(k + 1) * block] += 0.8 * rng.dirichlet(np.ones(block))
    theta = rng.dirichlet(np.full(K_SYN, ALPHA_SYN), size=n_docs)
    counts = np.stack([rng.multinomial(doc_len, p) for p in theta @ beta]).astype(float)
    return counts, beta


@pytest.fixture(scope="module")
def synthetic():
    return sample_corpus(0)


@pytest.fixture(scope="module")
def synthetic_fit(synthetic):
    counts, _ = synthetic
    return lda.fit(jax.random.key(0), counts, K_SYN, **FIT_KW)


@pytest.fixture(scope="module")
def reuters():
    X = lda_data.datasets.load_reuters().astype(np.float64)
    idx = np.random.default_rng(0).permutation(len(X))
    return X[idx[:300]], X[idx[300:]]


@pytest.fixture(scope="module")
def sklearn_reuters(reuters):
    train, _ = reuters
    return LatentDirichletAllocation(
        10, learning_method="batch", max_iter=30, doc_topic_prior=0.1, topic_word_prior=0.01,
        evaluate_every=-1, random_state=0).fit(train)


def explicit_phi(counts, gamma, lam):
    """φ_dvk ∝ exp(E log θ_dk + E log β_kv), formed in full (small corpora only)."""
    elog_theta = digamma(gamma) - digamma(gamma.sum(1, keepdims=True))
    elog_beta = digamma(lam) - digamma(lam.sum(1, keepdims=True))
    log_phi = elog_theta[:, None, :] + elog_beta.T[None, :, :]         # (D, V, K)
    return np.exp(log_phi - logsumexp(log_phi, axis=2, keepdims=True)), log_phi


# ----------------------------------------------------------------------------- scikit-learn


def test_e_step_elbo_perplexity_match_sklearn(reuters, sklearn_reuters):
    train, test = reuters
    sk = sklearn_reuters
    model = lda.LDAModel(jnp.asarray(sk.components_), jnp.asarray(0.1), jnp.asarray(0.01))
    gamma = np.asarray(lda.transform(model, train))
    sk_gamma = sk.transform(train, normalize=False)
    # same fixed-point iteration from γ = 1 with the same stopping rule
    np.testing.assert_allclose(gamma, sk_gamma, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(np.asarray(lda.transform(model, train, normalize=True)),
                               sk_gamma / sk_gamma.sum(1, keepdims=True), rtol=1e-6, atol=1e-8)
    # score = the variational bound at γ = transform(X)
    bound = float(lda.elbo(train, gamma, sk.components_, alpha=0.1, eta=0.01))
    np.testing.assert_allclose(bound, sk.score(train), rtol=1e-9)
    # held-out documents contain words unseen in training, where scikit-learn's epsilon
    # drops a word that the exact update keeps: agreement to 0.1%
    np.testing.assert_allclose(float(lda.perplexity(model, test)), sk.perplexity(test), rtol=1e-3)


def test_held_out_perplexity_close_to_sklearn(reuters, sklearn_reuters):
    train, test = reuters
    fit = lda.fit(jax.random.key(0), train, 10, alpha=0.1, eta=0.01, max_iter=30, tol=0.0)
    assert int(fit.n_iter) == 30
    ours, theirs = float(lda.perplexity(fit, test)), sklearn_reuters.perplexity(test)
    assert abs(ours / theirs - 1) < 0.10, (ours, theirs)
    # and on the training documents, where the bound is what both maximise
    assert abs(float(lda.perplexity(fit, train)) / sklearn_reuters.perplexity(train) - 1) < 0.05


def test_fit_from_sklearn_initial_topics_tracks_sklearn(reuters, sklearn_reuters):
    # scikit-learn's batch fit with random_state=0 starts from
    # check_random_state(0).gamma(100, 0.01, (K, V)); from that same λ only the E steps'
    # random starts of γ differ, so the two runs solve the same problem from the same point
    train, test = reuters
    start = lda.sklearn_initial_topics(10, train.shape[1], 0)
    fit = lda.fit(jax.random.key(0), train, 10, alpha=0.1, eta=0.01, max_iter=30, tol=0.0,
                  init_topic_word=start)
    theirs = sklearn_reuters
    assert abs(float(lda.perplexity(fit, train)) / theirs.perplexity(train) - 1) < 0.02
    assert abs(float(lda.perplexity(fit, test)) / theirs.perplexity(test) - 1) < 0.05
    # the same topics: each of ours has a counterpart with the same top word
    ours_top = np.argmax(np.asarray(fit.topic_word), axis=1)
    assert len(set(ours_top) & set(np.argmax(theirs.components_, axis=1))) >= 7


def test_sklearn_initial_topics_are_sklearns_start(reuters):
    # scikit-learn with max_iter=0 keeps the topics it starts from
    train, _ = reuters
    sk = LatentDirichletAllocation(10, learning_method="batch", max_iter=0,
                                   random_state=3).fit(train)
    start = lda.sklearn_initial_topics(10, train.shape[1], 3)
    np.testing.assert_array_equal(start, sk.components_)
    state = lda.init(jax.random.key(0), train, 10, topic_word=start)
    np.testing.assert_array_equal(np.asarray(state.topic_word), sk.components_)
    # scikit-learn's first iteration, reproduced: its E step starts γ from the same
    # RandomState stream, right after the topics; then our E and M steps give its topics
    one = LatentDirichletAllocation(10, learning_method="batch", max_iter=1, random_state=3,
                                    doc_topic_prior=0.1, topic_word_prior=0.01).fit(train)
    rs = np.random.RandomState(3)
    rs.gamma(100.0, 0.01, (10, train.shape[1]))
    gamma0 = rs.gamma(100.0, 0.01, (train.shape[0], 10))
    e = lda.e_step(start, train, gamma0, alpha=0.1)
    lam = lda.m_step(start, train, e.doc_topic, eta=0.01)
    np.testing.assert_allclose(np.asarray(lam), one.components_, rtol=1e-6, atol=1e-8)
    # and the public step from init is an EM iteration reporting its ELBO
    state, info = lda.step(state, train, alpha=0.1, eta=0.01)
    assert float(info.value) == float(state.elbo)


# ----------------------------------------------------------------------------- update equations


def test_e_step_fixed_point_satisfies_update_equations(synthetic, synthetic_fit):
    counts, _ = synthetic
    lam = np.asarray(synthetic_fit.topic_word)
    start = np.full((counts.shape[0], K_SYN), 1.0)
    e = lda.e_step(lam, counts, start, alpha=ALPHA_SYN, max_iter=5000, tol=1e-13)
    assert bool(np.all(e.converged))
    gamma = np.asarray(e.doc_topic)
    phi, _ = explicit_phi(counts, gamma, lam)
    # γ_d = α + Σ_v n_dv φ_dv with φ the optimum for this γ
    np.testing.assert_allclose(gamma, ALPHA_SYN + np.einsum("dv,dvk->dk", counts, phi),
                               rtol=1e-9, atol=1e-9)


def test_m_step_equals_explicit_phi_sum(synthetic, synthetic_fit):
    counts, _ = synthetic
    lam, gamma = np.asarray(synthetic_fit.topic_word), np.asarray(synthetic_fit.doc_topic)
    phi, _ = explicit_phi(counts, gamma, lam)
    expected = ETA_SYN + np.einsum("dv,dvk->kv", counts, phi)
    np.testing.assert_allclose(np.asarray(lda.m_step(lam, counts, gamma, eta=ETA_SYN)),
                               expected, rtol=1e-10)


def test_elbo_terms_equal_explicit_formulas(synthetic, synthetic_fit):
    counts, _ = synthetic
    lam, gamma = np.asarray(synthetic_fit.topic_word), np.asarray(synthetic_fit.doc_topic)
    terms = lda.elbo_terms(counts, gamma, lam, alpha=ALPHA_SYN, eta=ETA_SYN)
    _, log_phi = explicit_phi(counts, gamma, lam)
    np.testing.assert_allclose(float(terms.words),
                               np.sum(counts * logsumexp(log_phi, axis=2)), rtol=1e-10)

    def neg_kl(prior, params):
        # E_q[log p] = log normaliser of Dir(prior) + Σ (prior-1) E_q[log x]; -E_q[log q] = entropy
        elog = digamma(params) - digamma(params.sum(1, keepdims=True))
        size = params.shape[1]
        cross = gammaln(prior * size) - size * gammaln(prior) + ((prior - 1) * elog).sum(1)
        return np.sum(cross + np.array([dirichlet(p).entropy() for p in params]))

    np.testing.assert_allclose(float(terms.doc_topic), neg_kl(ALPHA_SYN, gamma), rtol=1e-9)
    np.testing.assert_allclose(float(terms.topic_word), neg_kl(ETA_SYN, lam), rtol=1e-9)
    assert float(lda.elbo(counts, gamma, lam, alpha=ALPHA_SYN, eta=ETA_SYN)) == pytest.approx(
        float(terms.words + terms.doc_topic + terms.topic_word), rel=1e-12)


# ----------------------------------------------------------------------------- EM behaviour


def test_elbo_never_decreases(synthetic):
    counts = synthetic[0][:60]
    # restarted E steps (the default) run to their fixed point
    fit = lda.fit(jax.random.key(1), counts, K_SYN, alpha=ALPHA_SYN, eta=ETA_SYN, max_iter=10,
                  tol=0.0, e_step_max_iter=1000, e_step_tol=1e-9)
    trace = np.asarray(fit.trace)
    assert np.all(np.isfinite(trace)) and int(fit.n_iter) == 10
    assert float(fit.elbo) == trace[-1]
    check_monotone(trace, rtol=1e-9)
    # the last trace entry is the ELBO of the returned parameters
    assert trace[-1] == pytest.approx(float(lda.elbo(counts, fit.doc_topic, fit.topic_word,
                                                     alpha=ALPHA_SYN, eta=ETA_SYN)), rel=1e-12)
    # warm-started E steps: monotone by construction, even stopped early
    warm = lda.fit(jax.random.key(1), counts, K_SYN, alpha=ALPHA_SYN, eta=ETA_SYN, max_iter=10,
                   tol=0.0, e_step_max_iter=3, warm_start=True)
    trace = np.asarray(warm.trace)
    check_monotone(trace, rtol=1e-9)


def test_topics_recovered_from_sampled_corpus(synthetic, synthetic_fit):
    _, beta = synthetic
    est = np.asarray(lda.topic_word_mean(synthetic_fit))
    np.testing.assert_allclose(est.sum(1), 1.0, rtol=1e-12)
    tv = 0.5 * np.abs(est[:, None, :] - beta[None, :, :]).sum(-1)      # (K_est, K_true)
    rows, cols = linear_sum_assignment(tv)
    assert tv[rows, cols].max() < 0.1, tv[rows, cols]
    assert bool(synthetic_fit.converged)


def test_top_words(synthetic, synthetic_fit):
    _, beta = synthetic
    vocab = [f"w{i}" for i in range(V_SYN)]
    words = lda.top_words(synthetic_fit, vocab, 5)
    lam = np.asarray(synthetic_fit.topic_word)
    assert words == [[vocab[i] for i in np.argsort(-row)[:5]] for row in lam]
    # the recovered topics' top word is a top-3 word of the matched true topic
    tv = 0.5 * np.abs(lam[:, None] / lam.sum(1)[:, None, None] - beta[None]).sum(-1)
    for k, j in zip(*linear_sum_assignment(tv)):
        assert int(words[k][0][1:]) in np.argsort(-beta[j])[:3]


# ----------------------------------------------------------------------------- transformations


def test_jit_and_vmap_over_alpha_and_corpora(synthetic, synthetic_fit):
    counts, _ = synthetic
    alphas = jnp.array([ALPHA_SYN, 1.0])
    corpora = jnp.stack([counts, counts[::-1]])
    kw = {k: v for k, v in FIT_KW.items() if k != "alpha"}
    batched = jax.jit(jax.vmap(lambda a, c: lda.fit(jax.random.key(0), c, K_SYN, alpha=a, **kw)))(
        alphas, corpora)
    singles = [synthetic_fit, lda.fit(jax.random.key(0), counts[::-1], K_SYN, alpha=1.0, **kw)]
    for i, single in enumerate(singles):
        np.testing.assert_allclose(np.asarray(batched.topic_word[i]),
                                   np.asarray(single.topic_word), rtol=1e-7)
        np.testing.assert_allclose(np.asarray(batched.trace[i]), np.asarray(single.trace),
                                   rtol=1e-10)
        assert int(batched.n_iter[i]) == int(single.n_iter)


def test_sparse_and_dense_layouts_agree(reuters, sklearn_reuters):
    # concrete counts: the E step reads each document's distinct words (a padded layout);
    # traced counts (inside jit): the dense rows. Same fixed points.
    _, test = reuters
    lam, start = sklearn_reuters.components_, np.ones((test.shape[0], 10))
    eager = lda.e_step(lam, test, start, alpha=0.1)
    traced = jax.jit(lambda c: lda.e_step(lam, c, start, alpha=0.1))(test)
    np.testing.assert_allclose(np.asarray(traced.doc_topic), np.asarray(eager.doc_topic),
                               rtol=1e-9)
    np.testing.assert_array_equal(np.asarray(traced.n_iter), np.asarray(eager.n_iter))


def test_online_sparse_and_dense_layouts_agree():
    # concrete counts with few distinct words per document: fit_online (and online_step, the
    # same kernel) lists each batch's distinct words on the host and scatters the statistics;
    # traced counts (inside jit): the dense rows. Same topics and trace, padded batch included.
    counts, _ = sample_corpus(1, n_docs=40, doc_len=10)
    assert np.count_nonzero(counts, axis=1).max() <= V_SYN // 2     # the sparse layout applies
    kw = dict(alpha=ALPHA_SYN, eta=ETA_SYN, batch_size=16, max_iter=2)
    eager = lda.fit_online(jax.random.key(0), counts, K_SYN, **kw)
    traced = jax.jit(lambda c: lda.fit_online(jax.random.key(0), c, K_SYN, **kw))(counts)
    assert int(eager.n_iter) == int(traced.n_iter) == 6
    np.testing.assert_allclose(np.asarray(eager.topic_word), np.asarray(traced.topic_word),
                               rtol=1e-10)
    np.testing.assert_allclose(np.asarray(eager.trace), np.asarray(traced.trace), rtol=1e-10)


def test_float32_stays_float32(synthetic, synthetic_fit):
    counts, beta = synthetic
    c32 = counts.astype(np.float32)
    fit32 = lda.fit(jax.random.key(0), c32, K_SYN, **FIT_KW)
    for name in ("topic_word", "doc_topic", "elbo", "trace", "alpha", "eta"):
        assert getattr(fit32, name).dtype == jnp.float32, name
    assert lda.transform(fit32, c32).dtype == jnp.float32
    assert lda.perplexity(fit32, c32).dtype == jnp.float32
    # float32 draws differ from float64 ones, so this is another run; it too recovers the topics
    est = np.asarray(lda.topic_word_mean(fit32), np.float64)
    tv = 0.5 * np.abs(est[:, None, :] - beta[None, :, :]).sum(-1)
    assert tv[linear_sum_assignment(tv)].max() < 0.1
    # and the float64 model evaluated in float32 gives the float64 perplexity
    model32 = lda.LDAModel(*(jnp.asarray(getattr(synthetic_fit, f), jnp.float32)
                             for f in ("topic_word", "alpha", "eta")))
    assert float(lda.perplexity(model32, c32)) == pytest.approx(
        float(lda.perplexity(synthetic_fit, counts)), rel=1e-4)


# ----------------------------------------------------------------------------- input


def test_non_integer_and_sparse_counts(synthetic, synthetic_fit):
    counts, _ = synthetic
    # float counts (e.g. tf-idf weights) are allowed; a scipy sparse matrix is densified
    gamma_dense = lda.transform(synthetic_fit, counts * 0.5)
    gamma_sparse = lda.transform(synthetic_fit, sp.csr_matrix(counts * 0.5))
    np.testing.assert_allclose(np.asarray(gamma_sparse), np.asarray(gamma_dense), rtol=1e-12)
    assert np.all(np.isfinite(np.asarray(gamma_dense)))


def test_bad_input(synthetic, synthetic_fit):
    counts, _ = synthetic
    key = jax.random.key(0)
    negative = counts.copy()
    negative[0, 0] = -1.0
    with pytest.raises(ValueError, match="counts"):
        lda.fit(key, negative, 3)
    with pytest.raises(ValueError, match="counts"):
        lda.fit(key, np.where(counts > 3, np.nan, counts), 3)
    with pytest.raises(ValueError, match="counts"):
        lda.fit(key, counts[0], 3)
    with pytest.raises(ValueError, match="n_topics"):
        lda.fit(key, counts, 0)
    with pytest.raises(ValueError, match="alpha"):
        lda.fit(key, counts, 3, alpha=-0.1)
    with pytest.raises(ValueError, match="eta"):
        lda.fit(key, counts, 3, eta=0.0)
    with pytest.raises(ValueError, match="tol"):
        lda.fit(key, counts, 3, tol=-1.0)
    with pytest.raises(ValueError, match="init_topic_word"):
        lda.fit(key, counts, 3, init_topic_word=np.ones((3, V_SYN - 1)))
    with pytest.raises(ValueError, match="init_topic_word"):
        lda.fit(key, counts, 3, init_topic_word=np.zeros((3, V_SYN)))
    with pytest.raises(ValueError, match="counts"):
        lda.transform(synthetic_fit, counts[:, :10])
    with pytest.raises(ValueError, match="counts"):
        lda.perplexity(synthetic_fit, negative)
    with pytest.raises(ValueError, match="vocabulary"):
        lda.top_words(synthetic_fit, ["a", "b"], 2)


def test_checks_fire_eagerly_and_under_jit_and_vmap():
    import jaxml
    counts, _ = sample_corpus(3, n_docs=12, doc_len=20)
    key = jax.random.key(0)
    kw = dict(max_iter=3, e_step_max_iter=10)
    for name in ("alpha", "eta"):
        for bad in (np.inf, np.nan, -1.0):
            with pytest.raises(ValueError, match=name):
                lda.fit(key, counts, 2, **{name: bad}, **kw)
    with pytest.raises(ValueError, match="counts"):
        lda.fit(key, np.zeros((0, 5)), 2)
    with pytest.raises(Exception, match="alpha must"):
        jax.jit(lambda a: lda.fit(key, counts, 2, alpha=a, **kw).topic_word)(-1.0)
    with pytest.raises(Exception, match="counts must"):
        jax.vmap(lambda c: lda.fit(key, c, 2, **kw).topic_word)(
            np.stack([counts, -counts])).block_until_ready()
    bad = np.array(counts, float)
    bad[0, 0] = np.nan
    with jaxml.config.runtime_checks(False):            # unchecked NaN: never "converged"
        r = jax.jit(lambda c: lda.fit(key, c, 2, **kw))(bad)
    assert not bool(r.converged)


def test_implicit_gradient_matches_finite_differences():
    counts, _ = sample_corpus(3, n_docs=15, doc_len=30)
    counts = np.asarray(counts, float)[:, :12]
    key = jax.random.key(0)
    W = np.random.default_rng(0).normal(size=(2, counts.shape[1]))

    def f(c, a, e):
        r = lda.fit(key, c, 2, alpha=a, eta=e, tol=1e-15, max_iter=3000, e_step_tol=1e-13,
                    e_step_max_iter=3000)
        return jnp.sum(jnp.log(r.topic_word) * W)

    g = jax.jit(jax.grad(f, argnums=(0, 1, 2)))(counts, 0.3, 0.1)

    # The reference: EM run for a fixed number of steps (public init + step), smooth in its
    # inputs and converged to rounding. Central differences of `fit` itself are not: its
    # stopping rule reads the relative ELBO change, quadratic in the parameters' error, so
    # it stops with λ accurate to ~1e-7 only (√eps), and differences of such fits jump with
    # their iteration count (1e-4 relative errors at h = 1e-4). The implicit derivative,
    # taken at that λ, is accurate to the same ~1e-7.
    def f_fixed(p, n_steps=100):
        c, a, e = p
        s = lda.init(key, c, 2)
        s = jax.lax.fori_loop(0, n_steps, lambda i, s: lda.step(
            s, c, alpha=a, eta=e, e_step_tol=1e-13, e_step_max_iter=3000)[0], s)
        return jnp.sum(jnp.log(s.topic_word) * W)

    h = 1e-5
    V = np.random.default_rng(1).normal(size=counts.shape) * (counts > 0)
    points = (jnp.stack([counts + h * V, counts - h * V] + [counts] * 4),
              jnp.array([.3, .3, .3 + h, .3 - h, .3, .3]),
              jnp.array([.1, .1, .1, .1, .1 + h, .1 - h]))
    vals = jax.jit(jax.vmap(f_fixed))(points)
    fd = (vals[0::2] - vals[1::2]) / (2 * h)
    np.testing.assert_allclose([np.sum(g[0] * V), g[1], g[2]], fd, rtol=1e-5)


def test_gradient_where_the_true_derivative_is_zero():
    # Σ_kv λ_kv = K·V·η + Σ counts after every EM step (φ is normalised), whatever the
    # fit's tolerance: its derivatives in (α, η) are exactly (0, K·V). The adjoint's
    # right-hand side for α is rounding noise (~1e-17), which came back NaN before the
    # adjoint solve was made scale-free.
    counts, _ = sample_corpus(3, n_docs=10, doc_len=20)
    counts = np.asarray(counts, float)[:, :10]

    def total(a, e):
        return jnp.sum(lda.fit(jax.random.key(0), counts, 2, alpha=a, eta=e, tol=1e-10,
                               max_iter=500, e_step_tol=1e-10, e_step_max_iter=500).topic_word)

    g = jax.grad(total, argnums=(0, 1))(0.3, 0.1)
    np.testing.assert_allclose(g, [0.0, 2 * counts.shape[1]], atol=1e-8)
