"""One script, three ways: one process, rows sharded over a device mesh, several processes.

The fits do not change: jaxml's row fold reads where the rows live. The same ``fit_all``
runs k-means and a Gaussian mixture on (a) an ordinary array, (b) an array whose rows are
split over the devices of a mesh (``shard_map`` + ``psum`` inside the fits), and (c) a
global array assembled from the rows each process holds (``jax.distributed``); all three
give the same clusters and log-likelihood.

    # one process, one device
    python examples/distributed.py --mode one
    # one process, rows sharded over 4 devices (here: forced CPU devices; on a GPU host,
    # the GPUs)
    python examples/distributed.py --mode mesh --devices 4
    # two processes on this machine (CPU collectives over gloo), each holding half the rows
    python examples/distributed.py --mode process --coordinator 127.0.0.1:12355 \\
        --num-processes 2 --process-id 0 &
    python examples/distributed.py --mode process --coordinator 127.0.0.1:12355 \\
        --num-processes 2 --process-id 1
    # several hosts: start the same command on every host, with the first host's address
    # as the coordinator and each host's own --process-id (0 … N−1):
    #   host0$ python examples/distributed.py --mode process --coordinator host0:12355 \\
    #              --num-processes 2 --process-id 0
    #   host1$ python examples/distributed.py --mode process --coordinator host0:12355 \\
    #              --num-processes 2 --process-id 1

Under the tour (``run``), (a) runs here and (b) in a subprocess with 4 forced CPU devices.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

N_FULL, N_QUICK = 40_000, 4_002          # 4 002 rows: not divisible by 4 (padded, masked)


def make_data(n: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    centers = np.array([[0.0, 0.0], [4.0, 4.0], [0.0, 5.0], [5.0, -1.0]])
    return centers[rng.integers(0, 4, n)] + rng.normal(size=(n, 2)) * 0.8


def fit_all(X, X_host: np.ndarray) -> dict:
    """The same fits whatever X is: an array, a sharded array, a multi-process global array."""
    import jax

    from jaxml import gmm, kmeans
    init = X_host[:4]
    km = kmeans.fit(None, X, 4, init=init)
    gm = gmm.fit(jax.random.key(0), X, 4, covariance_type="full", max_iter=50)
    return {"inertia": float(km.inertia), "kmeans_iter": int(km.n_iter),
            "centroids": np.asarray(km.centroids).tolist(),
            "gmm_lower_bound": float(gm.lower_bound), "gmm_iter": int(gm.n_iter)}


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mode", choices=["one", "mesh", "process"], default="one")
    p.add_argument("--devices", type=int, default=4)
    p.add_argument("--n", type=int, default=N_FULL)
    p.add_argument("--coordinator", default="127.0.0.1:12355")
    p.add_argument("--num-processes", type=int, default=2)
    p.add_argument("--process-id", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    a = p.parse_args(argv)
    if a.mode == "mesh":            # read when the backend starts (first device use)
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                                   + f" --xla_force_host_platform_device_count={a.devices}")
    import jax
    from jax.sharding import AxisType, NamedSharding
    from jax.sharding import PartitionSpec as P

    X = make_data(a.n)
    if a.mode == "one":
        out = fit_all(X, X)
    elif a.mode == "mesh":
        mesh = jax.make_mesh((jax.device_count(),), ("data",), axis_types=(AxisType.Auto,))
        # the rows placed on every device of the mesh; the fits split them over the mesh
        # (a row count that divides the device count can be placed split already:
        # NamedSharding(mesh, P("data")))
        spec = P("data") if a.n % jax.device_count() == 0 else P()
        out = fit_all(jax.device_put(X, NamedSharding(mesh, spec)), X)
    else:
        # CPU collectives between processes (ignored by GPU/TPU backends, which use their own)
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        jax.distributed.initialize(a.coordinator, num_processes=a.num_processes,
                                   process_id=a.process_id)
        mesh = jax.make_mesh((jax.device_count(),), ("data",), axis_types=(AxisType.Auto,))
        rows = np.array_split(X, a.num_processes)[a.process_id]    # this process's rows
        Xg = jax.make_array_from_process_local_data(NamedSharding(mesh, P("data")), rows,
                                                    X.shape)
        out = fit_all(Xg, X)
        jax.distributed.shutdown()
    out["devices"] = a.devices if a.mode == "mesh" else 1
    if a.json:
        print(json.dumps(out))
    else:
        print(f"[{a.mode}] k-means inertia {out['inertia']:.6f} ({out['kmeans_iter']} steps), "
              f"GMM mean log-likelihood {out['gmm_lower_bound']:.8f} ({out['gmm_iter']} steps)")
    return out


def run(out_dir: Path, quick: bool = False):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from _common import SummaryRow, savefig

    n = N_QUICK if quick else N_FULL
    one = main(["--mode", "one", "--n", str(n)])
    env = dict(os.environ)
    # the subprocess sets its own device count; quick keeps the tour's cheap compilation
    # (XLA's backend optimization level), which saves it more than a second of compiling
    flags = env.pop("XLA_FLAGS", "").split()
    if quick:
        env["XLA_FLAGS"] = " ".join(f for f in flags if "xla_backend_optimization_level" in f)
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1]) + os.pathsep + env.get(
        "PYTHONPATH", "")
    proc = subprocess.run([sys.executable, __file__, "--mode", "mesh", "--devices", "4",
                           "--n", str(n), "--json"], capture_output=True, text=True,
                          timeout=300, env=env, check=True)
    mesh = json.loads(proc.stdout.strip().splitlines()[-1])
    X = make_data(n)
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    ax.scatter(X[:, 0], X[:, 1], s=2, c="0.7")
    c1, c4 = np.array(one["centroids"]), np.array(mesh["centroids"])
    ax.plot(c1[:, 0], c1[:, 1], "o", ms=12, mfc="none", mec="tab:blue", label="one device")
    ax.plot(c4[:, 0], c4[:, 1], "x", ms=9, color="tab:red", label="rows over 4 devices")
    ax.set(title=f"k-means, n={n}: the same centroids on 1 and 4 devices")
    ax.legend(fontsize=8)
    f = savefig(fig, out_dir, "distributed_kmeans.png")
    return [
        SummaryRow(f"k-means (n={n}) on rows sharded over 4 devices: inertia",
                   f"{mesh['inertia']:.6f}", f"one device {one['inertia']:.6f}", f),
        SummaryRow(f"GMM full (n={n}) on rows sharded over 4 devices: mean log-likelihood",
                   f"{mesh['gmm_lower_bound']:.10f}", f"one device {one['gmm_lower_bound']:.10f}",
                   f),
    ]


if __name__ == "__main__":
    import jax
    jax.config.update("jax_enable_x64", True)
    main()
