import pytest

from w2s_jax import report
from w2s_jax.experiments.w2s import tables


def result(seed, pgr, gain=0.1):
  model = {"accuracy": 0.8, "accuracy_ci95": [0.78, 0.82], "auroc": 0.85}
  student = {**model, "agreement_with_weak": 0.9, "gain_over_weak": gain, "pgr": pgr,
             "pgr_ci95": None if pgr is None else [pgr - 0.1, pgr + 0.1]}
  return {"task": "t", "seed": seed, "config_hash": "abc", "wall_s": 1.0, "n": {"test": 100},
          "weak": model, "ceiling": model, "students": {"xent": student}}


def test_run_table_shows_pgr_with_interval_or_undef():
  assert "0.50 [0.40, 0.60]" in tables.run_table(result(0, 0.5))
  assert "undef" in tables.run_table(result(0, None))


def test_seeds_table_counts_undefined_runs_with_sample_std():
  table = tables.seeds_table([result(0, 0.4, gain=-0.006), result(1, 0.6), result(2, None)])
  row = next(line for line in table.splitlines() if line.startswith("| student:xent"))
  cells = [c.strip() for c in row.strip("|").split("|")]
  assert cells[5] == "0.500 ± 0.141 (1 undef)"  # PGR 0.4, 0.6: sample std 0.1414
  assert cells[4] == "0.065 ± 0.061"  # gains -0.006, 0.1, 0.1: mean 0.0647, std 0.0612
  assert len(cells) == 7  # model, supervisor, loss, acc, gain, PGR, agreement


def fake_run(workdir, seed, weak_acc, ceiling_acc, student_acc, pgr, lr=3e-4,
             diagnostics=None):
  """A finished run's results.json and config.json, with the numbers given."""
  import json

  from configs import tiny
  from w2s_jax.core import paths
  cfg = tiny.get_config().to_dict()
  cfg.update(seed=seed, workdir=str(workdir), names={"weak": "w", "strong": "s"})
  cfg["strong"]["train"]["lr"] = lr
  cfg["student"]["losses"] = "xent"
  model = lambda acc: {"accuracy": acc, "accuracy_ci95": [acc - 0.01, acc + 0.01],
                       "auroc": acc + 0.05}
  student = {**model(student_acc), "agreement_with_weak": 0.9, "gain_over_weak": 0.1,
             "pgr": pgr, "pgr_ci95": None if pgr is None else [pgr - 0.2, pgr + 0.2],
             "supervisor": "weak", "loss": "xent"}
  if diagnostics:
    student["diagnostics"] = diagnostics["student"]
  folder = workdir / "results" / paths.results_hash(cfg)
  folder.mkdir(parents=True)
  results = {"task": "latent_topics", "seed": seed, "config_hash": folder.name, "wall_s": 1.0,
             "n": {"test": 100}, "names": {"weak": "w", "strong": "s"}, "weak": model(weak_acc),
             "ceiling": model(ceiling_acc), "students": {"xent": student}, "phases": {},
             "results_file": str(folder / "results.json")}
  if diagnostics:
    results["diagnostics"] = diagnostics["run"]
  (folder / "results.json").write_text(json.dumps(results))
  (folder / "config.json").write_text(json.dumps(cfg))


def test_report_numbers_come_from_the_results_files(tmp_path):
  import csv
  import json

  import matplotlib.image
  for seed, (pgr, student) in enumerate([(0.5, 0.80), (0.7, 0.84), (0.9, 0.88)]):
    fake_run(tmp_path, seed, 0.70, 0.90, student, pgr)
  # another setting: its first seed's PGR undefined, its second's defined
  fake_run(tmp_path, 0, 0.70, 0.90, 0.70, None, lr=1e-3)
  fake_run(tmp_path, 1, 0.70, 0.90, 0.72, 0.1, lr=1e-3)
  written = report.write_report(tmp_path)
  rows = {r["differs"]: r for r in written["sections"]["w2s"].rows}
  assert set(rows) == {"strong.train.lr=0.0003", "strong.train.lr=0.001"}
  row = rows["strong.train.lr=0.0003"]
  assert row["seeds"] == [0, 1, 2]
  assert row["pgr_median"] == pytest.approx(0.7) and row["pgr_mean"] == pytest.approx(0.7)
  # t interval over seeds: 0.7 ± 4.3027 * 0.2 / sqrt(3)
  assert row["pgr_ci95"] == pytest.approx([0.7 - 0.496836, 0.7 + 0.496836], abs=1e-5)
  assert row["student_accuracy"] == pytest.approx(0.84)
  assert row["student_accuracy_std"] == pytest.approx(0.04)  # ddof=1
  assert row["weak_accuracy"] == pytest.approx(0.7) and row["ceiling_accuracy"] == 0.9
  other = rows["strong.train.lr=0.001"]
  assert other["pgr_values"] == [0.1] and other["pgr_undefined"] == 1
  assert other["pgr_ci95"] == pytest.approx([-0.1, 0.3])  # one defined seed: its bootstrap
  saved = json.loads((tmp_path / "report" / "seeds.json").read_text())
  assert saved[0]["student_accuracy_std"] == pytest.approx(0.04)
  with open(tmp_path / "report" / "report.csv") as f:
    csv_rows = list(csv.DictReader(f))
  assert sorted(float(r["pgr_mean"]) for r in csv_rows) == pytest.approx([0.1, 0.7])
  markdown = (tmp_path / "report" / "report.md").read_text()
  assert "| 0.70 | 0.70 [0.20, 1.20] |" in markdown
  pngs = [p for p in written["files"] if p.suffix == ".png"]
  assert len(pngs) == 4  # two figures for each of the two settings
  for path in pngs:
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert matplotlib.image.imread(path).shape[2] in (3, 4)


def test_report_has_the_diagnostics_table_and_figure(tmp_path):
  import matplotlib.image
  for seed, (misfit, gain, capa) in enumerate([(0.02, 0.03, 0.4), (0.04, 0.01, 0.6)]):
    diagnostics = {"student": {"misfit_B": misfit, "misfit_test": misfit,
                               "brier_gain_test": gain, "misfit_bound_held": gain >= misfit},
                   "run": {"similarity": {"capa": capa, "error_consistency": capa / 2},
                           "salience": {"accuracy": 0.9, "n_train": 100}}}
    fake_run(tmp_path, seed, 0.70, 0.90, 0.8, 0.5, diagnostics=diagnostics)
  written = report.write_report(tmp_path)
  (row,) = written["sections"]["w2s"].rows
  assert row["misfit_test"] == pytest.approx(0.03) and row["capa"] == pytest.approx(0.5)
  assert row["misfit_bound_held"] == "1/2" and row["salience"] == pytest.approx(0.9)
  markdown = (tmp_path / "report" / "report.md").read_text()
  assert "| 0.0300 | 0.0300 | +0.0200 | 1/2 | 0.500 | 0.250 | 0.900 |" in markdown
  figure = tmp_path / "report" / "pgr_vs_diagnostics.png"
  assert figure in written["files"] and matplotlib.image.imread(figure).shape[2] in (3, 4)


def test_report_of_an_empty_folder_says_so(tmp_path, capsys):
  assert report.main([str(tmp_path)]) == 2
  assert "no finished runs under" in capsys.readouterr().err


def test_report_leaves_out_unreadable_runs_with_a_warning_each(tmp_path, capsys):
  for seed in (0, 1):
    fake_run(tmp_path, seed, 0.70, 0.90, 0.80, 0.5)
  truncated, foreign = (tmp_path / "results" / name for name in ("truncated", "foreign"))
  for folder in (truncated, foreign):
    folder.mkdir()
    (folder / "config.json").write_text("{}")
  (truncated / "results.json").write_text('{"task": "latent_top')
  (foreign / "results.json").write_text('{"accuracy": 0.9}')
  assert report.main([str(tmp_path)]) == 0
  err = capsys.readouterr().err.splitlines()
  assert len(err) == 2 and all(line.startswith("warning: skipping ") for line in err)
  assert any("truncated: artefact" in line for line in err)
  assert any("foreign: it lacks ['seed'" in line for line in err)
  rows = report.write_report(tmp_path)["sections"]["w2s"].rows
  assert [r["seeds"] for r in rows] == [[0, 1]]
