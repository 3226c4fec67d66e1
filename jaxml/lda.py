"""Latent Dirichlet allocation by batch variational EM (Blei, Ng & Jordan 2003, smoothed).

The generative model, for K topics over a vocabulary of V words and D documents:

    βₖ ~ Dir(η 1_V),   θ_d ~ Dir(α 1_K),   z_dn ~ Mult(θ_d),   w_dn ~ Mult(β_{z_dn}).

The mean-field posterior is q = Πₖ Dir(βₖ | λₖ) Π_d Dir(θ_d | γ_d) Π_dn Mult(z_dn | φ_dn).
A document is a row ``n_d`` of the (D, V) count matrix; words with the same id share
φ_dv. Writing E log θ_dk = ψ(γ_dk) − ψ(Σⱼ γ_dj) and E log β_kv = ψ(λ_kv) − ψ(Σᵤ λ_ku):

* **E step** (per document, fixed ``λ``): the optimal φ_dvk ∝ exp(E log θ_dk + E log β_kv),
  and γ_d = α + Σᵥ n_dv φ_dv. With θ̃_d = exp E log θ_d (K,) and B̃ = exp E log β (K, V)
  the fixed point is iterated without ever forming φ:

      γ_d ← α + θ̃_d ⊙ (B̃ (n_d ⊘ θ̃_dᵀB̃)).

  It stops when meanₖ |Δγ_dk| ≤ ``e_step_tol`` or after ``e_step_max_iter`` updates
  (scikit-learn's ``mean_change_tol`` / ``max_doc_update_iter``). It is written for one
  document and ``vmap``-ped over batches of documents. With concrete counts a document
  is read as its L distinct words (a padded (D, L) layout, the columns of B̃ gathered per
  batch); with traced counts (inside ``jit``) as its dense row, a batched (C, K)·(K, V)
  product.
* **M step** (fixed ``q(θ)``): λ_kv = η + Σ_d n_dv φ_dvk = η + B̃_kv [Θ̃ᵀ(N ⊘ Θ̃B̃)]_kv, the
  sum over documents run in blocks of documents (the ``_core`` row fold).
* **ELBO**, with φ optimised out, term by term:

      ℒ =  Σ_dv n_dv log Σₖ exp(E log θ_dk + E log β_kv)      (E[log p(w, z | θ, β)] − E[log q(z)])
         + Σ_d E[log p(θ_d | α)] − E[log q(θ_d | γ_d)]        (−KL)
         + Σₖ E[log p(βₖ | η)] − E[log q(βₖ | λₖ)]            (−KL),

  the same bound as scikit-learn's ``LatentDirichletAllocation._approx_bound``, so
  :func:`perplexity` (exp(−ℒ / Σ_dv n_dv)) is comparable number for number. Each E step
  update and each M step is a coordinate ascent step on ℒ: started from the previous
  ``γ`` (``warm_start=True``) the ELBO recorded after every EM iteration cannot decrease;
  restarted (the default, as scikit-learn), it does not once each E step reaches its
  fixed point.

Numerics: the exponentials are taken after subtracting the per-document max of
E log θ_d and the per-word max over topics of E log β_·v (both updates and the
log-sum-exp are invariant to these scalings), so topics with tiny λ_kv (where E log β
reaches −100) do not underflow in float32.
Memory is O(DV + KV + D·L·K), L the most distinct words in a document (the ELBO's word
term gathers the topics' columns at each document's words): no D × V × K array is formed.

The parametrisation is scikit-learn's (``doc_topic_prior=alpha``,
``topic_word_prior=eta``, ``components_`` = ``topic_word``, the unnormalised
``transform`` = ``doc_topic``; initial ``λ`` and each E step's initial ``γ`` near
Gamma(100, 1/100)), and so is the E step's stopping rule. Two differences, neither in
the fixed points: the topics' columns are rescaled as above instead of adding machine
epsilon to the normaliser (scikit-learn's epsilon silently drops words that every topic
gives probability below ~1e-16, e.g. words unseen in training), and the E step is run on
batches of documents sorted by how many updates they needed in the previous iteration,
so a batch stops soon after its slowest document (``chunk_size``).

Reference: D. Blei, A. Ng, M. Jordan, "Latent Dirichlet Allocation", JMLR 3 (2003),
993–1022 (Appendix A.4: the smoothed model); M. Hoffman, D. Blei, F. Bach, "Online
Learning for Latent Dirichlet Allocation", NeurIPS 2010 (the batch updates in this form).
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import digamma, gammaln

from jaxml._core import (Adjoint, Implicit, as_float_array, check_int_in_range, check_loop_options,
                         check_nonnegative, check_positive, check_value, checks_on_outputs,
                         fixed_point, host_function, is_concrete)
from jaxml._core.fold import Chunks, first_chunk, fold_chunks, fold_rows

__all__ = [
    "LDAModel", "LDAState", "LDAInfo", "LDAResult", "EStepResult", "ELBOTerms",
    "dirichlet_expectation", "elbo_terms", "elbo", "e_step", "m_step",
    "sklearn_initial_topics", "init", "step", "fit", "transform", "perplexity",
    "topic_word_mean", "top_words",
]


# ----------------------------------------------------------------------------- types


class LDAModel(NamedTuple):
    """A fitted topic model: what :func:`transform` and :func:`perplexity` need.

    Attributes:
        topic_word: (K, V) variational Dirichlet parameters ``λ`` of the topics
            (scikit-learn's ``components_``).
        alpha: () the document-topic prior (``doc_topic_prior``).
        eta: () the topic-word prior (``topic_word_prior``).
    """

    topic_word: jax.Array
    alpha: jax.Array
    eta: jax.Array


class LDAState(NamedTuple):
    """The state of batch variational EM.

    Attributes:
        topic_word: (K, V) ``λ``.
        doc_topic: (D, K) ``γ`` of the training documents after the last E step.
        elbo: () the ELBO after the last EM iteration (``-inf`` before the first).
        key: the random key the next E step's initial ``γ`` is drawn from.
        e_step_n_iter: (D,) int32 updates of each document in the last E step (0 before).
    """

    topic_word: jax.Array
    doc_topic: jax.Array
    elbo: jax.Array
    key: jax.Array
    e_step_n_iter: jax.Array


class LDAInfo(NamedTuple):
    """What an EM iteration (:func:`step`) reports.

    Attributes:
        error: () the relative ELBO change |ℒₜ − ℒₜ₋₁| / |ℒₜ| (``fit``'s stopping rule).
        value: () the ELBO ℒₜ after the iteration.
    """

    error: jax.Array
    value: jax.Array


class LDAResult(NamedTuple):
    """What :func:`fit` returns (usable wherever an :class:`LDAModel` is expected).

    Attributes:
        topic_word: (K, V) ``λ``; ``topic_word / topic_word.sum(1, keepdims=True)`` is
            the posterior mean of the topics.
        alpha: () the document-topic prior used.
        eta: () the topic-word prior used.
        doc_topic: (D, K) ``γ`` of the training documents.
        elbo: () the ELBO after the last EM iteration.
        n_iter: () int32, EM iterations run.
        converged: () bool, the relative ELBO change fell to ``tol`` and the ELBO, ``λ``
            and ``γ`` are finite.
        trace: (max_iter,) the ELBO after each EM iteration, NaN past ``n_iter``.
        e_step_n_iter: (D,) int32 updates of each document in the final E step; a
            document with ``e_step_n_iter == e_step_max_iter`` may not have converged.
    """

    topic_word: jax.Array
    alpha: jax.Array
    eta: jax.Array
    doc_topic: jax.Array
    elbo: jax.Array
    n_iter: jax.Array
    converged: jax.Array
    trace: jax.Array
    e_step_n_iter: jax.Array


class EStepResult(NamedTuple):
    """The E step on a corpus.

    Attributes:
        doc_topic: (D, K) ``γ`` at the fixed point (or after ``max_iter`` updates).
        n_iter: (D,) int32 updates per document.
        converged: (D,) bool, the document's mean change in ``γ`` fell to ``tol``.
        trace: (D, max_iter) each document's mean change of ``γ`` per update, NaN past
            its ``n_iter``.
    """

    doc_topic: jax.Array
    n_iter: jax.Array
    converged: jax.Array
    trace: jax.Array


class ELBOTerms(NamedTuple):
    """The ELBO term by term (sum them for :func:`elbo`).

    Attributes:
        words: () Σ_dv n_dv log Σₖ exp(E log θ_dk + E log β_kv), i.e.
            E[log p(w, z | θ, β)] − E[log q(z)] at the optimal ``φ``.
        doc_topic: () Σ_d E[log p(θ_d | α)] − E[log q(θ_d | γ_d)].
        topic_word: () Σₖ E[log p(βₖ | η)] − E[log q(βₖ | λₖ)].
    """

    words: jax.Array
    doc_topic: jax.Array
    topic_word: jax.Array


# ----------------------------------------------------------------------------- pieces


def dirichlet_expectation(params: jax.Array) -> jax.Array:
    """E[log xᵢ] = ψ(aᵢ) − ψ(Σⱼ aⱼ) for ``x ~ Dir(a)``, along the last axis."""
    return digamma(params) - digamma(jnp.sum(params, axis=-1, keepdims=True))


def _shifted_exp(log_values: jax.Array, axis: int) -> tuple[jax.Array, jax.Array]:
    """``exp(x - max(x, axis))`` and the max: entries in (0, 1], the largest exactly 1."""
    shift = jax.lax.stop_gradient(jnp.max(log_values, axis=axis, keepdims=True))
    return jnp.exp(log_values - shift), shift


class _Factors(NamedTuple):
    """E log x of a Dirichlet family, and ``scaled = exp(elog - shift)`` (entries ≤ 1)."""

    elog: jax.Array
    scaled: jax.Array
    shift: jax.Array


def _topic_factors(topic_word: jax.Array) -> _Factors:
    """For ``λ`` (K, V): the shift (1, V) is maxⱼ E log β_jv and
    B̃_kv = exp(E log β_kv − maxⱼ E log β_jv)."""
    elog = dirichlet_expectation(topic_word)
    return _Factors(elog, *_shifted_exp(elog, axis=0))


def _doc_factors(doc_topic: jax.Array) -> _Factors:
    """For ``γ`` (..., K):
    θ̃_dk = exp(E log θ_dk − maxⱼ E log θ_dj)."""
    elog = dirichlet_expectation(doc_topic)
    return _Factors(elog, *_shifted_exp(elog, axis=-1))


def _word_norm(theta: jax.Array, beta: jax.Array) -> jax.Array:
    """Σₖ θ̃_dk B̃_kv (the normaliser of ``φ_dv``), floored at the
    smallest normal number."""
    return jnp.maximum(theta @ beta, jnp.finfo(beta.dtype).tiny)


def _gathered_word_norm(theta: jax.Array, beta: jax.Array, ids: jax.Array) -> jax.Array:
    """:func:`_word_norm` at each document's listed words only: θ̃ (b, K), B̃ (K, V),
    ids (b, L) -> (b, L), through a gathered (b, L, K) copy of B̃'s columns."""
    norm = jnp.einsum("dlk,dk->dl", beta.T[ids], theta)
    return jnp.maximum(norm, jnp.finfo(norm.dtype).tiny)


def _neg_kl_dirichlet(prior, params: jax.Array, elog: jax.Array, mask=None) -> jax.Array:
    """Σᵣ E_q[log Dir(xᵣ | prior) − log Dir(xᵣ | paramsᵣ)] over the rows.

    ``params`` (R, S) are the variational parameters, ``elog`` their
    :func:`dirichlet_expectation`, ``prior`` a scalar symmetric concentration; ``mask``
    (R,) bool, optional: only the rows it marks are summed.
    """
    size = params.shape[-1]
    per_entry = (prior - params) * elog + gammaln(params) - gammaln(prior)
    per_row = gammaln(prior * size) - gammaln(jnp.sum(params, axis=-1))
    if mask is not None:
        per_entry = jnp.where(mask[:, None], per_entry, 0.0)
        per_row = jnp.where(mask, per_row, 0.0)
    return jnp.sum(per_entry) + jnp.sum(per_row)


def elbo_terms(counts: jax.Array, doc_topic: jax.Array, topic_word: jax.Array, *,
               alpha, eta) -> ELBOTerms:
    """The ELBO of ``q(θ|γ) q(β|λ)`` with ``φ`` at its optimum, term by term.

    Args:
        counts: (D, V) non-negative word counts.
        doc_topic: (D, K) ``γ``.
        topic_word: (K, V) ``λ``.
        alpha, eta: scalar priors.

    Returns:
        :class:`ELBOTerms`; the word term is a log-sum-exp over topics computed as
        ``log(θ̃ B̃) + shifts`` (a (D, K)·(K, V) product, no (D, V, K) array).
    """
    counts = _check_counts(counts)
    dtype = counts.dtype
    doc_topic = _check_dirichlet_matrix(doc_topic, "doc_topic", dtype)
    topic_word = _check_dirichlet_matrix(topic_word, "topic_word", dtype)
    if doc_topic.shape[0] != counts.shape[0]:
        raise ValueError(f"doc_topic must have one row per document of counts "
                         f"({counts.shape[0]}), got shape {doc_topic.shape}")
    if topic_word.shape != (doc_topic.shape[1], counts.shape[1]):
        raise ValueError(f"topic_word must have shape (K, V) = "
                         f"{(doc_topic.shape[1], counts.shape[1])}, got {topic_word.shape}")
    alpha = _check_prior(alpha, "alpha", None, dtype)
    eta = _check_prior(eta, "eta", None, dtype)
    return _elbo_terms(_dense_corpus(counts), doc_topic, _doc_factors(doc_topic),
                       topic_word, _topic_factors(topic_word), alpha, eta)


def _elbo_terms(corpus: "_Corpus", doc_topic, docs: _Factors, topic_word, topics: _Factors,
                alpha, eta) -> ELBOTerms:
    counts = corpus.counts
    if corpus.word_ids is None:
        def word_term(rows, mask):
            c, theta = rows
            log_norm = jnp.log(_word_norm(theta, topics.scaled))            # (b, V)
            return jnp.sum(jnp.where(mask[:, None], c * log_norm, 0.0))

        weighted = fold_rows(word_term, (counts, docs.scaled),
                             block=_doc_block(counts.shape[1]))
    else:   # only at each document's distinct words: (b, L, K) gathered columns
        def word_term(rows, mask):
            ids, c, theta = rows
            per = c * jnp.log(_gathered_word_norm(theta, topics.scaled, ids))
            return jnp.sum(jnp.where(mask[:, None], per, 0.0))

        weighted = fold_rows(word_term, (corpus.word_ids, corpus.word_counts, docs.scaled),
                             block=_doc_block(corpus.word_ids.shape[1] * topics.scaled.shape[0]))
    words = (weighted
             + jnp.sum(corpus.doc_totals * docs.shift[:, 0])
             + jnp.sum(corpus.word_totals * topics.shift[0]))
    return ELBOTerms(
        words=words,
        doc_topic=_neg_kl_dirichlet(alpha, doc_topic, docs.elog),
        topic_word=_neg_kl_dirichlet(eta, topic_word, topics.elog),
    )


def elbo(counts: jax.Array, doc_topic: jax.Array, topic_word: jax.Array, *,
         alpha, eta) -> jax.Array:
    """The ELBO (scikit-learn's ``_approx_bound``): the sum of :func:`elbo_terms`. Shapes as there."""
    t = elbo_terms(counts, doc_topic, topic_word, alpha=alpha, eta=eta)
    return t.words + t.doc_topic + t.topic_word


_elbo_jit = jax.jit(elbo)


class _Corpus(NamedTuple):
    """The counts in the layouts the kernels read (private).

    counts: (D, V) dense counts (M step, ELBO). word_ids / word_counts: (D, L) the column
    ids and counts of each document's distinct words, padded with zero counts, or ``None``
    (the E step then reads the dense rows: the layout used when ``counts`` is traced).
    doc_totals (D,), word_totals (V,): the row and column sums; n_distinct (D,): distinct
    words per document (constants of the corpus, computed once per fit, not per step).
    """

    counts: jax.Array
    word_ids: jax.Array | None
    word_counts: jax.Array | None
    doc_totals: jax.Array
    word_totals: jax.Array
    n_distinct: jax.Array


def _dense_corpus(counts: jax.Array, word_ids=None, word_counts=None) -> _Corpus:
    return _Corpus(counts, word_ids, word_counts, jnp.sum(counts, axis=1),
                   jnp.sum(counts, axis=0), jnp.sum(counts > 0, axis=1).astype(counts.dtype))


def _distinct_words(counts, max_fraction: float):
    """The padded distinct-word layout of concrete ``counts`` (D, V) on the host: ``ids``
    (D, L) int32 column ids (each document's nonzero columns first, then zero-count
    columns as padding) and their counts (D, L) as NumPy arrays, L the most distinct words
    of any document; ``None`` when ``counts`` is traced or L > ``max_fraction`` · V (the
    dense rows are then cheaper)."""
    if not is_concrete(counts):
        return None
    host = np.asarray(counts)
    n_distinct = max(1, int(np.max(np.count_nonzero(host, axis=1), initial=0)))
    if n_distinct > max_fraction * host.shape[1]:
        return None
    ids = np.argsort(host == 0, axis=1, kind="stable")[:, :n_distinct].astype(np.int32)
    return ids, np.take_along_axis(host, ids, axis=1)


def _make_corpus(counts: jax.Array) -> _Corpus:
    """Pick the E step layout: padded distinct words when concrete and sparse enough, else dense."""
    layout = _distinct_words(counts, 0.25)
    if layout is None:
        return _dense_corpus(counts)
    return _dense_corpus(counts, jnp.asarray(layout[0]), jnp.asarray(layout[1], counts.dtype))


class _DocInfo(NamedTuple):
    error: jax.Array
    value: jax.Array


def _doc_update(g: jax.Array, args) -> tuple[jax.Array, _DocInfo]:
    """One E step update of ``γ_d``: error and value are the mean change of ``γ_d``."""
    beta, doc_counts, alpha = args
    theta = _doc_factors(g).scaled
    ratio = doc_counts / _word_norm(theta, beta)
    new = alpha + theta * (beta @ ratio)
    change = jnp.mean(jnp.abs(new - g))
    return new, _DocInfo(change, change)


def _doc_e_step(gamma: jax.Array, beta: jax.Array, doc_counts: jax.Array, alpha, tol,
                max_iter: int):
    """The fixed point for one document: ``γ_d`` (K,), ``B̃`` columns (K, L), counts (L,)."""
    # Implicit: the derivative of γ_d at its fixed point (reverse mode through the EM
    # loop's implicit adjoint needs a transposable E step; the forward loop is the same)
    return fixed_point(_doc_update, gamma, (beta, doc_counts, alpha), tol=tol,
                       max_iter=max_iter, adjoint=Implicit())


def _e_step(beta, corpus: _Corpus, doc_topic, priority, alpha, tol, max_iter: int,
            chunk_size: int) -> EStepResult:
    """The E step in batches of ``chunk_size`` documents, the slowest (by ``priority``) first.

    Each batch runs the vmapped per-document loop until its own slowest document stops, so
    sorting documents by their expected number of updates keeps the work close to the sum
    of per-document updates (scikit-learn's per-document early exit) with static shapes.
    """
    n_docs, n_topics = doc_topic.shape
    chunk = min(int(chunk_size), n_docs)
    n_chunks = -(-n_docs // chunk)
    n_pad = n_chunks * chunk - n_docs
    sparse = corpus.word_ids is not None
    rows = corpus.word_counts if sparse else corpus.counts

    def pad(a, value=0):
        return jnp.concatenate([a, jnp.full((n_pad,) + a.shape[1:], value, a.dtype)])

    rows, gamma0 = pad(rows), pad(doc_topic, 1)
    ids = pad(corpus.word_ids) if sparse else None
    order = jnp.concatenate([jnp.argsort(-priority, stable=True),
                             jnp.arange(n_docs, n_docs + n_pad)]).reshape(n_chunks, chunk)
    run = jax.vmap(partial(_doc_e_step, max_iter=max_iter),
                   in_axes=(0, 0 if sparse else None, 0, None, None))

    def one_chunk(idx):
        b = jnp.moveaxis(beta[:, ids[idx]], 0, 1) if sparse else beta   # (C, K, L) or (K, V)
        out = run(gamma0[idx], b, rows[idx], alpha, tol)
        return out.state, out.n_iter, out.converged, out.trace

    if n_chunks == 1:
        gamma, n_iter, converged, trace = jax.tree_util.tree_map(lambda a: a[None],
                                                                 one_chunk(order[0]))
    else:
        gamma, n_iter, converged, trace = jax.lax.map(one_chunk, order)
    flat = order.reshape(-1)

    def unsort(a):   # (n_chunks, C, ...) in sorted order -> (D, ...) in document order
        a = a.reshape((flat.shape[0],) + a.shape[2:])
        return jnp.zeros_like(a).at[flat].set(a)[:n_docs]

    return EStepResult(unsort(gamma), unsort(n_iter), unsort(converged), unsort(trace))


def _length_priority(corpus: _Corpus) -> jax.Array:
    """Distinct words per document, a first guess of how many E step updates it needs."""
    return corpus.n_distinct


def e_step(topic_word: jax.Array, counts, doc_topic: jax.Array, *, alpha,
           max_iter: int = 100, tol=1e-3, chunk_size: int = 16) -> EStepResult:
    """Fit ``γ`` of every document for fixed topics ``λ`` (the E step), vmapped over documents.

    Iterates γ_d ← α + θ̃_d ⊙ (B̃ (n_d ⊘ θ̃_dᵀB̃)) from ``doc_topic`` until the mean absolute
    change of ``γ_d`` is at most ``tol`` or ``max_iter`` updates; each document stops on
    its own (scikit-learn's ``_update_doc_distribution``). Documents are vmapped in
    batches of ``chunk_size`` (the longest first), each batch looping until its last
    document stops.

    Args:
        topic_word: (K, V) ``λ``.
        counts: (D, V) non-negative counts.
        doc_topic: (D, K) initial ``γ`` (positive).
        alpha: scalar document-topic prior.
        max_iter: static bound on the updates per document.
        tol: tolerance on the mean change of ``γ_d``.
        chunk_size: static number of documents vmapped together.

    Returns:
        :class:`EStepResult` with ``doc_topic`` (D, K), ``n_iter`` (D,), ``converged`` (D,),
        ``trace`` (D, max_iter).
    """
    counts = _check_counts(counts)
    max_iter, tol = check_loop_options(max_iter, tol)
    check_int_in_range(chunk_size, "chunk_size", 1, 10**9)
    dtype = jnp.result_type(topic_word, counts, doc_topic)
    corpus = _make_corpus(counts.astype(dtype))
    return _e_step_jit(jnp.asarray(topic_word, dtype), corpus, jnp.asarray(doc_topic, dtype),
                       _check_prior(alpha, "alpha", None, dtype), jnp.asarray(tol, dtype),
                       int(max_iter),
                       int(chunk_size))


@partial(jax.jit, static_argnames=("max_iter", "chunk_size"))
def _e_step_jit(topic_word, corpus, doc_topic, alpha, tol, max_iter, chunk_size):
    return _e_step(_topic_factors(topic_word).scaled, corpus, doc_topic,
                   _length_priority(corpus), alpha, tol, max_iter, chunk_size)


def m_step(topic_word: jax.Array, counts: jax.Array, doc_topic: jax.Array, *, eta) -> jax.Array:
    """The new topics λ = η + Σ_d n_dv φ_dvk (the M step).

    ``φ`` is the optimum for ``γ = doc_topic`` and the current ``λ = topic_word``:
    λ_kv = η + B̃_kv [Θ̃ᵀ(N ⊘ Θ̃B̃)]_kv, summed over blocks of documents.

    Args:
        topic_word: (K, V) current ``λ``. counts: (D, V). doc_topic: (D, K) ``γ``.
        eta: scalar topic-word prior.

    Returns:
        (K, V) the updated ``λ``.
    """
    return _m_step(_topic_factors(topic_word).scaled, _doc_factors(doc_topic).scaled, counts, eta)


def _doc_block(width: int) -> int:
    """Documents per block of the folds over documents: a (b, width) block of ≤ 2²² entries."""
    return max(1, (1 << 22) // max(int(width), 1))


def _m_step(beta, theta, counts, eta):
    return eta + beta * _expected_counts(beta, theta, counts)


def _expected_counts(beta, theta, counts):
    """Σ_d θ̃_dᵀ (n_d ⊘ θ̃_d B̃) (K, V), folded over blocks of documents (λ = η + B̃ ⊙ this)."""
    def expected_counts(rows, mask):
        c, t = rows
        ratio = c / _word_norm(t, beta)                                     # (b, V)
        return jnp.where(mask[:, None], t, 0.0).T @ ratio

    return fold_rows(expected_counts, (counts, theta), block=_doc_block(beta.shape[1]))


# ----------------------------------------------------------------------------- checks


def _check_counts(counts, name: str = "counts", dtype=None) -> jax.Array:
    """A finite, non-negative (D, V) floating matrix (scipy sparse matrices are densified)."""
    if hasattr(counts, "toarray") and not isinstance(counts, jax.Array):
        counts = counts.toarray()
    counts = as_float_array(counts, name, ndim=2, dtype=dtype)
    if counts.shape[0] < 1 or counts.shape[1] < 1:
        raise ValueError(f"{name} must have at least one document and one word, got shape "
                         f"{counts.shape}")
    return check_value(counts, name, lambda xp, v: v < 0,
                       "must be non-negative word counts, found a negative entry")


def _check_prior(value, name: str, default, dtype) -> jax.Array:
    value = jnp.asarray(default if value is None else value)
    if not jnp.issubdtype(value.dtype, jnp.number) or value.ndim != 0:
        raise ValueError(f"{name} must be a positive scalar, got shape {value.shape}")
    return check_positive(value, name).astype(dtype)


def _check_dirichlet_matrix(value, name: str, dtype) -> jax.Array:
    """A finite, positive 2-D matrix of Dirichlet parameters (γ or λ) in ``dtype``."""
    value = as_float_array(value, name, ndim=2, dtype=dtype)
    if value.shape[0] < 1 or value.shape[1] < 1:
        raise ValueError(f"{name} must not be empty, got shape {value.shape}")
    return check_value(value, name, lambda xp, v: ~(v > 0),
                       "must be positive (Dirichlet parameters)")


def _check_tol(value, name: str, dtype) -> jax.Array:
    value = jnp.asarray(value)
    if value.ndim != 0:
        raise ValueError(f"{name} must be a scalar, got shape {value.shape}")
    return check_nonnegative(value, name).astype(dtype)


def _check_init_topic_word(value, n_topics: int, counts, name="init_topic_word") -> jax.Array:
    """A positive, finite (K, V) initial ``λ`` in the counts' dtype."""
    value = as_float_array(value, name, ndim=2, dtype=counts.dtype)
    if value.shape != (n_topics, counts.shape[1]):
        raise ValueError(f"{name} must have shape (n_topics, V) = "
                         f"{(n_topics, counts.shape[1])}, got {value.shape}")
    return check_value(value, name, lambda xp, v: ~(v > 0),
                       "must be positive (Dirichlet parameters)")


def _check_vocab_size(model, counts, name: str = "counts") -> None:
    if counts.shape[1] != model.topic_word.shape[1]:
        raise ValueError(f"{name} has {counts.shape[1]} columns but the model's vocabulary "
                         f"has {model.topic_word.shape[1]} words")


# ----------------------------------------------------------------------------- EM


def _gamma100(key: jax.Array, shape, dtype) -> jax.Array:
    """Draws close to Gamma(100, 1/100) (mean 1, sd 0.1), scikit-learn's initial values.

    The Marsaglia–Tsang transform d(1 + cx)³/100, x ~ N(0, 1), d = 100 − 1/3,
    c = 1/√(9d), without its rejection step (which
    accepts more than 99.8% of draws at shape 100): only initial values, and much cheaper
    to compile than ``jax.random.gamma``'s rejection loop.
    """
    d = 100.0 - 1.0 / 3.0
    c = float(1.0 / np.sqrt(9.0 * d))
    x = jax.random.normal(key, shape, dtype)
    v = jnp.maximum(1.0 + c * x, 0.1) ** 3
    return (d / 100.0) * v


def _init(key, counts, n_topics: int, init_topic_word=None) -> LDAState:
    n_docs, n_words = counts.shape
    dtype = counts.dtype
    key, k_topic, k_doc = jax.random.split(key, 3)
    topic_word = (_gamma100(k_topic, (n_topics, n_words), dtype) if init_topic_word is None
                  else init_topic_word)
    return LDAState(topic_word,
                    _gamma100(k_doc, (n_docs, n_topics), dtype),
                    jnp.asarray(-jnp.inf, dtype), key, jnp.zeros((n_docs,), jnp.int32))


def sklearn_initial_topics(n_topics: int, n_words: int, random_state: int,
                           dtype=np.float64) -> np.ndarray:
    """The initial topics scikit-learn's batch fit draws: (K, V) host array.

    ``LatentDirichletAllocation(n_components=n_topics, random_state=random_state)`` starts
    its ``components_`` from ``np.random.RandomState(random_state).gamma(100, 0.01, (K, V))``
    (its ``_init_latent_vars``); pass the result as ``init(..., topic_word=)`` or
    ``fit(..., init_topic_word=)`` to fit the same problem from the same point. (Only the
    E steps' random starts of ``γ`` then differ, which the fixed points forget.)

    Args:
        n_topics: K. n_words: V. random_state: the scikit-learn seed (an int).
        dtype: the NumPy dtype of the result (scikit-learn casts to the data's dtype).

    Returns:
        (K, V) positive NumPy array.
    """
    check_int_in_range(n_topics, "n_topics", 1, 10**9)
    check_int_in_range(n_words, "n_words", 1, 2**31 - 1)
    check_int_in_range(random_state, "random_state", 0, 2**32 - 1)
    return np.random.RandomState(random_state).gamma(100.0, 0.01, (n_topics, n_words)).astype(
        dtype, copy=False)


def init(key: jax.Array, counts, n_topics: int, *, topic_word=None) -> LDAState:
    """The initial state: ``λ`` (K, V) and ``γ`` (D, K) near Gamma(100, 1/100) (scikit-learn's).

    Args:
        key: a ``jax.random.key``.
        counts: (D, V) non-negative counts (sets D, V and the dtype).
        n_topics: static K.
        topic_word: optional (K, V) positive initial ``λ`` instead of the random draw,
            e.g. :func:`sklearn_initial_topics`.

    Returns:
        :class:`LDAState` with ``elbo = -inf`` and no E step run yet.
    """
    check_int_in_range(n_topics, "n_topics", 1, 10**9)
    counts = _check_counts(counts)
    if topic_word is not None:
        topic_word = _check_init_topic_word(topic_word, n_topics, counts, "topic_word")
    return _init(key, counts, n_topics, topic_word)


def _step(state: LDAState, corpus: _Corpus, alpha, eta, e_step_tol, e_step_max_iter: int,
          warm_start: bool, chunk_size: int) -> tuple[LDAState, LDAInfo]:
    if warm_start:
        key, gamma0 = state.key, state.doc_topic
    else:
        key, sub = jax.random.split(state.key)
        gamma0 = _gamma100(sub, state.doc_topic.shape, state.doc_topic.dtype)
    # slowest documents of the last E step first (distinct words break ties, and rank the first)
    priority = state.e_step_n_iter + _length_priority(corpus) / (corpus.counts.shape[1] + 1)
    topics = _topic_factors(state.topic_word)
    e = _e_step(topics.scaled, corpus, gamma0, priority, alpha, e_step_tol, e_step_max_iter,
                chunk_size)
    docs = _doc_factors(e.doc_topic)
    topic_word = _m_step(topics.scaled, docs.scaled, corpus.counts, eta)
    t = _elbo_terms(corpus, e.doc_topic, docs, topic_word, _topic_factors(topic_word),
                    alpha, eta)
    value = t.words + t.doc_topic + t.topic_word
    change = jnp.abs(value - state.elbo) / jnp.maximum(jnp.abs(value), jnp.finfo(value.dtype).tiny)
    return LDAState(topic_word, e.doc_topic, value, key, e.n_iter), LDAInfo(change, value)


def step(state: LDAState, counts, *, alpha, eta, e_step_max_iter: int = 100, e_step_tol=1e-3,
         warm_start: bool = False, chunk_size: int = 16) -> tuple[LDAState, LDAInfo]:
    """One EM iteration: E step, M step, ELBO.

    The E step starts from ``γ ≈ Gamma(100, 1/100)`` drawn afresh (scikit-learn's batch
    method; the key is carried in ``state.key``) or, with ``warm_start=True``, from the
    previous ``γ``; then the documents' fixed points, :func:`m_step` with the resulting
    ``φ``, and :func:`elbo` at the new ``λ``. With ``warm_start=True`` every piece is a
    coordinate ascent step, so the ELBO cannot decrease even when E steps stop early; from
    a fresh start it does not decrease once each E step reaches its fixed point (a small
    ``e_step_tol``).

    Args:
        state: :class:`LDAState`. counts: (D, V). alpha, eta: scalar priors (may be traced).
        e_step_max_iter: static bound on each document's E step updates.
        e_step_tol: the E step's tolerance (may be traced).
        warm_start: static, start each E step from the previous ``γ``.
        chunk_size: static number of documents vmapped together in the E step.

    Returns:
        ``(state, info)``: the new :class:`LDAState` and an :class:`LDAInfo` (relative ELBO
        change, ELBO).
    """
    counts = _check_counts(counts)
    check_int_in_range(e_step_max_iter, "e_step_max_iter", 1, 10**9)
    check_int_in_range(chunk_size, "chunk_size", 1, 10**9)
    dtype = counts.dtype
    return _step_jit(state, _make_corpus(counts), _check_prior(alpha, "alpha", None, dtype),
                     _check_prior(eta, "eta", None, dtype),
                     _check_tol(e_step_tol, "e_step_tol", dtype), e_step_max_iter=int(e_step_max_iter),
                     warm_start=bool(warm_start), chunk_size=int(chunk_size))


_step_jit = jax.jit(_step, static_argnames=("e_step_max_iter", "warm_start", "chunk_size"))


def _loop_step(state: LDAState, args, *, e_step_max_iter: int, warm_start: bool,
               chunk_size: int) -> tuple[LDAState, LDAInfo]:
    corpus, alpha, eta, e_step_tol = args
    return _step(state, corpus, alpha, eta, e_step_tol, e_step_max_iter, warm_start, chunk_size)


@partial(jax.jit, static_argnames=("n_topics", "max_iter", "e_step_max_iter", "warm_start",
                                   "chunk_size", "adjoint"))
def _fit(key, corpus: _Corpus, alpha, eta, tol, e_step_tol, init_topic_word, n_topics: int,
         max_iter: int, e_step_max_iter: int, warm_start: bool, chunk_size: int,
         adjoint=None) -> LDAResult:
    state = _init(key, corpus.counts, n_topics, init_topic_word)
    one_step = partial(_loop_step, e_step_max_iter=e_step_max_iter, warm_start=warm_start,
                       chunk_size=chunk_size)
    out = fixed_point(one_step, state, (corpus, alpha, eta, e_step_tol), tol=tol,
                      max_iter=max_iter, adjoint=adjoint)
    s = out.state
    healthy = (out.converged & jnp.isfinite(s.elbo) & jnp.all(jnp.isfinite(s.topic_word))
               & jnp.all(jnp.isfinite(s.doc_topic)))
    return LDAResult(s.topic_word, alpha, eta, s.doc_topic, s.elbo, out.n_iter,
                     healthy, out.trace, s.e_step_n_iter)


@checks_on_outputs
def fit(key: jax.Array, counts, n_topics: int, *, alpha=None, eta=None, max_iter: int = 100,
        tol=1e-5, e_step_max_iter: int = 100, e_step_tol=1e-3, warm_start: bool = False,
        chunk_size: int = 16, init_topic_word=None,
        adjoint: Adjoint | None = None) -> LDAResult:
    """Fit LDA by batch variational EM (scikit-learn's ``learning_method="batch"``).

    Runs :func:`init`, then :func:`step` on the shared bounded loop until the relative
    ELBO change |ℒₜ − ℒₜ₋₁| / |ℒₜ| is at most ``tol`` or ``max_iter`` iterations
    (``tol=0`` runs all of them, like scikit-learn with ``evaluate_every=-1``).

    Args:
        key: a ``jax.random.key`` (initial ``λ``, each E step's initial ``γ``).
        counts: (D, V) document-term counts, non-negative (floats allowed; a scipy sparse
            matrix is densified). Its float dtype is the dtype of every result. When the
            counts are concrete the E step reads only each document's distinct words.
        n_topics: static K.
        alpha: document-topic prior (default ``1/K``, as scikit-learn); may be traced.
        eta: topic-word prior (default ``1/K``); may be traced.
        max_iter: static bound on EM iterations.
        tol: tolerance on the relative ELBO change. With restarted E steps the ELBO moves
            by ~1e-6 (relative) from one iteration to the next even at convergence, so a
            ``tol`` much below 1e-5 runs to ``max_iter``.
        e_step_max_iter: static bound on each document's E step updates
            (scikit-learn's ``max_doc_update_iter``).
        e_step_tol: tolerance on the mean change of ``γ_d`` (``mean_change_tol``).
        warm_start: static; start each E step from the previous ``γ`` (monotone ELBO by
            construction, but it tends to stay near its first topics; scikit-learn and
            Blei's lda-c restart, the default).
        chunk_size: static number of documents vmapped together in the E step.
        init_topic_word: optional (K, V) positive initial ``λ`` instead of the random
            draw; ``sklearn_initial_topics(K, V, seed)`` is what scikit-learn's batch fit
            with ``random_state=seed`` starts from, to fit the same problem from the same
            point.
        adjoint: how ``jax.grad``/``jvp`` go through the EM loop (static).
            ``None``/``Implicit()`` (default, same forward cost as ``Direct()``): implicit
            differentiation at the fixed point of the EM map λ = T(λ; counts, α, η), each
            document's E step also differentiated implicitly at its own fixed point; with
            respect to the counts and the priors ``alpha`` and ``eta`` (the updates are
            smooth: the derivative exists wherever the fit converged, and it is exactly 0,
            not NaN, for quantities the priors cannot move, e.g. Σ λ in ``alpha``). NaN
            when the EM loop or a document's E step did not converge (``e_step_n_iter``
            reaching ``e_step_max_iter``) or an adjoint's linear solve did not. The stopping rule reads the relative ELBO change, which
            is quadratic in the parameters' error, so ``λ`` and its derivative are only as
            accurate as about √tol relative, and no better than ~1e-7 (√eps: the ELBO
            stops moving in floating point first): use ``tol`` ≈ 1e-15 and
            ``e_step_tol`` ≈ 1e-13 when derivatives matter (tests: within 1e-5 of central
            differences of EM run to rounding). ``Direct()``: the plain loop (forward mode
            only); ``Unrolled()``: reverse mode through the steps taken.

    Returns:
        :class:`LDAResult` (``topic_word`` (K, V), ``doc_topic`` (D, K), ``elbo`` () the
        final ELBO, ``trace`` (max_iter,) the ELBO per iteration, ``n_iter``,
        ``converged``, ``e_step_n_iter`` (D,)).
    """
    counts = _check_counts(counts)
    n_topics = check_int_in_range(n_topics, "n_topics", 1, 10**9)
    max_iter, tol = check_loop_options(max_iter, tol)
    e_step_max_iter = check_int_in_range(e_step_max_iter, "e_step_max_iter", 1, 10**9)
    chunk_size = check_int_in_range(chunk_size, "chunk_size", 1, 10**9)
    dtype = counts.dtype
    alpha = _check_prior(alpha, "alpha", 1.0 / n_topics, dtype)
    eta = _check_prior(eta, "eta", 1.0 / n_topics, dtype)
    tol = _check_tol(tol, "tol", dtype)
    e_step_tol = _check_tol(e_step_tol, "e_step_tol", dtype)
    if init_topic_word is not None:
        init_topic_word = _check_init_topic_word(init_topic_word, n_topics, counts)
    return _fit(key, _make_corpus(counts), alpha, eta, tol, e_step_tol, init_topic_word,
                n_topics, max_iter, e_step_max_iter, bool(warm_start), chunk_size,
                Implicit() if adjoint is None else adjoint)


# ----------------------------------------------------------------------------- verbs


@checks_on_outputs
def transform(model, counts, *, e_step_max_iter: int = 100, e_step_tol=1e-3,
              normalize: bool = False, chunk_size: int = 16) -> jax.Array:
    """The E step on (new) documents for a fitted model, from ``γ = 1`` (scikit-learn's).

    Args:
        model: an :class:`LDAModel` or :class:`LDAResult` (``topic_word``, ``alpha``).
        counts: (D, V) non-negative counts over the model's vocabulary.
        e_step_max_iter, e_step_tol: the E step's bound and tolerance.
        normalize: return ``γ_d / Σ_k γ_dk`` (scikit-learn's ``transform``) instead of ``γ``.
        chunk_size: static number of documents vmapped together.

    Returns:
        (D, K) ``γ`` (scikit-learn's ``_unnormalized_transform``), or its row-normalised form.
    """
    counts = _check_counts(counts)
    _check_vocab_size(model, counts)
    dtype = jnp.result_type(counts, model.topic_word)
    gamma0 = jnp.ones((counts.shape[0], model.topic_word.shape[0]), dtype)
    gamma = e_step(model.topic_word, counts, gamma0, alpha=model.alpha,
                   max_iter=e_step_max_iter, tol=e_step_tol, chunk_size=chunk_size).doc_topic
    if normalize:
        return gamma / jnp.sum(gamma, axis=1, keepdims=True)
    return gamma


@checks_on_outputs
def perplexity(model, counts, *, doc_topic=None, e_step_max_iter: int = 100,
               e_step_tol=1e-3) -> jax.Array:
    """Perplexity exp(−ℒ / Σ_dv n_dv), scikit-learn's definition.

    ``L`` is :func:`elbo` at ``γ = transform(model, counts)`` (or the given ``doc_topic``),
    including the topics' KL term, exactly as ``LatentDirichletAllocation.perplexity``.

    Args:
        model: :class:`LDAModel` or :class:`LDAResult`.
        counts: (D, V) counts (held-out documents for a held-out perplexity).
        doc_topic: optional (D, K) ``γ`` to use instead of running the E step.

    Returns:
        () perplexity (lower is better).
    """
    counts = _check_counts(counts)
    _check_vocab_size(model, counts)
    if doc_topic is None:
        doc_topic = transform(model, counts, e_step_max_iter=e_step_max_iter,
                              e_step_tol=e_step_tol)
    bound = _elbo_jit(counts, doc_topic, model.topic_word, alpha=model.alpha, eta=model.eta)
    return jnp.exp(-bound / jnp.sum(counts))


def topic_word_mean(model) -> jax.Array:
    """E_q[βₖ] = λₖ / Σᵥ λ_kv: (K, V) rows on the simplex."""
    lam = model.topic_word
    return lam / jnp.sum(lam, axis=1, keepdims=True)


def top_words(model, vocabulary: Sequence[str], n: int = 10) -> list[list[str]]:
    """The ``n`` most probable words of every topic, most probable first.

    Args:
        model: :class:`LDAModel` or :class:`LDAResult` (concrete, not traced).
        vocabulary: the V words, in column order of the counts.
        n: words per topic.

    Returns:
        K lists of ``n`` words.
    """
    lam = np.asarray(model.topic_word)
    if lam.ndim != 2:
        raise ValueError(f"model.topic_word must be (K, V), got shape {lam.shape}")
    if len(vocabulary) != lam.shape[1]:
        raise ValueError(f"vocabulary has {len(vocabulary)} words but the model has "
                         f"{lam.shape[1]}")
    check_int_in_range(n, "n", 1, lam.shape[1])
    order = np.argsort(-lam, axis=1, kind="stable")[:, :n]
    return [[vocabulary[i] for i in row] for row in order]


# ----------------------------------------------------------------------------- online VB

class OnlineLDAState(NamedTuple):
    """State of online variational Bayes.

    Attributes:
        topic_word: (K, V) the current ``λ``.
        n_batch_iter: () int32, updates made so far plus one (scikit-learn's
            ``n_batch_iter_``, which starts at 1): ρ = (τ₀ + n_batch_iter)^(−κ).
        key: the PRNG key the batches' initial ``γ`` are drawn from.
    """

    topic_word: jax.Array
    n_batch_iter: jax.Array
    key: jax.Array


class OnlineLDAInfo(NamedTuple):
    """What an online step reports.

    Attributes:
        error: () mean |Δλ| / mean λ of the step.
        value: () the batch's per-word log-likelihood proxy Σ n_dv log(θ̃_d B̃)_v / Σ n_dv.
    """

    error: jax.Array
    value: jax.Array


class OnlineLDAResult(NamedTuple):
    """What :func:`fit_online` returns (usable wherever an :class:`LDAModel` is expected).

    Attributes:
        topic_word: (K, V) ``λ``. alpha: () prior used. eta: () prior used.
        n_iter: () int32, minibatch updates made.
        converged: () bool, the relative change of ``λ`` fell to ``tol`` (never with the
            default ``tol=0``: the fit runs its epochs) and ``λ`` is finite.
        trace: (n_steps,) each update's batch log-likelihood proxy, NaN past ``n_iter``.
    """

    topic_word: jax.Array
    alpha: jax.Array
    eta: jax.Array
    n_iter: jax.Array
    converged: jax.Array
    trace: jax.Array


def online_step(state: OnlineLDAState, counts: jax.Array, *, n_docs, alpha, eta,
                learning_offset=10.0, learning_decay=0.7, e_step_max_iter: int = 100,
                e_step_tol=1e-3) -> tuple[OnlineLDAState, OnlineLDAInfo]:
    """One online variational Bayes update of the topics from a batch of documents.

    E step on the batch (γ from Gamma(100, 1/100) draws), then

        λ ← (1 − ρ) λ + ρ (η + (D / B) Σ_{d∈batch} n_dv φ_dvk),   ρ = (τ₀ + t)^(−κ)

    (Hoffman, Blei & Bach 2010; scikit-learn's ``learning_method="online"``). Documents
    with no words (padding) contribute nothing and are not counted in B. Concrete, sparse
    ``counts`` are read at each document's distinct words only, as in :func:`fit_online`.

    Args:
        state: an :class:`OnlineLDAState`.
        counts: (B, V) the batch's counts.
        n_docs: () D, the corpus size the batch stands for (scikit-learn's
            ``total_samples``).
        alpha, eta: () the priors.
        learning_offset: τ₀ > 0. learning_decay: κ ∈ (0.5, 1].
        e_step_max_iter: static bound on each document's updates. e_step_tol: its tolerance.

    Returns:
        ``(state, info)``.
    """
    counts = jnp.asarray(counts)
    batch = jax.tree_util.tree_map(lambda a: a[0], _online_batches(counts, counts.shape[0]))
    return _online_step(state, batch, n_docs, alpha, eta, learning_offset, learning_decay,
                        e_step_tol, e_step_max_iter)


# The online fits read each batch's distinct words (padded to the corpus' most distinct
# words L) when L ≤ this fraction of V: a document update then costs K·L instead of K·V.
_ONLINE_SPARSE_FRACTION = 0.5
_ONLINE_CHUNK = 16          # documents vmapped together in the online E step


def _online_batches(counts: jax.Array, batch_size: int):
    """``counts`` (D, V) as (n_batches, B, ...) batches of B documents (the last one padded
    with empty documents): the padded distinct-word layout ``(ids, word_counts)``, each
    (n_batches, B, L), built on the host when ``counts`` is concrete and sparse enough, else
    the dense rows (n_batches, B, V) (under tracing)."""
    n_docs = counts.shape[0]
    n_batches = -(-n_docs // batch_size)
    pad = n_batches * batch_size - n_docs   # zero-count documents: no words, not counted
    layout = _distinct_words(counts, _ONLINE_SPARSE_FRACTION)
    if layout is None:
        return jnp.concatenate([counts, jnp.zeros((pad,) + counts.shape[1:], counts.dtype)]
                               ).reshape(n_batches, batch_size, -1)
    return tuple(jnp.asarray(_pad_rows(a, n_batches * batch_size).reshape(
        n_batches, batch_size, -1), dtype) for a, dtype in zip(layout, (jnp.int32, counts.dtype)))


def _batch_corpus(batch) -> _Corpus:
    """A batch of :func:`_online_batches` as a :class:`_Corpus` (no dense counts in the
    distinct-word layout, no word totals: the online step reads neither)."""
    if not isinstance(batch, tuple):
        return _dense_corpus(batch)
    ids, c = batch
    return _Corpus(None, ids, c, jnp.sum(c, axis=1), None, jnp.sum(c > 0, axis=1).astype(c.dtype))


def _online_sums(beta, theta, corpus: _Corpus):
    """Σ_d θ̃_dᵀ (n_d ⊘ θ̃_d B̃) (K, V) (λ's sufficient statistics before the ⊙ B̃) and
    Σ_dv n_dv log(θ̃_d B̃)_v for a batch; in the distinct-word layout both are computed at
    each document's listed words only and the statistics scattered into their columns."""
    if corpus.word_ids is None:
        norm = _word_norm(theta, beta)                                      # (B, V)
        return theta.T @ (corpus.counts / norm), jnp.sum(corpus.counts * jnp.log(norm))
    ids, c = corpus.word_ids, corpus.word_counts
    norm = _gathered_word_norm(theta, beta, ids)                            # (B, L)
    per_word = ((c / norm)[..., None] * theta[:, None, :]).reshape(-1, theta.shape[1])
    sums = jnp.zeros(beta.shape[::-1], beta.dtype).at[ids.reshape(-1)].add(per_word)
    return sums.T, jnp.sum(c * jnp.log(norm))


@partial(jax.jit, static_argnames=("e_step_max_iter",))
def _online_step(state: OnlineLDAState, batch, n_docs, alpha, eta, tau0, kappa, e_step_tol,
                 e_step_max_iter: int):
    dtype = state.topic_word.dtype
    lam = state.topic_word
    key, k_doc = jax.random.split(state.key)
    corpus = _batch_corpus(batch)
    beta = _topic_factors(lam).scaled
    gamma0 = _gamma100(k_doc, (corpus.doc_totals.shape[0], lam.shape[0]), dtype)
    gamma = _e_step(beta, corpus, gamma0, _length_priority(corpus), alpha,
                    jnp.asarray(e_step_tol, dtype), e_step_max_iter, _ONLINE_CHUNK).doc_topic
    theta = _doc_factors(gamma).scaled
    sums, log_lik = _online_sums(beta, theta, corpus)
    sstats = beta * sums
    b = jnp.maximum(jnp.sum(corpus.doc_totals > 0), 1).astype(dtype)
    rho = (jnp.asarray(tau0, dtype) + state.n_batch_iter.astype(dtype)) ** (
        -jnp.asarray(kappa, dtype))
    new = (1 - rho) * lam + rho * (eta + jnp.asarray(n_docs, dtype) / b * sstats)
    ll = log_lik / jnp.maximum(jnp.sum(corpus.doc_totals), 1)
    err = jnp.mean(jnp.abs(new - lam)) / jnp.mean(lam)
    return OnlineLDAState(new, state.n_batch_iter + 1, key), OnlineLDAInfo(err, ll)


def _online_loop_step(state, args, e_step_max_iter):
    batches, n_docs, alpha, eta, tau0, kappa, e_tol = args
    i = (state.n_batch_iter - 1) % jax.tree_util.tree_leaves(batches)[0].shape[0]
    return _online_step(state, jax.tree_util.tree_map(lambda a: a[i], batches), n_docs,
                        alpha, eta, tau0, kappa, e_tol, e_step_max_iter)


@partial(jax.jit, static_argnames=("n_steps", "e_step_max_iter"))
def _fit_online(key, batches, lam, n_docs, alpha, eta, tau0, kappa, tol, e_tol,
                n_steps: int, e_step_max_iter: int):
    state = OnlineLDAState(lam, jnp.asarray(1, jnp.int32), key)
    out = fixed_point(partial(_online_loop_step, e_step_max_iter=e_step_max_iter), state,
                      (batches, n_docs, alpha, eta, tau0, kappa, e_tol), tol=tol,
                      max_iter=n_steps)
    lam = out.state.topic_word
    return OnlineLDAResult(lam, alpha, eta, out.n_iter,
                           out.converged & jnp.all(jnp.isfinite(lam)), out.trace)


@checks_on_outputs
def fit_online(key: jax.Array, counts, n_topics: int, *, alpha=None, eta=None,
               batch_size: int = 128, max_iter: int = 10, learning_offset=10.0,
               learning_decay=0.7, tol=0.0, e_step_max_iter: int = 100, e_step_tol=1e-3,
               init_topic_word=None) -> OnlineLDAResult:
    """LDA by online variational Bayes (Hoffman, Blei & Bach 2010).

    scikit-learn's ``LatentDirichletAllocation(learning_method="online")``: ``max_iter``
    epochs over the documents in consecutive batches of ``batch_size`` (the last one
    shorter), one :func:`online_step` per batch with D/B scaling and step size
    ρₜ = (τ₀ + t)^(−κ). Each update costs O(B·K·V), independent of D; on concrete counts
    whose documents have at most L ≤ V/2 distinct words, O(B·K·L): the batches' distinct
    words are listed once per fit on the host and the statistics scattered into their
    columns (under ``jit`` the dense rows are read; the same answer to rounding).

    Args:
        key: a JAX PRNG key (initial topics unless given, and the E steps' initial ``γ``).
        counts: (D, V) non-negative counts.
        n_topics: K (static).
        alpha, eta: priors (default 1/K, as scikit-learn).
        batch_size: documents per update (static).
        max_iter: epochs (static).
        learning_offset: τ₀ > 0 (scikit-learn's default 10).
        learning_decay: κ ∈ (0.5, 1] (scikit-learn's default 0.7).
        tol: stop when an update changes λ by at most ``tol`` (relative mean).
        e_step_max_iter, e_step_tol: the per-document E step's bound and tolerance.
        init_topic_word: optional (K, V) initial ``λ`` (e.g. :func:`sklearn_initial_topics`).

    Returns:
        :class:`OnlineLDAResult` (pass it to :func:`transform` and :func:`perplexity`).

    Reference:
        M. Hoffman, D. Blei and F. Bach, "Online learning for latent Dirichlet allocation",
        NIPS 2010.
    """
    from jaxml._core import check_in_range, check_positive
    counts = _check_counts(counts)
    n_docs, n_words = counts.shape
    n_topics = check_int_in_range(n_topics, "n_topics", 1, 10**9)
    batch_size = check_int_in_range(batch_size, "batch_size", 1, 2**31 - 1)
    max_iter, tol = check_loop_options(max_iter, tol)
    e_step_max_iter, e_step_tol = check_loop_options(
        e_step_max_iter, e_step_tol, max_iter_name="e_step_max_iter", tol_name="e_step_tol")
    dtype = counts.dtype
    alpha = _check_prior(alpha, "alpha", 1.0 / n_topics, dtype)
    eta = _check_prior(eta, "eta", 1.0 / n_topics, dtype)
    learning_offset = check_positive(learning_offset, "learning_offset")
    learning_decay = check_in_range(learning_decay, "learning_decay", 0.5, 1.0, low_open=True)
    if key is None:
        raise ValueError("key must be a PRNG key (it draws the E steps' starting points)")
    k_topic, k_doc = jax.random.split(key)
    if init_topic_word is None:
        lam = _gamma100(k_topic, (n_topics, n_words), dtype)
    else:
        lam = _check_init_topic_word(init_topic_word, n_topics, counts)
    b = min(batch_size, n_docs)
    n_batches = -(-n_docs // b)
    batches = _online_batches(counts, b)
    return _fit_online(k_doc, batches, lam, jnp.asarray(n_docs, dtype), alpha, eta,
                       jnp.asarray(learning_offset, dtype), jnp.asarray(learning_decay, dtype),
                       jnp.asarray(tol, dtype), jnp.asarray(e_step_tol, dtype),
                       max_iter * n_batches, int(e_step_max_iter))


__all__ += ["OnlineLDAState", "OnlineLDAInfo", "OnlineLDAResult", "online_step", "fit_online"]


# ----------------------------------------------------------------------------- streamed


def _corpus_chunk(rows, mask):
    """Documents, word totals (V,) and invalid (negative or non-finite) counts of a chunk."""
    c = jnp.where(mask[:, None], rows, 0)
    return (jnp.sum(mask.astype(jnp.int32)), jnp.sum(c, axis=0),
            jnp.sum(~jnp.isfinite(c) | (c < 0)).astype(jnp.int32))


@partial(jax.jit, static_argnames=("e_step_max_iter", "chunk_size", "e"))
def _streamed_chunk(counts, valid, gamma0, n_iter_prev, gamma_prev, lam, alpha, eta, e_tol, *,
                    e_step_max_iter: int, chunk_size: int, e: bool):
    """One chunk of documents in one pass: the E step from ``gamma0`` under ``λ`` and its
    M-step sums (when ``e``), and the words and document terms of the ELBO of the previous
    iteration, whose ``γ`` is ``gamma_prev`` and whose new topics are ``λ``."""
    topics = _topic_factors(lam)
    corpus = _dense_corpus(counts)
    gamma = n_iter = sums = None
    if e:
        priority = n_iter_prev + _length_priority(corpus) / (counts.shape[1] + 1)
        est = _e_step(topics.scaled, corpus, gamma0, priority, alpha, e_tol, e_step_max_iter,
                      chunk_size)
        gamma, n_iter = est.doc_topic, est.n_iter
        sums = _expected_counts(topics.scaled, _doc_factors(gamma).scaled, counts)
    docs = _doc_factors(gamma_prev)      # (the first pass scores the initial draw, unused)
    words = _elbo_terms(corpus, gamma_prev, docs, lam, topics, alpha, eta).words
    doc_kl = _neg_kl_dirichlet(alpha, gamma_prev, docs.elog, valid)
    return gamma, n_iter, sums, words, doc_kl


@jax.jit
def _topics_from_sums(lam, sums, eta):
    return eta + _topic_factors(lam).scaled * sums


@jax.jit
def _topic_kl(lam, eta):
    return _neg_kl_dirichlet(eta, lam, dirichlet_expectation(lam))


_gamma100_jit = jax.jit(_gamma100, static_argnames=("shape", "dtype"))


def _pad_rows(a: np.ndarray, c: int, value=0) -> np.ndarray:
    if a.shape[0] == c:
        return a
    out = np.full((c,) + a.shape[1:], value, a.dtype)
    out[:a.shape[0]] = a
    return out


@host_function
def fit_streamed(key: jax.Array, counts, n_topics: int, *, alpha=None, eta=None,
                 max_iter: int = 100, tol=1e-5, e_step_max_iter: int = 100, e_step_tol=1e-3,
                 warm_start: bool = False, chunk_size: int = 16,
                 init_topic_word=None) -> LDAResult:
    """Fit LDA by batch variational EM over documents streamed from the host in chunks.

    The iteration of :func:`fit` (E step per document, M step λ = η + Σ_d n_dv φ_dvk, the
    ELBO after each iteration, the same stopping rule and random draws), but each iteration
    is one pass over the chunks of documents: per chunk, the E step of the iteration and
    its M-step sums, folded over chunks, together with the words and document terms of
    the previous iteration's ELBO (which needs the topics that pass starts from; one more
    pass scores the last iteration). Device memory holds one chunk of counts and the
    (K, V) topics; the (D, K) ``γ`` and its initial draws live on the host. Equals
    :func:`fit` with the same key to rounding. A host function (a Python loop over host
    data): it cannot run under ``jit``/``vmap``/``grad``.

    Args:
        key: a ``jax.random.key`` (initial ``λ``, each E step's initial ``γ``), as in :func:`fit`.
        counts: the documents, as :func:`jaxml.data.chunks` of (m, V) count rows (or
            anything it accepts: a list of arrays, a memory-mapped ``.npy``, a callable
            returning an iterable, e.g. ``lambda: (S[i:i + m].toarray() for i in
            range(0, D, m))`` for a scipy sparse corpus ``S``, densified one chunk at a time).
        n_topics: static K.
        alpha, eta: priors (default 1/K).
        max_iter: bound on EM iterations.
        tol: tolerance on the relative ELBO change, as in :func:`fit`.
        e_step_max_iter, e_step_tol: the per-document E step's bound and tolerance.
        warm_start: start each E step from the previous ``γ``, as in :func:`fit`.
        chunk_size: documents vmapped together in the E step (static), as in :func:`fit`
            (the host chunks' size is the chunk source's).
        init_topic_word: optional (K, V) positive initial ``λ``.

    Returns:
        :class:`LDAResult` (``doc_topic`` (D, K) and ``e_step_n_iter`` (D,) in document order).

    Raises:
        ValueError: a chunk's width or dtype differs from the first chunk's (the message
            names the chunk), or some count is negative or not finite.
    """
    source = counts if isinstance(counts, Chunks) else Chunks(counts)
    n_topics = check_int_in_range(n_topics, "n_topics", 1, 10**9)
    max_iter, tol = check_loop_options(max_iter, tol)
    e_step_max_iter = check_int_in_range(e_step_max_iter, "e_step_max_iter", 1, 10**9)
    chunk_size = check_int_in_range(chunk_size, "chunk_size", 1, 10**9)
    first = first_chunk(source, name="counts", unit="document")
    first = _check_counts(first, "the first chunk of counts")
    dtype = first.dtype
    alpha = _check_prior(alpha, "alpha", 1.0 / n_topics, dtype)
    eta = _check_prior(eta, "eta", 1.0 / n_topics, dtype)
    tol = float(_check_tol(tol, "tol", dtype))
    e_step_tol = _check_tol(e_step_tol, "e_step_tol", dtype)
    if key is None:
        raise ValueError("key must be a PRNG key (it draws the E steps' starting points)")
    n_docs, _, bad = fold_chunks(_corpus_chunk, source)
    if int(bad):
        raise ValueError("counts must be finite, non-negative word counts (some chunk is not)")
    n_docs = int(n_docs)
    key, k_topic, k_doc = jax.random.split(key, 3)
    if init_topic_word is None:
        lam = _gamma100_jit(k_topic, (n_topics, first.shape[1]), dtype)
    else:
        lam = _check_init_topic_word(init_topic_word, n_topics, first)
    gamma = np.asarray(_gamma100_jit(k_doc, (n_docs, n_topics), dtype))
    doc_iters = np.zeros((n_docs,), np.int32)
    host_dtype = np.dtype(dtype)
    trace = np.full((max_iter,), np.nan)
    value, converged, n_iter = -np.inf, False, max_iter
    for t in range(1, max_iter + 2):
        e, score = t <= max_iter, t > 1
        gamma0 = gamma
        if e and not warm_start:
            key, sub = jax.random.split(key)
            gamma0 = np.asarray(_gamma100_jit(sub, (n_docs, n_topics), dtype))
        new_gamma, new_iters = np.empty_like(gamma), np.empty_like(doc_iters)
        sums = words = doc_kl = 0.0
        off = 0
        for rows, m in source:
            c = source.chunk_size
            g, it, s, w, kl = _streamed_chunk(
                _pad_rows(np.asarray(rows, host_dtype), c), np.arange(c) < m,
                _pad_rows(gamma0[off:off + m], c, 1), _pad_rows(doc_iters[off:off + m], c),
                _pad_rows(gamma[off:off + m], c, 1), lam, alpha, eta, e_step_tol,
                e_step_max_iter=e_step_max_iter, chunk_size=chunk_size, e=e)
            if e:
                new_gamma[off:off + m], new_iters[off:off + m] = np.asarray(g)[:m], np.asarray(it)[:m]
                sums = sums + s
            if score:
                words, doc_kl = words + w, doc_kl + kl
            off += m
        if score:
            new_value = float(words + doc_kl + _topic_kl(lam, eta))
            trace[t - 2] = new_value
            change = abs(new_value - value) / max(abs(new_value), np.finfo(host_dtype).tiny)
            value = new_value
            if change <= tol:
                converged, n_iter = True, t - 1
                break
        if not e:
            break
        lam = _topics_from_sums(lam, sums, eta)
        gamma, doc_iters = new_gamma, new_iters
    healthy = (converged and np.isfinite(value) and bool(jnp.all(jnp.isfinite(lam)))
               and bool(np.all(np.isfinite(gamma))))
    return LDAResult(lam, alpha, eta, jnp.asarray(gamma), jnp.asarray(value, dtype),
                     jnp.asarray(n_iter, jnp.int32), jnp.asarray(healthy),
                     jnp.asarray(trace, dtype), jnp.asarray(doc_iters))


__all__ += ["fit_streamed"]
