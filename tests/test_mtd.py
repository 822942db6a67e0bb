"""MTD examples: the released schema read from files we make, validation, the metric."""

import json

import numpy as np
import pytest

from w2s_jax.data import mtd
from w2s_jax.errors import DataError


def rows():
  """Trusted examples agree with their measurements; untrusted ones may be tampered."""
  return [
      {"text": "vault a", "measurements": [True, True], "is_correct": True, "is_clean": True,
       "difficulty": 0},
      {"text": "vault b", "measurements": [False, True], "is_correct": False, "is_clean": True,
       "difficulty": 1},
      {"text": "vault c", "measurements": [True, True], "is_correct": True, "is_clean": False,
       "difficulty": 0},
      {"text": "vault d", "measurements": [True, True], "is_correct": False, "is_clean": False,
       "difficulty": 2},  # a fake positive: every sensor fooled
      {"text": "vault e", "measurements": [True, False], "is_correct": False, "is_clean": False,
       "difficulty": 1},  # failed tampering: the sensors disagree
  ]


def write_jsonl(path, items):
  path.write_text("".join(json.dumps(r) + "\n" for r in items))
  return path


def test_released_rows_load_into_examples(tmp_path):
  folder = tmp_path / "diamonds_s0"
  folder.mkdir()
  write_jsonl(folder / "train.jsonl", rows())
  write_jsonl(folder / "validation.jsonl", rows()[:3])
  examples = mtd.load_released(str(folder), "train")
  assert examples.text == ["vault a", "vault b", "vault c", "vault d", "vault e"]
  assert examples.measurements.shape == (5, 2)
  np.testing.assert_array_equal(examples.trusted, [True, True, False, False, False])
  np.testing.assert_array_equal(examples.tampered, [False, False, False, True, False])
  assert len(mtd.load_released(str(folder), "validation")) == 3
  import pyarrow as pa
  import pyarrow.parquet as pq
  pq.write_table(pa.Table.from_pylist(rows()), tmp_path / "train-00000.parquet")
  from_parquet = mtd.load_released(str(tmp_path / "train-00000.parquet"))
  np.testing.assert_array_equal(from_parquet.measurements, examples.measurements)


def test_real_vs_fake_auroc_uses_untrusted_all_positive_examples(tmp_path):
  examples = mtd.load_released(str(write_jsonl(tmp_path / "train.jsonl", rows())))
  # Only c (real) and d (fake) count; the other scores must not matter.
  assert mtd.real_vs_fake_auroc(np.array([0, 9, 0.8, 0.2, 9]), examples) == 1.0
  assert mtd.real_vs_fake_auroc(np.array([9, 0, 0.1, 0.7, 0]), examples) == 0.0
  with pytest.raises(DataError, match="1 real and 0 fake"):
    mtd.real_vs_fake_auroc(np.zeros(3), examples.subset([0, 1, 2]))


@pytest.mark.parametrize("change,message", [
    ({"measurements": [True]}, "1 measurements where earlier rows have 2"),
    ({"measurements": [True, "yes"]}, "a measurement is 'yes'"),
    ({"is_correct": 0.5}, "is_correct is 0.5"),
    ({"text": ""}, "text is empty"),
    ({"is_clean": True, "is_correct": False}, "trusted examples have no tampering"),
])
def test_bad_rows_are_one_line_data_errors(tmp_path, change, message):
  bad = rows()
  bad[3] = {**bad[3], **change}
  with pytest.raises(DataError, match=message) as error:
    mtd.load_released(str(write_jsonl(tmp_path / "train.jsonl", bad)))
  assert "row 3" in str(error.value) and "\n" not in str(error.value)


def test_missing_fields_and_empty_files_say_so(tmp_path):
  bad = rows()
  del bad[1]["is_clean"]
  with pytest.raises(DataError, match="row 1: missing field"):
    mtd.load_released(str(write_jsonl(tmp_path / "train.jsonl", bad)))
  (tmp_path / "empty.jsonl").write_text("")
  with pytest.raises(DataError, match="cannot read MTD data|has no rows"):
    mtd.load_released(str(tmp_path / "empty.jsonl"))
