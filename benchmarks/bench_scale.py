"""Scale: streamed memory, devices, minibatch/online fits vs scikit-learn (issue 19).

(a) Peak memory of a streamed k-means fit (``kmeans.fit_streamed`` over a memory-mapped
    ``.npy``, fixed chunk size) stays flat as n grows 10×: peak RSS of a fresh process per
    size, beside the size of the data.
(b) Throughput of ``kmeans.fit`` on rows sharded over 1, 2 and 4 forced host devices (one
    fresh process each, ``--xla_force_host_platform_device_count``). On a 2-core CPU the
    "devices" share the same cores, so the figure shows the overhead of the sharded fold,
    not a speed-up; on a multi-GPU machine it measures scaling.
(c) Online LDA (``lda.fit_online``) and minibatch k-means (``kmeans.fit_minibatch``) against
    scikit-learn's online ``LatentDirichletAllocation`` and ``MiniBatchKMeans``: the same
    batches, epochs and initial values; ratio of plain-call times after compilation.

    python benchmarks/run_all.py --only scale [--quick] --out out/bench
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import numpy as np  # noqa: E402
from _common import BenchRow, time_fn, write_report  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

_STREAM = textwrap.dedent("""
    import json, resource, sys, time, numpy as np, jax
    jax.config.update("jax_enable_x64", True)
    from jaxml import data, kmeans
    path, chunk = sys.argv[1], int(sys.argv[2])
    X = np.load(path, mmap_mode="r")
    init = np.asarray(X[:8])
    t = time.perf_counter()
    r = kmeans.fit_streamed(None, data.chunks(X, chunk_size=chunk), 8, init=init, max_iter=5,
                            tol=0.0)
    r.centroids.block_until_ready()
    print(json.dumps({"s": time.perf_counter() - t,
                      "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
""")

_DEVICES = textwrap.dedent("""
    import json, sys, time, numpy as np, jax
    jax.config.update("jax_enable_x64", True)
    from jax.sharding import AxisType, NamedSharding, PartitionSpec as P
    from jaxml import kmeans
    n = int(sys.argv[1])
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, 16)) + rng.integers(0, 8, n)[:, None] * 3.0
    mesh = jax.make_mesh((jax.device_count(),), ("data",), axis_types=(AxisType.Auto,))
    Xs = jax.device_put(X, NamedSharding(mesh, P("data")))
    init = X[:8]
    fit = lambda: kmeans.fit(None, Xs, 8, init=init, max_iter=20, tol=0.0).centroids
    fit().block_until_ready()
    ts = []
    for _ in range(3):
        t = time.perf_counter(); fit().block_until_ready(); ts.append(time.perf_counter() - t)
    print(json.dumps({"s": sorted(ts)[1], "devices": jax.device_count()}))
""")


def _python(code: str, *args: str, env_extra: dict | None = None) -> dict:
    env = dict(os.environ)
    env.pop("XLA_FLAGS", None)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(env_extra or {})
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                         env=env, timeout=900, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def _streamed_memory(quick: bool) -> list[BenchRow]:
    sizes = (20_000, 200_000) if quick else (200_000, 2_000_000)
    d, chunk = 16, 8192
    rows, rss = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            path = Path(tmp) / f"x{n}.npy"
            mm = np.lib.format.open_memmap(path, mode="w+", dtype=np.float64, shape=(n, d))
            rng = np.random.default_rng(0)
            for s in range(0, n, 100_000):
                m = min(100_000, n - s)
                mm[s:s + m] = rng.normal(size=(m, d)) + rng.integers(0, 8, m)[:, None] * 3.0
            mm.flush()
            del mm
            r = _python(_STREAM, str(path), str(chunk))
            rss.append(r["rss_mb"])
            rows.append(BenchRow(
                f"(a) kmeans.fit_streamed, n={n:,}, d={d}, chunk={chunk}, 5 passes", r["s"], 0.0,
                "-", r["s"], f"peak RSS {r['rss_mb']:.0f} MB; data {n * d * 8 / 2**20:.0f} MB "
                "(memory-mapped)", "flat in n",
                "RSS includes the JAX runtime; compare the two sizes"))
    rows[-1] = rows[-1]._replace(note=f"peak RSS grew {rss[-1] - rss[0]:+.0f} MB for 10x n "
                                 f"(data grew {(sizes[1] - sizes[0]) * d * 8 / 2**20:.0f} MB)")
    return rows


def _devices(quick: bool) -> list[BenchRow]:
    n = 40_000 if quick else 400_000
    rows, base = [], None
    for k in (1, 2, 4):
        r = _python(_DEVICES, str(n),
                    env_extra={"XLA_FLAGS": f"--xla_force_host_platform_device_count={k}"})
        base = base or r["s"]
        rows.append(BenchRow(
            f"(b) kmeans.fit (20 Lloyd steps) on rows sharded over {k} host device(s), "
            f"n={n:,}, d=16, k=8", r["s"], 0.0, "1 device", base,
            f"{n * 20 / r['s'] / 1e6:.2f} M rows·steps/s", "",
            "CPU devices share the machine's cores: overhead, not speed-up"))
    return rows


def _online(quick: bool) -> list[BenchRow]:
    from sklearn.cluster import MiniBatchKMeans
    from sklearn.decomposition import LatentDirichletAllocation

    from jaxml import kmeans, lda
    rows = []
    # minibatch k-means: same init, batch size and epochs; no reassignment, no early stop
    n = 20_000 if quick else 200_000
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, 16)) + rng.integers(0, 16, n)[:, None] * 2.0
    init = np.asarray(kmeans.plusplus_init(jax.random.key(0), X, 16))
    t_j, r = time_fn(lambda: kmeans.fit_minibatch(jax.random.key(1), X, 16, init=init,
                                                  batch_size=1024, max_iter=5))
    sk = MiniBatchKMeans(16, init=init, n_init=1, batch_size=1024, max_iter=5, random_state=0,
                         max_no_improvement=None, reassignment_ratio=0.0, tol=0.0)
    t0 = time.perf_counter()
    sk.fit(X)
    t_s = time.perf_counter() - t0
    rows.append(BenchRow(f"(c) minibatch k-means, n={n:,}, d=16, k=16, batch 1024, 5 epochs",
                         t_j.median_s, t_j.compile_s, "sklearn MiniBatchKMeans", t_s,
                         f"inertia ratio {float(r.inertia) / sk.inertia_:.4f}", ">= 2x"))
    # online LDA
    K, V, D = (5, 200, 1000) if quick else (10, 1000, 5000)
    topics = rng.dirichlet(np.full(V, 0.05), K)
    theta = rng.dirichlet(np.full(K, 0.3), D + D // 5)
    counts = np.stack([rng.multinomial(100, t @ topics) for t in theta]).astype(float)
    train, test = counts[:D], counts[D:]
    init_t = lda.sklearn_initial_topics(K, V, 0)
    t_j, r = time_fn(lambda: lda.fit_online(jax.random.key(0), train, K, batch_size=128,
                                            max_iter=5, init_topic_word=init_t), repeats=3)
    sk = LatentDirichletAllocation(K, learning_method="online", batch_size=128, max_iter=5,
                                   random_state=0)
    t0 = time.perf_counter()
    sk.fit(train)
    t_s = time.perf_counter() - t0
    rows.append(BenchRow(f"(c) online LDA, D={D}, V={V}, K={K}, batch 128, 5 epochs",
                         t_j.median_s, t_j.compile_s, "sklearn online LDA", t_s,
                         f"held-out perplexity {float(lda.perplexity(r, test)):.2f} vs "
                         f"{sk.perplexity(test):.2f}", ">= 3x"))
    return rows


def run(out_dir: Path, quick: bool = False) -> list[BenchRow]:
    return _streamed_memory(quick) + _devices(quick) + _online(quick)


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "out/bench")
    write_report(run(out, quick="--quick" in sys.argv), out, "scale")
