"""jaxml.kmeans' nearest-centroid assignment (the (k, b) running minimum) against numpy."""

import numpy as np
import pytest

from jaxml import kmeans


def _numpy_labels(X, C):
    d2 = ((X[:, None, :] - C[None]) ** 2).sum(-1)
    return np.argmin(d2, axis=1)            # the first minimiser on ties


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("k", [1, 5, 64, 100])   # unrolled (k ≤ 64) and chunked (k > 64)
def test_predict_is_numpy_argmin_with_exact_ties(k, dtype):
    # small integer coordinates: every distance is an exact integer, so many rows are
    # exactly equidistant from several centroids and the first of them must win
    rng = np.random.default_rng(k)
    C = rng.integers(-2, 3, size=(k, 3)).astype(dtype)
    X = rng.integers(-3, 4, size=(700, 3)).astype(dtype)
    d2 = ((X[:, None, :] - C[None]) ** 2).sum(-1)
    if k > 1:
        assert np.any((d2 == d2.min(1, keepdims=True)).sum(1) > 1)     # ties are present
    np.testing.assert_array_equal(kmeans.predict(C, X), _numpy_labels(X, C))


def test_fit_labels_are_numpy_argmin_on_many_clusters():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(900, 4))
    r = kmeans.fit(None, X, 70, init=X[:70], max_iter=5, tol=0.0)
    np.testing.assert_array_equal(r.labels, _numpy_labels(X, np.asarray(r.centroids)))


def test_predict_resolves_a_near_tie_in_the_last_bits():
    # ‖0 − c₀‖² = (1 + 2⁻⁵²)² = 1 + 2⁻⁵¹ exceeds ‖0 − c₁‖² = 1 by two units in the last
    # place: the index-carrying keys (low bits replaced by the index) cannot tell them
    # apart, so the exact search must decide, and it picks c₁ as numpy does
    a = np.nextafter(1.0, 2.0)
    C = np.array([[a, 0.0], [1.0, 0.0], [3.0, 0.0]])
    X = np.zeros((5, 2))
    assert np.all(_numpy_labels(X, C) == 1)
    np.testing.assert_array_equal(kmeans.predict(C, X), _numpy_labels(X, C))
