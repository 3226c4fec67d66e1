"""Issue 13: every valid input gives a finite answer, or says it did not (``converged=False``,
``finite=False``).

Hypothesis draws small data sets with constant and duplicated columns
(:func:`jaxml.testing.strategies.degenerate_data`), scaled by 1e-8 … 1e8, with n < d among
the shapes, in float64 and float32, and runs the closed-form fits (least squares, ridge, PCA,
naive Bayes, the Gaussian MLE: every returned number finite) and the iterative ones (lasso,
k-means, GMM, SVM: finite, or flagged). Shapes come from a short list so that each fit
compiles a handful of times, not once per example.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jaxml import gaussian, gmm, kmeans, linear, naive_bayes, pca, svm
from jaxml.testing import strategies as jst

SHAPES = [(8, 3), (4, 6)]                    # n > d and n < d
SCALES = [1e-8, 1e-4, 1.0, 1e4, 1e8]
DTYPES = [np.float64, np.float32]


class Drawn:
    def __init__(self, X, y, labels, scale):
        self.X, self.y, self.labels, self.scale = X, y, labels, scale

    def __repr__(self):
        return (f"Drawn(X={self.X!r}, dtype={self.X.dtype}, scale={self.scale:g}, "
                f"y={self.y!r}, labels={self.labels!r})")


@st.composite
def data(draw):
    n, d = draw(st.sampled_from(SHAPES))
    dtype = draw(st.sampled_from(DTYPES))
    scale = draw(st.sampled_from(SCALES))
    n_constant = draw(st.integers(0, 1))
    n_duplicated = draw(st.integers(0, 1))
    dd = draw(jst.degenerate_data(n, d, n_constant=n_constant, n_duplicated=n_duplicated,
                                  dtype=np.float64))
    X = (dd.X * scale).astype(dtype)
    y = (draw(jst.matrices((n, 1), max_condition=1.0, scale=10.0))[:, 0] * scale).astype(dtype)
    labels = draw(jst.labels(n, 2))
    return Drawn(X, y, labels, scale)


def _float_leaves(result, skip=("trace",)):
    """(path, array) for every floating leaf of a result (``trace`` is NaN past n_iter)."""
    fields = getattr(result, "_fields", None)
    if fields is None:
        items = [("result", result)]
    else:
        items = [(f, getattr(result, f)) for f in fields if f not in skip]
    out = []
    for name, value in items:
        for path, leaf in jax.tree_util.tree_leaves_with_path(value):
            a = np.asarray(leaf)
            if np.issubdtype(a.dtype, np.floating):
                out.append((f"{name}{jax.tree_util.keystr(path)}", a))
    return out


def assert_finite(result, what):
    bad = [p for p, a in _float_leaves(result) if not np.all(np.isfinite(a))]
    assert not bad, f"{what}: non-finite {bad} on a valid input"


def assert_finite_or_flagged(result, what):
    flags = {f: bool(np.all(np.asarray(getattr(result, f))))
             for f in ("converged", "finite") if f in getattr(result, "_fields", ())}
    assert flags, f"{what} has no health flag (converged/finite)"
    bad = [p for p, a in _float_leaves(result) if not np.all(np.isfinite(a))]
    if bad:
        assert not all(flags.values()), (
            f"{what}: non-finite {bad} on a valid input while {flags} says it is healthy")


fuzz = settings(max_examples=12)


@fuzz
@given(data())
def test_least_squares_and_ridge(d):
    assert_finite(linear.least_squares(d.X, d.y), "least_squares")
    for alpha in (0.0, 1.0):
        assert_finite(linear.ridge(d.X, d.y, alpha=alpha), f"ridge(alpha={alpha})")


@fuzz
@given(data())
def test_lasso(d):
    res = linear.lasso(d.X, d.y, 0.1 * d.scale, max_iter=300)
    assert_finite_or_flagged(res, "lasso")


@fuzz
@given(data())
def test_pca(d):
    k = min(d.X.shape)
    assert_finite(pca.fit(d.X, k), "pca.fit")


@fuzz
@given(data())
def test_naive_bayes(d):
    assert_finite(naive_bayes.fit_gaussian(d.X, d.labels, 2), "fit_gaussian")
    counts = np.floor(np.abs(d.X) / d.scale).astype(d.X.dtype)
    assert_finite(naive_bayes.fit_multinomial(counts, d.labels, 2), "fit_multinomial")
    # alpha = 0: a word unseen in a class has probability 0 (log −inf, not NaN), and the
    # posterior class probabilities of the training rows stay finite
    counts[:, 0] += 1                        # every class has seen some word (else 0/0)
    m0 = naive_bayes.fit_multinomial(counts, d.labels, 2, alpha=0.0)
    assert not np.any(np.isnan(np.asarray(m0.feature_log_prob))), "fit_multinomial(alpha=0)"
    proba = np.asarray(naive_bayes.predict_proba(m0, counts))
    assert np.all(np.isfinite(proba)), f"predict_proba after fit_multinomial(alpha=0): {proba}"


@fuzz
@given(data())
def test_gaussian_mle(d):
    assert_finite(gaussian.mle(d.X), "gaussian.mle")


@fuzz
@given(data())
def test_kmeans(d):
    res = kmeans.fit(jax.random.key(0), d.X, 2, max_iter=30)
    assert_finite_or_flagged(res, "kmeans.fit")


@fuzz
@given(data())
def test_gmm(d):
    res = gmm.fit(jax.random.key(0), d.X, 2, max_iter=30)
    assert_finite_or_flagged(res, "gmm.fit")


@fuzz
@given(data())
def test_svm(d):
    y = np.where(d.labels == 1, 1, -1)
    res = svm.fit(d.X, y, C=1.0, max_iter=200)
    assert_finite_or_flagged(res, "svm.fit")


@pytest.mark.parametrize("dtype", DTYPES)
def test_float32_in_float32_out(dtype):
    X = np.random.default_rng(0).normal(size=(8, 3)).astype(dtype)
    assert linear.ridge(X, X[:, 0], alpha=1.0).dtype == jnp.dtype(dtype)
    assert pca.fit(X, 2).components.dtype == jnp.dtype(dtype)
