"""Write the question-answering cases that textcore's JUnit tests replay (windows and span decoding).

    python export/make_qa_goldens.py [--out PATH]

Each case is a question and a passage under some QA settings: the windows
``albert_edge.qa.make_windows`` makes with the shipped default-qa tokenizer (ids, offsets, word
and sequence ids; padded to ``max_seq_len`` where ``pad`` is set, as for a fixed-length
program), start/end logits per window (the shipped default-qa model run eagerly, or seeded
random ones that make odd spans win), and the answers ``albert_edge.qa.decode_answers`` gives
from those logits. The settings cover the default, short windows with many overlaps, a question
long enough to shrink the stride, no-answer thresholds, answers not widened to words, and top-k
up to 5; the passages non-ASCII, characters outside the BMP, added tokens and blank runs, and a top-k
larger than a short passage's spans.
Default output: android_demo/textcore/src/test/resources/qa_cases.json.
tests/test_qa_goldens.py checks that the windows and answers are what Python gives today.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO / "android_demo/textcore/src/test/resources/qa_cases.json"
MODEL = REPO / "albert_edge/default_qa_model"
FORMAT = "albert-edge-qa-cases/1"

_PASSAGES = [
    "The report was written by Alice Smith in 2019 and published in Paris.",
    "Paris is the capital and most populous city of France, with 2.1 million people.",
    "Le café déjà vu est à Zürich, près de la gare. Naïve résumé façade.",
    "Prices rose 3.5% in 2023, to $1,299.99 per unit; the old model cost $999.",
    "The museum 🏛️ opened in 1901 👍🏽 and Ørsted visited it in 𝟏𝟗𝟏𝟎 with Łukasz.",
    "Tokyo (東京) is Japan's capital; about 14 million people live there [MASK] today.",
    "  The  bridge   was\tbuilt\nin 1932 by   the   city   engineer Jo Park.  ",
    "İstanbul was called Constantinople until 1930; ΣΑΣ is not a word.",
]
_QUESTIONS = [
    "Who wrote the report?",
    "What is the capital of France?",
    "Où est le café?",
    "How much did the old model cost?",
    "When did the museum open?",
    "How many people live in Tokyo?",
    "Who built the bridge?",
    "What was Istanbul called?",
]


def _long_passage(n: int) -> str:
    sentences = [f"Chapter {i} describes the valley road past farm number {i * 7}." for i in range(n)]
    sentences.insert(n // 2, "The mill on the valley road was built by Henrik Olsen in 1887.")
    return " ".join(sentences)


def _case_specs() -> list[dict[str, Any]]:
    from albert_edge.qa import QASettings

    default = QASettings.for_length(128)
    specs: list[dict[str, Any]] = []
    for q, p in zip(_QUESTIONS, _PASSAGES):
        specs.append({"question": q, "context": p, "settings": default, "top_k": 3})
    long = _long_passage(24)
    specs += [
        {"question": "Who built the mill?", "context": long, "settings": default, "top_k": 5},
        {"question": "When was the mill built?", "context": long, "settings": default, "top_k": 1, "pad": True},
        # Short windows: many windows over one passage, and a stride of 0.
        {"question": "Who built the mill?", "context": long,
         "settings": QASettings.for_length(32, doc_stride=12), "top_k": 3},
        {"question": "What does chapter 3 describe?", "context": _long_passage(8),
         "settings": QASettings.for_length(24, doc_stride=0), "top_k": 3},
        # A question long enough that the stride must shrink to half a window.
        {"question": "In the long story of the valley and of every farm along its road, who built the mill?",
         "context": _long_passage(6), "settings": QASettings(max_seq_len=40, doc_stride=16, max_question_len=64),
         "top_k": 3},
        # The question cut to max_question_len tokens.
        {"question": "Who, according to the chapters about the valley road and its farms, built the mill there?",
         "context": long, "settings": QASettings(max_seq_len=48, doc_stride=8, max_question_len=6), "top_k": 3},
        # No-answer thresholds, raw token spans, short answers, padding.
        {"question": "Who wrote the report?", "context": _PASSAGES[0],
         "settings": QASettings.for_length(128, no_answer_threshold=0.0), "top_k": 3},
        {"question": "Who wrote the report?", "context": _PASSAGES[0],
         "settings": QASettings.for_length(128, no_answer_threshold=-5.0), "top_k": 2, "pad": True},
        {"question": "When did the museum open?", "context": _PASSAGES[4],
         "settings": QASettings.for_length(128, align_to_words=False, max_answer_len=3), "top_k": 5},
        {"question": "Où est le café?", "context": _PASSAGES[2],
         "settings": QASettings.for_length(64, align_to_words=False), "top_k": 3, "pad": True},
        # More answers asked for than a two-word passage has spans: only real spans, none made of
        # [CLS] (no "" and no part word), with and without whole-word alignment.
        {"question": "Which river?", "context": "Rhinewater flows.", "settings": QASettings.for_length(32),
         "top_k": 12},
        {"question": "Which river?", "context": "Rhinewater flows.",
         "settings": QASettings.for_length(32, align_to_words=False), "top_k": 12},
    ]
    # Seeded random logits: spans the model would never pick (ties of words, [MASK], emoji).
    for i, p in enumerate(_PASSAGES):
        specs.append({"question": _QUESTIONS[(i + 3) % len(_QUESTIONS)], "context": p,
                      "settings": QASettings.for_length(128, no_answer_threshold=2.0 if i % 2 else None,
                                                        align_to_words=i % 3 != 0),
                      "top_k": 4, "random_logits": i})
    specs.append({"question": "Who built the mill?", "context": long,
                  "settings": QASettings.for_length(32, doc_stride=12, max_answer_len=4), "top_k": 5, "random_logits": 99})
    return specs


def make_cases() -> dict[str, Any]:
    import torch

    from albert_edge.qa import decode_answers, make_windows
    from albert_edge.tokenizer import AlbertTokenizer
    from albert_edge.workflows import _eager_runner, _load_qa_model

    tokenizer = AlbertTokenizer.from_pretrained(MODEL)
    torch.manual_seed(0)
    run = _eager_runner(_load_qa_model(MODEL))
    cases = []
    for spec in _case_specs():
        settings = spec["settings"]
        windows = make_windows(tokenizer, spec["question"], spec["context"], settings)
        if spec.get("pad"):
            windows = [tokenizer.pad(w, settings.max_seq_len) for w in windows]
        if "random_logits" in spec:
            rng = np.random.default_rng(1000 + spec["random_logits"])
            logits = [(rng.normal(0, 3, len(w)).astype(np.float32), rng.normal(0, 3, len(w)).astype(np.float32))
                      for w in windows]
        else:
            logits = [run(w) for w in windows]
        starts = [np.asarray(s, dtype=np.float32) for s, _ in logits]
        ends = [np.asarray(e, dtype=np.float32) for _, e in logits]
        answers = decode_answers(windows, starts, ends, spec["context"], settings, tokenizer.cls_id, spec["top_k"])
        cases.append({
            "question": spec["question"],
            "context": spec["context"],
            "settings": settings.to_dict(),
            "top_k": spec["top_k"],
            "pad": bool(spec.get("pad")),
            "windows": [{
                "input_ids": list(w.input_ids), "attention_mask": list(w.attention_mask),
                "token_type_ids": list(w.token_type_ids), "offsets": [list(o) for o in w.offsets],
                "word_ids": list(w.word_ids), "sequence_ids": list(w.sequence_ids),
            } for w in windows],
            "start_logits": starts,
            "end_logits": ends,
            "answers": answers,
        })
    spiece = MODEL / "spiece.model"
    return {
        "format": FORMAT,
        "spiece": str(spiece.relative_to(REPO)),
        "spiece_sha256": hashlib.sha256(spiece.read_bytes()).hexdigest(),
        "do_lower_case": tokenizer.do_lower_case,
        "keep_accents": tokenizer.keep_accents,
        "split_digit_comma": tokenizer.split_digit_comma,
        "cls_id": tokenizer.cls_id,
        "cases": cases,
    }


def _floats(rows: list[np.ndarray]) -> str:
    """float32 rows as JSON, each number the shortest decimal that reads back as the same float32."""
    return "[" + ", ".join(
        "[" + ",".join(np.format_float_positional(x, unique=True, trim="-") for x in row) + "]" for row in rows
    ) + "]"


def _case_json(case: dict[str, Any]) -> str:
    plain = json.dumps({k: v for k, v in case.items() if not k.endswith("_logits")}, ensure_ascii=True)
    return plain[:-1] + f', "start_logits": {_floats(case["start_logits"])}, "end_logits": {_floats(case["end_logits"])}}}'


def render(data: dict[str, Any]) -> str:
    """One case per line (ASCII, so no character can break one)."""
    head = {k: v for k, v in data.items() if k != "cases"}
    body = ",\n".join(_case_json(c) for c in data["cases"])
    return json.dumps(head, ensure_ascii=True)[:-1] + ', "cases": [\n' + body + "\n]}\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"default: {DEFAULT_OUT.relative_to(REPO)}")
    args = parser.parse_args(argv)
    text = render(make_cases())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{args.out.name}.", dir=args.out.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, args.out)
    print(f"wrote {args.out} ({len(text):,} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
