"""A sweep on tiny sizes: the grid, reuse of shared phases, continuing after a stop."""

import matplotlib.image
import pytest

from w2s_jax import api, sweep
from w2s_jax.core import paths


@pytest.fixture
def tiny_sweep(tmp_path):
  from configs import sweep as sweep_config
  from configs import tiny
  small = tiny.get_config().to_dict()
  cfg = sweep_config.get_config().to_dict()
  cfg["workdir"] = str(tmp_path / "runs")
  cfg["tasks"] = {"latent_topics": small["task"]}
  narrow = {**small["weak"], "model": {**small["weak"]["model"], "d_model": 8}}
  cfg["sizes"] = {"weak8": narrow, "weak16": small["weak"], "strong16": small["strong"],
                  "mid8": small["mid"]}
  cfg["sweep"].update(sizes="weak8,weak16,mid8,strong16", weak="weak8,weak16",
                      strong="strong16", seeds="0")
  cfg["student"]["losses"] = "xent"
  cfg["eval_batch_size"] = 64
  cfg["diagnostics"]["salience_examples"] = 0  # tested with the embedding task
  return cfg


def test_plan_pairs_every_weak_with_every_larger_strong(tiny_sweep):
  tiny_sweep["sweep"].update(weak="weak8,mid8", strong="weak8,strong16", seeds="0,1")
  runs = sweep.plan(tiny_sweep)
  pairs = [(r["names"]["weak"], r["names"]["strong"], r["seed"]) for r in runs]
  assert pairs == [("weak8", "weak8", 0), ("weak8", "weak8", 1), ("weak8", "strong16", 0),
                   ("weak8", "strong16", 1), ("mid8", "strong16", 0), ("mid8", "strong16", 1)]
  assert all("sweep" not in r and "sizes" not in r for r in runs)


def test_sweep_continues_after_a_stop_and_writes_the_report(tiny_sweep, capsys):
  runs = sweep.plan(tiny_sweep)
  assert len(runs) == 2
  first = api.run(runs[0])  # as if the sweep had stopped after its first run
  sweep.run_sweep(tiny_sweep)
  out = capsys.readouterr().out
  assert "sweep: 2 runs, 1 done, 1 to run" in out
  assert "[1/2]" not in out and "[2/2]" in out
  assert all(sweep.is_done(run) for run in runs)
  second = api.run(runs[1])  # cached now
  assert all(p["reused"] for p in second["phases"].values())
  assert second["phases"]["ceiling"]["dir"] == first["phases"]["ceiling"]["dir"]  # shared
  assert second["phases"]["weak"]["dir"] != first["phases"]["weak"]["dir"]
  assert len(sweep.report.load_runs(tiny_sweep["workdir"])) == 2
  assert first["config_hash"] == paths.results_hash(runs[0])
  figures = sorted((pytest.importorskip("pathlib").Path(tiny_sweep["workdir"]) / "report")
                   .glob("*.png"))
  assert [f.name for f in figures] == ["accuracy_vs_ceiling_latent_topics.png",
                                       "pgr_latent_topics.png"]
  for figure in figures:
    assert matplotlib.image.imread(figure).ndim == 3
