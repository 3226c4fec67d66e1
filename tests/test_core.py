"""jaxml._core: the blocked Gram matrix and the row fold (the loop is tested in test_loop.py)."""

import jax
import jax.numpy as jnp
import numpy as np


def test_blocked_gram_equals_numpy_scatter():
    from jaxml._core import blocked_gram
    rng = np.random.default_rng(0)
    X = rng.normal(size=(1000, 7)) * 3.0 + 50.0       # far from the origin: centring matters
    c = X.mean(0)
    ref = (X - c).T @ (X - c)
    for block in (64, 300, 1000, 5000):              # remainders, one block, block > n
        G = blocked_gram(jnp.asarray(X), center=jnp.asarray(c), block=block)
        np.testing.assert_allclose(G, ref, rtol=1e-12, atol=1e-12 * np.abs(ref).max())
        np.testing.assert_array_equal(G, np.asarray(G).T)
    np.testing.assert_allclose(blocked_gram(jnp.asarray(X), block=128), X.T @ X, rtol=1e-12)
    # float32 products summed in float64: float32-level error, float64 result
    G32 = blocked_gram(jnp.asarray(X), center=jnp.asarray(c), compute_dtype=jnp.float32)
    assert G32.dtype == jnp.float64
    np.testing.assert_allclose(G32, ref, atol=1e-5 * np.abs(ref).max())
    # vmap over datasets
    Xs = rng.normal(size=(3, 200, 4))
    Gs = jax.vmap(lambda x: blocked_gram(x, center=x.mean(0), block=64))(jnp.asarray(Xs))
    for G, x in zip(Gs, Xs):
        xc = x - x.mean(0)
        np.testing.assert_allclose(G, xc.T @ xc, rtol=1e-12)


def test_wide_float32_gram_in_upper_strips():
    """Float32 products with d ≥ 256 are formed as 4 upper block strips (d = 301: uneven
    strips): the mirrored matrix equals the float64 scatter to float32 rounding, exactly
    symmetric, through blocked_gram and shifted_scatter (whose trace is exact)."""
    from jaxml._core import blocked_gram, shifted_scatter
    from jaxml._core.linalg import _strip_edges
    assert len(_strip_edges(301, jnp.float32)) == 5
    rng = np.random.default_rng(3)
    X = rng.normal(size=(700, 301)) * rng.uniform(0.5, 2.0, size=301) + 5.0
    c = X.mean(0)
    ref = (X - c).T @ (X - c)
    scale = np.abs(ref).max()
    for Xin, cdt in ((X, jnp.float32), (X.astype(np.float32), None)):
        G = np.asarray(blocked_gram(jnp.asarray(Xin), center=jnp.asarray(c, Xin.dtype),
                                    compute_dtype=cdt, block=256))
        np.testing.assert_allclose(G, ref, atol=3e-5 * scale)
        np.testing.assert_array_equal(G, G.T)
    mean, S, total = shifted_scatter(jnp.asarray(X), compute_dtype=jnp.float32, with_trace=True)
    np.testing.assert_allclose(mean, c, rtol=1e-13)
    np.testing.assert_allclose(S, ref, atol=3e-5 * scale)
    np.testing.assert_array_equal(S, np.asarray(S).T)
    np.testing.assert_allclose(total, np.trace(ref), rtol=1e-12)


def test_fold_rows_sums_every_row_once():
    from jaxml._core.fold import fold_map_rows, fold_rows, map_rows
    rng = np.random.default_rng(1)
    X, w = rng.normal(size=(103, 3)), rng.uniform(size=103)

    def stat(rows, mask):
        x, wi = rows
        wm = jnp.where(mask, wi, 0.0)
        return {"n": jnp.sum(mask), "sx": wm @ x}

    for block in (1, 10, 50, 103, 500, None):          # remainders, exact, block > n, one
        s = fold_rows(stat, (jnp.asarray(X), jnp.asarray(w)), block=block)
        assert int(s["n"]) == 103
        np.testing.assert_allclose(s["sx"], w @ X, rtol=1e-12)
        out = map_rows(lambda r, m: jnp.sum(r * r, axis=1), jnp.asarray(X), block=block)
        np.testing.assert_allclose(out, np.sum(X * X, axis=1), rtol=1e-12)
        tot, rowwise = fold_map_rows(lambda r, m: (jnp.sum(jnp.where(m[:, None], r, 0.0), 0),
                                                  2.0 * r), jnp.asarray(X), block=block)
        np.testing.assert_allclose(tot, X.sum(0), rtol=1e-12)
        np.testing.assert_allclose(rowwise, 2.0 * X, rtol=1e-12)
    # vmap over datasets, and a mask-respecting statistic under jit + grad
    Xs = rng.normal(size=(4, 37, 2))
    sums = jax.jit(jax.vmap(lambda x: fold_rows(
        lambda r, m: jnp.sum(jnp.where(m[:, None], r, 0.0), 0), x, block=8)))(jnp.asarray(Xs))
    np.testing.assert_allclose(sums, Xs.sum(1), rtol=1e-12)
    g = jax.grad(lambda x: fold_rows(lambda r, m: jnp.sum(jnp.where(m[:, None], r * r, 0.0)),
                                     x, block=8))(jnp.asarray(X))
    np.testing.assert_allclose(g, 2.0 * X, rtol=1e-12)


def _weighted_sum(rows, mask, scale):
    x, w = rows
    return {"n": jnp.sum(mask), "sx": scale * (jnp.where(mask, w, 0.0) @ x)}


def test_fold_over_host_chunks_equals_in_memory(tmp_path):
    from jaxml._core.fold import Chunks, fold_chunks, fold_rows
    rng = np.random.default_rng(2)
    X, w = rng.normal(size=(103, 3)), rng.uniform(size=103)
    ref = fold_rows(lambda r, m: _weighted_sum(r, m, 2.0), (jnp.asarray(X), jnp.asarray(w)),
                    block=16)
    pieces = [(X[s:s + 25], w[s:s + 25]) for s in range(0, 103, 25)]   # last chunk short
    for source in (Chunks(pieces), Chunks(lambda: iter(pieces), chunk_size=10)):
        s = fold_rows(_weighted_sum, source, block=4, args=(2.0,))
        assert int(s["n"]) == 103
        np.testing.assert_allclose(s["sx"], ref["sx"], rtol=1e-12)
    # a memory-mapped .npy, read 30 rows at a time
    np.save(tmp_path / "x.npy", X)
    mm = np.load(tmp_path / "x.npy", mmap_mode="r")
    tot = fold_chunks(lambda r, m: jnp.sum(jnp.where(m[:, None], r, 0.0), 0),
                      Chunks(mm, chunk_size=30))
    np.testing.assert_allclose(tot, X.sum(0), rtol=1e-12)
    # inconsistent widths or dtypes name the chunk
    import pytest
    bad = [X[:10], X[10:20, :2]]
    with pytest.raises(ValueError, match="chunk 1"):
        fold_chunks(lambda r, m: jnp.sum(r), Chunks(bad))
    with pytest.raises(ValueError, match="chunk 2"):
        fold_chunks(lambda r, m: jnp.sum(r), Chunks([X[:5], X[5:9], X[9:12].astype(np.float32)]))
    gen = (c for c in [X[:5]])
    src = Chunks(lambda: gen)
    fold_chunks(lambda r, m: jnp.sum(jnp.where(m[:, None], r, 0.0)), src)
    with pytest.raises(ValueError, match="no rows"):
        fold_chunks(lambda r, m: jnp.sum(jnp.where(m[:, None], r, 0.0)), src)


def test_refine_top_eigenpairs_from_a_float32_decomposition():
    from jaxml._core import refine_top_eigenpairs
    rng = np.random.default_rng(0)
    d, k = 40, 5
    Q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    lam = np.geomspace(100.0, 0.1, d)
    A = (Q * lam) @ Q.T
    mu, W = np.linalg.eigh(A.astype(np.float32))            # float32 approximation
    mu, W = mu[::-1].astype(np.float64), W[:, ::-1].astype(np.float64)
    theta, V, res, ok = refine_top_eigenpairs(lambda V: jnp.asarray(A) @ V, jnp.asarray(W),
                                              jnp.asarray(mu), k)
    assert bool(ok)
    assert np.all(np.asarray(res) <= d * np.finfo(float).eps * 100.0)
    np.testing.assert_allclose(theta, lam[:k], rtol=1e-13)
    np.testing.assert_allclose(np.abs(np.sum(np.asarray(V) * Q[:, :k], 0)), 1.0, atol=1e-12)
    # one application of A (no correction) cannot certify float32 accuracy
    assert not bool(refine_top_eigenpairs(lambda V: jnp.asarray(A) @ V, jnp.asarray(W),
                                          jnp.asarray(mu), k, max_iter=1)[3])


def test_checks_on_outputs_raise_first_under_jit_vmap_and_partial_use():
    """A decorated public function's traced boundary checks are tied to its outputs: they
    still fire when only one output is used, under vmap, and before the computation's own
    checks; gradients are those of the unchecked function."""
    import pytest
    from jaxml import linear, pca
    from jaxml.config import runtime_checks
    rng = np.random.default_rng(0)
    X = jnp.asarray(rng.normal(size=(40, 3)))
    y = X @ jnp.array([1.0, -2.0, 0.5])
    bad = X.at[3, 1].set(jnp.nan)
    with pytest.raises(Exception, match="X contains NaN or inf"):
        jax.block_until_ready(jax.jit(lambda X: pca.fit(X, 2).mean)(bad))
    with pytest.raises(Exception, match="X contains NaN or inf"):
        jax.block_until_ready(jax.jit(jax.vmap(lambda X: pca.fit(X, 2).components))(
            jnp.stack([X, bad])))
    with pytest.raises(Exception, match="X contains NaN or inf"):   # not a check inside the solver
        jax.block_until_ready(jax.jit(lambda X: linear.lasso(X, y, 0.1).w)(bad))
    g = jax.grad(lambda X: pca.fit(X, 2).explained_variance.sum())
    with runtime_checks(False):
        g_off = jax.grad(lambda X: pca.fit(X, 2).explained_variance.sum())(X)
    np.testing.assert_allclose(jax.jit(g)(X), g_off, rtol=1e-12)
