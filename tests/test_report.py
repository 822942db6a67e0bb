from w2s_jax import report


def result(seed, pgr, gain=0.1):
  model = {"accuracy": 0.8, "accuracy_ci95": [0.78, 0.82], "auroc": 0.85}
  student = {**model, "agreement_with_weak": 0.9, "gain_over_weak": gain, "pgr": pgr,
             "pgr_ci95": None if pgr is None else [pgr - 0.1, pgr + 0.1]}
  return {"task": "t", "seed": seed, "config_hash": "abc", "wall_s": 1.0, "n": {"test": 100},
          "weak": model, "ceiling": model, "students": {"xent": student}}


def test_run_table_shows_pgr_with_interval_or_undef():
  assert "0.50 [0.40, 0.60]" in report.run_table(result(0, 0.5))
  assert "undef" in report.run_table(result(0, None))


def test_seeds_table_counts_undefined_runs_with_sample_std():
  table = report.seeds_table([result(0, 0.4, gain=-0.006), result(1, 0.6), result(2, None)])
  row = next(line for line in table.splitlines() if line.startswith("| student:xent"))
  cells = [c.strip() for c in row.strip("|").split("|")]
  assert cells[5] == "0.500 ± 0.141 (1 undef)"  # PGR 0.4, 0.6: sample std 0.1414
  assert cells[4] == "0.065 ± 0.061"  # gains -0.006, 0.1, 0.1: mean 0.0647, std 0.0612
  assert len(cells) == 7  # model, supervisor, loss, acc, gain, PGR, agreement
