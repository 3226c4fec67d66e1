"""Shared plumbing for the example scripts: the summary row each one returns, figure saving.

Every example module exposes ``run(out_dir: Path, quick: bool = False) -> list[SummaryRow]``:
it fits what its story needs through jaxml's public API, saves PNG figures into
``out_dir`` and returns one row per result for ``out/summary.md``. ``quick=True`` is the
small size the test suite runs.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

os.environ.setdefault("MPLBACKEND", "Agg")

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402,F401

DATA_DIR = Path(__file__).resolve().parent / "data"


class SummaryRow(NamedTuple):
    """One line of ``out/summary.md``.

    fitted: what was fitted, on what data. jaxml: the key figure jaxml got.
    reference: the reference figure beside it (scikit-learn, scipy, a closed form).
    figure: the PNG file name it is drawn in ("" if none).
    """

    fitted: str
    jaxml: str
    reference: str
    figure: str = ""


def savefig(fig, out_dir: Path, name: str) -> str:
    """Save ``fig`` as ``out_dir/name`` (PNG), close it, return the file name."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_dir / name, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return name


def main(run, doc: str, *, x64: bool = True) -> None:
    """Command line of an example script: ``python examples/<story>.py [--out DIR] [--quick]``
    calls ``run(out_dir, quick=...)`` and prints its summary rows.

    run: the example's ``run(out_dir, quick=False) -> list[SummaryRow]``. doc: the module
    docstring (its first line is the help text). x64: enable float64 first (the stories that
    compare with float64 references).
    """
    import argparse

    import jax

    if x64:
        jax.config.update("jax_enable_x64", True)
    parser = argparse.ArgumentParser(description=(doc or "").strip().splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("out"))
    parser.add_argument("--quick", action="store_true", help="the small size the tests run")
    args = parser.parse_args()
    for row in run(args.out, quick=args.quick):
        print(f"{row.fitted}: {row.jaxml} | {row.reference}")
