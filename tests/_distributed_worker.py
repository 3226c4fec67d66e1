"""Runs jaxml's sufficient-statistic fits on row-sharded inputs (started by
tests/test_distributed.py in a subprocess, so that forced host devices and
``jax.distributed`` never touch the rest of the suite).

    python tests/_distributed_worker.py mesh                  # 4 forced host devices
    python tests/_distributed_worker.py process RANK PORT     # one of two processes

Prints one JSON object per check on stdout: {"check": name, "ok": bool, "detail": str}.
"""

import json
import os
import sys
import traceback

import numpy as np

MODE = sys.argv[1]
if MODE == "mesh":
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                               + " --xla_force_host_platform_device_count=4")

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)
if MODE == "process":
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    RANK, PORT = int(sys.argv[2]), int(sys.argv[3])
    jax.distributed.initialize(f"127.0.0.1:{PORT}", num_processes=2, process_id=RANK,
                               initialization_timeout=60)

import jax.numpy as jnp  # noqa: E402
from jax.sharding import AxisType, NamedSharding  # noqa: E402
from jax.sharding import PartitionSpec as P  # noqa: E402

import jaxml._core.fold as fold  # noqa: E402
from jaxml import data as jdata  # noqa: E402
from jaxml import gaussian, gmm, kmeans, lda, linear, naive_bayes, pca  # noqa: E402

SHARDED_CALLS = [0]
_inner = fold._run_sharded


def _counting(*a, **k):           # counts traces that took the shard_map path
    SHARDED_CALLS[0] += 1
    return _inner(*a, **k)


fold._run_sharded = _counting


def report(name, ok, detail=""):
    print(json.dumps({"check": name, "ok": bool(ok), "detail": str(detail)}), flush=True)


def close(a, b, rtol=1e-9, atol=1e-9):
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and np.allclose(a, b, rtol=rtol, atol=atol), \
        f"max abs diff {np.max(np.abs(a - b)) if a.shape == b.shape else (a.shape, b.shape)}"


def check(name, fn, folds=True):
    before = SHARDED_CALLS[0]
    try:
        ok, detail = fn()
        if folds and SHARDED_CALLS[0] == before:
            ok, detail = False, f"the sharded fold was not used ({detail})"
    except Exception:
        ok, detail = False, traceback.format_exc()[-2000:]
    report(name, ok, detail)


def data(n, seed=0):
    rng = np.random.default_rng(seed)
    centers = np.array([[0.0, 0.0, 0.0], [5.0, 5.0, 0.0], [0.0, 6.0, 4.0]])
    y = rng.integers(0, 3, n)
    X = centers[y] + rng.normal(size=(n, 3)) * np.array([1.0, 0.7, 1.3])
    return X, y


def fits_equal(put, n, tag, only=None):
    X, y = data(n)

    def chk(name, fn, folds=True):            # the checks restricted to ``only``
        if only is None or name.split("[")[0] in only:
            check(name, fn, folds)
    Xs, ys = put(X), put(y)
    init = X[[0, 1, 2]]

    def km():
        a = kmeans.fit(None, X, 3, init=init)
        b = kmeans.fit(None, Xs, 3, init=init)
        ok = np.array_equal(np.asarray(a.labels), np.asarray(b.labels))
        c_ok, d = close(a.centroids, b.centroids)
        return ok and c_ok and int(a.n_iter) == int(b.n_iter), d
    chk(f"kmeans[{tag}]", km)

    for ct in ("full", "tied", "diag", "spherical"):
        def gm(ct=ct):
            key = jax.random.key(0)
            a = gmm.fit(key, X, 3, covariance_type=ct, max_iter=30)
            b = gmm.fit(key, Xs, 3, covariance_type=ct, max_iter=30)
            ok, d = close(a.lower_bound, b.lower_bound, rtol=1e-10)
            return ok and close(a.means, b.means, rtol=1e-8)[0], d
        chk(f"gmm-{ct}[{tag}]", gm)

    def pc():
        a, b = pca.fit(X, 2), pca.fit(Xs, 2)
        return close(a.explained_variance, b.explained_variance, rtol=1e-10)
    chk(f"pca[{tag}]", pc)


    def mle():
        a, b = gaussian.mle(X), gaussian.mle(Xs)
        ok, d = close(a.cov if hasattr(a, "cov") else a[1], b.cov if hasattr(b, "cov") else b[1])
        return ok and close(a[0], b[0])[0], d
    chk(f"gaussian.mle[{tag}]", mle)

    def nbg():
        a = naive_bayes.fit_gaussian(X, y, 3)
        b = naive_bayes.fit_gaussian(Xs, ys, 3)
        return close(naive_bayes.predict_log_proba(a, X), naive_bayes.predict_log_proba(b, X))
    chk(f"naive_bayes.fit_gaussian[{tag}]", nbg)

    def nbm():
        C = np.abs(np.round(X * 3))
        a = naive_bayes.fit_multinomial(C, y, 3)
        b = naive_bayes.fit_multinomial(put(C), ys, 3)
        return close(naive_bayes.predict_log_proba(a, C), naive_bayes.predict_log_proba(b, C))
    chk(f"naive_bayes.fit_multinomial[{tag}]", nbm)

    def rd():
        t = X @ np.array([1.0, -2.0, 0.5]) + 0.1 * y
        return close(linear.ridge(X, t, 0.3), linear.ridge(Xs, put(t), 0.3), rtol=1e-10)
    chk(f"linear.ridge[{tag}]", rd, folds=False)   # small d: not through the fold

    def lsq():   # TSQR over the shards (qr_rows: all_gather of R factors, not the psum fold)
        t = X @ np.array([1.0, -2.0, 0.5]) + 0.1 * y
        uses_tsqr = "all_gather" in str(jax.make_jaxpr(linear.least_squares)(Xs, put(t)))
        ok, d = close(linear.least_squares(Xs, put(t)), np.linalg.lstsq(X, t, rcond=None)[0],
                      rtol=1e-12)
        if n % 4:                         # uneven rows: the value alone
            return uses_tsqr and ok, f"{d}; tsqr {uses_tsqr}"
        rng = np.random.default_rng(5)    # κ(Xc) = 1e10: the normal equations lose every digit
        U, _ = np.linalg.qr(rng.normal(size=(n, 4)))
        Xc = U @ np.diag(np.logspace(0, -10, 4)) @ np.linalg.qr(rng.normal(size=(4, 4)))[0]
        tc = Xc @ rng.normal(size=4)
        wc, wl = linear.least_squares(put(Xc), put(tc)), np.linalg.lstsq(Xc, tc, rcond=None)[0]
        ok_c = np.linalg.norm(wc - wl) <= 1e-5 * np.linalg.norm(wl)
        grad = jax.grad(lambda X, t: jnp.sum(jnp.sin(linear.least_squares(X, t))), (0, 1))
        g_ok = all(close(a, b, rtol=1e-8, atol=1e-10)[0]
                   for a, b in zip(grad(X, t), grad(Xs, put(t))))
        return (uses_tsqr and ok and ok_c and g_ok,
                f"{d}; tsqr {uses_tsqr}, κ=1e10 {ok_c}, grad {g_ok}")
    chk(f"linear.least_squares[{tag}]", lsq, folds=False)

    def ld():
        rng = np.random.default_rng(3)
        counts = rng.poisson(1.0, size=(n // 4 + (n % 4 > 0), 12)).astype(float)
        topics = lda.sklearn_initial_topics(3, 12, 0)
        key = jax.random.key(0)
        a = lda.fit(key, counts, 3, init_topic_word=topics, max_iter=5)
        b = lda.fit(key, put(counts), 3, init_topic_word=topics, max_iter=5)
        return close(a.elbo, b.elbo, rtol=1e-10)
    chk(f"lda[{tag}]", ld)


UNEVEN = ("kmeans", "gmm-full", "lda", "linear.least_squares")


def main():
    if MODE == "mesh":
        assert len(jax.devices()) == 4, jax.devices()
        auto = jax.make_mesh((4,), ("data",), axis_types=(AxisType.Auto,))
        fits_equal(lambda a: jax.device_put(a, NamedSharding(auto, P("data"))), 400,
                   "sharded, n=400")
        # 402 rows cannot be split evenly over 4 devices: the fold pads with masked rows.
        fits_equal(lambda a: jax.device_put(a, NamedSharding(auto, P())), 402,
                   "auto mesh, n=402", only=UNEVEN)
        # jax.make_mesh's default Explicit axes: placed by jaxml.data.shard_rows
        explicit = jax.make_mesh((4,), ("data",))
        fits_equal(lambda a: jdata.shard_rows(a, explicit), 406, "shard_rows, n=406",
                   only=("kmeans",))
    else:
        mesh = jax.make_mesh((jax.device_count(),), ("data",), axis_types=(AxisType.Auto,))
        X, _ = data(400, seed=1)
        half = X.shape[0] // 2

        def put(a):
            local = a[RANK * half:(RANK + 1) * half]
            return jax.make_array_from_process_local_data(NamedSharding(mesh, P("data")),
                                                          local, a.shape)
        Xg = put(X)
        init = X[[0, 1, 2]]

        def km():
            a = kmeans.fit(None, X, 3, init=init)
            b = kmeans.fit(None, Xg, 3, init=init)
            labels = np.asarray(jax.experimental.multihost_utils.process_allgather(
                b.labels, tiled=True))
            ok = np.array_equal(np.asarray(a.labels), labels)
            return ok and close(a.inertia, b.inertia)[0], close(a.centroids, b.centroids)[1]
        check("kmeans[2 processes]", km)

        def gm():
            key = jax.random.key(0)
            a = gmm.fit(key, X, 3, covariance_type="full", max_iter=30)
            b = gmm.fit(key, Xg, 3, covariance_type="full", max_iter=30)
            return close(a.lower_bound, b.lower_bound, rtol=1e-10)
        check("gmm[2 processes]", gm)
        jax.distributed.shutdown()


if __name__ == "__main__":
    main()
