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


def test_tour_index_references_every_figure(tmp_path):
    """The quick tour's page shows every figure the stories wrote, and the summary rows."""
    assert tour.main(["--out", str(tmp_path), "--quick", "--only", "naive_bayes,pca"]) == 0
    page = (tmp_path / "index.html").read_text()
    pngs = sorted(p.name for p in tmp_path.glob("*.png"))
    assert pngs
    for name in pngs:
        assert f'src="{name}"' in page, f"index.html does not show {name}"
    summary = (tmp_path / "summary.md").read_text()
    assert summary.count("\n| naive_bayes") + summary.count("\n| pca") >= 2
    assert page.count("<tr>") - 1 == len(summary.strip().splitlines()) - 4
