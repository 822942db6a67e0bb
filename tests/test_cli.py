"""The command line a newcomer meets: help, missing configs, text tasks, documented keys."""

import re
import sys

import pytest

from tests import helpers
from tests.helpers import REPO
from w2s_jax import cli, main
from w2s_jax.core import config_files


def run_main(monkeypatch, *args):
  monkeypatch.setattr(sys, "argv", ["w2s_jax.main", *args])
  with pytest.raises(SystemExit) as stop:
    main.run()
  return stop.value.code


def test_help_exits_zero_and_lists_every_config_key(monkeypatch, capsys):
  assert run_main(monkeypatch, "--help") == 0
  out = capsys.readouterr().out
  assert "config keys of configs/default.py" in out
  assert "  strong.train.lr = 0.0003" in out and "  student.losses = 'xent,logconf,product'" in out
  assert run_main(monkeypatch, "--config=configs/text.py:boolq", "--help") == 0
  assert "  task.name = 'boolq'" in capsys.readouterr().out


@pytest.mark.parametrize("args,message", [
    ((), "error: no config: give --config=configs/default.py (the offline default)"),
    (("--config=configs/nope.py",), "error: config file configs/nope.py does not exist; "
                                    "configs/ has default.py,"),
    (("--config=configs/default.py:bogus",), "error: config configs/default.py:bogus: "
                                             "ValueError: unknown config argument 'bogus'"),
])
def test_config_file_mistakes_are_one_line_errors(monkeypatch, capsys, args, message):
  monkeypatch.chdir(REPO)
  with pytest.raises(SystemExit) as stop:
    cli._parse_flags(["w2s_jax.main", *args])  # what run() hands absl: no flag is parsed yet
  assert stop.value.code == 2
  err = capsys.readouterr().err.strip().splitlines()
  assert len(err) == 1 and err[0].startswith(message), err


def test_text_task_on_the_synthetic_config_points_to_the_text_config(tmp_path):
  line = helpers.one_line_error(helpers.run_cli(f"--config.workdir={tmp_path}",
                                                "--config.task.name=sst2",
                                                config="configs/default.py"))
  assert line == ("error: task.name='sst2' is a text task, and this config's task section is "
                  "the synthetic one's; start from --config=configs/text.py:sst2")


def test_task_list_columns_line_up():
  from w2s_jax.data import __main__ as data_cli
  lines = data_cli.list_tasks().splitlines()
  test_column = lines[0].index("test split")
  for line in lines[2:]:
    assert line[test_column - 2:test_column] == "  " and line[test_column] != " ", line


CONFIGS = sorted(p.stem for p in (REPO / "configs").glob("*.py") if p.stem != "__init__")


@pytest.mark.parametrize("name", CONFIGS)
def test_documented_model_options_are_overridable(name):
  """The README's <role>.model.lora_rank and scan_layers, and pretrained / n_layers on
  checkpoints."""
  config = config_files.load_file(f"configs/{name}.py")
  roles = [r for r in ("weak", "strong", "mid") if r in config]
  roles += [f"sizes.{s}" for s in config.get("sizes", {})]
  for role in roles:
    node = config
    for part in role.split("."):
      node = node[part]
    if node.model.get("arch") == "head":  # a head over features: no backbone to adapt
      continue
    assert {"lora_rank", "lora_alpha", "scan_layers", "remat_policy"} <= set(node.model), (
        name, role)
    if "arch" not in node.model:
      assert {"checkpoint", "pretrained", "n_layers"} <= set(node.model), (name, role)


def documented_overrides():
  """(config spec, key) of every --config.<key>= in the README and the configs' docstrings."""
  texts = [(REPO / "README.md").read_text()] + [
      (REPO / "configs" / f"{name}.py").read_text().split('"""')[1] for name in CONFIGS]
  found = []
  for text in texts:
    for command in re.findall(r"python -m w2s_jax\.\w+[^\n]*(?:\\\n[^\n]*)*", text):
      spec = re.search(r"--config=(\S+)", command)
      for key in re.findall(r"--config\.([\w.]+)=", command):
        found.append((spec.group(1) if spec else "configs/default.py", key))
  for key in re.findall(r"`--config\.([\w.]+)=", (REPO / "README.md").read_text()):
    found.append(("configs/default.py", key))
  return sorted(set(found))


@pytest.mark.parametrize("spec,key", documented_overrides())
def test_every_documented_override_exists(spec, key):
  node = config_files.load_file(spec)
  for part in key.split("."):
    assert part in node, f"{spec}: no key {key}"
    node = node[part]
