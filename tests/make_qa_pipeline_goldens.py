"""Write the question-answering reference cases that tests/test_qa.py checks albert_edge.qa against.

The reference is transformers 4.57's ``question-answering`` pipeline (transformers 5 no longer has
it), run on a small random-weight ``AlbertForQuestionAnswering`` saved with ``save_pretrained``.
Regenerate (about a minute) with transformers 4.57.6 put in front of the project's venv:

    .venv/bin/pip install --no-deps --target /tmp/hf457 transformers==4.57.6 \
        'huggingface_hub>=0.34,<1.0' tokenizers==0.22.2
    PYTHONPATH=/tmp/hf457 .venv/bin/python tests/make_qa_pipeline_goldens.py

It writes tests/data/qa_reference/ (the checkpoint: config, weights, tokenizer files) and
tests/data/qa_reference/pipeline_cases.jsonl (a header line, then one case per line): per case the question, context, pipeline settings,
the windows the tokenizer made (ids and token types), and the pipeline's answers. A case is kept
only when its answers are separated from each other and from the next candidate by at least
``MIN_GAP`` relative score, so that float rounding on another CPU cannot reorder them.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import unicodedata
from pathlib import Path

import torch
import transformers
from transformers import AlbertConfig, AlbertForQuestionAnswering, AlbertTokenizerFast, pipeline

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from albert_edge._textgen import training_corpus  # noqa: E402
from albert_edge.tokenizer_goldens import train_reference_spiece  # noqa: E402

OUT = Path(__file__).resolve().parent / "data" / "qa_reference"
N_CASES = 240
MIN_GAP = 1e-3
SEED = 16


def plain(text: str) -> bool:
    """No TeX quotes, nothing normalization deletes: offsets equal transformers' (docs/tokenizer.md)."""
    return "``" not in text and "''" not in text and not any(
        unicodedata.category(c) in ("Mn", "Mc", "Me", "Cc", "Cf") for c in text
    )


# transformers 5 makes the tokenizer files (its tokenizer is the one albert-edge matches; 4.57's
# conversion of spiece.model differs, e.g. it pre-tokenizes with Metaspace alone); 4.57 reads them.
MAKE_TOKENIZER = """
import sys, transformers
assert transformers.__version__.startswith("5"), transformers.__version__
transformers.AlbertTokenizer.from_pretrained(sys.argv[1]).save_pretrained(sys.argv[2])
"""


def make_model(directory: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        train_reference_spiece(Path(tmp) / "spiece.model")
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        subprocess.run([sys.executable, "-c", MAKE_TOKENIZER, tmp, str(directory)], env=env, check=True)
    # 4.57 cannot read 5's list-valued extra_special_tokens; tokenizer.json lists the added tokens.
    config_path = directory / "tokenizer_config.json"
    tok_config = json.loads(config_path.read_text())
    tok_config.pop("extra_special_tokens", None)
    config_path.write_text(json.dumps(tok_config, indent=2) + "\n")
    tok = AlbertTokenizerFast.from_pretrained(directory)
    torch.manual_seed(SEED)
    config = AlbertConfig(
        vocab_size=tok.vocab_size, embedding_size=16, hidden_size=32, num_hidden_layers=2,
        num_attention_heads=2, intermediate_size=64, max_position_embeddings=160,
        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
    )
    model = AlbertForQuestionAnswering(config).eval()
    with torch.no_grad():
        # Random logits spread enough that the answers are well separated ...
        model.qa_outputs.weight.normal_(0.0, 0.4)
        # ... and turned a little toward [CLS]'s hidden state, so that "no answer" wins about a
        # third of the time when it is allowed.
        sample = tok("who wrote it?", "It was written by Alice in 1998.", return_tensors="pt")
        h = model.albert(**sample).last_hidden_state[0]
        cls = h[0] - h.mean(0)
        model.qa_outputs.weight.add_(1.3 * cls / cls.norm())
    model.save_pretrained(directory, safe_serialization=True)


def main() -> None:
    assert transformers.__version__.startswith("4.57"), transformers.__version__
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)
    make_model(OUT)
    qa = pipeline("question-answering", model=str(OUT), tokenizer=str(OUT), device="cpu")
    sentences = [s for s in training_corpus() if plain(s)]
    rng = random.Random(SEED)
    cases, tried = [], 0
    while len(cases) < N_CASES:
        tried += 1
        max_seq_len = rng.choice([32, 48, 64, 96, 128, 160])
        question = " ".join(rng.choice(sentences).split()[: rng.randint(1, 8)]) + "?"
        n_q = len(qa.tokenizer(question)["input_ids"])
        room = max_seq_len - n_q - 1  # context tokens per window: [CLS] q [SEP] context [SEP]
        if room < 4:
            continue
        doc_stride = rng.randint(0, min(room - 1, max_seq_len // 2))
        context = " ".join(rng.sample(sentences, rng.choice([1, 2, 4, 8, 16])))
        settings = {
            "max_seq_len": max_seq_len,
            "doc_stride": doc_stride,
            "max_answer_len": rng.choice([1, 3, 15, 30]),
            "top_k": rng.choice([1, 1, 3]),
            "handle_impossible_answer": rng.random() < 0.3,
        }
        args = {"question": question, "context": context}
        answers = qa(**args, **settings)
        answers = answers if isinstance(answers, list) else [answers]
        more = qa(**args, **{**settings, "top_k": settings["top_k"] + 1})
        more = more if isinstance(more, list) else [more]
        scores = [a["score"] for a in more]
        gaps = [(a - b) / max(a, 1e-30) for a, b in zip(scores, scores[1:])]
        if len(answers) == settings["top_k"] and gaps and min(gaps) < MIN_GAP:
            continue
        windows = qa.tokenizer(
            question, context, truncation="only_second", max_length=max_seq_len, stride=doc_stride,
            return_overflowing_tokens=True, return_token_type_ids=True,
        )
        cases.append({
            **args,
            **settings,
            "windows": [
                {"input_ids": ids, "token_type_ids": types}
                for ids, types in zip(windows["input_ids"], windows["token_type_ids"])
            ],
            "answers": [
                {"answer": a["answer"], "start": a["start"], "end": a["end"], "score": a["score"]}
                for a in answers
            ],
        })
    header = {
        "reference": f"transformers {transformers.__version__} question-answering pipeline",
        "command": "PYTHONPATH=/tmp/hf457 .venv/bin/python tests/make_qa_pipeline_goldens.py",
        "min_gap": MIN_GAP,
        "tried": tried,
    }
    lines = [json.dumps(header)] + [json.dumps(c, ensure_ascii=False) for c in cases]
    (OUT / "pipeline_cases.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    multi = sum(len(c["windows"]) > 1 for c in cases)
    print(f"{len(cases)} cases ({multi} with several windows) of {tried} tried -> {OUT}")


if __name__ == "__main__":
    main()
