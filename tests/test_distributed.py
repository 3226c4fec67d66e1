"""Sharded and multi-process fits equal the one-device fits (issue 19).

The multi-device checks run in ONE subprocess with 4 forced host devices
(``XLA_FLAGS=--xla_force_host_platform_device_count=4``), and the two-process checks in two
subprocesses joined by ``jax.distributed`` on 127.0.0.1 (gloo CPU collectives), so the
rest of the suite keeps its single device. Each run is bounded in time.
"""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

WORKER = Path(__file__).with_name("_distributed_worker.py")
ROOT = WORKER.parent.parent


def _env():
    env = dict(os.environ)
    env.pop("XLA_FLAGS", None)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["JAX_PLATFORMS"] = "cpu"
    return env


def _parse(out: str) -> dict:
    results = {}
    for line in out.splitlines():
        if line.startswith("{"):
            r = json.loads(line)
            results[r["check"]] = r
    return results


@pytest.fixture(scope="module")
def mesh_results():
    proc = subprocess.run([sys.executable, str(WORKER), "mesh"], capture_output=True,
                          text=True, timeout=420, env=_env(), cwd=ROOT)
    results = _parse(proc.stdout)
    assert results, f"worker failed:\n{proc.stderr[-3000:]}"
    return results


FITS = ["kmeans", "gmm-full", "gmm-tied", "gmm-diag", "gmm-spherical", "pca",
        "gaussian.mle",
        "naive_bayes.fit_multinomial", "linear.ridge", "lda", "linear.least_squares"]


UNEVEN = ["kmeans", "gmm-full", "lda", "linear.least_squares"]


@pytest.mark.parametrize("fit", FITS)
def test_row_sharded_fit_equals_one_device_fit(mesh_results, fit):
    r = mesh_results[f"{fit}[sharded, n=400]"]
    assert r["ok"], r["detail"]


@pytest.mark.parametrize("fit", UNEVEN)
def test_rows_not_divisible_by_devices_are_padded_and_masked(mesh_results, fit):
    # 402 rows (LDA: 101 documents) over 4 devices: padded rows are never counted.
    r = mesh_results[f"{fit}[auto mesh, n=402]"]
    assert r["ok"], r["detail"]


@pytest.mark.parametrize("fit", ["kmeans"])
def test_shard_rows_places_rows_on_an_explicit_mesh(mesh_results, fit):
    # jax.make_mesh's default (Explicit) mesh, 406 rows: jaxml.data.shard_rows
    r = mesh_results[f"{fit}[shard_rows, n=406]"]
    assert r["ok"], r["detail"]


def test_row_sharded_gaussian_naive_bayes(mesh_results):
    r = mesh_results["naive_bayes.fit_gaussian[sharded, n=400]"]
    assert r["ok"], r["detail"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_equal_one_process():
    import jax
    if not hasattr(jax.config, "jax_cpu_collectives_implementation"):
        pytest.skip("this jaxlib has no CPU collectives option")
    port = _free_port()
    procs = [subprocess.Popen([sys.executable, str(WORKER), "process", str(rank), str(port)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=_env(), cwd=ROOT) for rank in range(2)]
    outs = []
    try:
        for p in procs:
            outs.append(p.communicate(timeout=120))
    except subprocess.TimeoutExpired:
        for p in procs:
            p.kill()
        pytest.fail("the two-process run did not finish in 120 s")
    err = "\n".join(e[-2000:] for _, e in outs)
    if "gloo" in err.lower() and ("not" in err.lower() and "support" in err.lower()):
        pytest.skip("gloo CPU collectives unavailable in this jaxlib")
    for rank, (out, _) in enumerate(outs):
        results = _parse(out)
        assert set(results) == {"kmeans[2 processes]", "gmm[2 processes]"}, err
        for r in results.values():
            assert r["ok"], f"process {rank}: {r['check']}: {r['detail']}"
