"""Making bundles: lower a model once per recipe, run the golden cases, write the folder.

``export_bundle`` (``albert-edge export``) loads a model, lowers it per recipe (in worker
processes with ``jobs > 1``) and calls ``write_bundle``, which computes the golden cases (eager
fp32 and every program, through ``runtime.Program``) and writes programs, tokenizer, goldens and
manifest into a temporary folder beside the target, renamed into place at the end: a reader sees
the old bundle or the new one, never a half-written one. The format and its readers are
``albert_edge.bundle_format``.
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
import math
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from albert_edge import __version__
from albert_edge._io import assembly_dir, atomic_write_json, is_temp_of, replaced_dir
from albert_edge._procs import init_pool_worker
from albert_edge.bundle_format import (
    FORMAT,
    GOLDENS_FILE,
    GOLDENS_FORMAT,
    MANIFEST_FILE,
    OUTPUTS,
    QA_TASK,
    SCHEMA_VERSION,
    TOKENIZER_FILE,
    file_entry,
    golden_values,
    input_specs,
    is_bundle,
    output_specs,
    task_of,
    tokenizer_settings,
)
from albert_edge.checkpoint import load_model, load_tokenizer, resolve_model_path, weights_sha256
from albert_edge.config import INPUT_NAMES
from albert_edge.errors import BundleError, ExitError
from albert_edge.adaptive import export_adaptive_program
from albert_edge.exit_rules import ExitRule
from albert_edge.exits import ExitHeads, has_exits, load_exits
from albert_edge.lowering import LoweredProgram, export_program
from albert_edge.qa import QA_MAX_SEQ_LEN, QAError, QASettings
from albert_edge.recipes import RECIPES
from albert_edge.runtime import Program, program_answers
from albert_edge.tokenizer import SPIECE_MODEL, TOKENIZER_JSON, AlbertTokenizer

log = logging.getLogger(__name__)

DEFAULT_MAX_SEQ_LEN = 128
DEFAULT_RECIPES = ("fp32", "int8")

# Golden outputs larger than this are stored every ``stride``-th value (row-major), so that an
# albert-base MLM bundle's goldens stay a few hundred kB instead of hundreds of MB.
GOLDEN_MAX_VALUES = 1024
# Device replay tolerance: at least this, and at least 4x what the Python runtime showed against
# eager fp32 (quantized programs differ from eager by design; x86 and ARM kernels round a bit
# differently).
FP32_ATOL = 1e-4
QUANTIZED_ATOL = 1e-3
TOLERANCE_FACTOR = 4.0



# Texts for the golden cases: short and long, cased, accented, digits, punctuation, empty. The
# longest one is built per bundle to exceed max_seq_len, so truncation is always covered.
DEFAULT_GOLDEN_TEXTS = (
    "The movie was wonderful.",
    "I did not like this at all!",
    "",
    "Hello",
    "The President spoke to Congress about the economy, taxes and jobs.",
    "Prices rose 3.5% in 2023, to $1,299.99 per unit.",
    "Café déjà vu: naïve résumé façade.",
    "WHY IS EVERYONE SHOUTING?",
    "Don't stop -- it's (almost) done; isn't it?",
    "Paris is the capital and most populous city of France.",
    "e-mail me at someone@example.com or call 555-0100",
)
# Question-answering golden cases: (question, context); a long context is added per bundle so
# that several windows are always covered.
DEFAULT_QA_CASES = (
    ("Who wrote the report?", "The report was written by Alice Smith in 2019 and published in Paris."),
    ("When was the report published?", "The report was written by Alice Smith in 2019 and published in Paris."),
    ("What is the capital of France?", "Paris is the capital and most populous city of France, with 2.1 million people."),
    ("Où est le café?", "Le café déjà vu est à Zürich, près de la gare. Naïve résumé façade."),
    ("How much did it cost?", "Prices rose 3.5% in 2023, to $1,299.99 per unit; the old model cost $999."),
)
_LONG_TEXT_WORDS = "the quick brown fox jumps over the lazy dog while seven wizards quietly judge boxing".split()




# ---- helpers ------------------------------------------------------------------------------






def _round_up(x: float, digits: int = 3) -> float:
    """``x`` rounded up to ``digits`` significant digits (a tolerance must not shrink)."""
    if x <= 0:
        return 0.0
    scale = 10 ** (digits - 1 - math.floor(math.log10(x)))
    return float(f"{math.ceil(x * scale) / scale:.{digits}g}")


def _stride(numel: int) -> int:
    return max(1, math.ceil(numel / GOLDEN_MAX_VALUES))








def long_text(max_seq_len: int) -> str:
    """A text of more than ``max_seq_len`` words (so more tokens): covers truncation."""
    words = [_LONG_TEXT_WORDS[i % len(_LONG_TEXT_WORDS)] for i in range(max_seq_len + 8)]
    return " ".join(words).capitalize() + "."


def default_golden_texts(max_seq_len: int) -> list[str]:
    return [*DEFAULT_GOLDEN_TEXTS, long_text(max_seq_len)]


def long_context(max_seq_len: int) -> str:
    """A passage of about three windows of ``max_seq_len`` tokens, with one name to find in it."""
    sentences = [f"Section {i} of the guide covers the river crossing near the old mill." for i in range(max_seq_len // 4)]
    sentences.insert(len(sentences) * 2 // 3, "The ferry across the river is run by Maria Lopez.")
    return " ".join(sentences)


def default_qa_cases(max_seq_len: int) -> list[tuple[str, str]]:
    return [*DEFAULT_QA_CASES, ("Who runs the ferry?", long_context(max_seq_len))]


def _as_outputs(out: Tensor | tuple[Tensor, ...]) -> tuple[Tensor, ...]:
    return out if isinstance(out, tuple) else (out,)


# ---- golden cases -------------------------------------------------------------------------


def _golden_inputs(
    tokenizer: AlbertTokenizer | None, texts: Sequence[str], config: Any, max_seq_len: int, dynamic: bool
) -> list[dict[str, Any]]:
    """Golden case inputs: encoded texts, or fixed random id sequences without a tokenizer."""
    cases: list[dict[str, Any]] = []
    if tokenizer is not None:
        padding = "do_not_pad" if dynamic else "max_length"
        for text in texts:
            enc = tokenizer.encode(text, max_length=max_seq_len, padding=padding)
            cases.append({"text": text, **{n: list(getattr(enc, n)) for n in INPUT_NAMES}})
        return cases
    g = torch.Generator().manual_seed(1234)
    lengths = sorted({1, 2, min(7, max_seq_len), max(1, max_seq_len // 2), max_seq_len})
    for S in lengths:
        ids = torch.randint(0, config.vocab_size, (S,), generator=g).tolist()
        types = [0 if i < (S + 1) // 2 or S < 4 else 1 for i in range(S)]  # a second segment when long enough
        mask = [1] * S
        pad = 0 if dynamic else max_seq_len - S  # fixed-length programs take padded inputs
        cases.append({
            "text": None,
            "input_ids": ids + [config.pad_token_id] * pad,
            "attention_mask": mask + [0] * pad,
            "token_type_ids": types + [0] * pad,
        })
    return cases


def _output_entry(names: Sequence[str], outputs: Sequence[Tensor]) -> dict[str, Any]:
    entry = {}
    for name, t in zip(names, outputs):
        stride = _stride(t.numel())
        entry[name] = {"shape": list(t.shape), "stride": stride, "values": golden_values(t, stride)}
    return entry


def compute_goldens(
    model: nn.Module,
    program_files: dict[str, Path],
    recipes: dict[str, Any],
    tokenizer: AlbertTokenizer | None,
    texts: Sequence[str],
    max_seq_len: int,
    dynamic: bool,
) -> dict[str, Any]:
    """Run every case through eager ``model`` (the fp32 reference) and each written program.

    Expected outputs per program are that program's own outputs in the Python runtime, so a
    device replay can compare tightly; the tolerance per program is derived from how far the
    program is from eager (see ``FP32_ATOL``, ``QUANTIZED_ATOL``, ``TOLERANCE_FACTOR``).
    """
    arch, task = task_of(model)
    names = [name for name, _ in OUTPUTS[arch]]
    cases = _golden_inputs(tokenizer, texts, model.config, max_seq_len, dynamic)
    programs = {name: Program(path) for name, path in program_files.items()}
    observed = dict.fromkeys(programs, 0.0)
    was_training = model.training
    model.eval()
    try:
        for i, case in enumerate(cases):
            inputs = tuple(torch.tensor([case[n]], dtype=torch.int64) for n in INPUT_NAMES)
            with torch.no_grad():
                reference = _as_outputs(model(*inputs))
            expected = {}
            for pname, prog in programs.items():
                outs = prog.run(*inputs)
                diff = max(float((o - r).abs().max()) for o, r in zip(outs, reference))
                observed[pname] = max(observed[pname], diff)
                expected[pname] = _output_entry(names, outs)
            cases[i] = {"id": i, **case, "reference": _output_entry(names, reference), "programs": expected}
    finally:
        model.train(was_training)
    tolerances = {}
    for pname, diff in observed.items():
        recipe = recipes[pname]
        is_float = recipe.get("linear") == "fp32" and recipe.get("embedding") == "fp32"
        base = FP32_ATOL if is_float else QUANTIZED_ATOL
        tolerances[pname] = {"atol": _round_up(max(base, TOLERANCE_FACTOR * diff)),
                             "max_abs_diff_vs_reference": float(f"{diff:.6g}")}
        log.info("goldens: %s differs from eager fp32 by at most %.3g", pname, diff)
    return {
        "format": GOLDENS_FORMAT,
        "schema_version": SCHEMA_VERSION,
        "task": task,
        "outputs": names,
        "max_seq_len": max_seq_len,
        "tolerances": tolerances,
        "cases": cases,
    }


def compute_qa_goldens(
    program_files: dict[str, Path],
    tokenizer: AlbertTokenizer,
    settings: QASettings,
    cases: Sequence[tuple[str, str]],
    top_k: int = 3,
) -> list[dict[str, Any]]:
    """Question-answering golden cases: each (question, context) -> windows -> every program's
    start/end logits per window -> its ``top_k`` answers (what an app's decoding must reproduce
    from those logits, and, within the bundle's tolerance, from its own program run)."""
    programs = {name: Program(path) for name, path in program_files.items()}
    out = []
    for question, context in cases:
        per_program: dict[str, Any] = {}
        windows: list[Any] = []
        for pname, prog in programs.items():
            windows, logits, answers = program_answers(prog, tokenizer, settings, question, context, top_k)
            per_program[pname] = {
                "start_logits": [[float(x) for x in s] for s, _ in logits],
                "end_logits": [[float(x) for x in e] for _, e in logits],
                "answers": answers,
            }
        out.append({
            "question": question,
            "context": context,
            "top_k": top_k,
            "windows": [{**{n: list(getattr(w, n)) for n in INPUT_NAMES}, "offsets": [list(o) for o in w.offsets],
                         "word_ids": list(w.word_ids), "sequence_ids": list(w.sequence_ids)} for w in windows],
            "programs": per_program,
        })
    return out


# ---- writing ------------------------------------------------------------------------------


def check_out_dir(out_dir: str | os.PathLike) -> Path:
    """Refuse, before any work, a target the bundle cannot replace: a file, a folder that is not
    a bundle, a bundle folder holding files of the user's (they would be deleted), or a place
    this process cannot write. Returns the path."""
    out = Path(out_dir)
    if out.exists():
        if not out.is_dir():
            raise BundleError(f"{out}: exists and is not a folder; choose another --out")
        if any(out.iterdir()) and not is_bundle(out):
            raise BundleError(
                f"{out}: exists and is not an albert-edge bundle (no {MANIFEST_FILE} with format "
                f"{FORMAT!r}); a bundle replaces its folder, so choose a new or empty folder"
            )
        if is_bundle(out):
            foreign = sorted(p.name for p in out.iterdir() if p.name not in _bundle_files(out) and not is_temp_of(out, p))
            if foreign:
                raise BundleError(
                    f"{out}: holds files that are not part of its bundle ({', '.join(foreign[:5])}"
                    f"{', ...' if len(foreign) > 5 else ''}); re-exporting replaces the whole folder and would "
                    "delete them: move them out or choose another --out"
                )
    place = assembly_dir(out) if out.exists() else out.parent
    existing = next((p for p in (place, *place.parents) if p.exists()), Path("."))
    try:  # the bundle is assembled beside its target (or in it): try that now, not after minutes of lowering
        os.rmdir(tempfile.mkdtemp(prefix=f".{out.name}.probe.", dir=existing))
    except OSError as err:
        raise BundleError(f"{out}: cannot write into {existing} ({err.strerror}); choose another --out") from None
    return out


def _bundle_files(out: Path) -> set[str]:
    """The files an existing bundle's manifest names, and the manifest itself."""
    try:
        manifest = json.loads((out / MANIFEST_FILE).read_text(encoding="utf-8"))
        named = [p.get("file") for p in manifest.get("programs", [])]
        named += [manifest[k].get("file") for k in ("tokenizer", "goldens") if isinstance(manifest.get(k), dict)]
    except (OSError, ValueError, AttributeError, TypeError):
        named = []
    return {MANIFEST_FILE, *(n for n in named if isinstance(n, str))}


def _check_qa(qa: QASettings | None, tokenizer: AlbertTokenizer | None, max_seq_len: int) -> QASettings:
    if tokenizer is None:
        raise BundleError("a question-answering bundle needs a tokenizer (questions and contexts are text); "
                          "give the model's with --tokenizer")
    try:
        qa = qa or QASettings.for_length(max_seq_len)
    except QAError as e:
        raise BundleError(f"--max-seq-len {max_seq_len}: {e}") from None
    if qa.max_seq_len != max_seq_len:
        raise BundleError(f"QA settings are for max_seq_len {qa.max_seq_len} but the programs take {max_seq_len}")
    try:
        return qa.check_question_fits()  # what a reader of the manifest requires
    except QAError as e:
        raise BundleError(str(e)) from None


def _check_programs(programs: Sequence[LoweredProgram], config: Any, tokenizer: AlbertTokenizer | None) -> None:
    if not programs:
        raise BundleError("a bundle needs at least one program; pass one or more --recipe")
    names = [p.recipe.name for p in programs]
    if len(set(names)) != len(names):
        raise BundleError(f"programs must have distinct recipe names, got {names}")
    shapes = {(p.max_seq_len, p.dynamic) for p in programs}
    if len(shapes) != 1:
        found = ", ".join(f"{p.recipe.name}: max_seq_len={p.max_seq_len} dynamic={p.dynamic}" for p in programs)
        raise BundleError(f"all programs of a bundle must share max_seq_len and dynamic; got {found}")
    _check_tokenizer(tokenizer, config)


def _check_tokenizer(tokenizer: AlbertTokenizer | None, config: Any) -> None:
    if tokenizer is None:
        return
    if tokenizer.vocab_size > config.vocab_size:
        raise BundleError(
            f"the tokenizer has {tokenizer.vocab_size} pieces but the model's vocab_size is "
            f"{config.vocab_size}: its ids would fall outside the embedding table; use the "
            "tokenizer the model was trained with"
        )
    if tokenizer.vocab_size < config.vocab_size:
        log.warning("the tokenizer has %d pieces, fewer than the model's vocab_size %d",
                    tokenizer.vocab_size, config.vocab_size)


def compute_adaptive_goldens(program_files: dict[str, Path], cases: Sequence[dict[str, Any]],
                             rule: ExitRule) -> list[dict[str, Any]]:
    """Per text case and program: every step's logits through the loop, and the depth ``rule``
    stops at (what an app's loop must reproduce)."""
    programs = {name: Program(path) for name, path in program_files.items()}
    out = []
    for case in cases:
        entry = {}
        for pname, prog in programs.items():
            if prog.num_steps is None:
                raise BundleError(f"program {pname} has no loop methods; an adaptive bundle needs them in every program")
            inputs = prog.check_inputs(*(torch.tensor([case[n]], dtype=torch.int64) for n in INPUT_NAMES))
            rows = [t[0].numpy() for t in prog.run_steps(inputs)]
            entry[pname] = {"steps": [[float(v) for v in r] for r in rows], "depth": rule.depth(rows)}
        out.append({"id": case["id"], "programs": entry})
    return out


def write_bundle(
    out_dir: str | os.PathLike,
    model: nn.Module,
    programs: Sequence[LoweredProgram],
    tokenizer: AlbertTokenizer | None,
    golden_texts: Sequence[str] | None = None,
    qa: QASettings | None = None,
    exit_rule: ExitRule | None = None,
) -> Path:
    """Write a bundle for ``model`` (the eager fp32 model the programs were lowered from).

    programs: lowered programs sharing max_seq_len and dynamic, one per recipe.
    tokenizer: written as spiece.model; None gives a bundle without one (goldens use random ids).
    golden_texts: default ``default_golden_texts(max_seq_len)``; ignored without a tokenizer.
    qa: question-answering settings (manifest ``qa``) of a QA model; default
        ``QASettings.for_length(max_seq_len)``. A QA bundle needs a tokenizer.
    exit_rule: for adaptive programs (``adaptive.export_adaptive_program``), the exit rule the
        manifest records (``adaptive``); goldens.json then holds every step's logits and the depth.
    The bundle is assembled in a temporary folder beside ``out_dir`` and renamed into place; an
    existing bundle there is replaced, anything else there is refused (BundleError). On failure
    nothing is left behind and an old bundle stays as it was. Returns ``out_dir``.
    """
    out = check_out_dir(out_dir)
    arch, task = task_of(model)
    config = model.config
    _check_programs(programs, config, tokenizer)
    max_seq_len, dynamic = programs[0].max_seq_len, programs[0].dynamic
    if task == QA_TASK:
        qa = _check_qa(qa, tokenizer, max_seq_len)
    elif qa is not None:
        raise BundleError(f"QA settings given for a {task!r} model; only {QA_TASK!r} bundles take them")
    texts = list(golden_texts) if golden_texts is not None else default_golden_texts(max_seq_len)
    et_version = importlib.metadata.version("executorch")

    with replaced_dir(out) as tmp:
        entries, files = [], {}
        for p in programs:
            path = tmp / f"model_{p.recipe.name}.pte"
            path.write_bytes(p.buffer)
            files[p.recipe.name] = path
            entries.append({
                "name": p.recipe.name,
                **file_entry(path),
                "method": "forward",
                "recipe": p.recipe.to_dict(),
                "inputs": input_specs(config, max_seq_len, dynamic),
                "outputs": output_specs(model),
                "executorch_version": et_version,
                "delegation": p.report.to_dict(),
                "export_seconds": round(p.seconds, 2),
            })
        tok_entry = None
        if tokenizer is not None:
            (tmp / TOKENIZER_FILE).write_bytes(tokenizer.model_proto)
            tok_entry = tokenizer_settings(tokenizer, tmp / TOKENIZER_FILE, max_seq_len, dynamic)
        recipes = {p.recipe.name: p.recipe.to_dict() for p in programs}
        goldens = compute_goldens(model, files, recipes, tokenizer, texts, max_seq_len, dynamic)
        if qa is not None:
            goldens["qa_cases"] = compute_qa_goldens(files, tokenizer, qa, default_qa_cases(max_seq_len))
        if exit_rule is not None:
            goldens["adaptive_cases"] = compute_adaptive_goldens(files, goldens["cases"], exit_rule)
        atomic_write_json(tmp / GOLDENS_FILE, goldens)
        names = [e["name"] for e in entries]
        manifest = {
            "format": FORMAT,
            "schema_version": SCHEMA_VERSION,
            "created_by": f"albert-edge {__version__}",
            "task": task,
            "architecture": arch,
            "labels": list(config.labels),
            "max_seq_len": max_seq_len,
            "vocab_size": config.vocab_size,
            "type_vocab_size": config.type_vocab_size,
            "pad_token_id": config.pad_token_id,
            "weights_sha256": weights_sha256(model),
            "default_program": "int8" if "int8" in names else names[0],
            **({"qa": qa.to_dict()} if qa is not None else {}),
            **({"adaptive": {"num_steps": config.num_hidden_layers, "rule": exit_rule.to_dict()}}
               if exit_rule is not None else {}),
            "tokenizer": tok_entry,
            "goldens": {**file_entry(tmp / GOLDENS_FILE), "num_cases": len(goldens["cases"])},
            "programs": entries,
        }
        atomic_write_json(tmp / MANIFEST_FILE, manifest)
    log.info("wrote bundle %s: %s", out, ", ".join(f.name for f in sorted(out.iterdir())))
    return out


# ---- export: model name -> bundle ------------------------------------------------------------


def export_bundle(
    model: str | os.PathLike,
    out_dir: str | os.PathLike,
    recipes: Sequence[str] = DEFAULT_RECIPES,
    *,
    max_seq_len: int | None = None,
    dynamic: bool = True,
    head: str | None = None,
    tokenizer: str | os.PathLike | None = None,
    golden_texts: Sequence[str] | None = None,
    progress: Callable[[str], None] | None = None,
    jobs: int = 1,
    qa_options: dict[str, Any] | None = None,
    exits: bool | None = None,
    exit_rule: ExitRule | str | None = None,
) -> Path:
    """Load ``model``, lower it once per recipe and write the bundle to ``out_dir``.

    model: a Hugging Face checkpoint directory (its tokenizer is used when present), a preset name
        (random weights), or ``"default"`` (the shipped model, tweet sentiment).
    max_seq_len: longest input in tokens; default ``DEFAULT_MAX_SEQ_LEN`` (question answering:
        ``qa.QA_MAX_SEQ_LEN``, 384) or the model's max_position_embeddings if that is smaller.
    qa_options: for a question-answering model, ``QASettings`` fields that override
        ``QASettings.for_length(max_seq_len)`` (doc_stride, max_question_len, max_answer_len,
        no_answer_threshold, align_to_words).
    tokenizer: a checkpoint directory or an ``spiece.model`` file; overrides the model's.
    progress: called with one line per step (also logged at INFO).
    jobs: processes that lower recipes in parallel. Lowering is single-threaded Python for most
        of its time, so with two recipes on two cores ``jobs=2`` takes about as long as the slower
        lowering instead of both together.
        With ``jobs > 1`` and several recipes, each recipe is lowered in a spawned worker process
        (at most ``jobs`` at once, torch on one thread each) that loads ``model`` itself; presets
        are seeded, so its weights are the same. 1 (the default) lowers in this process.
    exits: a classifier folder with exits.safetensors (``albert-edge finetune --exits``) gives
        adaptive programs (early exit: ``adaptive``) unless False; True requires the file.
    exit_rule: the rule the manifest records (default: the one exits.safetensors recommends),
        an ``ExitRule`` or its text (``confidence=0.9``, ``patience=2``).
    Everything a user can get wrong is checked before the first (slow) lowering.
    """
    def step(message: str) -> None:
        log.info("%s", message)
        if progress is not None:
            progress(message)

    model = resolve_model_path(model)
    unknown = [r for r in recipes if r not in RECIPES]
    if unknown or not recipes:
        raise BundleError(f"unknown recipe(s) {unknown or list(recipes)}; known recipes: {', '.join(RECIPES)}")
    if len(set(recipes)) != len(recipes):
        raise BundleError(f"each recipe may be given once, got {list(recipes)}")
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise BundleError(
            f"--jobs {jobs!r} is not a positive integer: the number of processes that lower recipes "
            "in parallel; 1 lowers in this process, e.g. 2 on a 2-core machine"
        )
    check_out_dir(out_dir)
    tok = _resolve_tokenizer(model, tokenizer)
    net = load_model(model, head)
    _, task = task_of(net)
    limit = net.config.max_position_embeddings
    if max_seq_len is None:
        max_seq_len = min(QA_MAX_SEQ_LEN if task == QA_TASK else DEFAULT_MAX_SEQ_LEN, limit)  # dynamic: short is cheap
    if isinstance(max_seq_len, bool) or not isinstance(max_seq_len, int) or not 2 <= max_seq_len <= limit:
        raise BundleError(
            f"--max-seq-len {max_seq_len!r} is outside [2, {limit}]: at least [CLS] and [SEP], at most the model's "
            "max_position_embeddings"
        )
    qa = None
    if task == QA_TASK:
        try:
            qa = QASettings.for_length(max_seq_len, **(qa_options or {})).check_question_fits("QA option")
        except QAError as e:
            raise BundleError(str(e)) from None
        except TypeError as e:
            raise BundleError(f"QA options {sorted(qa_options or {})}: {e}") from None
        _check_qa(qa, tok, max_seq_len)
    elif qa_options:
        raise BundleError(f"QA options ({', '.join(sorted(qa_options))}) given for a {task!r} model; "
                          f"they are for {QA_TASK!r} models")
    if tok is None:
        step("no tokenizer: the bundle will have none, and its goldens use fixed random token ids")
    _check_tokenizer(tok, net.config)  # before lowering; write_bundle checks it again
    heads, rule = _exit_heads(model, net, exits, exit_rule)
    if heads is not None:
        step(f"early exits: adaptive programs ({net.config.num_hidden_layers} layer steps, exit rule {rule.label})")
    if jobs > 1 and len(recipes) > 1:
        lowered = _lower_in_workers(model, head, recipes, max_seq_len, dynamic, jobs, step, heads is not None)
    else:
        lowered = []
        for i, name in enumerate(recipes, 1):
            step(f"[{i}/{len(recipes)}] {name}: quantize, export and lower to XNNPACK "
                 f"(max_seq_len {max_seq_len}, {'dynamic' if dynamic else 'fixed'} length) ...")
            program = _lower(net, heads, name, max_seq_len, dynamic)
            step(_lowered_line(i, len(recipes), name, program))
            lowered.append(program)
    replacing = "replacing the bundle in" if Path(out_dir).exists() and any(Path(out_dir).iterdir()) else "writing"
    step(f"{replacing} {out_dir} and running the golden cases through each program ...")
    path = write_bundle(out_dir, net, lowered, tok, golden_texts, qa, exit_rule=rule)
    step(f"wrote {path}")
    return path


def _exit_heads(model: str | os.PathLike, net: nn.Module, exits: bool | None,
                exit_rule: ExitRule | str | None) -> tuple[ExitHeads | None, ExitRule | None]:
    """The exit heads to export with ``net`` and the rule the manifest records (None, None: a plain bundle)."""
    folder = Path(model)
    found = folder.is_dir() and has_exits(folder)
    if exits is False or (exits is None and not found):
        if exit_rule is not None:
            raise BundleError(f"an exit rule ({exit_rule}) was given, but {model} is exported without early exits"
                              + ("" if found else " (it has no exits.safetensors)"))
        return None, None
    if not found:
        raise BundleError(f"{model}: no exits.safetensors, so no early exits to export; train them with "
                          "`albert-edge finetune --exits` (or albert_edge.workflows.train_exit_heads)")
    try:
        heads = load_exits(folder, net)
        rule = ExitRule.parse(exit_rule) if isinstance(exit_rule, str) else exit_rule
    except ExitError as e:
        raise BundleError(str(e)) from None
    rule = rule or heads.recommended
    if rule is None:
        raise BundleError(f"{folder / 'exits.safetensors'} recommends no exit rule (none kept agreement with full "
                          "depth on its validation rows): give one with --exit-rule, or export without "
                          "early exits (--no-exits)")
    return heads, rule


def _lower(net: nn.Module, heads: ExitHeads | None, recipe: str, max_seq_len: int, dynamic: bool) -> LoweredProgram:
    if heads is None:
        return export_program(net, RECIPES[recipe], max_seq_len=max_seq_len, dynamic=dynamic)
    return export_adaptive_program(net, heads, RECIPES[recipe], max_seq_len=max_seq_len, dynamic=dynamic)


def _lowered_line(i: int, n: int, name: str, program: LoweredProgram) -> str:
    return (f"[{i}/{n}] {name}: {len(program.buffer) / 1e6:.2f} MB, "
            f"{program.report.delegated_share:.0%} delegated, {program.seconds:.1f} s")


def _lower_in_worker(
    model: str | os.PathLike, head: str | None, recipe: str, max_seq_len: int, dynamic: bool, exits: bool = False
) -> LoweredProgram:
    """One recipe of ``export_bundle(jobs > 1)``, run in a worker process: load the model here
    (a preset is seeded, so its weights are the parent's), and its exit heads if asked, and lower it."""
    net = load_model(model, head)
    return _lower(net, load_exits(model, net) if exits else None, recipe, max_seq_len, dynamic)


def _lower_in_workers(
    model: str | os.PathLike,
    head: str | None,
    recipes: Sequence[str],
    max_seq_len: int,
    dynamic: bool,
    jobs: int,
    step: Callable[[str], None],
    exits: bool = False,
) -> list[LoweredProgram]:
    """Lower each recipe in a spawned process, at most ``jobs`` at once; programs in recipe order.

    A worker's error is raised here, with a note naming its recipe; recipes not yet started are
    cancelled (running ones are waited for: a process cannot be stopped mid-lowering cleanly).
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    n, workers = len(recipes), min(jobs, len(recipes))
    length = "dynamic" if dynamic else "fixed"
    # spawn, not fork: the parent has torch (and its thread pools) loaded, which fork does not copy safely.
    # Each worker runs torch on one thread (`jobs` workers share the cores) and dies with this process.
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=init_pool_worker, initargs=(os.getpid(), 1))
    try:
        futures = {}
        for i, name in enumerate(recipes, 1):
            futures[pool.submit(_lower_in_worker, model, head, name, max_seq_len, dynamic, exits)] = (i, name)
            queued = "" if i <= workers else ", queued until a worker is free"
            step(f"[{i}/{n}] {name}: quantize, export and lower to XNNPACK (max_seq_len {max_seq_len}, "
                 f"{length} length) in a worker process{queued} ...")
        programs = {}
        for future in as_completed(futures):
            i, name = futures[future]
            try:
                program = future.result()
            except Exception as err:
                err.add_note(f"raised while lowering recipe {name!r} in a worker process (export jobs={jobs})")
                raise
            step(_lowered_line(i, n, name, program))
            programs[name] = program
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return [programs[name] for name in recipes]


def _resolve_tokenizer(model: str | os.PathLike, tokenizer: str | os.PathLike | None) -> AlbertTokenizer | None:
    if tokenizer is not None:
        return load_tokenizer(tokenizer)
    path = Path(model)
    if path.is_dir() and ((path / SPIECE_MODEL).is_file() or (path / TOKENIZER_JSON).is_file()):
        return AlbertTokenizer.from_pretrained(path)
    return None
