"""The learning path (docs/learn/*.ipynb): every notebook runs top to bottom in a fresh kernel
without an error, as a reader would run it. A cell that raises fails the test with its traceback."""

from pathlib import Path

import pytest

nbclient = pytest.importorskip(
    "nbclient", reason="the notebook tests need the test extras: pip install -e '.[test]'")
nbformat = pytest.importorskip("nbformat", reason="the notebook tests need nbformat")

LEARN = Path(__file__).resolve().parents[1] / "docs" / "learn"
NOTEBOOKS = sorted(LEARN.glob("*.ipynb"))
CELL_TIMEOUT_S = 120  # each notebook takes well under 30 s on a laptop; CI's 2 cores are slower


def test_the_learning_path_is_there():
    names = [path.stem for path in NOTEBOOKS]
    assert names == ["01-bp", "02-fa-dfa", "03-tp-dtp", "04-sdtp-ao-sdtp", "05-lc-layer"], names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[path.stem for path in NOTEBOOKS])
def test_notebook_runs(path):
    notebook = nbformat.read(path, as_version=4)
    assert not any(cell.get("outputs") for cell in notebook.cells), \
        f"{path.name}: commit it with outputs stripped"
    client = nbclient.NotebookClient(notebook, timeout=CELL_TIMEOUT_S, kernel_name="python3",
                                     resources={"metadata": {"path": str(LEARN)}})
    client.execute()
    errors = [out for cell in notebook.cells for out in cell.get("outputs", [])
              if out.output_type == "error"]
    assert not errors, f"{path.name}: {errors[0]['ename']}: {errors[0]['evalue']}"
