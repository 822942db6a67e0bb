"""Property-based tests of the input surfaces a user writes by hand: labels files and config
overrides. Every generated input either loads as its content says or raises the project's
one-line error, never another exception.

The suite runs a short profile (20 examples a property); the long one (1000 examples per surface) is
  W2S_FUZZ_PROFILE=long python -m pytest -q tests/test_fuzz.py -n 0
"""

import json
import math
import os
import pathlib
import tempfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from w2s_jax.data import label_files
from w2s_jax.errors import W2SError

settings.register_profile("suite", max_examples=20, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("long", max_examples=1000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("W2S_FUZZ_PROFILE", "suite"))

IDS = st.integers(min_value=0, max_value=10**9)
LABELS = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)


def written(content: bytes, suffix: str) -> pathlib.Path:
  folder = pathlib.Path(tempfile.mkdtemp(prefix="w2s-fuzz-"))
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
