"""Every example runs at a small size, writes its figures and returns summary rows."""

import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
sys.path.insert(0, str(EXAMPLES))

import tour  # noqa: E402


@pytest.mark.parametrize("name", tour.discover())
def test_example_runs(name, tmp_path):
    rows = tour.load(name).run(tmp_path, quick=True)
    assert len(rows) > 0, f"{name} returned no summary rows"
    for row in rows:
        assert row.fitted and row.jaxml
        if row.figure:
            assert (tmp_path / row.figure).is_file(), f"{name}: {row.figure} was not written"
    assert list(tmp_path.glob("*.png")), f"{name} wrote no figure"
