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
