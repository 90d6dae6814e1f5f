"""Question-answering data: SQuAD v1.1/v2.0 JSON or JSON Lines in, exact match and F1 out.

Files (errors name the file and the record):
- SQuAD JSON: ``{"data": [{"title", "paragraphs": [{"context", "qas": [{"id", "question",
  "answers": [{"text", "answer_start"}], "is_impossible"?}]}]}]}``.
- JSON Lines, one question per line: ``{"id"?, "question", "context", "answers": [{"text",
  "answer_start"}] | {"text": [...], "answer_start": [...]}}`` (the second form is Hugging Face
  ``datasets``' SQuAD layout); an empty ``answers`` list is a SQuAD 2.0 "no answer" question.

Every answer must be what the context holds at ``answer_start``. Scores follow the official
SQuAD evaluation script: answers normalised (lower case, punctuation and the articles a/an/the
removed, whitespace collapsed), exact match and token F1 taken as the maximum over the gold
answers; a question without answers scores 1 only for the empty prediction.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import re
import string
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from albert_edge._io import atomic_write_text
from albert_edge.errors import DataError
from albert_edge.qa import QAError, QASettings, make_windows
from albert_edge.tokenizer import AlbertTokenizer

__all__ = [
    "QAExample",
    "QAFeature",
    "exact_match",
    "f1_score",
    "normalize_answer",
    "read_qa",
    "squad_scores",
    "training_features",
    "write_qa_jsonl",
]


@dataclass(frozen=True)
class QAExample:
    """One question; ``answers`` are ``(text, start)`` pairs into ``context`` (empty: no answer)."""

    id: str
    question: str
    context: str
    answers: tuple[tuple[str, int], ...]

    @property
    def has_answer(self) -> bool:
        return bool(self.answers)


def _answers(raw: Any, where: str) -> list[tuple[Any, Any]]:
    if isinstance(raw, dict) and isinstance(raw.get("text"), list):  # datasets' columnar layout
        starts = raw.get("answer_start")
        if not isinstance(starts, list) or len(starts) != len(raw["text"]):
            raise DataError(f"{where}: answers.text and answers.answer_start must be lists of equal length")
        return list(zip(raw["text"], starts))
    if not isinstance(raw, list):
        raise DataError(f"{where}: answers must be a list of {{text, answer_start}} objects")
    out = []
    for i, a in enumerate(raw):
        if not isinstance(a, dict) or "text" not in a or "answer_start" not in a:
            raise DataError(f"{where}: answers[{i}] must be an object with text and answer_start")
        out.append((a["text"], a["answer_start"]))
    return out


def _example(record: Any, where: str, context: Any = None, default_id: str = "") -> QAExample:
    if not isinstance(record, dict):
        raise DataError(f"{where}: expected an object, got {type(record).__name__}")
    context = record.get("context", context)
    question = record.get("question")
    for name, value in (("question", question), ("context", context)):
        if not isinstance(value, str):
            raise DataError(f"{where}: {name} must be a string, got {type(value).__name__}")
        if not value.strip():
            raise DataError(f"{where}: {name} is empty")
    raw = record.get("answers", [])
    if record.get("is_impossible") is True:
        raw = []
    answers = []
    for text, start in _answers(raw, where):
        if not isinstance(text, str) or isinstance(start, bool) or not isinstance(start, int):
            raise DataError(f"{where}: an answer needs a string text and an int answer_start, got {text!r}, {start!r}")
        if not text.strip():
            raise DataError(f"{where}: an answer's text is empty (a question without an answer has answers: [])")
        if not 0 <= start <= len(context) - len(text):
            raise DataError(f"{where}: answer_start={start} is outside the context (0..{len(context) - len(text)} "
                            f"for the answer {text!r})")
        if context[start : start + len(text)] != text:
            raise DataError(
                f"{where}: answer {text!r} is not at answer_start={start} of the context "
                f"(the context has {context[start : start + len(text)]!r} there)"
            )
        answers.append((text, start))
    qid = record.get("id", default_id)
    return QAExample(str(qid), question, context, tuple(answers))


def read_qa(path: str | Path, limit: int | None = None) -> list[QAExample]:
    """Questions of a SQuAD JSON or JSON Lines file (see the module docstring)."""
    path = Path(path)
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise DataError(f"limit={limit!r}; accepted: None or a positive integer")
    if not path.is_file():
        raise DataError(f"QA data file {path} does not exist (SQuAD .json or .jsonl)")
    try:
        text = path.read_text(encoding="utf-8-sig")  # a byte-order mark is allowed
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 text (byte {e.start})") from None
    examples: list[QAExample] = []
    try:
        doc = json.loads(text)
    except RecursionError:
        raise DataError(f"{path}: JSON nested too deeply to read; expected SQuAD JSON or JSON Lines") from None
    except json.JSONDecodeError as e:
        if path.suffix.lower() == ".json":
            raise DataError(f"{path}: not valid JSON ({e.msg} at line {e.lineno}, column {e.colno}); "
                            "expected SQuAD JSON (or JSON Lines in a .jsonl file)") from None
        doc = None  # JSON Lines (or broken: the line-by-line read below says where)
    if isinstance(doc, dict) and "data" in doc:
        if not isinstance(doc["data"], list):
            raise DataError(f"{path}: data must be a list of articles")
        for a, article in enumerate(doc["data"]):
            paragraphs = article.get("paragraphs") if isinstance(article, dict) else None
            if not isinstance(paragraphs, list):
                raise DataError(f"{path}: data[{a}].paragraphs must be a list")
            for p, para in enumerate(paragraphs):
                if not isinstance(para, dict) or not isinstance(para.get("qas"), list):
                    raise DataError(f"{path}: data[{a}].paragraphs[{p}] needs context and a qas list")
                for q, qa in enumerate(para["qas"]):
                    where = f"{path}: data[{a}].paragraphs[{p}].qas[{q}]"
                    examples.append(_example(qa, where, para.get("context"), f"{a}-{p}-{q}"))
        if not examples:
            raise DataError(f"{path}: no questions in data")
        return examples[:limit] if limit else examples
    one_line = len(text.strip().split("\n")) == 1  # may be JSON Lines of one record: read below, line by line
    if doc is not None and not (one_line and (isinstance(doc, dict) or path.suffix.lower() != ".json")):  # one JSON value that is not SQuAD JSON: say what, not "line 1"
        got = (f"a list of {len(doc)}" if isinstance(doc, list) else "an object without 'data'" if isinstance(doc, dict)
               else f"a JSON {type(doc).__name__}")
        shape = "a list" if isinstance(doc, list) else "one record" if isinstance(doc, dict) else "a value"
        raise DataError(f"{path}: holds {got}; expected SQuAD JSON (an object with a 'data' list of articles) or "
                        f"JSON Lines (one question object per line), not {shape} in one JSON document")
    for n, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except RecursionError:
            raise DataError(f"{path} line {n}: JSON nested too deeply to read") from None
        except json.JSONDecodeError as e:
            raise DataError(f"{path} line {n}: not a JSON object ({e.msg}); expected SQuAD JSON or JSON Lines") from None
        examples.append(_example(record, f"{path} line {n}", default_id=f"line-{n}"))
        if limit and len(examples) >= limit:
            break
    if not examples:
        raise DataError(f"{path}: no questions (expected SQuAD JSON or JSON Lines)")
    return examples


def write_qa_jsonl(path: str | Path, examples: Iterable[QAExample]) -> Path:
    """The JSON Lines form :func:`read_qa` reads (written atomically); returns ``path``."""
    lines = [
        json.dumps({"id": e.id, "question": e.question, "context": e.context,
                    "answers": [{"text": t, "answer_start": s} for t, s in e.answers]}, ensure_ascii=False)
        for e in examples
    ]
    atomic_write_text(Path(path), "\n".join(lines) + "\n")
    return Path(path)


# ---- SQuAD scores ----------------------------------------------------------------------------

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCT = frozenset(string.punctuation)


def normalize_answer(s: str) -> str:
    """The official SQuAD normalisation: lower case, no punctuation, no articles, single spaces."""
    s = "".join(ch for ch in s.lower() if ch not in _PUNCT)
    return " ".join(_ARTICLES.sub(" ", s).split())


def exact_match(prediction: str, gold: Sequence[str]) -> float:
    """1.0 if the normalised prediction equals a normalised gold answer (``[""]`` when none)."""
    golds = list(gold) or [""]
    return float(any(normalize_answer(prediction) == normalize_answer(g) for g in golds))


def _f1(prediction: str, gold: str) -> float:
    p, g = normalize_answer(prediction).split(), normalize_answer(gold).split()
    if not p or not g:
        return float(p == g)
    common = sum((collections.Counter(p) & collections.Counter(g)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(p), common / len(g)
    return 2 * precision * recall / (precision + recall)


def f1_score(prediction: str, gold: Sequence[str]) -> float:
    """Token F1 of the normalised strings, the maximum over gold answers (``[""]`` when none)."""
    return max(_f1(prediction, g) for g in (list(gold) or [""]))


def squad_scores(examples: Sequence[QAExample], predictions: Sequence[str]) -> dict[str, Any]:
    """EM and F1 in percent over all questions, and over has-answer / no-answer ones when both occur."""
    if len(examples) != len(predictions):
        raise DataError(f"{len(predictions)} predictions for {len(examples)} questions")
    if not examples:
        raise DataError("no questions to score")

    def score(idx: list[int]) -> dict[str, Any]:
        em = [exact_match(predictions[i], [t for t, _ in examples[i].answers]) for i in idx]
        f1 = [f1_score(predictions[i], [t for t, _ in examples[i].answers]) for i in idx]
        return {"exact_match": 100 * sum(em) / len(idx), "f1": 100 * sum(f1) / len(idx), "questions": len(idx)}

    result = score(list(range(len(examples))))
    has = [i for i, e in enumerate(examples) if e.has_answer]
    if has and len(has) < len(examples):
        result["has_answer"] = score(has)
        result["no_answer"] = score([i for i, e in enumerate(examples) if not e.has_answer])
    return result


# ---- training features ---------------------------------------------------------------------


@dataclass(frozen=True)
class QAFeature:
    """One window with its answer's token positions (0, 0: the answer is not in this window), and
    for distillation a teacher's start/end distributions over its positions, as log-probabilities
    (``qa_teacher.distillation_features``)."""

    input_ids: tuple[int, ...]
    token_type_ids: tuple[int, ...]
    start_position: int
    end_position: int
    teacher_start: tuple[float, ...] | None = None
    teacher_end: tuple[float, ...] | None = None


def training_features(
    examples: Sequence[QAExample], tokenizer: AlbertTokenizer, settings: QASettings
) -> list[QAFeature]:
    """Every window of every example, labelled with the first answer's first and last token in
    the window, or ``[CLS]`` (0, 0) when the window does not hold the whole answer (as
    transformers' ``run_qa.py`` prepares SQuAD)."""
    features = []
    for e in examples:
        try:
            windows = make_windows(tokenizer, e.question, e.context, settings)
        except QAError as err:
            raise DataError(f"question {e.id}: {err}") from None
        for w in windows:
            start = end = 0
            if e.answers:
                text, a = e.answers[0]
                b = a + len(text)
                ctx = [i for i, q in enumerate(w.sequence_ids) if q == 1]
                if ctx and w.offsets[ctx[0]][0] <= a and w.offsets[ctx[-1]][1] >= b:
                    start = next(i for i in ctx if w.offsets[i][1] > a)
                    end = next(i for i in reversed(ctx) if w.offsets[i][0] < b)
            features.append(QAFeature(w.input_ids, w.token_type_ids, start, end))
    return features


# ---- the shipped QA model's data ----------------------------------------------------------

CLOZE_SEED = 7  # split k of corpora.SPLITS uses seed CLOZE_SEED + k


def cloze_split(split: str, limit: int | None = None, *, fronted: bool = False) -> list[QAExample]:
    """Cloze questions (``albert_edge.cloze``) over the passages of one split of the pretraining
    corpora, split by document exactly as pretraining split them (``corpora.pretraining_splits``):
    the ``test`` questions come from documents that neither pretraining nor fine-tuning saw.
    Needs the corpora (`make corpora`). ``limit``: that many questions spread evenly over the split.
    ``fronted``: after them, a twin of every question that ``wh_fronting`` can put in the form
    people ask (id ``SPLIT-I-fronted``, same passage and answer)."""
    from albert_edge import corpora
    from albert_edge.cloze import questions_of

    if split not in corpora.SPLITS:
        raise DataError(f"split={split!r}; accepted: {', '.join(corpora.SPLITS)}")
    docs = corpora.pretraining_splits()[split]
    questions = questions_of([d.sentences for d in docs], seed=CLOZE_SEED + corpora.SPLITS.index(split))
    examples = [QAExample(f"{split}-{i}", q.question, q.context, ((q.answer, q.answer_start),))
                for i, q in enumerate(questions)]
    if limit is not None and limit < len(examples):
        examples = [examples[i * len(examples) // limit] for i in range(limit)]
    if fronted:
        by_id = {f"{split}-{i}": q.fronted for i, q in enumerate(questions)}
        examples += [dataclasses.replace(e, id=f"{e.id}-fronted", question=by_id[e.id]) for e in examples if by_id[e.id]]
    return examples
