"""The example tour behind ``make demo``: every example at a modest size.

Runs each ``examples/*.py`` story (its ``run(out_dir, quick)``), writes its PNG figures
into the output folder and one line per result into ``summary.md``.

    python examples/tour.py --out out [--quick] [--only svm,pca]
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import jax  # noqa: E402

# Several stories compare with scikit-learn to 1e-10 and switch float64 on when they run;
# switching it on once here makes every story see the same setting whatever the order (the
# test suite runs them in float64 too). Stories that show float32 cast explicitly.
jax.config.update("jax_enable_x64", True)

# The chapters' order; any other example found is run after these.
ORDER = [
    "convex_sets", "linear_regression", "svm", "naive_bayes", "pca", "gmm_em",
    "lda_topics", "elbo_estimators", "cavi", "bayesian_logreg", "rvm", "sparse_bnn",
    "flows_2d", "vae", "geometry", "entropy",
]


def discover() -> list[str]:
    """Names of the example scripts, in the chapters' order."""
    found = {p.stem for p in HERE.glob("*.py") if not p.stem.startswith("_") and p.stem != "tour"}
    return [n for n in ORDER if n in found] + sorted(found - set(ORDER))


def load(name: str):
    spec = importlib.util.spec_from_file_location(f"jaxml_example_{name}", HERE / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("out"))
    parser.add_argument("--quick", action="store_true", help="the small sizes the tests use")
    parser.add_argument("--only", default="", help="comma-separated example names")
    args = parser.parse_args(argv)
    names = discover()
    if args.only:
        wanted = args.only.split(",")
        names = [n for n in names if n in wanted]
    args.out.mkdir(parents=True, exist_ok=True)
    lines = ["# jaxml example tour", "",
             "| example | what was fitted | jaxml | reference | figure |",
             "|---|---|---|---|---|"]
    failed = []
    for name in names:
        t0 = time.perf_counter()
        print(f"== {name}", flush=True)
        try:
            rows = load(name).run(args.out, quick=args.quick)
        except Exception as e:  # report and go on: one broken story must not hide the rest
            failed.append(name)
            lines.append(f"| {name} | FAILED: {type(e).__name__}: {e} | | | |")
            print(f"   FAILED: {type(e).__name__}: {e}", flush=True)
            continue
        for r in rows:
            fig = f"[{r.figure}]({r.figure})" if r.figure else ""
            lines.append(f"| {name} | {r.fitted} | {r.jaxml} | {r.reference} | {fig} |")
            print(f"   {r.fitted}: jaxml {r.jaxml} | reference {r.reference}", flush=True)
        print(f"   ({time.perf_counter() - t0:.1f} s)", flush=True)
    (args.out / "summary.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out / 'summary.md'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
