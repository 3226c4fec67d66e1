"""scikit-learn estimators over the functional core.

Each class keeps scikit-learn's conventions: the constructor stores its hyperparameters and
nothing else, ``fit`` validates the data, calls one jaxml fit and stores the fitted
attributes under scikit-learn's names as NumPy arrays (so an estimator pickles with the
standard ``pickle``, clones, and works inside ``Pipeline`` and ``GridSearchCV``);
``get_params``/``set_params`` come from ``sklearn.base.BaseEstimator``. Class labels may be
any hashable values: they are mapped to 0..K−1 by ``np.unique`` at the boundary and back in
``predict``.

| estimator | jaxml fit | fitted attributes |
|---|---|---|
| `LinearRegression` | `linear.least_squares` on centred data | `coef_`, `intercept_` |
| `Ridge` | `linear.ridge` on centred data | `coef_`, `intercept_` |
| `Lasso` | `linear.lasso` on centred data | `coef_`, `intercept_`, `n_iter_`, `dual_gap_`, `converged_` |
| `SVC` | `svm.fit` (binary), `svm.fit_one_vs_rest` | `support_`, `support_vectors_`, `dual_coef_`, `intercept_`, `coef_` (linear) |
| `GaussianNB` | `naive_bayes.fit_gaussian` | `class_count_`, `class_prior_`, `theta_`, `var_`, `epsilon_` |
| `MultinomialNB` | `naive_bayes.fit_multinomial` | `class_count_`, `class_log_prior_`, `feature_count_`, `feature_log_prob_` |
| `PCA` | `pca.fit` | `components_`, `explained_variance_`, `explained_variance_ratio_`, `mean_` … |
| `KMeans` | `kmeans.fit` | `cluster_centers_`, `labels_`, `inertia_`, `n_iter_`, `converged_` |
| `GaussianMixture` | `gmm.fit` | `weights_`, `means_`, `covariances_`, `precisions_`, `lower_bound_`, `n_iter_`, `converged_` |
| `LatentDirichletAllocation` | `lda.fit` | `components_`, `n_iter_`, `converged_`, `bound_` |

Where scikit-learn's algorithm is the same (closed forms, the lasso's objective and
duality-gap rule, SMO on the same dual, naive Bayes, PCA, Lloyd from the same centres, EM
from the same start, batch variational EM from the same topics) the fitted attributes agree
with scikit-learn's to solver tolerance. Differences: ``SVC`` is one-vs-rest for more than
two classes (scikit-learn's is one-vs-one), so ``dual_coef_`` is (K, n_SV) with one row per
class against the rest and ``decision_function`` returns the K one-vs-rest scores; there is
no ``sample_weight``, no ``class_weight`` and no multi-output regression. The numbers follow
JAX's precision: enable ``jax_enable_x64`` for float64 results.

The checks scikit-learn's ``parametrize_with_checks`` runs all pass;
:func:`expected_failed_checks` names any that cannot, with the reason, and is meant for
``parametrize_with_checks(..., expected_failed_checks=expected_failed_checks)``.

Reference: F. Pedregosa et al., "Scikit-learn: machine learning in Python", JMLR 12 (2011);
L. Buitinck et al., "API design for machine learning software: experiences from the
scikit-learn project" (2013).
"""

from __future__ import annotations

import numbers
import warnings

import jax
import numpy as np

try:
    import sklearn  # noqa: F401
except ImportError as err:  # pragma: no cover
    raise ImportError("jaxml.sklearn needs scikit-learn >= 1.6: pip install scikit-learn") from err
from sklearn.base import (BaseEstimator, ClassifierMixin, ClassNamePrefixFeaturesOutMixin,
                          ClusterMixin, DensityMixin, RegressorMixin, TransformerMixin)
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, check_non_negative, validate_data

from jaxml import gmm as _gmm
from jaxml import kernels as _kernels
from jaxml import kmeans as _kmeans
from jaxml import lda as _lda
from jaxml import linear as _linear
from jaxml import naive_bayes as _nb
from jaxml import pca as _pca
from jaxml import svm as _svm

__all__ = [
    "LinearRegression", "Ridge", "Lasso", "SVC", "GaussianNB", "MultinomialNB", "PCA",
    "KMeans", "GaussianMixture", "LatentDirichletAllocation", "expected_failed_checks",
]

_FLOATS = (np.float64, np.float32)


def expected_failed_checks(estimator) -> dict[str, str]:
    """The scikit-learn estimator checks ``estimator`` is known not to pass, with reasons.

    Pass it to ``sklearn.utils.estimator_checks.parametrize_with_checks(estimators,
    expected_failed_checks=expected_failed_checks)`` (or ``check_estimator``).

    Args:
        estimator: an instance of one of this module's estimators.

    Returns:
        ``{check name: reason}`` (empty when every check passes).
    """
    return dict(getattr(estimator, "_expected_failed_checks", {}))


def _np(a) -> np.ndarray:
    """A fitted JAX array as a NumPy array (a copy, writable, dtype kept)."""
    return np.array(a)


def _key(random_state) -> jax.Array:
    """A new-style JAX key drawn from scikit-learn's ``random_state`` (None, int, RandomState)."""
    return jax.random.key(check_random_state(random_state).randint(np.iinfo(np.int32).max))


def _check_int(value, name: str, low: int) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < low:
        raise ValueError(f"{name} must be >= {low}, got {value}")
    return int(value)


def _check_number(value, name: str, *, positive: bool = False) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    if not np.isfinite(value) or value < 0 or (positive and value == 0):
        raise ValueError(f"{name} must be {'> 0' if positive else '>= 0'} and finite, got {value}")
    return float(value)


def _warn_not_converged(converged, what: str) -> None:
    if not bool(np.all(converged)):
        warnings.warn(f"{what} did not converge; increase max_iter or tol.", ConvergenceWarning,
                      stacklevel=3)


class _Labels:
    """Classifier plumbing: hashable labels ↔ 0..K−1 through ``np.unique``."""

    def _encode(self, y) -> np.ndarray:
        check_classification_targets(y)
        self.classes_, codes = np.unique(y, return_inverse=True)
        return codes.astype(np.int32)

    def _decode(self, codes) -> np.ndarray:
        return self.classes_[np.asarray(codes)]


class _Counts:
    """Non-negative count matrices in (scipy sparse accepted and densified)."""

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.positive_only = True
        tags.input_tags.sparse = True
        return tags

    def _counts(self, X, where: str, *, y="no_validation", reset: bool = False):
        """Validated dense counts X (and y, unless it is validate_data's "no_validation")."""
        supervised = not (isinstance(y, str) and y == "no_validation")
        out = validate_data(self, X, y, dtype=_FLOATS, accept_sparse=True, reset=reset)
        X = out[0] if supervised else out
        X = X.toarray() if hasattr(X, "toarray") else X
        check_non_negative(X, f"{type(self).__name__}.{where}")
        return (X, out[1]) if supervised else X


# ----------------------------------------------------------------------------- linear models


class _LinearModel(RegressorMixin, BaseEstimator):
    """Centring like scikit-learn: fit on (X − x̄, y − ȳ), then b = ȳ − x̄ᵀw. Subclasses
    define ``_solve(X, y) -> w`` on the centred data."""

    def fit(self, X, y):
        """Fit on X (n, d) and targets y (n,); returns ``self``."""
        X, y = validate_data(self, X, y, dtype=_FLOATS, y_numeric=True)
        y = y.astype(X.dtype, copy=False)
        if self.fit_intercept:
            x_mean, y_mean = X.mean(axis=0), y.mean()
            w = self._solve(X - x_mean, y - y_mean)
            self.coef_ = w
            self.intercept_ = float(y_mean - x_mean @ w)
        else:
            self.coef_ = self._solve(X, y)
            self.intercept_ = 0.0
        return self

    def predict(self, X):
        """Predictions Xw + b for X (m, d): (m,)."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=_FLOATS, reset=False)
        return X @ self.coef_ + self.intercept_


class LinearRegression(_LinearModel):
    """Ordinary least squares, min ‖y − Xw − b‖² (scikit-learn ``LinearRegression``).

    Solved by :func:`jaxml.linear.least_squares` (SVD; the minimum-norm solution when XᵀX is
    singular) on centred data.

    Args:
        fit_intercept: fit b (centring X and y) or not.

    Attributes:
        coef_: (d,) weights. intercept_: float. n_features_in_: d.
    """

    def __init__(self, *, fit_intercept: bool = True):
        self.fit_intercept = fit_intercept

    def _solve(self, X, y):
        return _np(_linear.least_squares(X, y))


class Ridge(_LinearModel):
    """Ridge regression, min ‖y − Xw − b‖² + α‖w‖² (scikit-learn ``Ridge``).

    Solved by :func:`jaxml.linear.ridge` on centred data (the intercept is not penalized).

    Args:
        alpha: penalty α ≥ 0.
        fit_intercept: fit b (centring X and y) or not.

    Attributes:
        coef_: (d,) weights. intercept_: float. n_features_in_: d.
    """

    def __init__(self, alpha: float = 1.0, *, fit_intercept: bool = True):
        self.alpha = alpha
        self.fit_intercept = fit_intercept

    def _solve(self, X, y):
        return _np(_linear.ridge(X, y, _check_number(self.alpha, "alpha")))


class Lasso(_LinearModel):
    """Lasso, min (1/2n)‖y − Xw − b‖² + α‖w‖₁ (scikit-learn ``Lasso``).

    Solved by :func:`jaxml.linear.lasso` (FISTA, stopped on scikit-learn's duality-gap rule
    gap ≤ tol·‖y − ȳ‖²/n) on centred data. A fit that hits ``max_iter`` warns with
    ``ConvergenceWarning``, as scikit-learn does.

    Args:
        alpha: penalty α ≥ 0.
        fit_intercept: fit b (centring X and y) or not.
        max_iter: bound on FISTA iterations.
        tol: relative duality-gap tolerance.

    Attributes:
        coef_: (d,) weights. intercept_: float. n_iter_: int. dual_gap_: float.
        converged_: bool. n_features_in_: d.
    """

    def __init__(self, alpha: float = 1.0, *, fit_intercept: bool = True, max_iter: int = 1000,
                 tol: float = 1e-4):
        self.alpha = alpha
        self.fit_intercept = fit_intercept
        self.max_iter = max_iter
        self.tol = tol

    def _solve(self, X, y):
        res = _linear.lasso(X, y, _check_number(self.alpha, "alpha"),
                            tol=_check_number(self.tol, "tol"),
                            max_iter=_check_int(self.max_iter, "max_iter", 1))
        self.n_iter_ = int(res.n_iter)
        self.dual_gap_ = float(res.duality_gap)
        self.converged_ = bool(res.converged)
        _warn_not_converged(res.converged, "Lasso")
        return _np(res.w)


# ----------------------------------------------------------------------------- SVM


class SVC(ClassifierMixin, _Labels, BaseEstimator):
    """Support vector classifier by SMO (scikit-learn ``SVC``), one-vs-rest for K > 2.

    Solves the soft-margin dual max Σαᵢ − ½Σᵢⱼαᵢαⱼyᵢyⱼk(xᵢ, xⱼ), 0 ≤ αᵢ ≤ C, Σαᵢyᵢ = 0, with
    :func:`jaxml.svm.fit` (two classes: y = +1 for ``classes_[1]``, as scikit-learn) or
    :func:`jaxml.svm.fit_one_vs_rest` (K > 2: class c against the rest, all K problems in
    one vmapped solve). The decision function is f(x) = Σᵢ dual_coefᵢ k(svᵢ, x) + b.

    Args:
        C: box bound > 0.
        kernel: ``"linear"``, ``"rbf"``, ``"poly"`` (scikit-learn's strings, with ``gamma``,
            ``degree``, ``coef0``) or a :class:`jaxml.kernels.Kernel` instance (then
            ``gamma``, ``degree`` and ``coef0`` are ignored).
        degree: degree of ``"poly"``.
        gamma: ``"scale"`` (1/(d·Var X)), ``"auto"`` (1/d) or a float > 0.
        coef0: constant of ``"poly"``.
        tol: KKT-violation tolerance (libsvm's ``eps``).
        max_iter: bound on SMO pair updates; −1 means jaxml's default max(100 000, 20n).

    Attributes:
        classes_: (K,) labels. support_: (n_SV,) indices of the training points with αᵢ > 0
        in any problem, grouped by class as scikit-learn's. n_support_: (K,) support vectors
        per class. support_vectors_: (n_SV, d). dual_coef_: (1, n_SV) αᵢyᵢ for two
        classes, (K, n_SV) for K > 2 (row c: class c against the rest). intercept_: (1,) or
        (K,). coef_: (1, d) or (K, d), linear kernel only. n_iter_: (1,) or (K,) SMO steps.
        converged_: bool, every problem converged. n_features_in_: d.
    """

    def __init__(self, C: float = 1.0, *, kernel="rbf", degree: int = 3, gamma="scale",
                 coef0: float = 0.0, tol: float = 1e-3, max_iter: int = -1):
        self.C = C
        self.kernel = kernel
        self.degree = degree
        self.gamma = gamma
        self.coef0 = coef0
        self.tol = tol
        self.max_iter = max_iter

    def _make_kernel(self, X: np.ndarray):
        if isinstance(self.kernel, _kernels.Kernel):
            return self.kernel
        if self.kernel == "linear":
            return _kernels.Linear()
        if self.gamma == "scale":
            var = float(X.var())
            gamma = 1.0 / (X.shape[1] * var) if var > 0 else 1.0
        elif self.gamma == "auto":
            gamma = 1.0 / X.shape[1]
        else:
            gamma = _check_number(self.gamma, "gamma", positive=True)
        if self.kernel == "rbf":
            return _kernels.RBF(gamma=gamma)
        if self.kernel == "poly":
            return _kernels.Polynomial(degree=_check_int(self.degree, "degree", 1), gamma=gamma,
                                       coef0=float(self.coef0))
        raise ValueError(f"kernel must be 'linear', 'rbf', 'poly' or a jaxml.kernels.Kernel, "
                         f"got {self.kernel!r}")

    def fit(self, X, y):
        """Fit on X (n, d) and labels y (n,) of at least two classes; returns ``self``."""
        X, y = validate_data(self, X, y, dtype=_FLOATS)
        codes = self._encode(y)
        k = len(self.classes_)
        if k < 2:
            raise ValueError(f"The number of classes has to be greater than one; got {k} class")
        C = _check_number(self.C, "C", positive=True)
        tol = _check_number(self.tol, "tol", positive=True)
        max_iter = None if self.max_iter == -1 else _check_int(self.max_iter, "max_iter", 1)
        kernel = self._make_kernel(X)
        if k == 2:
            m = _svm.fit(X, np.where(codes == 1, 1.0, -1.0).astype(X.dtype), C=C, kernel=kernel,
                         tol=tol, max_iter=max_iter)
            coef = np.atleast_2d(_np(m.alpha * m.y))
        else:
            m = _svm.fit_one_vs_rest(X, codes, k, C=C, kernel=kernel, tol=tol,
                                     max_iter=max_iter)
            coef = _np(m.alpha * m.Y)
        support = np.flatnonzero(np.any(np.atleast_2d(_np(m.support)), axis=0))
        support = support[np.argsort(codes[support], kind="stable")]   # grouped by class
        self.support_ = support.astype(np.int32)
        self.n_support_ = np.bincount(codes[support], minlength=k).astype(np.int32)
        self.support_vectors_ = X[support]
        self.dual_coef_ = coef[:, support]
        self.intercept_ = np.atleast_1d(_np(m.b))
        self.n_iter_ = np.atleast_1d(_np(m.n_iter))
        self.converged_ = bool(np.all(_np(m.converged)))
        self._kernel = kernel
        _warn_not_converged(self.converged_, "SVC")
        return self

    @property
    def coef_(self) -> np.ndarray:
        """(1, d) or (K, d) primal weights Σᵢ dual_coefᵢ svᵢ (linear kernel only)."""
        check_is_fitted(self)
        if not isinstance(self._kernel, _kernels.Linear):
            raise AttributeError("coef_ is only available when using a linear kernel")
        return self.dual_coef_ @ self.support_vectors_

    def decision_function(self, X):
        """Scores for X (m, d): (m,) for two classes (> 0 ↦ ``classes_[1]``), else (m, K)."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=_FLOATS, reset=False)
        K = _np(_kernels.gram(self._kernel, X, self.support_vectors_.astype(X.dtype)))
        scores = K @ self.dual_coef_.T + self.intercept_
        return scores[:, 0] if len(self.classes_) == 2 else scores

    def predict(self, X):
        """Labels of X (m, d): (m,) values of ``classes_``."""
        scores = self.decision_function(X)
        codes = (scores > 0).astype(int) if scores.ndim == 1 else np.argmax(scores, axis=1)
        return self._decode(codes)


# ----------------------------------------------------------------------------- naive Bayes


class _NaiveBayes(ClassifierMixin, _Labels, BaseEstimator):
    """Shared fit/predict over jaxml.naive_bayes; subclasses define ``_model()``."""

    def _check_X(self, X):
        check_is_fitted(self)
        return validate_data(self, X, dtype=_FLOATS, reset=False)

    def predict_log_proba(self, X):
        """log p(c | x) for X (m, d): (m, K)."""
        X = self._check_X(X)
        return _np(_nb.predict_log_proba(self._model(), X))

    def predict_proba(self, X):
        """p(c | x) for X (m, d): (m, K), rows summing to 1."""
        X = self._check_X(X)
        return _np(_nb.predict_proba(self._model(), X))

    def predict(self, X):
        """Most probable class of each row of X (m, d): (m,) values of ``classes_``."""
        X = self._check_X(X)
        return self._decode(_np(_nb.predict(self._model(), X)))


class GaussianNB(_NaiveBayes):
    """Gaussian naive Bayes (scikit-learn ``GaussianNB``) by :func:`jaxml.naive_bayes.fit_gaussian`.

    p(c | x) ∝ π_c Πⱼ N(xⱼ | θ_cj, σ²_cj), with σ² floored by var_smoothing·maxⱼ Var(X[:, j]).

    Args:
        priors: optional (K,) class priors (default: the class frequencies).
        var_smoothing: ≥ 0, the relative variance floor.

    Attributes:
        classes_: (K,). class_count_: (K,). class_prior_: (K,). theta_: (K, d) means.
        var_: (K, d) variances. epsilon_: float. n_features_in_: d.
    """

    def __init__(self, *, priors=None, var_smoothing: float = 1e-9):
        self.priors = priors
        self.var_smoothing = var_smoothing

    def fit(self, X, y):
        """Fit on X (n, d) and labels y (n,); returns ``self``."""
        X, y = validate_data(self, X, y, dtype=_FLOATS)
        codes = self._encode(y)
        k = len(self.classes_)
        m = _nb.fit_gaussian(X, codes, k,
                             var_smoothing=_check_number(self.var_smoothing, "var_smoothing"))
        self.class_count_ = _np(m.class_count)
        self.theta_ = _np(m.theta)
        self.var_ = _np(m.var)
        self.epsilon_ = float(m.epsilon)
        if self.priors is None:
            self.class_prior_ = np.exp(_np(m.class_log_prior))
        else:
            priors = np.asarray(self.priors, dtype=X.dtype)
            if priors.shape != (k,):
                raise ValueError(f"Number of priors must match number of classes ({k}), "
                                 f"got shape {priors.shape}")
            if not np.isclose(priors.sum(), 1.0) or np.any(priors < 0):
                raise ValueError("priors must be non-negative and sum to 1")
            self.class_prior_ = priors
        return self

    def _model(self):
        with np.errstate(divide="ignore"):
            log_prior = np.log(self.class_prior_)
        return _nb.GaussianNaiveBayes(self.class_count_, log_prior, self.theta_, self.var_,
                                      np.asarray(self.epsilon_, self.theta_.dtype))


class MultinomialNB(_Counts, _NaiveBayes):
    """Multinomial naive Bayes (scikit-learn ``MultinomialNB``) by
    :func:`jaxml.naive_bayes.fit_multinomial`.

    p(c | x) ∝ π_c Πⱼ p_cjˣʲ with p_cj = (N_cj + α) / Σⱼ' (N_cj' + α). Accepts scipy sparse
    counts (densified).

    Args:
        alpha: additive smoothing ≥ 0.
        fit_prior: learn the class priors from the data (else uniform).
        class_prior: optional (K,) priors (overrides ``fit_prior``).

    Attributes:
        classes_: (K,). class_count_: (K,). class_log_prior_: (K,). feature_count_: (K, d).
        feature_log_prob_: (K, d). n_features_in_: d.
    """

    def __init__(self, *, alpha: float = 1.0, fit_prior: bool = True, class_prior=None):
        self.alpha = alpha
        self.fit_prior = fit_prior
        self.class_prior = class_prior

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.poor_score = True   # as scikit-learn's MultinomialNB
        return tags

    def fit(self, X, y):
        """Fit on non-negative counts X (n, d) and labels y (n,); returns ``self``."""
        X, y = self._counts(X, "fit", y=y, reset=True)
        codes = self._encode(y)
        k = len(self.classes_)
        m = _nb.fit_multinomial(X, codes, k, alpha=_check_number(self.alpha, "alpha"))
        self.class_count_ = _np(m.class_count)
        self.feature_count_ = _np(m.feature_count)
        self.feature_log_prob_ = _np(m.feature_log_prob)
        if self.class_prior is not None:
            prior = np.asarray(self.class_prior, dtype=X.dtype)
            if prior.shape != (k,):
                raise ValueError(f"Number of priors must match number of classes ({k}).")
            with np.errstate(divide="ignore"):
                self.class_log_prior_ = np.log(prior)
        elif self.fit_prior:
            self.class_log_prior_ = _np(m.class_log_prior)
        else:
            self.class_log_prior_ = np.full(k, -np.log(k), dtype=X.dtype)
        return self

    def _check_X(self, X):
        check_is_fitted(self)
        return self._counts(X, "predict")

    def _model(self):
        return _nb.MultinomialNaiveBayes(self.class_count_, self.class_log_prior_,
                                         self.feature_count_, self.feature_log_prob_)


# ----------------------------------------------------------------------------- PCA


class PCA(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Principal component analysis (scikit-learn ``PCA``) by :func:`jaxml.pca.fit`.

    Eigenvectors of the covariance (SVD when d > n), signs as scikit-learn's ``svd_flip``;
    ``transform`` is (X − x̄)Vᵀ, divided by √λ when ``whiten``.

    Args:
        n_components: k (int, 1 ≤ k ≤ min(n, d)) or None for min(n, d).
        whiten: scale the projections to unit variance.

    Attributes:
        components_: (k, d). explained_variance_: (k,). explained_variance_ratio_: (k,).
        singular_values_: (k,). mean_: (d,). noise_variance_: float. n_components_: k.
        n_samples_: n. n_features_in_: d.
    """

    def __init__(self, n_components=None, *, whiten: bool = False):
        self.n_components = n_components
        self.whiten = whiten

    def fit(self, X, y=None):
        """Fit on X (n, d), n ≥ 2; returns ``self``."""
        X = validate_data(self, X, dtype=_FLOATS, ensure_min_samples=2)
        n, d = X.shape
        k = min(n, d) if self.n_components is None else _check_int(self.n_components,
                                                                   "n_components", 1)
        if k > min(n, d):
            raise ValueError(f"n_components={k} must be between 1 and min(n_samples, "
                             f"n_features)={min(n, d)}")
        r = _pca.fit(X, k)
        self.components_ = _np(r.components)
        self.explained_variance_ = _np(r.explained_variance)
        self.explained_variance_ratio_ = _np(r.explained_variance_ratio)
        self.singular_values_ = _np(r.singular_values)
        self.mean_ = _np(r.mean)
        self.noise_variance_ = float(r.noise_variance)
        self.n_components_ = k
        self.n_samples_ = n
        return self

    @property
    def _n_features_out(self):
        return self.components_.shape[0]

    def _result(self):
        return _pca.PCAResult(self.mean_, self.components_, self.explained_variance_,
                              self.explained_variance_ratio_, self.singular_values_,
                              np.asarray(self.noise_variance_, self.mean_.dtype))

    def _scale(self):
        return np.sqrt(np.maximum(self.explained_variance_, np.finfo(self.mean_.dtype).tiny))

    def transform(self, X):
        """Projections of X (m, d): (m, k)."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=_FLOATS, reset=False)
        Z = _np(_pca.transform(self._result(), X))
        return Z / self._scale() if self.whiten else Z

    def inverse_transform(self, X):
        """Back to the data space: X (m, k) → (m, d)."""
        check_is_fitted(self)
        Z = np.asarray(X, dtype=self.mean_.dtype)
        if self.whiten:
            Z = Z * self._scale()
        return _np(_pca.inverse_transform(self._result(), Z))


# ----------------------------------------------------------------------------- k-means


class KMeans(ClassNamePrefixFeaturesOutMixin, TransformerMixin, ClusterMixin, BaseEstimator):
    """k-means by Lloyd's algorithm (scikit-learn ``KMeans(algorithm="lloyd")``) by
    :func:`jaxml.kmeans.fit`.

    Minimises Σᵢ‖xᵢ − μ_{cᵢ}‖² from k-means++ seeds (or given centres); with ``n_init`` > 1
    keeps the run of least inertia. Stops when Σⱼ‖Δμⱼ‖² ≤ tol·meanⱼ Var(X[:, j]).

    Args:
        n_clusters: k.
        init: ``"k-means++"`` or a (k, d) array of initial centres.
        n_init: runs from different seeds, or ``"auto"`` (1, as scikit-learn for k-means++).
        max_iter: bound on Lloyd steps per run.
        tol: relative tolerance on the centre shift.
        random_state: None, an int or a ``np.random.RandomState`` (seeds the JAX keys).

    Attributes:
        cluster_centers_: (k, d). labels_: (n,). inertia_: float. n_iter_: int.
        converged_: bool. n_features_in_: d.
    """

    def __init__(self, n_clusters: int = 8, *, init="k-means++", n_init="auto",
                 max_iter: int = 300, tol: float = 1e-4, random_state=None):
        self.n_clusters = n_clusters
        self.init = init
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state

    def fit(self, X, y=None):
        """Fit on X (n, d); returns ``self``."""
        X = validate_data(self, X, dtype=_FLOATS)
        n = X.shape[0]
        k = _check_int(self.n_clusters, "n_clusters", 1)
        if n < k:
            raise ValueError(f"n_samples={n} should be >= n_clusters={k}.")
        max_iter = _check_int(self.max_iter, "max_iter", 1)
        tol = _check_number(self.tol, "tol")
        if isinstance(self.init, str):
            if self.init != "k-means++":
                raise ValueError(f"init must be 'k-means++' or an array, got {self.init!r}")
            init = None
            n_init = 1 if self.n_init == "auto" else _check_int(self.n_init, "n_init", 1)
        else:
            init = np.asarray(self.init, dtype=X.dtype)
            if init.shape != (k, X.shape[1]):
                raise ValueError(f"init must have shape {(k, X.shape[1])}, got {init.shape}")
            n_init = 1
        rng = check_random_state(self.random_state)
        best = None
        for _ in range(n_init):
            r = _kmeans.fit(None if init is not None else _key(rng), X, k, init=init,
                            max_iter=max_iter, tol=tol)
            if best is None or float(r.inertia) < float(best.inertia):
                best = r
        self.cluster_centers_ = _np(best.centroids)
        self.labels_ = _np(best.labels)
        self.inertia_ = float(best.inertia)
        self.n_iter_ = int(best.n_iter)
        self.converged_ = bool(best.converged)
        return self

    @property
    def _n_features_out(self):
        return self.cluster_centers_.shape[0]

    def _check_X(self, X):
        check_is_fitted(self)
        return validate_data(self, X, dtype=_FLOATS, reset=False)

    def predict(self, X):
        """Index of the nearest centre for each row of X (m, d): (m,)."""
        X = self._check_X(X)
        return _np(_kmeans.predict(self.cluster_centers_.astype(X.dtype), X))

    def transform(self, X):
        """Euclidean distances to the centres for X (m, d): (m, k)."""
        X = self._check_X(X)
        d2 = _np(_kmeans.sq_distances(X, self.cluster_centers_.astype(X.dtype)))
        return np.sqrt(np.maximum(d2, 0))

    def score(self, X, y=None):
        """Opposite of the inertia of X (m, d) under the fitted centres: float."""
        X = self._check_X(X)
        centers = self.cluster_centers_.astype(X.dtype)
        return -float(_kmeans.inertia(X, centers, _kmeans.predict(centers, X)))


# ----------------------------------------------------------------------------- mixtures


def _precisions_to_covariances(p: np.ndarray, covariance_type: str) -> np.ndarray:
    if covariance_type in ("full", "tied"):
        return np.linalg.inv(p)
    return 1.0 / p


class GaussianMixture(DensityMixin, BaseEstimator):
    """Gaussian mixture by EM (scikit-learn ``GaussianMixture``) by :func:`jaxml.gmm.fit`.

    log p(x) = log Σⱼ πⱼ N(x | μⱼ, Σⱼ); EM from k-means (or given) responsibilities until
    the change of the mean log-likelihood is at most ``tol``; with ``n_init`` > 1 keeps the
    run of the largest bound. ``weights_init``, ``means_init`` and ``precisions_init``
    replace the initial M step's values as in scikit-learn.

    Args:
        n_components: k.
        covariance_type: ``"full"``, ``"tied"``, ``"diag"`` or ``"spherical"``.
        tol: tolerance on the change of the mean log-likelihood.
        reg_covar: λ ≥ 0 added to the variances.
        max_iter: bound on EM iterations.
        n_init: runs from different seeds.
        init_params: ``"kmeans"``, ``"k-means++"`` or ``"random"``.
        weights_init: optional (k,). means_init: optional (k, d). precisions_init: optional
            precisions in the shape of ``covariances_``.
        random_state: None, an int or a ``np.random.RandomState``.

    Attributes:
        weights_: (k,). means_: (k, d). covariances_: (k, d, d) full, (d, d) tied, (k, d)
        diag, (k,) spherical. precisions_: their inverses. lower_bound_: float, the mean
        log-likelihood of the last E step. n_iter_: int. converged_: bool. n_features_in_: d.
    """

    def __init__(self, n_components: int = 1, *, covariance_type: str = "full",
                 tol: float = 1e-3, reg_covar: float = 1e-6, max_iter: int = 100,
                 n_init: int = 1, init_params: str = "kmeans", weights_init=None,
                 means_init=None, precisions_init=None, random_state=None):
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.weights_init = weights_init
        self.means_init = means_init
        self.precisions_init = precisions_init
        self.random_state = random_state

    def _start(self, key, X, k: int, reg_covar: float):
        given = (self.weights_init, self.means_init, self.precisions_init)
        if all(v is not None for v in given):
            p = None
        else:
            p = _gmm.init(key, X, k, covariance_type=self.covariance_type,
                          method=self.init_params, reg_covar=reg_covar)
        weights = p.weights if self.weights_init is None else self.weights_init
        means = p.means if self.means_init is None else self.means_init
        covs = (p.covariances if self.precisions_init is None else _precisions_to_covariances(
            np.asarray(self.precisions_init, X.dtype), self.covariance_type))
        return _gmm.GMMParams(np.asarray(weights, X.dtype), np.asarray(means, X.dtype),
                              np.asarray(covs, X.dtype), self.covariance_type)

    def fit(self, X, y=None):
        """Fit on X (n, d), n ≥ 2; returns ``self``."""
        X = validate_data(self, X, dtype=_FLOATS, ensure_min_samples=2)
        n = X.shape[0]
        k = _check_int(self.n_components, "n_components", 1)
        if n < k:
            raise ValueError(f"Expected n_samples >= n_components but got n_components = {k}, "
                             f"n_samples = {n}")
        reg_covar = _check_number(self.reg_covar, "reg_covar")
        tol = _check_number(self.tol, "tol")
        max_iter = _check_int(self.max_iter, "max_iter", 1)
        rng = check_random_state(self.random_state)
        best = None
        for _ in range(_check_int(self.n_init, "n_init", 1)):
            params = self._start(_key(rng), X, k, reg_covar)
            r = _gmm.fit(None, X, k, init_params=params, max_iter=max_iter, tol=tol,
                         reg_covar=reg_covar)
            if best is None or float(r.lower_bound) > float(best.lower_bound):
                best = r
        self.weights_ = _np(best.weights)
        self.means_ = _np(best.means)
        self.covariances_ = _np(best.covariances)
        self.precisions_ = _precisions_to_covariances(self.covariances_, self.covariance_type)
        self.lower_bound_ = float(best.lower_bound)
        self.n_iter_ = int(best.n_iter)
        self.converged_ = bool(best.converged)
        _warn_not_converged(self.converged_, "GaussianMixture")
        return self

    def _check_X(self, X):
        check_is_fitted(self)
        X = validate_data(self, X, dtype=_FLOATS, reset=False)
        params = _gmm.GMMParams(self.weights_.astype(X.dtype), self.means_.astype(X.dtype),
                                self.covariances_.astype(X.dtype), self.covariance_type)
        return X, params

    def score_samples(self, X):
        """log p(xᵢ) for X (m, d): (m,)."""
        X, params = self._check_X(X)
        return _np(_gmm.log_likelihood(params, X))

    def score(self, X, y=None):
        """Mean log-likelihood of X (m, d): float."""
        return float(np.mean(self.score_samples(X)))

    def predict_proba(self, X):
        """Responsibilities p(z = j | x) for X (m, d): (m, k)."""
        X, params = self._check_X(X)
        return _np(_gmm.predict_proba(params, X))

    def predict(self, X):
        """Most probable component of each row of X (m, d): (m,)."""
        X, params = self._check_X(X)
        return _np(_gmm.predict(params, X))

    def fit_predict(self, X, y=None):
        """Fit on X, then the components of its rows: (n,)."""
        return self.fit(X).predict(X)


# ----------------------------------------------------------------------------- LDA


def _pad_documents(X: np.ndarray) -> np.ndarray:
    """X (D, V) with empty documents appended up to a multiple of 32 rows (of 256 above 1024).

    An empty document changes nothing: it adds zero to the topic-word sums, its E step
    gives γ = α exactly, and its ELBO term KL(Dir(α) ‖ Dir(α)) is zero. Bucketing D this
    way lets corpora of nearby sizes (cross-validation folds) share one compilation.
    """
    step = 32 if X.shape[0] <= 1024 else 256
    pad = -X.shape[0] % step
    return np.concatenate([X, np.zeros((pad, X.shape[1]), X.dtype)]) if pad else X


class LatentDirichletAllocation(_Counts, ClassNamePrefixFeaturesOutMixin, TransformerMixin,
                                BaseEstimator):
    """LDA topic model by batch variational EM (scikit-learn ``LatentDirichletAllocation``
    with ``learning_method="batch"``) by :func:`jaxml.lda.fit`.

    The initial topics are drawn as scikit-learn draws them (Gamma(100, 1/100) from
    ``random_state``), so the same ``random_state`` starts both from the same point.
    ``transform`` gives the normalised document-topic γ, ``score`` the variational bound,
    ``perplexity`` exp(−bound / Σ counts), all as scikit-learn. Accepts scipy sparse counts
    (densified).

    Args:
        n_components: K topics.
        doc_topic_prior: α (default 1/K). topic_word_prior: η (default 1/K).
        max_iter: EM iterations.
        tol: relative ELBO change at which to stop; 0 (default) runs ``max_iter``
            iterations, as scikit-learn with ``evaluate_every=-1``.
        mean_change_tol: the E step's tolerance. max_doc_update_iter: its bound.
        random_state: None, an int or a ``np.random.RandomState``.

    Attributes:
        components_: (K, V) topic-word λ. n_iter_: int. converged_: bool. bound_: float,
        the final perplexity of the training data. doc_topic_prior_, topic_word_prior_:
        floats. n_features_in_: V.
    """

    def __init__(self, n_components: int = 10, *, doc_topic_prior=None, topic_word_prior=None,
                 max_iter: int = 10, tol: float = 0.0, mean_change_tol: float = 1e-3,
                 max_doc_update_iter: int = 100, random_state=None):
        self.n_components = n_components
        self.doc_topic_prior = doc_topic_prior
        self.topic_word_prior = topic_word_prior
        self.max_iter = max_iter
        self.tol = tol
        self.mean_change_tol = mean_change_tol
        self.max_doc_update_iter = max_doc_update_iter
        self.random_state = random_state

    def fit(self, X, y=None):
        """Fit on non-negative counts X (D, V); returns ``self``."""
        X = self._counts(X, "fit", reset=True)
        k = _check_int(self.n_components, "n_components", 1)
        alpha = 1.0 / k if self.doc_topic_prior is None else _check_number(
            self.doc_topic_prior, "doc_topic_prior", positive=True)
        eta = 1.0 / k if self.topic_word_prior is None else _check_number(
            self.topic_word_prior, "topic_word_prior", positive=True)
        rng = check_random_state(self.random_state)
        topics0 = rng.gamma(100.0, 0.01, (k, X.shape[1])).astype(X.dtype)
        r = _lda.fit(_key(rng), _pad_documents(X), k, alpha=alpha, eta=eta,
                     max_iter=_check_int(self.max_iter, "max_iter", 1),
                     tol=_check_number(self.tol, "tol"),
                     e_step_max_iter=_check_int(self.max_doc_update_iter,
                                                "max_doc_update_iter", 1),
                     e_step_tol=_check_number(self.mean_change_tol, "mean_change_tol"),
                     init_topic_word=topics0)
        self.components_ = _np(r.topic_word)
        self.doc_topic_prior_ = alpha
        self.topic_word_prior_ = eta
        self.n_iter_ = int(r.n_iter)
        self.converged_ = bool(r.converged)
        self.bound_ = self.perplexity(X)   # at the final topics, as scikit-learn's
        return self

    @property
    def _n_features_out(self):
        return self.components_.shape[0]

    def _model(self, dtype):
        return _lda.LDAModel(self.components_.astype(dtype), np.asarray(self.doc_topic_prior_,
                             dtype), np.asarray(self.topic_word_prior_, dtype))

    def _doc_topic(self, X, normalize: bool):
        """The padded counts and their γ (normalised or not), both with padded rows."""
        X = _pad_documents(X)
        return X, _lda.transform(self._model(X.dtype), X, normalize=normalize,
                                 e_step_max_iter=int(self.max_doc_update_iter),
                                 e_step_tol=float(self.mean_change_tol))

    def transform(self, X):
        """Normalised document-topic distributions of counts X (D, V): (D, K)."""
        check_is_fitted(self)
        X = self._counts(X, "transform")
        return _np(self._doc_topic(X, normalize=True)[1])[:X.shape[0]]

    def score(self, X, y=None):
        """The variational bound (ELBO) of counts X (D, V): float (higher is better)."""
        check_is_fitted(self)
        X = self._counts(X, "score")
        X, gamma = self._doc_topic(X, normalize=False)
        return float(_lda.elbo(X, gamma, self.components_.astype(X.dtype),
                               alpha=self.doc_topic_prior_, eta=self.topic_word_prior_))

    def perplexity(self, X):
        """exp(−bound / Σ counts) of counts X (D, V): float (lower is better)."""
        check_is_fitted(self)
        X, gamma = self._doc_topic(self._counts(X, "perplexity"), normalize=False)
        return float(_lda.perplexity(self._model(X.dtype), X, doc_topic=gamma))
