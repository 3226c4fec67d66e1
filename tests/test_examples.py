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


def test_tour_index_references_every_figure(tmp_path, capsys):
    """The quick tour (two worker processes, as ``make demo`` runs it on two cores): a progress
    line per story as it finishes, the summary in the chapters' order, and a page that shows
    every figure the stories wrote and every summary row."""
    assert tour.main(["--out", str(tmp_path), "--quick", "--only", "pca,naive_bayes",
                      "--jobs", "2"]) == 0
    printed = capsys.readouterr().out
    progress = [line for line in printed.splitlines() if line.startswith("[")]
    assert [line.split("]")[0] for line in progress] == ["[1/2", "[2/2"]
    assert all("s so far" in line for line in progress)
    assert {line.split()[1].rstrip(":") for line in progress} == {"naive_bayes", "pca"}
    page = (tmp_path / "index.html").read_text()
    pngs = sorted(p.name for p in tmp_path.glob("*.png"))
    assert pngs
    for name in pngs:
        assert f'src="{name}"' in page, f"index.html does not show {name}"
    summary = (tmp_path / "summary.md").read_text()
    assert summary.count("\n| naive_bayes") + summary.count("\n| pca") >= 2
    assert summary.index("\n| naive_bayes") < summary.index("\n| pca")   # chapters' order
    assert page.count("<tr>") - 1 == len(summary.strip().splitlines()) - 4
