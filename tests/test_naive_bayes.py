"""jaxml.naive_bayes against scikit-learn's GaussianNB and MultinomialNB on real data."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_digits, load_iris, load_wine
from sklearn.naive_bayes import GaussianNB, MultinomialNB

from jaxml import naive_bayes as nb
from jaxml.testing import check_gradient, check_jvp

LOADERS = {"iris": load_iris, "wine": load_wine, "breast_cancer": load_breast_cancer,
           "digits": load_digits}


@pytest.fixture(scope="module")
def data():
    return {name: load(return_X_y=True) for name, load in LOADERS.items()}


def _split(X, y):
    return (X[::2], y[::2]), (X[1::2], y[1::2])


@pytest.mark.parametrize("name", ["iris", "wine", "breast_cancer", "digits"])
@pytest.mark.parametrize("var_smoothing", [1e-9, 1e-2])
def test_gaussian_matches_sklearn(data, name, var_smoothing):
    # digits: C·d = 640, so prediction runs in row blocks of 409 (4 blocks + remainder).
    X, y = data[name]
    (Xtr, ytr), (Xte, _) = _split(X, y)
    C = int(y.max()) + 1
    m = nb.fit_gaussian(Xtr, ytr, C, var_smoothing=var_smoothing)
    sk = GaussianNB(var_smoothing=var_smoothing).fit(Xtr, ytr)
    np.testing.assert_allclose(m.theta, sk.theta_, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(m.var, sk.var_, rtol=1e-10)
    np.testing.assert_allclose(m.epsilon, sk.epsilon_, rtol=1e-12)
    np.testing.assert_allclose(np.exp(m.class_log_prior), sk.class_prior_, rtol=1e-12)
    np.testing.assert_allclose(nb.predict_proba(m, Xte), sk.predict_proba(Xte), atol=1e-8)
    np.testing.assert_array_equal(nb.predict(m, Xte), sk.predict(Xte))


@pytest.mark.parametrize("alpha", [1.0, 0.3])
def test_multinomial_matches_sklearn_on_digits(data, alpha):
    X, y = data["digits"]
    (Xtr, ytr), (Xte, _) = _split(X, y)
    m = nb.fit_multinomial(Xtr, ytr, 10, alpha=alpha)
    sk = MultinomialNB(alpha=alpha).fit(Xtr, ytr)
    np.testing.assert_allclose(m.feature_log_prob, sk.feature_log_prob_, rtol=1e-12)
    np.testing.assert_allclose(m.class_log_prior, sk.class_log_prior_, rtol=1e-12)
    np.testing.assert_allclose(m.feature_count, sk.feature_count_, rtol=1e-12)
    np.testing.assert_allclose(nb.predict_proba(m, Xte), sk.predict_proba(Xte), atol=1e-8)
    np.testing.assert_allclose(nb.predict_log_proba(m, Xte), sk.predict_log_proba(Xte),
                               rtol=1e-9, atol=1e-9)
    np.testing.assert_array_equal(nb.predict(m, Xte), sk.predict(Xte))


def test_log_proba_normalised_and_consistent(data):
    X, y = data["wine"]
    m = nb.fit_gaussian(X, y, 3)
    lp = np.asarray(nb.predict_log_proba(m, X))
    np.testing.assert_allclose(np.exp(lp).sum(1), 1.0, rtol=1e-12)
    jll = np.asarray(nb.joint_log_likelihood(m, X))
    np.testing.assert_allclose(lp, jll - np.logaddexp.reduce(jll, axis=1, keepdims=True),
                               atol=1e-10)


def test_absent_class_gets_probability_zero(data):
    X, y = data["iris"]
    m = nb.fit_gaussian(X, y, 4)                          # class 3 never seen
    p = np.asarray(nb.predict_proba(m, X))
    assert np.all(np.isfinite(p)) and np.all(p[:, 3] == 0)
    np.testing.assert_allclose(p[:, :3], GaussianNB().fit(X, y).predict_proba(X), atol=1e-8)
    mm = nb.fit_multinomial(X, y, 4)
    pm = np.asarray(nb.predict_proba(mm, X))
    assert np.all(np.isfinite(pm)) and np.all(pm[:, 3] == 0)


def test_constant_features_do_not_give_nan():
    X = np.ones((6, 2))
    y = np.array([0, 0, 0, 1, 1, 1])
    p = np.asarray(nb.predict_proba(nb.fit_gaussian(X, y, 2), X))
    np.testing.assert_allclose(p, 0.5)                   # equal priors, identical classes


def test_jit_and_vmap_over_datasets(data):
    X, y = data["wine"]
    rng = np.random.default_rng(0)
    idx = np.stack([rng.choice(len(y), len(y)) for _ in range(4)])     # bootstrap resamples
    Xs, ys = X[idx], y[idx]
    probs = jax.jit(jax.vmap(lambda X, y: nb.predict_proba(nb.fit_gaussian(X, y, 3), X)))(Xs, ys)
    for i in range(4):
        sk = GaussianNB().fit(Xs[i], ys[i])
        np.testing.assert_allclose(probs[i], sk.predict_proba(Xs[i]), atol=1e-8)


def test_vmap_over_hyperparameters(data):
    X, y = data["digits"]
    alphas = jnp.array([0.1, 1.0, 3.0])
    probs = jax.vmap(lambda a: nb.predict_proba(nb.fit_multinomial(X, y, 10, alpha=a), X))(alphas)
    smooth = jnp.array([1e-9, 1e-3, 1e-1])
    gprobs = jax.vmap(lambda s: nb.predict_proba(nb.fit_gaussian(X, y, 10, var_smoothing=s),
                                                 X[:50]))(smooth)
    for i in range(3):
        sk = MultinomialNB(alpha=float(alphas[i])).fit(X, y)
        np.testing.assert_allclose(probs[i], sk.predict_proba(X), atol=1e-8)
        skg = GaussianNB(var_smoothing=float(smooth[i])).fit(X, y)
        np.testing.assert_allclose(gprobs[i], skg.predict_proba(X[:50]), atol=1e-8)


def test_float32_stays_float32(data):
    X, y = data["breast_cancer"]
    X32 = X.astype(np.float32)
    m = nb.fit_gaussian(X32, y, 2)
    assert all(a.dtype == jnp.float32 for a in m)
    p = nb.predict_proba(m, X32)
    assert p.dtype == jnp.float32
    np.testing.assert_allclose(p, GaussianNB().fit(X, y).predict_proba(X), atol=1e-3)
    Xd, yd = data["digits"]
    mm = nb.fit_multinomial(Xd.astype(np.float32), yd, 10)
    assert nb.predict_log_proba(mm, Xd.astype(np.float32)).dtype == jnp.float32


def test_bad_input(data):
    X, y = data["iris"]
    with pytest.raises(ValueError, match="y"):
        nb.fit_gaussian(X, y, 2)                          # label 2 outside 0..1
    with pytest.raises(ValueError, match="y"):
        nb.fit_gaussian(X, -y, 3)
    with pytest.raises(TypeError, match="y"):
        nb.fit_gaussian(X, y + 0.5, 3)
    with pytest.raises(ValueError, match="same number of rows"):
        nb.fit_gaussian(X, y[:-1], 3)
    with pytest.raises(ValueError, match="var_smoothing"):
        nb.fit_gaussian(X, y, 3, var_smoothing=-1.0)
    with pytest.raises(ValueError, match="X"):
        nb.fit_multinomial(X - 5.0, y, 3)                 # negative counts
    with pytest.raises(ValueError, match="alpha"):
        nb.fit_multinomial(X, y, 3, alpha=-0.1)
    m = nb.fit_gaussian(X, y, 3)
    with pytest.raises(ValueError, match="features"):
        nb.predict(m, X[:, :3])
    with pytest.raises(TypeError, match="model"):
        nb.predict_proba((m.theta, m.var), X)
    bad = X.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="X"):
        nb.fit_gaussian(bad, y, 3)


def test_multinomial_alpha_zero_unseen_word_is_minus_inf_not_nan():
    X = np.array([[2.0, 1.0, 0.0], [1.0, 3.0, 0.0], [0.0, 1.0, 4.0], [0.0, 2.0, 1.0]])
    y = np.array([0, 0, 1, 1])
    m = nb.fit_multinomial(X, y, 3, alpha=0.0)          # class 2 empty, word 2 unseen in 0
    flp = np.asarray(m.feature_log_prob)
    assert not np.any(np.isnan(flp))
    assert np.isneginf(flp[0, 2]) and np.isneginf(flp[1, 0])
    np.testing.assert_allclose(np.exp(flp[0]).sum(), 1.0)
    p = np.asarray(nb.predict_proba(m, np.array([[1.0, 1.0, 0.0], [0.0, 1.0, 1.0]])))
    assert np.all(np.isfinite(p))
    np.testing.assert_allclose(p, [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], atol=1e-12)


def test_checks_fire_eagerly_and_under_jit_and_vmap(data):
    X, y = data["iris"]
    for bad in (np.inf, np.nan):
        with pytest.raises(ValueError, match="var_smoothing"):
            nb.fit_gaussian(X, y, 3, var_smoothing=bad)
        with pytest.raises(ValueError, match="alpha"):
            nb.fit_multinomial(X, y, 3, alpha=bad)
    with pytest.raises(ValueError, match="X"):
        nb.fit_gaussian(np.zeros((0, 4)), np.zeros((0,), int), 3)
    Xn = X.copy()
    Xn[3, 1] = np.nan
    with pytest.raises(Exception, match="X must|X contains"):
        jax.jit(lambda X: nb.fit_gaussian(X, y, 3).theta)(Xn).block_until_ready()
    with pytest.raises(Exception, match="alpha must"):
        jax.jit(lambda a: nb.fit_multinomial(X, y, 3, alpha=a).feature_log_prob)(-1.0)
    with pytest.raises(Exception, match="var_smoothing must"):
        jax.vmap(lambda v: nb.fit_gaussian(X, y, 3, var_smoothing=v).var)(
            jnp.array([1e-9, np.inf])).block_until_ready()
    with pytest.raises(Exception, match="y must"):
        jax.jit(lambda y: nb.fit_gaussian(X, y, 3).theta)(
            np.where(np.arange(len(y)) == 0, 7, y)).block_until_ready()


def test_gradient_of_closed_form_fit_matches_finite_differences(data):
    X, y = data["iris"]
    f = lambda X, v: jnp.sum(nb.fit_gaussian(X, y, 3, var_smoothing=v).var ** 2)
    gX, gv = jax.grad(f, argnums=(0, 1))(X, 1e-2)
    V = np.random.default_rng(0).normal(size=X.shape)
    fd = dict(step=1e-5, fd_rtol=1e-6, autodiff=False, richardson=False, batched=False)
    check_jvp(lambda X: f(X, 1e-2), lambda X, v: jnp.vdot(gX, v), X, V, **fd)
    check_gradient(lambda v: f(X, v), lambda v: gv, jnp.asarray(1e-2), **fd)
