"""Naive Bayes classifiers: Gaussian and multinomial class-conditional likelihoods.

Naive Bayes assumes the features are independent given the class, so the posterior is

    log p(c | x) = log πc + Σ_f log p(x_f | c) − log Σ_c' πc' Πf p(x_f | c').

Gaussian (scikit-learn ``GaussianNB``): p(x_f | c) = N(x_f; θ_cf, σ²_cf) with the per-class
maximum-likelihood mean θ_cf and variance σ²_cf (ddof = 0), plus ε = var_smoothing ·
max_f Var(X[:, f]) added to every variance for stability:

    log p(x | c) = −½ Σ_f [log(2π σ²_cf) + (x_f − θ_cf)² / σ²_cf].

Multinomial (scikit-learn ``MultinomialNB``, counts x_f ≥ 0): with smoothed counts
N_cf = Σ_{i: yᵢ=c} x_if + α,

    log p(x | c) = Σ_f x_f log(N_cf / Σ_f' N_cf')   (up to a class-independent constant).

Both priors are the empirical class frequencies πc = n_c / n. A class with no training
rows gets log πc = −∞ (probability 0) instead of NaN.

Reference: C. D. Manning, P. Raghavan & H. Schütze, *Introduction to Information
Retrieval*, ch. 13 (2008); T. Mitchell, *Machine Learning*, ch. 6 (1997).
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple, Union

import jax
import jax.numpy as jnp
from jax.scipy.special import logsumexp

from jaxml._core import (HIGHEST, LOG_2PI, check_class_labels, check_int_in_range, check_matrix,
                         check_nonnegative, check_same_length, checks_on_outputs, fold_chunks,
                         fold_rows, host_function, map_rows)
from jaxml._core.fold import Chunks, first_chunk

__all__ = [
    "GaussianNaiveBayes", "MultinomialNaiveBayes", "fit_gaussian", "fit_multinomial",
    "fit_gaussian_streamed", "fit_multinomial_streamed",
    "joint_log_likelihood", "predict_log_proba", "predict_proba", "predict",
]

_HI = HIGHEST


class GaussianNaiveBayes(NamedTuple):
    """A fitted Gaussian naive Bayes model (C classes, d features).

    Attributes:
        class_count: (C,) training rows per class.
        class_log_prior: (C,) log πc = log(n_c / n).
        theta: (C, d) per-class feature means.
        var: (C, d) per-class feature variances (ddof = 0) plus ``epsilon``.
        epsilon: () the variance floor var_smoothing · max_f Var(X[:, f]).
    """

    class_count: jax.Array
    class_log_prior: jax.Array
    theta: jax.Array
    var: jax.Array
    epsilon: jax.Array


class MultinomialNaiveBayes(NamedTuple):
    """A fitted multinomial naive Bayes model (C classes, d features).

    Attributes:
        class_count: (C,) training rows per class.
        class_log_prior: (C,) log πc = log(n_c / n).
        feature_count: (C, d) Σ_{i: yᵢ=c} x_if, unsmoothed.
        feature_log_prob: (C, d) log((N_cf + α) / Σ_f' (N_cf' + α)).
    """

    class_count: jax.Array
    class_log_prior: jax.Array
    feature_count: jax.Array
    feature_log_prob: jax.Array


NaiveBayesModel = Union[GaussianNaiveBayes, MultinomialNaiveBayes]


# ----------------------------------------------------------------------------- fitting

def _fit_block(n: int, d: int) -> int:
    """Rows per block of the fitting folds: a (b, d) block of about 2²⁰ entries."""
    return max(1024, (1 << 20) // max(d, 1))


def _onehot(y, mask, n_classes: int, dtype):
    # a masked row gets the out-of-range class C: an all-zero one-hot row
    return jax.nn.one_hot(jnp.where(mask, y, n_classes), n_classes, dtype=dtype)


def _class_sums(rows, mask, like):
    """Class counts (C,) and feature sums (C, d) of a row block, in ``like``'s (C, d) dtype:
    one (C, b)·(b, d) matmul."""
    Xb, yb = rows
    onehot = _onehot(yb, mask, like.shape[0], like.dtype)
    return jnp.sum(onehot, axis=0), jnp.matmul(onehot.T, Xb.astype(like.dtype), precision=_HI)


def _class_scatter(rows, mask, theta):
    """Σ_{i: yᵢ=c} (xᵢ − θ_c)² (C, d) of a row block: the two-pass variance (no cancellation)."""
    Xb, yb = rows
    onehot = _onehot(yb, mask, theta.shape[0], theta.dtype)
    # θ of each row's class as a one-hot product, not a gather from θ (shard_map over a
    # row-sharded X takes products, not gathers, of closed-over arrays)
    resid = Xb.astype(theta.dtype) - jnp.matmul(onehot, theta, precision=_HI)
    return jnp.matmul(onehot.T, resid * resid, precision=_HI)


def _log_prior(counts):
    return jnp.log(counts) - jnp.log(jnp.sum(counts))


def _theta(counts, sums):
    return sums / jnp.maximum(counts, 1.0)[:, None]


def _gaussian_model(counts, theta, scatter, eps) -> GaussianNaiveBayes:
    var = scatter / jnp.maximum(counts, 1.0)[:, None]
    return GaussianNaiveBayes(counts, _log_prior(counts), theta, var + eps, eps)


@partial(jax.jit, static_argnames=("n_classes",))
def _fit_gaussian(X, y, n_classes: int, var_smoothing) -> GaussianNaiveBayes:
    block = _fit_block(*X.shape)
    like = jnp.zeros((n_classes, X.shape[1]), X.dtype)
    counts, sums = fold_rows(_class_sums, (X, y), block=block, args=(like,))
    theta = _theta(counts, sums)
    scatter = fold_rows(_class_scatter, (X, y), block=block, args=(theta,))
    eps = jnp.asarray(var_smoothing, X.dtype) * jnp.max(jnp.var(X, axis=0))
    return _gaussian_model(counts, theta, scatter, eps)


def _multinomial_model(counts, fc, alpha) -> MultinomialNaiveBayes:
    smoothed = fc + jnp.asarray(alpha, fc.dtype)
    total = jnp.sum(smoothed, axis=1, keepdims=True)
    # alpha = 0: a word unseen in a class gets log-probability −∞ (never 0·log 0 = NaN);
    # a class with no mass at all (no rows, alpha = 0) gets the uniform −log d (its prior
    # is −∞ anyway), so no row of feature_log_prob is NaN.
    flp = jnp.where(total > 0, jnp.log(smoothed) - jnp.log(jnp.where(total > 0, total, 1.0)),
                    -jnp.log(jnp.asarray(fc.shape[1], fc.dtype)))
    return MultinomialNaiveBayes(counts, _log_prior(counts), fc, flp)


@partial(jax.jit, static_argnames=("n_classes",))
def _fit_multinomial(X, y, n_classes: int, alpha) -> MultinomialNaiveBayes:
    like = jnp.zeros((n_classes, X.shape[1]), X.dtype)
    counts, fc = fold_rows(_class_sums, (X, y), block=_fit_block(*X.shape), args=(like,))
    return _multinomial_model(counts, fc, alpha)


def _check_xy(X, y, n_classes):
    X = check_matrix(X, "X")
    n_classes = check_int_in_range(n_classes, "n_classes", 1, 10**9)
    y = check_class_labels(y, "y", n_classes)
    check_same_length(X, "X", y, "y")
    if X.shape[0] == 0:
        raise ValueError("X must have at least one row")
    return X, y


@checks_on_outputs
def fit_gaussian(X, y, n_classes: int, *, var_smoothing=1e-9) -> GaussianNaiveBayes:
    """Gaussian naive Bayes (scikit-learn ``GaussianNB(var_smoothing=var_smoothing)``).

    Args:
        X: (n, d) features.
        y: (n,) integer labels in 0..n_classes−1.
        n_classes: C (static); classes absent from y get prior 0.
        var_smoothing: ε / max_f Var(X[:, f]), finite and ≥ 0 (may be traced).

    Returns:
        :class:`GaussianNaiveBayes`.
    """
    X, y = _check_xy(X, y, n_classes)
    var_smoothing = check_nonnegative(var_smoothing, "var_smoothing")
    return _fit_gaussian(X, y, n_classes, var_smoothing)


@checks_on_outputs
def fit_multinomial(X, y, n_classes: int, *, alpha=1.0) -> MultinomialNaiveBayes:
    """Multinomial naive Bayes (scikit-learn ``MultinomialNB(alpha=alpha)``).

    Args:
        X: (n, d) non-negative counts (or tf-idf-like weights).
        y: (n,) integer labels in 0..n_classes−1.
        n_classes: C (static).
        alpha: additive (Laplace/Lidstone) smoothing, finite and ≥ 0 (may be traced).
            With ``alpha=0`` a word unseen in class c has log-probability −∞ there: a
            document containing it gets probability 0 for class c (the other classes are
            unaffected; a document no class can produce gets NaN probabilities).

    Returns:
        :class:`MultinomialNaiveBayes`.
    """
    X, y = _check_xy(X, y, n_classes)
    X = check_nonnegative(X, "X")
    alpha = check_nonnegative(alpha, "alpha")
    return _fit_multinomial(X, y, n_classes, alpha)


# ----------------------------------------------------------------------------- streamed

def _sums_chunk(rows, mask, like):
    """Pass 1 over a chunk: class counts, class sums, and the numbers of labels outside
    0..C−1 and of negative counts (reported after the pass)."""
    Xb, yb = rows
    counts, sums = _class_sums(rows, mask, like)
    bad = jnp.sum(mask & ((yb < 0) | (yb >= like.shape[0])))
    negative = jnp.sum(mask[:, None] & (Xb < 0))
    return counts, sums, bad, negative


def _scatter_chunk(rows, mask, theta, mean):
    """Pass 2 over a chunk (Gaussian): class scatter about θ, and Σ (x − x̄)² per feature."""
    Z = jnp.where(mask[:, None], rows[0].astype(mean.dtype) - mean, 0)
    return _class_scatter(rows, mask, theta), jnp.sum(Z * Z, axis=0)


def _streamed_sums(data, n_classes, *, counts_only: bool):
    source = data if isinstance(data, Chunks) else Chunks(data)
    first = first_chunk(source, pairs=True)
    X0 = check_matrix(first[0], "X (first chunk)")
    n_classes = check_int_in_range(n_classes, "n_classes", 1, 10**9)
    check_class_labels(first[1], "y (first chunk)", n_classes)
    like = jnp.zeros((n_classes, X0.shape[1]), X0.dtype)
    counts, sums, bad, negative = fold_chunks(_sums_chunk, source, args=(like,))
    if int(bad):
        raise ValueError(f"y must hold labels in 0..{n_classes - 1}: {int(bad)} rows do not")
    if counts_only and int(negative):
        raise ValueError("X must be non-negative (counts): some chunk holds negative values")
    if not bool(jnp.all(jnp.isfinite(sums))):
        raise ValueError("X must be finite (some chunk holds NaN or inf)")
    return source, counts, sums


@host_function
def fit_gaussian_streamed(data, n_classes: int, *, var_smoothing=1e-9) -> GaussianNaiveBayes:
    """:func:`fit_gaussian` over (X, y) rows streamed from the host in chunks.

    Two passes of the ``_core`` chunk fold (device memory: one chunk): class counts and
    sums (so θ), then the class scatter Σ (x − θ_c)² and the per-feature Σ (x − x̄)² for
    ε = var_smoothing · max_f Var(X[:, f]) (two-pass variances, as :func:`fit_gaussian`).
    Equals :func:`fit_gaussian` on the concatenated rows to rounding. A host function (a
    Python loop over host data): no ``jit``/``vmap``/``grad``.

    Args:
        data: chunks of (X, y) row pairs, as :func:`jaxml.data.chunks` (``chunks(X, y=y)``,
            or a list / callable of ``(X_chunk (m, d), y_chunk (m,))``); labels in
            0..n_classes−1.
        n_classes: C (static).
        var_smoothing: as in :func:`fit_gaussian`.

    Returns:
        :class:`GaussianNaiveBayes`.
    """
    var_smoothing = check_nonnegative(var_smoothing, "var_smoothing")
    source, counts, sums = _streamed_sums(data, n_classes, counts_only=False)
    theta = _theta(counts, sums)
    n = jnp.sum(counts)
    scatter, dev = fold_chunks(_scatter_chunk, source, args=(theta, jnp.sum(sums, 0) / n))
    eps = jnp.asarray(var_smoothing, theta.dtype) * jnp.max(dev / n)
    return _gaussian_model(counts, theta, scatter, eps)


@host_function
def fit_multinomial_streamed(data, n_classes: int, *, alpha=1.0) -> MultinomialNaiveBayes:
    """:func:`fit_multinomial` over (X, y) rows streamed from the host in chunks.

    One pass of the ``_core`` chunk fold (device memory: one chunk) sums the class counts
    and the per-class feature counts; the smoothing is :func:`fit_multinomial`'s. Equals
    :func:`fit_multinomial` on the concatenated rows to rounding. A host function: no
    ``jit``/``vmap``/``grad``.

    Args:
        data: chunks of (X, y) row pairs, as :func:`jaxml.data.chunks`; X non-negative
            counts (m, d), y labels (m,) in 0..n_classes−1.
        n_classes: C (static).
        alpha: as in :func:`fit_multinomial`.

    Returns:
        :class:`MultinomialNaiveBayes`.
    """
    alpha = check_nonnegative(alpha, "alpha")
    _, counts, fc = _streamed_sums(data, n_classes, counts_only=True)
    return _multinomial_model(counts, fc, alpha)


# ----------------------------------------------------------------------------- prediction

def _gaussian_jll(model: GaussianNaiveBayes, X):
    # Direct form Σ_f (x_f − θ_cf)²/σ²_cf, in cache-sized row blocks: the expanded
    # x² − 2xθ + θ² matmul form cancels catastrophically when some σ² are tiny.
    C, d = model.theta.shape
    var = jnp.maximum(model.var, jnp.finfo(X.dtype).tiny)   # no 0/0 when every σ² is 0
    inv = 1.0 / var
    const = model.class_log_prior - 0.5 * jnp.sum(LOG_2PI + jnp.log(var), axis=1)

    def block(xb, mask):
        diff = xb[:, None, :] - model.theta[None]
        return const - 0.5 * jnp.sum(diff * diff * inv[None], axis=2)

    return map_rows(block, X, block=max(64, (1 << 18) // (C * d)))


def _multinomial_jll(model: MultinomialNaiveBayes, X):
    # Σ_f x_f log p_cf with 0·(−∞) = 0: a word with probability 0 in a class (alpha = 0)
    # makes that class impossible (−∞) for a document containing it, and only that class.
    flp = model.feature_log_prob
    impossible = jnp.isneginf(flp)
    jll = jnp.matmul(X, jnp.where(impossible, 0.0, flp).T, precision=_HI)
    hits = jnp.matmul((X > 0).astype(X.dtype), impossible.astype(X.dtype).T, precision=_HI)
    return jnp.where(hits > 0, -jnp.inf, jll) + model.class_log_prior


@jax.jit
def _jll(model, X):
    if isinstance(model, GaussianNaiveBayes):
        return _gaussian_jll(model, X)
    return _multinomial_jll(model, X)


def _check_predict(model, X) -> jax.Array:
    if not isinstance(model, (GaussianNaiveBayes, MultinomialNaiveBayes)):
        raise TypeError("model must be a GaussianNaiveBayes or MultinomialNaiveBayes, got "
                        f"{type(model).__name__}")
    X = check_matrix(X, "X", dtype=model.class_log_prior.dtype)
    multinomial = isinstance(model, MultinomialNaiveBayes)
    d = (model.feature_log_prob if multinomial else model.theta).shape[1]
    if X.shape[1] != d:
        raise ValueError(f"X has {X.shape[1]} features, the model was fitted on {d}")
    if multinomial:
        X = check_nonnegative(X, "X")
    return X


@jax.jit
def _log_proba(model, X):
    jll = _jll(model, X)
    return jll - logsumexp(jll, axis=1, keepdims=True)


@checks_on_outputs
def joint_log_likelihood(model: NaiveBayesModel, X) -> jax.Array:
    """log πc + log p(x | c) for each row of X (m, d): (m, C)."""
    return _jll(model, _check_predict(model, X))


@checks_on_outputs
def predict_log_proba(model: NaiveBayesModel, X) -> jax.Array:
    """log p(c | x) for each row of X (m, d): (m, C), normalised by logsumexp."""
    return _log_proba(model, _check_predict(model, X))


@checks_on_outputs
def predict_proba(model: NaiveBayesModel, X) -> jax.Array:
    """p(c | x) for each row of X (m, d): (m, C), rows sum to 1."""
    return _proba(model, _check_predict(model, X))


@checks_on_outputs
def predict(model: NaiveBayesModel, X) -> jax.Array:
    """The most probable class of each row of X (m, d): (m,) int32."""
    return _predict(model, _check_predict(model, X))


@jax.jit
def _proba(model, X):
    return jnp.exp(_log_proba(model, X))


@jax.jit
def _predict(model, X):
    return jnp.argmax(_jll(model, X), axis=1).astype(jnp.int32)
