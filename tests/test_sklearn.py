"""jaxml.sklearn: scikit-learn's own estimator checks, Pipeline/GridSearchCV, pickle, and
agreement with the scikit-learn estimator of the same name on real data."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import sklearn
from sklearn import cluster, datasets, decomposition, linear_model, mixture, naive_bayes, svm
from sklearn.model_selection import GridSearchCV
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from jaxml import sklearn as jsk

ESTIMATORS = [
    jsk.LinearRegression(), jsk.Ridge(), jsk.Lasso(), jsk.SVC(),
    jsk.GaussianNB(), jsk.MultinomialNB(), jsk.PCA(), jsk.KMeans(), jsk.GaussianMixture(),
    jsk.LatentDirichletAllocation(n_components=3, max_iter=5),
]


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=jsk.expected_failed_checks)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


# ----------------------------------------------------------------------------- data


@pytest.fixture(scope="module")
def iris():
    X, y = datasets.load_iris(return_X_y=True)
    return StandardScaler().fit_transform(X), y


@pytest.fixture(scope="module")
def diabetes():
    return datasets.load_diabetes(return_X_y=True)


@pytest.fixture(scope="module")
def cancer():
    X, y = datasets.load_breast_cancer(return_X_y=True)
    return StandardScaler().fit_transform(X), y


@pytest.fixture(scope="module")
def digits():
    return datasets.load_digits(return_X_y=True)


# ----------------------------------------------------------------------------- agreement


@pytest.mark.parametrize("fit_intercept", [True, False])
def test_linear_models_match_sklearn(diabetes, fit_intercept):
    X, y = diabetes
    pairs = [(jsk.LinearRegression(fit_intercept=fit_intercept),
              linear_model.LinearRegression(fit_intercept=fit_intercept)),
             (jsk.Ridge(0.3, fit_intercept=fit_intercept),
              linear_model.Ridge(0.3, fit_intercept=fit_intercept)),
             (jsk.Lasso(0.05, fit_intercept=fit_intercept, tol=1e-10, max_iter=100_000),
              linear_model.Lasso(0.05, fit_intercept=fit_intercept, tol=1e-10,
                                 max_iter=100_000))]
    for ours, ref in pairs:
        ours.fit(X, y), ref.fit(X, y)
        np.testing.assert_allclose(ours.coef_, ref.coef_, rtol=1e-6, atol=1e-6 * np.abs(
            ref.coef_).max())
        np.testing.assert_allclose(ours.intercept_, ref.intercept_, rtol=1e-7, atol=1e-6)
        np.testing.assert_allclose(ours.predict(X), ref.predict(X), rtol=1e-7, atol=1e-5)
        assert ours.score(X, y) == pytest.approx(ref.score(X, y), rel=1e-9)
    assert pairs[2][0].converged_ and pairs[2][0].n_iter_ >= 1


def test_svc_binary_matches_sklearn(cancer):
    X, y = cancer
    for kernel in ("rbf", "linear"):
        ours = jsk.SVC(C=1.0, kernel=kernel, tol=1e-6).fit(X, y)
        ref = svm.SVC(C=1.0, kernel=kernel, tol=1e-6).fit(X, y)
        np.testing.assert_array_equal(ours.support_, ref.support_)
        np.testing.assert_allclose(ours.dual_coef_, ref.dual_coef_, atol=1e-4)
        np.testing.assert_allclose(ours.intercept_, ref.intercept_, atol=1e-4)
        np.testing.assert_allclose(ours.decision_function(X), ref.decision_function(X),
                                   atol=1e-4)
        np.testing.assert_array_equal(ours.predict(X), ref.predict(X))
        assert ours.converged_
    np.testing.assert_allclose(ours.coef_, ref.coef_, atol=1e-4)
    with pytest.raises(AttributeError, match="linear kernel"):
        jsk.SVC().fit(X, y).coef_


def test_svc_one_vs_rest_matches_sklearn(iris):
    X, y = iris
    names = np.array(["setosa", "versicolor", "virginica"])[y]
    ours = jsk.SVC(C=2.0, kernel="poly", degree=2, coef0=1.0, tol=1e-6).fit(X, names)
    ref = OneVsRestClassifier(svm.SVC(C=2.0, kernel="poly", degree=2, coef0=1.0,
                                      tol=1e-6)).fit(X, names)
    np.testing.assert_allclose(ours.decision_function(X), ref.decision_function(X), atol=1e-4)
    np.testing.assert_array_equal(ours.predict(X), ref.predict(X))
    assert ours.dual_coef_.shape == (3, ours.support_.size)
    assert list(ours.classes_) == list(names[np.sort(np.unique(names, return_index=True)[1])])
    # a jaxml kernel object instead of a string
    from jaxml.kernels import RBF
    a = jsk.SVC(kernel=RBF(gamma=0.5), tol=1e-6).fit(X, y)
    b = svm.SVC(kernel="rbf", gamma=0.5, tol=1e-6)
    np.testing.assert_allclose(a.decision_function(X),
                               OneVsRestClassifier(b).fit(X, y).decision_function(X), atol=1e-4)


def test_naive_bayes_match_sklearn(iris, digits):
    X, y = iris
    ours, ref = jsk.GaussianNB().fit(X, y), naive_bayes.GaussianNB().fit(X, y)
    for name in ("class_count_", "class_prior_", "theta_", "var_"):
        np.testing.assert_allclose(getattr(ours, name), getattr(ref, name), rtol=1e-10)
    assert ours.epsilon_ == pytest.approx(ref.epsilon_, rel=1e-10)
    np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X), atol=1e-10)
    pri = [0.5, 0.25, 0.25]
    np.testing.assert_allclose(jsk.GaussianNB(priors=pri).fit(X, y).predict_log_proba(X),
                               naive_bayes.GaussianNB(priors=pri).fit(X, y).predict_log_proba(X),
                               rtol=1e-8, atol=1e-8)
    X, y = digits
    for kw in ({"alpha": 0.5}, {"fit_prior": False}, {"class_prior": np.full(10, 0.1)}):
        ours, ref = jsk.MultinomialNB(**kw).fit(X, y), naive_bayes.MultinomialNB(**kw).fit(X, y)
        for name in ("class_count_", "class_log_prior_", "feature_count_", "feature_log_prob_"):
            np.testing.assert_allclose(getattr(ours, name), getattr(ref, name), rtol=1e-10)
        np.testing.assert_allclose(ours.predict_log_proba(X), ref.predict_log_proba(X),
                                   rtol=1e-8, atol=1e-8)
        np.testing.assert_array_equal(ours.predict(X), ref.predict(X))


def test_pca_matches_sklearn(digits):
    X, _ = digits
    for whiten in (False, True):
        ours = jsk.PCA(10, whiten=whiten).fit(X)
        ref = decomposition.PCA(10, whiten=whiten, svd_solver="full").fit(X)
        np.testing.assert_allclose(ours.components_, ref.components_, atol=1e-8)
        for name in ("explained_variance_", "explained_variance_ratio_", "singular_values_",
                     "mean_", "noise_variance_"):
            np.testing.assert_allclose(getattr(ours, name), getattr(ref, name), rtol=1e-8)
        np.testing.assert_allclose(ours.transform(X), ref.transform(X), atol=1e-7)
        np.testing.assert_allclose(ours.inverse_transform(ours.transform(X)),
                                   ref.inverse_transform(ref.transform(X)), atol=1e-7)
    assert jsk.PCA().fit(X).n_components_ == 64


def test_kmeans_matches_sklearn_from_the_same_centres(iris):
    X, _ = iris
    init = X[[0, 50, 100, 25]]
    ours = jsk.KMeans(4, init=init).fit(X)
    ref = cluster.KMeans(4, init=init, n_init=1, algorithm="lloyd").fit(X)
    np.testing.assert_allclose(ours.cluster_centers_, ref.cluster_centers_, atol=1e-10)
    np.testing.assert_array_equal(ours.labels_, ref.labels_)
    assert ours.inertia_ == pytest.approx(ref.inertia_, rel=1e-10)
    assert ours.n_iter_ == ref.n_iter_
    np.testing.assert_allclose(ours.transform(X), ref.transform(X), atol=1e-10)
    assert ours.score(X) == pytest.approx(ref.score(X), rel=1e-10)
    # k-means++ with restarts: a different seed sequence, the same quality
    best = jsk.KMeans(3, n_init=4, random_state=0).fit(X)
    assert best.inertia_ <= cluster.KMeans(3, n_init=4, random_state=0).fit(X).inertia_ * 1.01


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
def test_gaussian_mixture_matches_sklearn_from_the_same_start(iris, covariance_type):
    X, _ = iris
    with pytest.warns(sklearn.exceptions.ConvergenceWarning):
        start = mixture.GaussianMixture(3, covariance_type=covariance_type, max_iter=1,
                                        random_state=0).fit(X)
    init = {"weights_init": start.weights_, "means_init": start.means_,
            "precisions_init": start.precisions_}
    ours = jsk.GaussianMixture(3, covariance_type=covariance_type, tol=1e-8, max_iter=500,
                               **init).fit(X)
    ref = mixture.GaussianMixture(3, covariance_type=covariance_type, tol=1e-8, max_iter=500,
                                  **init).fit(X)
    assert ours.converged_ and ref.converged_
    np.testing.assert_allclose(ours.weights_, ref.weights_, atol=1e-6)
    np.testing.assert_allclose(ours.means_, ref.means_, atol=1e-6)
    np.testing.assert_allclose(ours.covariances_, ref.covariances_, atol=1e-6)
    np.testing.assert_allclose(ours.precisions_, ref.precisions_, rtol=1e-5, atol=1e-5)
    assert ours.lower_bound_ == pytest.approx(ref.lower_bound_, rel=1e-9)
    assert abs(ours.n_iter_ - ref.n_iter_) <= 1
    np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X), atol=1e-6)
    np.testing.assert_allclose(ours.score_samples(X), ref.score_samples(X), rtol=1e-8)
    assert ours.score(X) == pytest.approx(ref.score(X), rel=1e-9)


def test_lda_matches_sklearn_from_the_same_topics():
    rng = np.random.default_rng(0)
    topics = rng.dirichlet(np.full(30, 0.2), size=3)
    theta = rng.dirichlet(np.full(3, 0.3), size=60)
    counts = np.stack([rng.multinomial(80, t @ topics) for t in theta]).astype(float)
    # E steps run to their fixed points, so the random starts of γ do not matter
    kw = {"n_components": 3, "max_iter": 3, "random_state": 0, "mean_change_tol": 1e-10,
          "max_doc_update_iter": 5000}
    ours = jsk.LatentDirichletAllocation(**kw).fit(counts)
    ref = decomposition.LatentDirichletAllocation(**kw, learning_method="batch").fit(counts)
    np.testing.assert_allclose(ours.components_, ref.components_, rtol=1e-5)
    np.testing.assert_allclose(ours.transform(counts), ref.transform(counts), atol=1e-6)
    assert ours.score(counts) == pytest.approx(ref.score(counts), rel=1e-8)
    assert ours.perplexity(counts) == pytest.approx(ref.perplexity(counts), rel=1e-8)
    assert ours.bound_ == pytest.approx(ref.bound_, rel=1e-6)
    assert ours.n_iter_ == ref.n_iter_ == 3


# ----------------------------------------------------------------------------- composition


def test_pipeline_and_grid_search(iris, digits):
    X, y = iris
    grid = GridSearchCV(make_pipeline(StandardScaler(), jsk.SVC()),
                        {"svc__C": [0.1, 10.0], "svc__kernel": ["rbf", "linear"]}, cv=3)
    grid.fit(X, y)
    assert grid.best_score_ > 0.9 and set(grid.predict(X)) <= {0, 1, 2}
    pipe = make_pipeline(jsk.PCA(2), jsk.GaussianNB()).fit(X, y)
    assert pipe.score(X, y) > 0.85
    Xd, yd = digits
    grid = GridSearchCV(jsk.MultinomialNB(), {"alpha": [0.01, 1.0]}, cv=3).fit(Xd, yd)
    assert grid.best_estimator_.alpha in (0.01, 1.0)
    Xr, yr = datasets.load_diabetes(return_X_y=True)
    grid = GridSearchCV(jsk.Ridge(), {"alpha": [1e-3, 1e-1, 10.0]}, cv=3).fit(Xr, yr)
    ref = GridSearchCV(linear_model.Ridge(), {"alpha": [1e-3, 1e-1, 10.0]}, cv=3).fit(Xr, yr)
    assert grid.best_params_ == ref.best_params_
    np.testing.assert_allclose(grid.cv_results_["mean_test_score"],
                               ref.cv_results_["mean_test_score"], rtol=1e-8)


def test_pickle_round_trip(iris):
    X, y = iris
    for est in (jsk.SVC(), jsk.KMeans(3, random_state=0), jsk.GaussianMixture(2, random_state=0),
                jsk.PCA(2), jsk.Lasso(0.1), jsk.GaussianNB()):
        est.fit(X, y)
        arrays = {k: v for k, v in vars(est).items() if k.endswith("_") and not k.startswith("_")}
        assert all(isinstance(v, (np.ndarray, float, int, bool)) for v in arrays.values()), arrays
        back = pickle.loads(pickle.dumps(est))
        out = "predict" if hasattr(est, "predict") else "transform"
        np.testing.assert_array_equal(getattr(back, out)(X), getattr(est, out)(X))
        for k, v in arrays.items():
            np.testing.assert_array_equal(getattr(back, k), v)


def test_float32_in_float32_out(iris):
    X, y = iris
    X = X.astype(np.float32)
    assert jsk.PCA(2).fit(X).components_.dtype == np.float32
    assert jsk.KMeans(3, random_state=0).fit(X).cluster_centers_.dtype == np.float32
    assert jsk.Ridge().fit(X, y).coef_.dtype == np.float32


def test_bad_hyperparameters_are_loud(iris):
    X, y = iris
    with pytest.raises(ValueError, match="kernel"):
        jsk.SVC(kernel="sigmoid").fit(X, y)
    with pytest.raises(ValueError, match="alpha"):
        jsk.Ridge(alpha=-1.0).fit(X, y)
    with pytest.raises(ValueError, match="n_samples=150 should be >= n_clusters=200"):
        jsk.KMeans(200).fit(X)
    with pytest.raises(ValueError, match="n_components"):
        jsk.PCA(5).fit(X)
    with pytest.raises(ValueError, match="Negative"):
        jsk.LatentDirichletAllocation().fit(-np.abs(X))
