"""Shared benchmark plumbing: timing (compile separately, median after), rows, reports.

Each ``benchmarks/bench_*.py`` exposes ``run(out_dir: Path, quick: bool = False) ->
list[BenchRow]``: the same workload through jaxml and the reference in one process, and a
figure in ``out_dir`` showing that both solved the same problem.
"""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path
from typing import Callable, NamedTuple

os.environ.setdefault("MPLBACKEND", "Agg")

import jax


class Timing(NamedTuple):
    first_s: float    # the first call: compilation plus one run (for jaxml)
    median_s: float   # median of the timed calls after the first
    compile_s: float  # first_s - median_s, never below 0
    jit_s: float = float("nan")  # median of ``jax.jit(fn)`` beside it (time_plain_and_jit)


def block(x):
    """Wait for every array in the pytree ``x``."""
    return jax.block_until_ready(x)


def time_fn(fn: Callable, *args, repeats: int = 5, **kwargs) -> tuple[Timing, object]:
    """Time ``fn(*args, **kwargs)``: the first call separately, then the median of ``repeats``."""
    t0 = time.perf_counter()
    out = block(fn(*args, **kwargs))
    first = time.perf_counter() - t0
    times = []
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        out = block(fn(*args, **kwargs))
        times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    return Timing(first, med, max(first - med, 0.0)), out


def time_plain_and_jit(fn: Callable, *args, repeats: int = 5,
                       **kwargs) -> tuple[Timing, object]:
    """Time the plain call ``fn(*args, **kwargs)`` (as users write it) and ``jax.jit`` of it.

    The positional ``args`` are traced by the jitted form (arrays or pytrees of arrays; bind
    anything else — kernels, sizes, strings — in ``fn`` or pass it as a keyword, which is
    closed over). Plain and jitted calls alternate, ``repeats`` times each, so a load change
    on a shared machine hits both alike. Returns the plain call's ``Timing`` with ``jit_s``,
    the jitted median, filled in, and the plain call's output. Adopting it in a benchmark:
    ``time_fn(f, ...)`` → ``time_plain_and_jit(f, ...)``, and ``BenchRow(..., jit_s=t.jit_s)``.
    """
    jitted = jax.jit(lambda *a: fn(*a, **kwargs))
    t0 = time.perf_counter()
    out = block(fn(*args, **kwargs))
    first = time.perf_counter() - t0
    try:
        block(jitted(*args))      # compile the jitted form outside the timings
    except TypeError:             # a result holding non-arrays (an eqx.Module's functions)
        import equinox as eqx

        jitted = eqx.filter_jit(lambda *a: fn(*a, **kwargs))
        block(jitted(*args))
    plain, jit = [], []
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        out = block(fn(*args, **kwargs))
        plain.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        block(jitted(*args))
        jit.append(time.perf_counter() - t0)
    med = statistics.median(plain)
    return Timing(first, med, max(first - med, 0.0), statistics.median(jit)), out


class BenchRow(NamedTuple):
    """One workload timed through jaxml and its reference."""

    workload: str
    jaxml_s: float
    compile_s: float
    reference: str
    reference_s: float
    quality: str       # evidence both solved the same problem
    target: str = ""   # the issue's target, e.g. ">= 2x"
    note: str = ""
    jit_s: float = float("nan")  # the same call under jax.jit (jaxml_s is the plain call)

    @property
    def speedup(self) -> float:
        return self.reference_s / self.jaxml_s if self.jaxml_s > 0 else float("inf")

    @property
    def plain_over_jit(self) -> float:
        """Plain-call time over jitted time (NaN where the jitted form was not timed)."""
        return self.jaxml_s / self.jit_s if self.jit_s > 0 else float("nan")


HEADER = ("| workload | jaxml (s) | jitted (s) | plain/jit | compile (s) | reference | "
          "reference (s) | speedup | target | quality | note |\n"
          "|---|---|---|---|---|---|---|---|---|---|---|")


def _g(x: float, fmt: str) -> str:
    return "–" if x != x else format(x, fmt)   # NaN (not timed) as a dash


def format_rows(rows: list[BenchRow]) -> str:
    lines = [HEADER]
    for r in rows:
        lines.append(f"| {r.workload} | {r.jaxml_s:.4g} | {_g(r.jit_s, '.4g')} | "
                     f"{_g(r.plain_over_jit, '.2f')}{'' if r.jit_s != r.jit_s else 'x'} | "
                     f"{r.compile_s:.3g} | {r.reference} | {r.reference_s:.4g} | "
                     f"{r.speedup:.2f}x | {r.target} | {r.quality} | {r.note} |")
    return "\n".join(lines)


def device_line() -> str:
    d = jax.devices()[0]
    return f"{d.platform} ({d.device_kind}), {os.cpu_count()} CPU cores, jax {jax.__version__}"


def write_report(rows: list[BenchRow], out_dir: Path, name: str) -> Path:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.md"
    path.write_text(f"# {name}\n\n{device_line()}\n\n{format_rows(rows)}\n")
    return path
