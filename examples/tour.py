"""The example tour behind ``make demo``: every chapter's story, quick or in full.

Runs each ``examples/*.py`` story (its ``run(out_dir, quick)``), writes its PNG figures
into the output folder, one line per result into ``summary.md``, and ``index.html``: every
table row and every figure on one page.

    python examples/tour.py --out out [--quick] [--only svm,pca] [--jobs N]

``make demo`` runs the quick tour (the small sizes the tests use: every chapter in about a
minute after installation on two cores); ``make demo FULL=1`` runs the full-size stories.
The stories run in ``--jobs`` worker processes (default: one per core); a line per story is
printed as it finishes (its seconds and the running total), the summary keeps the chapters'
order. Most of a quick story's time is compiling its programs, so the quick tour asks XLA for
its cheapest CPU compilation (``--xla_backend_optimization_level=0``, unless ``XLA_FLAGS``
already sets it): the programs compile about a third faster and the small sizes run as fast.
"""

from __future__ import annotations

import argparse
import contextlib
import html
import importlib.util
import io
import os
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
    "flows_2d", "vae", "geometry", "entropy", "hyperparameter_gradients",
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


def write_index(out: Path, lines: list[str]) -> Path:
    """``out/index.html``: the summary table, then every PNG in ``out`` (the figures the
    stories wrote, in the table's order, then any other), on one page."""
    rows, figures = [], []
    for line in lines[4:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        fig = cells[-1]
        if fig.startswith("[") and "](" in fig:
            fig = fig[1:fig.index("]")]
            figures.append(fig)
            cells[-1] = f'<a href="#{html.escape(fig)}">{html.escape(fig)}</a>'
        else:
            cells[-1] = html.escape(fig)
        rows.append("<tr>" + "".join(
            f"<td>{c}</td>" if i == len(cells) - 1 else f"<td>{html.escape(c)}</td>"
            for i, c in enumerate(cells)) + "</tr>")
    seen = set(figures)
    figures = list(dict.fromkeys(figures)) + sorted(p.name for p in out.glob("*.png")
                                                    if p.name not in seen)
    imgs = "\n".join(f'<figure id="{html.escape(f)}"><img src="{html.escape(f)}" '
                     f'alt="{html.escape(f)}"><figcaption>{html.escape(f)}</figcaption></figure>'
                     for f in figures)
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>jaxml example tour</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:4px 8px;font-size:90%}}
img{{max-width:100%}}figure{{margin:2em 0}}</style></head><body>
<h1>jaxml example tour</h1>
<table><tr><th>example</th><th>what was fitted</th><th>jaxml</th><th>reference</th><th>figure</th></tr>
{chr(10).join(rows)}
</table>
{imgs}
</body></html>
"""
    path = out / "index.html"
    path.write_text(page)
    return path


# Submitted first to the workers (the longest quick stories), so that no long one starts last.
SLOW_FIRST = ["vi_vs_mcmc", "vae", "svm", "distributed", "geometry", "rvm", "sparse_bnn",
              "flows_2d", "linear_regression", "lda_topics"]


def run_story(name: str, out: Path, quick: bool):
    """Run one story; (rows or None, its printed output, error text or "", seconds)."""
    t0 = time.perf_counter()
    buf = io.StringIO()
    rows, error = None, ""
    with contextlib.redirect_stdout(buf):
        try:
            rows = list(load(name).run(out, quick=quick))
        except Exception as e:  # report and go on: one broken story must not hide the rest
            error = f"{type(e).__name__}: {e}"
    return rows, buf.getvalue(), error, time.perf_counter() - t0


def _worker_init(quick: bool) -> None:
    if quick:
        _cheap_compilation()
    jax.config.update("jax_enable_x64", True)


def _cheap_compilation() -> None:
    """Before the first computation: XLA's CPU backend without LLVM's optimization passes."""
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_backend_optimization_level" not in flags:
        os.environ["XLA_FLAGS"] = (flags + " --xla_backend_optimization_level=0").strip()


def _results(names, out, quick, jobs):
    """Yield (name, run_story's result) as each story finishes."""
    if jobs <= 1:
        for name in names:
            yield name, run_story(name, out, quick)
        return
    import concurrent.futures as cf
    import multiprocessing

    order = [n for n in SLOW_FIRST if n in names] + [n for n in names if n not in SLOW_FIRST]
    with cf.ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"),
                                initializer=_worker_init, initargs=(quick,)) as pool:
        futures = {pool.submit(run_story, n, out, quick): n for n in order}
        for f in cf.as_completed(futures):
            try:
                yield futures[f], f.result()
            except Exception as e:  # a worker that died (out of memory, a crash)
                yield futures[f], (None, "", f"{type(e).__name__}: {e}", 0.0)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("out"))
    parser.add_argument("--quick", action="store_true", help="the small sizes the tests use")
    parser.add_argument("--only", default="", help="comma-separated example names")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                        help="worker processes (default: the number of cores)")
    args = parser.parse_args(argv)
    names = discover()
    if args.only:
        wanted = args.only.split(",")
        names = [n for n in names if n in wanted]
    args.out.mkdir(parents=True, exist_ok=True)
    jobs = max(1, min(args.jobs, len(names)))
    print(f"running {len(names)} stories{' (quick)' if args.quick else ''} in {jobs} "
          f"process{'es' if jobs > 1 else ''}", flush=True)
    t_start = time.perf_counter()
    done = {}
    for i, (name, (rows, printed, error, seconds)) in enumerate(
            _results(names, args.out, args.quick, jobs), 1):
        done[name] = rows, error
        status = f"FAILED: {error}" if error else f"{len(rows)} rows"
        print(f"[{i}/{len(names)}] {name}: {seconds:.1f} s ({status}), "
              f"{time.perf_counter() - t_start:.0f} s so far", flush=True)
        for line in printed.rstrip().splitlines():
            print(f"    {line}", flush=True)
        for r in rows or ():
            print(f"    {r.fitted}: jaxml {r.jaxml} | reference {r.reference}", flush=True)
    lines = ["# jaxml example tour", "",
             "| example | what was fitted | jaxml | reference | figure |",
             "|---|---|---|---|---|"]
    failed = [n for n in names if done[n][1]]
    for name in names:
        rows, error = done[name]
        if error:
            lines.append(f"| {name} | FAILED: {error} | | | |")
            continue
        for r in rows:
            fig = f"[{r.figure}]({r.figure})" if r.figure else ""
            lines.append(f"| {name} | {r.fitted} | {r.jaxml} | {r.reference} | {fig} |")
    (args.out / "summary.md").write_text("\n".join(lines) + "\n")
    write_index(args.out, lines)
    print(f"{len(names)} stories in {time.perf_counter() - t_start:.0f} s"
          f"{f', {len(failed)} FAILED: ' + ', '.join(failed) if failed else ''}; "
          f"wrote {args.out / 'summary.md'} and {args.out / 'index.html'}")
    return 1 if failed else 0


if __name__ == "__main__":
    if "--quick" in sys.argv[1:]:
        _cheap_compilation()          # this process runs stories too when --jobs 1
    sys.exit(main())
