"""Fine-tuning an extractive QA model end to end (workflows.finetune_qa / evaluate_qa), tiny.

The random tiny QA checkpoint in tests/data/qa_reference is fine-tuned for 40 steps on 16
cloze-like questions and has to memorise them.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from albert_edge import workflows
from albert_edge._textgen import training_corpus
from albert_edge.checkpoint import CheckpointError, load_pretrained
from albert_edge.model import AlbertForQuestionAnswering
from albert_edge.qa import QASettings
from albert_edge.qa_data import QAExample
from albert_edge.tokenizer import AlbertTokenizer, TokenizerError
from albert_edge.training import TrainingArgs, read_log

REFERENCE = Path(__file__).resolve().parent / "data" / "qa_reference"
SETTINGS = QASettings(max_seq_len=64, doc_stride=16)
ARGS = TrainingArgs(steps=40, batch_size=8, lr=1e-3, warmup_steps=0, log_every=5, progress=False)


def _questions() -> list[QAExample]:
    """16 two-sentence contexts; the answer is a word of the first sentence, which (with that
    word replaced by "what") is the question."""
    sentences = [s for s in training_corpus(400, seed=0) if 8 <= len(s.split()) <= 14]
    examples = []
    for i in range(16):
        first, second = sentences[2 * i], sentences[2 * i + 1]
        context = f"{first} {second}"
        word = next(w for w in first.split() if w.isalpha() and w.islower() and len(w) > 3 and context.count(w) == 1)
        question = first.replace(word, "what", 1).rstrip(".!?") + "?"
        examples.append(QAExample(f"q{i}", question, context, ((word, context.index(word)),)))
    return examples


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """A tiny model: more threads only contend (training was 20x slower on a busy 2-core box)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[QAExample]]:
    out = tmp_path_factory.mktemp("qa-run")
    examples = _questions()
    workflows.finetune_qa(REFERENCE, out, examples, ARGS, settings=SETTINGS)
    return out, examples


def test_finetune_qa_writes_a_qa_checkpoint_that_memorised(trained, tmp_path: Path) -> None:
    out, examples = trained
    model = load_pretrained(out / "model")
    assert isinstance(model, AlbertForQuestionAnswering)
    assert model.config.labels == ("start", "end")

    losses = [r["loss"] for r in read_log(out) if r["kind"] == "train"]
    assert len(losses) == ARGS.steps // ARGS.log_every
    assert losses[-1] < 0.75 * losses[0], losses

    before = workflows.evaluate_qa(REFERENCE, examples, SETTINGS)
    after = workflows.evaluate_qa(out / "model", examples, SETTINGS)
    assert before["questions"] == after["questions"] == 16
    assert before["f1"] < 20 and after["f1"] > 60 and after["f1"] > before["f1"] + 40, (before, after)


def test_finetuned_checkpoint_carries_its_tokenizer(trained) -> None:
    """A checkpoint with only tokenizer.json (and its config) passes both on to the fine-tuned model."""
    out, examples = trained
    assert (out / "model" / "tokenizer.json").read_bytes() == (REFERENCE / "tokenizer.json").read_bytes()
    AlbertTokenizer.from_pretrained(out / "model")
    assert workflows.evaluate_qa(out / "model", examples, SETTINGS)["questions"] == 16


def test_eager_answers_needs_a_qa_checkpoint() -> None:
    with pytest.raises(CheckpointError, match="AlbertForSequenceClassification.*AlbertForQuestionAnswering"):
        workflows.eager_answers("default", "Who is it?", "It is Alice.")
