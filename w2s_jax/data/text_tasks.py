"""Binary text tasks: the anchors' datasets formatted into (text, label), label 1 = true.

Each task names where its rows come from (a Hugging Face hub dataset, optionally a TFDS
dataset, optionally plain files such as the GLUE .tsv releases) and how a row becomes text.
Templates follow the anchors (OpenAI weak-to-strong; EleutherAI w2s), with two deliberate
departures noted where they occur: openbookqa shows the answer text in both classes (the
anchor shows the letter for true answers only, a label leak) and sciq_no_distractors, a
variant for copies of SciQ that lack distractors.

Multiple-choice tasks become one record per question: the true answer with probability 0.5,
else a random wrong one (Python's random.Random(seed), as the anchors draw).
"""

from __future__ import annotations

import dataclasses
import random
from typing import Callable, Mapping, Sequence

Row = Mapping[str, object]
Formatted = tuple[str, int] | None  # None: the row yields no record


@dataclasses.dataclass(frozen=True)
class TextTask:
  hub: tuple[str, ...]  # load_dataset(*hub)
  format: Callable[[Row, random.Random], Formatted] | None = None
  # Formats a whole split at once, for tasks whose records draw on other rows.
  format_split: Callable[[Sequence[Row], random.Random], list[Formatted]] | None = None
  splits: Mapping[str, str] = dataclasses.field(
      default_factory=lambda: {"train": "train", "test": "test"})
  tfds: str | None = None  # TFDS name, when the dataset is there with the same fields
  tfds_rename: Mapping[str, str] = dataclasses.field(default_factory=dict)
  # Plain files under task.data_dir (source="local"): split -> relative path. A task with no
  # local test file takes its test split out of train.
  local: Mapping[str, str] = dataclasses.field(default_factory=dict)
  local_rename: Mapping[str, str] = dataclasses.field(default_factory=dict)
  note: str = ""

  def format_rows(self, rows: Sequence[Row], rng: random.Random) -> list[Formatted]:
    if self.format_split is not None:
      return self.format_split(rows, rng)
    return [self.format(row, rng) for row in rows]


class BadRow(ValueError):
  """A row whose field holds a value the task cannot use (the caller names the row)."""


def _choice(row: Row, field: str, allowed: Sequence[int]) -> int:
  """An integer-valued label field (bool, int, or text/float holding an integer) that must
  be one of `allowed`; anything else (0.5, 1.5, "neg") is a BadRow, never truncated."""
  value = row[field]
  try:
    number = float(value)
  except (TypeError, ValueError):
    raise BadRow(f"{field} {value!r} is not a number") from None
  if not number.is_integer() or int(number) not in allowed:
    raise BadRow(f"{field} {value!r} is not one of {', '.join(map(str, allowed))}")
  return int(number)


def binary_label(row: Row, field: str = "label") -> int:
  return _choice(row, field, (0, 1))


def _coin(rng: random.Random) -> int:
  return int(rng.random() < 0.5)


def _true_or_wrong(rng: random.Random, true, wrong: Sequence) -> tuple[object, int]:
  """(answer, label): the true answer with probability 0.5, else a random wrong one."""
  label = _coin(rng)
  return (true, 1) if label else (rng.choice(list(wrong)), 0)


# ---------------------------------------------------------------- formatters

def _field(name: str):
  return lambda row, rng: (str(row[name]), binary_label(row))


def _sciq(row, rng):
  wrong = [row["distractor1"], row["distractor2"], row["distractor3"]]
  answer, label = _true_or_wrong(rng, row["correct_answer"], wrong)
  return f"Q: {row['question']} A: {answer}", label


def _sciq_with_support(row, rng):
  wrong = [row["distractor1"], row["distractor2"], row["distractor3"]]
  answer, label = _true_or_wrong(rng, row["correct_answer"], wrong)
  return (f"Name: Bob\n\nPassage 1:\n{row['support']}\n\nQ1: \"{row['question']}\" Is the "
          f"answer \"{answer}\"?", label)


def _sciq_no_distractors(rows, rng):
  """Wrong answers come from other questions' answers (for copies without distractors)."""
  # SciQ names the field correct_answer; copies without distractors call it answer.
  answers = [str(r["correct_answer"] if "correct_answer" in r else r["answer"]) for r in rows]
  out = []
  for i, row in enumerate(rows):
    label = _coin(rng)
    answer = answers[i]
    if not label:
      others = [a for a in answers if a != answer] or [answer]
      answer = others[rng.randrange(len(others))]
    out.append((f"Q: {row['question']} A: {answer}", label))
  return out


def _boolq(row, rng):
  return f"Passage: {row['passage']}\nQuestion: {row['question']}", binary_label(row, "answer")


def _cosmos_qa(row, rng):
  true = row[f"answer{_choice(row, 'label', range(4))}"]
  candidates = [row[f"answer{i}"] for i in range(4)]
  if "None of the above choices ." in true:  # the anchors never show such an answer as true
    answer, label = rng.choice([c for c in candidates if c != true]), 0
  else:
    answer, label = _true_or_wrong(rng, true, [c for c in candidates if c != true])
  return (f"Context: {row['context']}\nQuestion: {row['question']}\nAnswer: {answer}", label)


def _amazon_polarity(row, rng):
  return f"{row['title']} {row['content']}", binary_label(row)


def _anthropic_hh(row, rng):
  label = _coin(rng)
  return str(row["chosen"] if label else row["rejected"]), label


def _anli(row, rng):
  return (f"Premise: {row['premise']}\nHypothesis: {row['hypothesis']}\n\nDoes the premise "
          "entail the hypothesis?", int(_choice(row, "label", range(3)) == 0))


def _dream(row, rng):
  wrong = list(row["choice"])
  wrong.remove(row["answer"])
  answer, label = _true_or_wrong(rng, row["answer"], wrong)
  dialogue = "\n".join(row["dialogue"])
  return f"{dialogue}\n\nQ: {row['question']} A: {answer}", label


def _ethics(question: str, with_excuse: bool = False):
  def fmt(row, rng):
    body = f"{row['scenario']}\n\n{row['excuse']}" if with_excuse else row["scenario"]
    return f"Q: {question}\n\n{body}\n\nA:", binary_label(row)
  return fmt


def _utilitarianism(row, rng):
  label = _coin(rng)
  choices = [row["baseline"], row["less_pleasant"]]
  rng.shuffle(choices)
  correct = choices.index(row["baseline"])
  shown = correct if label else 1 - correct
  return (f"Which is more pleasant?\n1) {choices[0]}\n2) {choices[1]} A: {shown + 1}", label)


def _mc_taco(row, rng):
  return (f"{row['sentence']}\n\nGiven the above, {row['question']} Is the answer "
          f"{row['answer']}?", binary_label(row))


def _hellaswag(row, rng):
  endings = list(row["endings"])
  gold = _choice(row, "label", range(len(endings)))
  answer, label = _true_or_wrong(rng, endings[gold],
                                 [e for i, e in enumerate(endings) if i != gold])
  joined = "\n".join(endings)
  return (f"Context:\n{row['ctx']}\n\nContinuations:\n\n{joined}\n\nQ: Is \"{answer}\" the best "
          "continuation?", label)


def _multirc(row, rng):
  return (f"Passage:\n\n{row['paragraph']}\n\nQ: \"{row['question']}\" Is the answer "
          f"\"{row['answer']}\"?", binary_label(row))


def _openbookqa(row, rng):
  texts, letters = list(row["choices"]["text"]), list(row["choices"]["label"])
  gold = letters.index(row["answerKey"])
  answer, label = _true_or_wrong(rng, texts[gold], texts[:gold] + texts[gold + 1:])
  listing = "\n".join(f"{letter}) {text}" for letter, text in zip(letters, texts))
  return f"Q: {row['question_stem']}\n\nChoices:\n{listing}\n\nAnswer: {answer}", label


def _paws(row, rng):
  return (f"Sent 1: {row['sentence1']}\nSent 2: {row['sentence2']}\n\nQ: Are these sentences "
          "semantically equivalent?", binary_label(row))


def _piqa(row, rng):
  label = _coin(rng)
  solutions = [row["sol1"], row["sol2"]]
  correct = binary_label(row)
  answer = solutions[correct if label else 1 - correct]
  return f"Q: {row['goal']} A: {answer}", label


def _quail(row, rng):
  answers = list(row["answers"])
  gold = _choice(row, "correct_answer_id", range(len(answers)))
  answer, label = _true_or_wrong(rng, answers[gold],
                                 [a for i, a in enumerate(answers) if i != gold])
  return (f"Passage:\n\n{row['context']}\n\nQ: \"{row['question']}\" Is the answer "
          f"\"{answer}\"?", label)


def _quartz(row, rng):
  label = _coin(rng)
  gold = list(row["choices"]["label"]).index(row["answerKey"])
  answer = row["choices"]["text"][gold if label else 1 - gold]
  return f"Passage:\n{row['para']}\n\nQ: \"{row['question']}\" Is the answer \"{answer}\"?", label


def _social_i_qa(row, rng):
  answers = [row["answerA"], row["answerB"], row["answerC"]]
  gold = _choice(row, "label", (1, 2, 3)) - 1
  answer, label = _true_or_wrong(rng, answers[gold],
                                 [a for i, a in enumerate(answers) if i != gold])
  return (f"Context:\n{row['context']}\n\nQuestion: \"{row['question']}\"\n\nChoices:\n"
          f"{answers[0]}\n{answers[1]}\n{answers[2]}\n\nIs the answer \"{answer}\"?", label)


def _wic(row, rng):
  return (f"Sentence 1:\n{row['sentence1']}\n\nSentence 2:\n{row['sentence2']}\n\nQ: Does "
          f"\"{row['word']}\" have the same meaning in the above sentences?", binary_label(row))


VALIDATION_AS_TEST = {"train": "train", "test": "validation"}

TASKS: dict[str, TextTask] = {
    # OpenAI weak-to-strong
    "sciq": TextTask(("allenai/sciq",), _sciq),
    "boolq": TextTask(("google/boolq",), _boolq, splits=VALIDATION_AS_TEST,
                      tfds="super_glue/boolq", tfds_rename={"label": "answer"},
                      local={"train": "boolq/dev.jsonl"}),
    "cosmos_qa": TextTask(("allenai/cosmos_qa",), _cosmos_qa, splits=VALIDATION_AS_TEST,
                          tfds="cosmos_qa", local={"train": "cosmosqa/valid.csv"}),
    "amazon_polarity": TextTask(("fancyzhx/amazon_polarity",), _amazon_polarity),
    "anthropic_hh": TextTask(("Anthropic/hh-rlhf",), _anthropic_hh),
    # EleutherAI w2s
    "anli-r2": TextTask(("facebook/anli",), _anli, splits={"train": "train_r2",
                                                            "test": "test_r2"}),
    "cola": TextTask(("nyu-mll/glue", "cola"), _field("sentence"), splits=VALIDATION_AS_TEST,
                     tfds="glue/cola"),
    "dream": TextTask(("dataset-org/dream",), _dream),
    "ethics-deontology": TextTask(("hendrycks/ethics", "deontology"), _ethics(
        "Is the following a morally valid excuse?", with_excuse=True)),
    "ethics-justice": TextTask(("hendrycks/ethics", "justice"),
                               _ethics("Does this statement exemplify justice?")),
    "ethics-virtue": TextTask(("hendrycks/ethics", "virtue"), _ethics(
        "Does this behavior match the adjective that follows?")),
    "ethics-utilitarianism": TextTask(("hendrycks/ethics", "utilitarianism"), _utilitarianism),
    # mc_taco's test split is the larger one, so it trains on it
    "mc_taco": TextTask(("CogComp/mc_taco",), _mc_taco,
                        splits={"train": "test", "test": "validation"}),
    "hellaswag": TextTask(("Rowan/hellaswag",), _hellaswag, splits=VALIDATION_AS_TEST),
    "multirc": TextTask(("aps/super_glue", "multirc"), _multirc, splits=VALIDATION_AS_TEST,
                        tfds="super_glue/multirc"),
    "openbookqa": TextTask(("allenai/openbookqa", "main"), _openbookqa,
                           note="true answers shown as text, not as their letter"),
    "paws": TextTask(("google-research-datasets/paws", "labeled_final"), _paws),
    "piqa": TextTask(("ybisk/piqa",), _piqa, splits=VALIDATION_AS_TEST, tfds="piqa"),
    "quail": TextTask(("textmachinelab/quail",), _quail, splits=VALIDATION_AS_TEST),
    "quartz": TextTask(("allenai/quartz",), _quartz),
    "social_i_qa": TextTask(("allenai/social_i_qa",), _social_i_qa, splits=VALIDATION_AS_TEST),
    "sst2": TextTask(("stanfordnlp/sst2",), _field("sentence"), splits=VALIDATION_AS_TEST,
                     tfds="glue/sst2",
                     local={"train": "sst2/train.tsv", "test": "sst2/dev.tsv"},
                     local_rename={"content": "sentence"}),
    "wic": TextTask(("aps/super_glue", "wic"), _wic, splits=VALIDATION_AS_TEST,
                    tfds="super_glue/wic"),
    "twitter-sentiment": TextTask(("EleutherAI/twitter-sentiment",), _field("text")),
    "sciq_with_support": TextTask(("allenai/sciq",), _sciq_with_support),
    # SciQ copies without distractors: a wrong answer is another question's answer.
    "sciq_no_distractors": TextTask(
        ("allenai/sciq",), format_split=_sciq_no_distractors,
        local={"train": "sciq/sciq_train.jsonl", "test": "sciq/sciq_test.jsonl"},
        note="wrong answers drawn from other questions' answers"),
}

