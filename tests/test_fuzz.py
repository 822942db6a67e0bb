"""Property-based tests of the input surfaces a user writes by hand: labels files, config
overrides, local task files, MTD files and embedding task folders. Every generated input either loads as its content says or raises the project's
one-line error, never another exception.

The suite runs a short profile (20 examples a property, 10 for files read through HF datasets); the long one (1000 examples per surface) is
  W2S_FUZZ_PROFILE=long python -m pytest -q tests/test_fuzz.py -n 0
"""

import csv
import io
import json
import math
import os
import pathlib
import tempfile

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from w2s_jax import data
from w2s_jax.data import label_files
from w2s_jax.errors import DataError, W2SError

settings.register_profile("suite", max_examples=20, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow],
                          phases=[Phase.explicit, Phase.reuse, Phase.generate])  # no shrinking
settings.register_profile("long", max_examples=1000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
PROFILE = os.environ.get("W2S_FUZZ_PROFILE", "suite")
settings.load_profile(PROFILE)
# Surfaces read through HF datasets (~0.1-0.3 s an example): half the suite's examples.
SLOW_SURFACE = settings(max_examples=10) if PROFILE == "suite" else settings()

# Every generated file lives under one folder, removed when the module's process exits.
FILES = tempfile.TemporaryDirectory(prefix="w2s-fuzz-")
IDS = st.integers(min_value=0, max_value=10**9)
LABELS = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)


def written(content: bytes, suffix: str) -> pathlib.Path:
  folder = pathlib.Path(tempfile.mkdtemp(dir=FILES.name))
  path = folder / f"labels{suffix}"
  path.write_bytes(content)
  return path


def one_line(error: BaseException) -> bool:
  return isinstance(error, W2SError) and "\n" not in str(error) and str(error)


def render(rows, suffix, bom, spaced) -> bytes:
  if suffix == ".csv":
    header = "id, label" if spaced else "id,label"
    text = "\n".join([header, *(f"{i},{p!r}" for i, p in rows)]) + "\n"
  else:
    text = "".join(json.dumps({"id": i, "label": p}) + "\n" for i, p in rows)
  return (b"\xef\xbb\xbf" if bom else b"") + text.encode()


@given(rows=st.lists(st.tuples(IDS, LABELS), min_size=1, max_size=30,
                     unique_by=lambda row: row[0]),
       suffix=st.sampled_from([".csv", ".jsonl"]), bom=st.booleans(), spaced=st.booleans())
def test_a_well_formed_labels_file_reads_as_written(rows, suffix, bom, spaced):
  path = written(render(rows, suffix, bom, spaced), suffix)
  assert label_files.read(path) == dict(rows)


MUTATIONS = st.sampled_from(["duplicate", "out_of_range", "not_a_number", "fraction_id",
                             "no_label", "bad_byte", "boolean_label", "empty"])


@given(rows=st.lists(st.tuples(IDS, LABELS), min_size=2, max_size=20,
                     unique_by=lambda row: row[0]),
       suffix=st.sampled_from([".csv", ".jsonl"]), mutation=MUTATIONS,
       where=st.integers(min_value=0, max_value=19))
def test_a_labels_file_with_one_mistake_is_a_one_line_error(rows, suffix, mutation, where):
  where %= len(rows)
  content = render(rows, suffix, False, False).decode()
  lines = content.splitlines()
  body = 1 if suffix == ".csv" else 0  # the header
  i, p = rows[where]
  cell = {"duplicate": None, "out_of_range": (i, "1.5"), "not_a_number": (i, "high"),
          "fraction_id": (f"{i}.5", p), "no_label": (i, ""), "boolean_label": (i, "true"),
          "bad_byte": None, "empty": None}[mutation]
  if mutation == "duplicate":
    lines.append(lines[body + where])
  elif mutation == "empty":
    lines = lines[:body]
  elif cell is not None:
    doc_id, label = cell
    lines[body + where] = (f"{doc_id},{label}" if suffix == ".csv" else
                           '{"id": ' + json.dumps(doc_id) + ', "label": '
                           + (label if mutation == "boolean_label" else json.dumps(label))
                           + "}")
  data = ("\n".join(lines) + "\n").encode()
  if mutation == "bad_byte":
    data = data.replace(b",", b",\xff", 1) if suffix == ".csv" else data + b"\xff\n"
  with pytest.raises(W2SError) as error:
    label_files.read(written(data, suffix))
  assert one_line(error.value)


@given(content=st.binary(max_size=300), suffix=st.sampled_from([".csv", ".jsonl"]))
def test_any_bytes_as_a_labels_file_read_or_fail_in_one_line(content, suffix):
  try:
    table = label_files.read(written(content, suffix))
  except W2SError as e:
    assert one_line(e)
    return
  assert table and all(isinstance(k, int) and 0.0 <= v <= 1.0 and math.isfinite(v)
                       for k, v in table.items())


@given(text=st.text(max_size=200), suffix=st.sampled_from([".csv", ".jsonl"]))
def test_any_text_as_a_labels_file_reads_or_fails_in_one_line(text, suffix):
  try:
    table = label_files.read(written(("id,label\n" if suffix == ".csv" else "") .encode()
                                     + text.encode(), suffix))
  except W2SError as e:
    assert one_line(e)
    return
  assert all(isinstance(k, int) and 0.0 <= v <= 1.0 for k, v in table.items())


def leaf_keys(node, prefix=""):
  for key in sorted(node):
    value = node[key]
    if isinstance(value, dict):
      yield from leaf_keys(value, f"{prefix}{key}.")
    else:
      yield f"{prefix}{key}"


TINY_KEYS = sorted(set(leaf_keys(__import__("configs.tiny", fromlist=["get_config"])
                                 .get_config().to_dict())) - {"workdir"})
VALUES = st.one_of(st.integers(min_value=-10**6, max_value=10**6), st.floats(),
                   st.text(max_size=12), st.booleans(), st.none())


@given(key=st.sampled_from(TINY_KEYS), value=VALUES)
def test_any_config_override_validates_or_fails_in_one_line(key, value):
  """What the Python API accepts (load_config's overrides), checked as a run checks it
  before any work."""
  from w2s_jax import api, experiments
  try:
    cfg = api.load_config("configs/tiny.py", {key: value}).to_dict()
    experiments.of_config(cfg).validate(cfg)
  except W2SError as e:
    assert one_line(e), (key, value, e)


# ------------------------------------------------------------- local task files

# Cell text a user's own copy may hold: any characters, but a TSV cell has no tab or line
# break (the format has no quoting) and every task reads non-blank text.
TEXT = st.text(max_size=40).filter(str.strip)
TSV_TEXT = st.text(st.characters(blacklist_characters="\t\n\r", blacklist_categories=("Cs",)),
                   max_size=40).filter(str.strip)
LOCAL_TASK = dict(source="local", n_docs=6, n_test=4, n_val=0, balance=True, test_seed=0)


def folder_with(files: dict[str, bytes]) -> pathlib.Path:
  folder = pathlib.Path(tempfile.mkdtemp(dir=FILES.name))
  for name, content in files.items():
    (folder / name).parent.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(content)
  return folder


def loaded_records(name: str, folder: pathlib.Path):
  """(text, label, source row id) of every record the task's splits hold, by split; {} when
  a split drew rows of one label only (its one-line error)."""
  try:
    splits = data.load_splits({**LOCAL_TASK, "name": name, "data_dir": str(folder)}, seed=0)
  except DataError as e:
    if "binary tasks need both classes" in str(e) or "balancing (task.balance)" in str(e):
      assert one_line(e)
      return {}
    raise
  return {split: list(zip(arrays["text"], arrays["label"], arrays["id"]))
          for split, arrays in splits.items()}


@pytest.fixture(autouse=True, scope="module")
def _datasets_cache_in_a_temporary_folder():
  """HF datasets keeps an Arrow copy of every file it reads: not in the user's cache."""
  import datasets
  before = datasets.config.HF_DATASETS_CACHE
  with tempfile.TemporaryDirectory(prefix="w2s-fuzz-hf-") as cache:
    datasets.config.HF_DATASETS_CACHE = pathlib.Path(cache)
    yield
  datasets.config.HF_DATASETS_CACHE = before


def balanced(rows):
  """Rows of both labels, at least four of each, as the task's splits need."""
  return st.lists(rows, min_size=8, max_size=16).filter(
      lambda rs: min(sum(r[0] == k for r in rs) for k in (0, 1)) >= 4)


@SLOW_SURFACE
@given(train=balanced(st.tuples(st.sampled_from([0, 1]), TSV_TEXT)),
       dev=balanced(st.tuples(st.sampled_from([0, 1]), TSV_TEXT)))
def test_a_well_formed_sst2_tsv_reads_as_written(train, dev):
  def tsv(rows):
    return ("label\tsentence\n" + "".join(f"{y}\t{s}\n" for y, s in rows)).encode()
  folder = folder_with({"sst2/train.tsv": tsv(train), "sst2/dev.tsv": tsv(dev)})
  for split, records in loaded_records("sst2", folder).items():
    source = dev if split == "test" else train
    for text, label, row in records:
      assert (label, text) == source[row]


@SLOW_SURFACE
@given(rows=balanced(st.tuples(st.booleans().map(int), TEXT, TEXT)))
def test_a_well_formed_boolq_jsonl_reads_as_written(rows):
  content = "".join(json.dumps({"answer": bool(y), "question": q, "passage": p}) + "\n"
                    for y, q, p in rows).encode()
  folder = folder_with({"boolq/dev.jsonl": content})
  for records in loaded_records("boolq", folder).values():
    for text, label, row in records:
      y, q, p = rows[row]
      assert (label, text) == (y, f"Passage: {p}\nQuestion: {q}")


@SLOW_SURFACE
@given(rows=st.lists(st.tuples(st.integers(0, 3), TEXT, TEXT,
                               st.lists(TEXT, min_size=4, max_size=4, unique=True)),
                     min_size=16, max_size=24))
def test_a_well_formed_cosmos_qa_csv_reads_as_written(rows):
  out = io.StringIO()
  writer = csv.writer(out)
  writer.writerow(["id", "context", "question", "answer0", "answer1", "answer2", "answer3",
                   "label"])
  for i, (label, context, question, answers) in enumerate(rows):
    writer.writerow([f"q{i}", context, question, *answers, label])
  folder = folder_with({"cosmosqa/valid.csv": out.getvalue().encode()})
  for records in loaded_records("cosmos_qa", folder).values():
    for text, label, row in records:
      true, context, question, answers = rows[row]
      prefix = f"Context: {context}\nQuestion: {question}\nAnswer: "
      assert text.startswith(prefix)
      shown = text[len(prefix):]
      assert shown in answers and label == int(shown == answers[true])


LOCAL_FILES = {"sst2": "sst2/train.tsv", "boolq": "boolq/dev.jsonl",
               "cosmos_qa": "cosmosqa/valid.csv", "pairwise": "pairwise/train.jsonl"}


def reads_or_fails_in_one_line(task: str, content: bytes) -> None:
  """`content` as the task's file (SST-2's train and test): usable records or one line."""
  files = {LOCAL_FILES[task]: content}
  if task == "sst2":
    files["sst2/dev.tsv"] = content
  try:
    splits = loaded_records(task, folder_with(files))
  except W2SError as e:
    assert one_line(e), e
    return
  assert all(text.strip() and label in (0, 1) for records in splits.values()
             for text, label, _ in records)


@SLOW_SURFACE
@given(task=st.sampled_from(sorted(LOCAL_FILES)), content=st.binary(max_size=400))
def test_any_bytes_as_a_local_task_file_read_or_fail_in_one_line(task, content):
  reads_or_fails_in_one_line(task, content)


@SLOW_SURFACE
@given(task=st.sampled_from(sorted(LOCAL_FILES)),
       header=st.sampled_from(["label\tsentence", "id,context,question,answer0,answer1,"
                               "answer2,answer3,label", ""]),
       lines=st.lists(st.text(max_size=60), min_size=1, max_size=20))
def test_any_text_lines_as_a_local_task_file_read_or_fail_in_one_line(task, header, lines):
  content = "\n".join([header, *lines]).encode()
  reads_or_fails_in_one_line(task, content)


# ------------------------------------------------------------- MTD files (released schema)

def mtd_rows(n_measurements: int):
  def row(draw_measurements, correct, clean, text):
    if clean:  # trusted examples have no tampering: the truth is what was measured
      correct = all(draw_measurements)
    return {"text": text, "measurements": draw_measurements, "is_correct": correct,
            "is_clean": clean}
  return st.builds(row, st.lists(st.booleans(), min_size=n_measurements,
                                 max_size=n_measurements),
                   st.one_of(st.none(), st.booleans()), st.booleans(), TEXT)


@SLOW_SURFACE
@given(rows=st.integers(1, 4).flatmap(lambda n: st.lists(mtd_rows(n), min_size=1,
                                                           max_size=12)),
       as_parquet=st.booleans())
def test_a_well_formed_mtd_file_reads_as_written(rows, as_parquet):
  from w2s_jax.data import mtd
  folder = folder_with({})
  if as_parquet:
    import pyarrow as pa
    import pyarrow.parquet as pq
    path = folder / "train.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
  else:
    path = folder / "train.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
  examples = mtd.load_released(str(path))
  assert examples.text == [r["text"] for r in rows]
  assert examples.measurements.tolist() == [r["measurements"] for r in rows]
  assert examples.latent.tolist() == [mtd.UNKNOWN if r["is_correct"] is None
                                      else int(r["is_correct"]) for r in rows]
  assert examples.trusted.tolist() == [r["is_clean"] for r in rows]


JSON_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.floats(allow_nan=False),
              st.text(max_size=8)),
    lambda inner: st.lists(inner, max_size=4), max_leaves=6)


@SLOW_SURFACE
@given(rows=st.lists(st.fixed_dictionaries(
    {}, optional={"text": JSON_VALUES, "measurements": JSON_VALUES,
                  "is_correct": JSON_VALUES, "is_clean": JSON_VALUES}), min_size=1, max_size=6))
def test_any_json_rows_as_an_mtd_file_read_or_fail_in_one_line(rows):
  from w2s_jax.data import mtd
  path = folder_with({"train.jsonl": "".join(json.dumps(r) + "\n" for r in rows).encode()})
  try:
    examples = mtd.load_released(str(path / "train.jsonl"))
  except W2SError as e:
    assert one_line(e), e
    return
  assert len(examples) == len(rows)
  assert all(isinstance(t, str) and t.strip() for t in examples.text)
  assert set(examples.latent.tolist()) <= {0, 1, mtd.UNKNOWN}


@SLOW_SURFACE
@given(content=st.binary(max_size=300))
def test_any_bytes_as_an_mtd_file_read_or_fail_in_one_line(content):
  from w2s_jax.data import mtd
  path = folder_with({"train.jsonl": content})
  try:
    mtd.load_released(str(path / "train.jsonl"))
  except W2SError as e:
    assert one_line(e), e


# ------------------------------------------------------------- embedding task folders

def embedding_folder(labels_csv: bytes, model_npz: bytes) -> dict:
  folder = folder_with({"labels.csv": labels_csv, "m.npz": model_npz})
  return dict(name="embeddings", data_dir=str(folder), n_docs=6, n_test=2, n_val=0,
              balance=False, test_seed=0)


def read_embedding_task(task) -> None:
  """Loads the splits and the model's features of every split, as a run would."""
  from w2s_jax.data import embeddings
  splits = data.load_splits(task, 0)
  for records in splits.values():
    features = embeddings.features_of(task, "m", records["id"])
    assert features.shape[0] == len(records["id"]) and np.isfinite(features).all()


@given(labels_csv=st.binary(max_size=300), model_npz=st.binary(max_size=300))
def test_any_bytes_as_an_embedding_folder_read_or_fail_in_one_line(labels_csv, model_npz):
  try:
    read_embedding_task(embedding_folder(labels_csv, model_npz))
  except W2SError as e:
    assert one_line(e), e


@given(rows=st.lists(st.tuples(st.integers(-5, 40), st.sampled_from(["0", "1", "2", "x"]),
                               st.sampled_from(["train", "test", "val"])),
                     min_size=1, max_size=16),
       dims=st.tuples(st.integers(0, 20), st.integers(0, 4)),
       extra_id=st.booleans(), poison=st.sampled_from([None, np.nan, np.inf]))
def test_any_labels_and_features_read_or_fail_in_one_line(rows, dims, extra_id, poison):
  labels_csv = ("id,label,split\n" + "".join(f"{i},{y},{s}\n" for i, y, s in rows)).encode()
  n, d = dims
  ids = np.arange(n) + (1 if extra_id else 0)
  features = np.ones((n, d))
  if poison is not None and n and d:
    features[n // 2, d // 2] = poison
  buffer = io.BytesIO()
  np.savez(buffer, ids=ids, features=features)
  try:
    read_embedding_task(embedding_folder(labels_csv, buffer.getvalue()))
  except W2SError as e:
    assert one_line(e), e
