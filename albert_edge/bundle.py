"""Bundles: the folder an app loads, holding programs, tokenizer, manifest and golden cases.

A bundle is what ``albert-edge export`` writes (format specification: ``export/BUNDLE.md``)::

    manifest.json      format, schema_version, task, labels, bounds, tokenizer settings, and one
                       entry per program: file, recipe, inputs, outputs, size, sha256, delegation
    model_<recipe>.pte one ExecuTorch program per recipe (e.g. model_fp32.pte, model_int8.pte)
    spiece.model       the SentencePiece model (when the bundle has a tokenizer)
    goldens.json       cases: texts -> token ids -> expected outputs of every program

``write_bundle`` writes all of it into a temporary folder beside the target and renames it into
place at the end, so a reader sees the old bundle or the new one, never a half-written one.
``read_manifest`` and ``verify_files`` are what a loader runs first (``runtime.Bundle.load``).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import logging
import math
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from albert_edge._io import read_json_object, swap_dir_into_place
from albert_edge import __version__
from albert_edge.checkpoint import HEADS, CheckpointError, resolve_model_path
from albert_edge.tokenizer import AlbertTokenizer

if TYPE_CHECKING:
    from albert_edge.lowering import LoweredProgram

log = logging.getLogger(__name__)

FORMAT = "albert-edge-bundle"
SCHEMA_VERSION = 1
SUPPORTED_SCHEMA_VERSIONS = (1,)
GOLDENS_FORMAT = "albert-edge-goldens"
MANIFEST_FILE = "manifest.json"
GOLDENS_FILE = "goldens.json"
TOKENIZER_FILE = "spiece.model"
INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")
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

ARCHITECTURE_TASKS = {arch: task for task, arch in HEADS.items()}

# Output names per architecture, in the order the program returns them, with their shapes
# ("seq" is the input length S; named dimensions are filled from the config).
OUTPUTS: dict[str, tuple[tuple[str, tuple[int | str, ...]], ...]] = {
    "AlbertModel": (("last_hidden_state", (1, "seq", "hidden_size")), ("pooled_output", (1, "hidden_size"))),
    "AlbertForPreTraining": (("mlm_logits", (1, "seq", "vocab_size")), ("sop_logits", (1, "num_labels"))),
    "AlbertForMaskedLM": (("logits", (1, "seq", "vocab_size")),),
    "AlbertForSequenceClassification": (("logits", (1, "num_labels")),),
    "AlbertForTokenClassification": (("logits", (1, "seq", "num_labels")),),
    "AlbertForQuestionAnswering": (("start_logits", (1, "seq")), ("end_logits", (1, "seq"))),
}

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
_LONG_TEXT_WORDS = "the quick brown fox jumps over the lazy dog while seven wizards quietly judge boxing".split()

_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


class BundleError(ValueError):
    """A bundle that cannot be written or read; the message names the file, field and value."""


# ---- helpers ------------------------------------------------------------------------------


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def golden_values(t: Tensor, stride: int) -> list[float]:
    """Every ``stride``-th value of ``t`` (row-major), as floats that round-trip float32."""
    flat = t.detach().reshape(-1)[::stride].float().tolist()
    return [float(f"{x:.9g}") for x in flat]


def _round_up(x: float, digits: int = 3) -> float:
    """``x`` rounded up to ``digits`` significant digits (a tolerance must not shrink)."""
    if x <= 0:
        return 0.0
    scale = 10 ** (digits - 1 - math.floor(math.log10(x)))
    return float(f"{math.ceil(x * scale) / scale:.{digits}g}")


def _stride(numel: int) -> int:
    return max(1, math.ceil(numel / GOLDEN_MAX_VALUES))


def _task(model: nn.Module) -> tuple[str, str]:
    arch = type(model).__name__
    if arch not in ARCHITECTURE_TASKS:
        raise BundleError(f"model class {arch} is not an ALBERT head; accepted: {', '.join(ARCHITECTURE_TASKS)}")
    return arch, ARCHITECTURE_TASKS[arch]


def output_specs(model: nn.Module) -> list[dict[str, Any]]:
    """Manifest ``outputs`` of ``model``'s head: name, dtype, shape ("seq" = input length)."""
    arch, _ = _task(model)
    c = model.config
    dims = {"hidden_size": c.hidden_size, "vocab_size": c.vocab_size, "num_labels": c.num_labels}
    return [
        {"name": name, "dtype": "float32", "shape": [dims.get(d, d) if isinstance(d, str) else d for d in shape]}
        for name, shape in OUTPUTS[arch]
    ]


def input_specs(config: Any, max_seq_len: int, dynamic: bool) -> list[dict[str, Any]]:
    """Manifest ``inputs``: int64, shape (1, "seq"), seq in [min_seq_len, max_seq_len], value range."""
    value_max = {"input_ids": config.vocab_size - 1, "attention_mask": 1, "token_type_ids": config.type_vocab_size - 1}
    return [
        {
            "name": name,
            "dtype": "int64",
            "shape": [1, "seq"],
            "min_seq_len": 1 if dynamic else max_seq_len,
            "max_seq_len": max_seq_len,
            "dynamic": dynamic,
            "min_value": 0,
            "max_value": value_max[name],
        }
        for name in INPUT_NAMES
    ]


def long_text(max_seq_len: int) -> str:
    """A text of more than ``max_seq_len`` words (so more tokens): covers truncation."""
    words = [_LONG_TEXT_WORDS[i % len(_LONG_TEXT_WORDS)] for i in range(max_seq_len + 8)]
    return " ".join(words).capitalize() + "."


def default_golden_texts(max_seq_len: int) -> list[str]:
    return [*DEFAULT_GOLDEN_TEXTS, long_text(max_seq_len)]


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
    from albert_edge.runtime import Program

    arch, task = _task(model)
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


# ---- writing ------------------------------------------------------------------------------


def check_out_dir(out_dir: str | os.PathLike) -> Path:
    """Refuse a target that exists and is not a bundle (it would be replaced). Returns the path."""
    out = Path(out_dir)
    if out.exists():
        if not out.is_dir():
            raise BundleError(f"{out}: exists and is not a folder; choose another --out")
        if any(out.iterdir()) and not _is_bundle(out):
            raise BundleError(
                f"{out}: exists and is not an albert-edge bundle (no {MANIFEST_FILE} with format "
                f"{FORMAT!r}); a bundle replaces its folder, so choose a new or empty folder"
            )
    return out


def _is_bundle(path: Path) -> bool:
    try:
        data = json.loads((path / MANIFEST_FILE).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return isinstance(data, dict) and data.get("format") == FORMAT


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _file_entry(path: Path) -> dict[str, Any]:
    return {"file": path.name, "size_bytes": path.stat().st_size, "sha256": sha256_file(path)}


def tokenizer_settings(tokenizer: AlbertTokenizer, path: Path, max_seq_len: int, dynamic: bool) -> dict[str, Any]:
    """Manifest ``tokenizer``: the file, its hash, preprocessing flags, special ids, encoding."""
    return {
        **_file_entry(path),
        "type": "sentencepiece-unigram",
        "do_lower_case": tokenizer.do_lower_case,
        "keep_accents": tokenizer.keep_accents,
        "split_digit_comma": tokenizer.split_digit_comma,
        "vocab_size": tokenizer.vocab_size,
        "pad_id": tokenizer.pad_id,
        "unk_id": tokenizer.unk_id,
        "cls_id": tokenizer.cls_id,
        "sep_id": tokenizer.sep_id,
        "mask_id": tokenizer.mask_id,
        "max_length": max_seq_len,
        "truncation": "longest_first",
        "padding": "do_not_pad" if dynamic else "max_length",
    }


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


def write_bundle(
    out_dir: str | os.PathLike,
    model: nn.Module,
    programs: Sequence[LoweredProgram],
    tokenizer: AlbertTokenizer | None,
    golden_texts: Sequence[str] | None = None,
) -> Path:
    """Write a bundle for ``model`` (the eager fp32 model the programs were lowered from).

    programs: lowered programs sharing max_seq_len and dynamic, one per recipe.
    tokenizer: written as spiece.model; None gives a bundle without one (goldens use random ids).
    golden_texts: default ``default_golden_texts(max_seq_len)``; ignored without a tokenizer.
    The bundle is assembled in a temporary folder beside ``out_dir`` and renamed into place; an
    existing bundle there is replaced, anything else there is refused (BundleError). On failure
    nothing is left behind and an old bundle stays as it was. Returns ``out_dir``.
    """
    out = check_out_dir(out_dir)
    arch, task = _task(model)
    config = model.config
    _check_programs(programs, config, tokenizer)
    max_seq_len, dynamic = programs[0].max_seq_len, programs[0].dynamic
    texts = list(golden_texts) if golden_texts is not None else default_golden_texts(max_seq_len)
    et_version = importlib.metadata.version("executorch")

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        entries, files = [], {}
        for p in programs:
            path = tmp / f"model_{p.recipe.name}.pte"
            path.write_bytes(p.buffer)
            files[p.recipe.name] = path
            entries.append({
                "name": p.recipe.name,
                **_file_entry(path),
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
        _write_json(tmp / GOLDENS_FILE, goldens)
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
            "default_program": "int8" if "int8" in names else names[0],
            "tokenizer": tok_entry,
            "goldens": {**_file_entry(tmp / GOLDENS_FILE), "num_cases": len(goldens["cases"])},
            "programs": entries,
        }
        _write_json(tmp / MANIFEST_FILE, manifest)
        for path in tmp.iterdir():
            with open(path, "rb") as f:
                os.fsync(f.fileno())
        os.chmod(tmp, 0o777 & ~_umask())
        swap_dir_into_place(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("wrote bundle %s: %s", out, ", ".join(f.name for f in sorted(out.iterdir())))
    return out


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# ---- reading ------------------------------------------------------------------------------

_TOP_FIELDS: dict[str, type | tuple[type, ...]] = {
    "created_by": str,
    "task": str,
    "architecture": str,
    "labels": list,
    "max_seq_len": int,
    "vocab_size": int,
    "type_vocab_size": int,
    "tokenizer": (dict, type(None)),
    "goldens": (dict, type(None)),
    "programs": list,
}
_PROGRAM_FIELDS: dict[str, type | tuple[type, ...]] = {
    "name": str,
    "file": str,
    "size_bytes": int,
    "sha256": str,
    "recipe": dict,
    "inputs": list,
    "outputs": list,
}
_FILE_FIELDS: dict[str, type | tuple[type, ...]] = {"file": str, "size_bytes": int, "sha256": str}


def _type_names(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    names = {dict: "object", list: "array", str: "string", int: "integer", type(None): "null"}
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def _require(obj: dict[str, Any], fields: dict[str, Any], where: str) -> None:
    for name, kind in fields.items():
        if name not in obj:
            raise BundleError(f"{where}: required field {name!r} is missing")
        value = obj[name]
        if isinstance(value, bool) or not isinstance(value, kind):
            raise BundleError(f"{where}: field {name!r} must be {_type_names(kind)}, got {value!r}")


def _check_file_name(name: str, where: str) -> None:
    if not name or name in (".", "..") or "/" in name or "\\" in name:
        raise BundleError(f"{where}: file {name!r} must be a plain file name inside the bundle folder")


def _check_file_entry(entry: dict[str, Any], where: str) -> None:
    _require(entry, _FILE_FIELDS, where)
    _check_file_name(entry["file"], where)
    if not _SHA256_RE.match(entry["sha256"]):
        raise BundleError(f"{where}: sha256 must be 64 lower-case hex digits, got {entry['sha256']!r}")


def read_manifest(bundle_dir: str | os.PathLike) -> dict[str, Any]:
    """Read and validate ``bundle_dir/manifest.json``: format, schema_version, required fields
    and types, plain file names, and that every named file is present. Raises BundleError."""
    root = Path(bundle_dir)
    path = root / MANIFEST_FILE
    if not root.is_dir():
        raise BundleError(f"{root}: no such bundle folder")
    if not path.is_file():
        raise BundleError(f"{root}: not a bundle: no {MANIFEST_FILE} (expected the folder `albert-edge export` writes)")
    manifest = read_json_object(path, BundleError)
    if manifest.get("format") != FORMAT:
        raise BundleError(f"{path}: format is {manifest.get('format')!r}, expected {FORMAT!r}")
    version = manifest.get("schema_version")
    if version not in SUPPORTED_SCHEMA_VERSIONS or isinstance(version, bool):
        supported = ", ".join(map(str, SUPPORTED_SCHEMA_VERSIONS))
        raise BundleError(
            f"{path}: schema_version {version!r} is not supported by albert-edge {__version__} "
            f"(supported: {supported}); use a matching albert-edge or re-export the bundle"
        )
    _require(manifest, _TOP_FIELDS, str(path))
    if manifest["task"] not in HEADS:
        raise BundleError(f"{path}: task {manifest['task']!r} is not one of {', '.join(HEADS)}")
    if not manifest["programs"]:
        raise BundleError(f"{path}: programs is empty; a bundle has at least one program")
    files: list[tuple[str, str]] = []
    seen: set[str] = set()
    for i, entry in enumerate(manifest["programs"]):
        where = f"{path}: programs[{i}]"
        if not isinstance(entry, dict):
            raise BundleError(f"{where} must be an object, got {entry!r}")
        _require(entry, _PROGRAM_FIELDS, where)
        _check_file_entry(entry, where)
        if entry["name"] in seen:
            raise BundleError(f"{where}: program name {entry['name']!r} is used twice")
        seen.add(entry["name"])
        if [x.get("name") for x in entry["inputs"] if isinstance(x, dict)] != list(INPUT_NAMES):
            raise BundleError(f"{where}: inputs must be {list(INPUT_NAMES)} in that order")
        files.append((entry["file"], f"programs[{i}].file"))
    for key in ("tokenizer", "goldens"):
        if manifest[key] is not None:
            _check_file_entry(manifest[key], f"{path}: {key}")
            files.append((manifest[key]["file"], f"{key}.file"))
    for name, field_name in files:
        if not (root / name).is_file():
            raise BundleError(f"{root / name}: missing (manifest.json {field_name} names it)")
    return manifest


def _entries_with_files(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    entries = list(manifest["programs"])
    entries += [manifest[k] for k in ("tokenizer", "goldens") if manifest.get(k) is not None]
    return entries


def verify_files(bundle_dir: str | os.PathLike, manifest: dict[str, Any]) -> None:
    """Check every file the manifest names against its size_bytes and sha256 (BundleError)."""
    root = Path(bundle_dir)
    for entry in _entries_with_files(manifest):
        path = root / entry["file"]
        size = path.stat().st_size
        if size != entry["size_bytes"]:
            raise BundleError(
                f"{path}: size is {size} bytes, manifest.json expects {entry['size_bytes']} "
                "(truncated or replaced); copy the bundle again or re-export it"
            )
        actual = sha256_file(path)
        if actual != entry["sha256"]:
            raise BundleError(
                f"{path}: sha256 is {actual}, manifest.json expects {entry['sha256']} "
                "(the file was changed or corrupted); copy the bundle again or re-export it"
            )


def tokenizer_from_manifest(bundle_dir: str | os.PathLike, manifest: dict[str, Any]) -> AlbertTokenizer | None:
    """The bundle's tokenizer with the manifest's settings, its special ids checked; or None."""
    settings = manifest.get("tokenizer")
    if settings is None:
        return None
    path = Path(bundle_dir) / settings["file"]
    tokenizer = AlbertTokenizer(
        path.read_bytes(),
        do_lower_case=bool(settings.get("do_lower_case", True)),
        keep_accents=bool(settings.get("keep_accents", False)),
        split_digit_comma=bool(settings.get("split_digit_comma", False)),
        source=str(path),
    )
    for role in ("pad", "unk", "cls", "sep", "mask"):
        expected = settings.get(f"{role}_id")
        actual = getattr(tokenizer, f"{role}_id")
        if expected is not None and expected != actual:
            raise BundleError(
                f"{path}: {role} id is {actual} but manifest.json tokenizer.{role}_id is {expected}"
            )
    return tokenizer


def read_goldens(bundle_dir: str | os.PathLike, manifest: dict[str, Any]) -> dict[str, Any]:
    """The bundle's ``goldens.json``, checked for format and one entry per program."""
    if manifest.get("goldens") is None:
        raise BundleError(f"{bundle_dir}: this bundle has no golden cases (manifest.json goldens is null)")
    path = Path(bundle_dir) / manifest["goldens"]["file"]
    goldens = read_json_object(path, BundleError)
    if goldens.get("format") != GOLDENS_FORMAT:
        raise BundleError(f"{path}: format must be {GOLDENS_FORMAT!r}")
    if goldens.get("schema_version") not in SUPPORTED_SCHEMA_VERSIONS:
        raise BundleError(f"{path}: schema_version {goldens.get('schema_version')!r} is not supported")
    names = [p["name"] for p in manifest["programs"]]
    for i, case in enumerate(goldens.get("cases", [])):
        missing = [n for n in names if n not in case.get("programs", {})]
        if missing:
            raise BundleError(f"{path}: cases[{i}] has no expected outputs for program(s) {missing}")
    missing = [n for n in names if n not in goldens.get("tolerances", {})]
    if missing:
        raise BundleError(f"{path}: tolerances has no entry for program(s) {missing}")
    return goldens


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
) -> Path:
    """Load ``model``, lower it once per recipe and write the bundle to ``out_dir``.

    model: a Hugging Face checkpoint directory (its tokenizer is used when present), a preset name
        (random weights), or ``"default"`` (the shipped model, tweet sentiment).
    max_seq_len: longest input in tokens; default ``DEFAULT_MAX_SEQ_LEN`` or the model's
        max_position_embeddings if that is smaller.
    tokenizer: a checkpoint directory or an ``spiece.model`` file; overrides the model's.
    progress: called with one line per step (also logged at INFO).
    jobs: processes that lower recipes in parallel. Lowering is single-threaded Python for most
        of its time, so with two recipes on two cores ``jobs=2`` takes about as long as the slower
        lowering instead of both together.
        With ``jobs > 1`` and several recipes, each recipe is lowered in a spawned worker process
        (at most ``jobs`` at once, torch on one thread each) that loads ``model`` itself; presets
        are seeded, so its weights are the same. 1 (the default) lowers in this process.
    Everything a user can get wrong is checked before the first (slow) lowering.
    """
    from albert_edge.checkpoint import load_model
    from albert_edge.lowering import export_program
    from albert_edge.recipes import RECIPES

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
    limit = net.config.max_position_embeddings
    if max_seq_len is None:
        max_seq_len = min(DEFAULT_MAX_SEQ_LEN, limit)
    if isinstance(max_seq_len, bool) or not isinstance(max_seq_len, int) or not 1 <= max_seq_len <= limit:
        raise BundleError(
            f"--max-seq-len {max_seq_len!r} is outside [1, {limit}] (the model's max_position_embeddings)"
        )
    if tok is None:
        step("no tokenizer: the bundle will have none, and its goldens use fixed random token ids")
    _check_tokenizer(tok, net.config)  # before lowering; write_bundle checks it again
    if jobs > 1 and len(recipes) > 1:
        lowered = _lower_in_workers(model, head, recipes, max_seq_len, dynamic, jobs, step)
    else:
        lowered = []
        for i, name in enumerate(recipes, 1):
            step(f"[{i}/{len(recipes)}] {name}: quantize, export and lower to XNNPACK "
                 f"(max_seq_len {max_seq_len}, {'dynamic' if dynamic else 'fixed'} length) ...")
            program = export_program(net, RECIPES[name], max_seq_len=max_seq_len, dynamic=dynamic)
            step(_lowered_line(i, len(recipes), name, program))
            lowered.append(program)
    step(f"writing {out_dir} and running the golden cases through each program ...")
    path = write_bundle(out_dir, net, lowered, tok, golden_texts)
    step(f"wrote {path}")
    return path


def _lowered_line(i: int, n: int, name: str, program: LoweredProgram) -> str:
    return (f"[{i}/{n}] {name}: {len(program.buffer) / 1e6:.2f} MB, "
            f"{program.report.delegated_share:.0%} delegated, {program.seconds:.1f} s")


def _lower_in_worker(
    model: str | os.PathLike, head: str | None, recipe: str, max_seq_len: int, dynamic: bool
) -> LoweredProgram:
    """One recipe of ``export_bundle(jobs > 1)``, run in a worker process: load the model here
    (a preset is seeded, so its weights are the parent's) and lower it."""
    from albert_edge.checkpoint import load_model
    from albert_edge.lowering import export_program
    from albert_edge.recipes import RECIPES

    torch.set_num_threads(1)  # `jobs` workers share the cores; more threads would oversubscribe
    net = load_model(model, head)
    return export_program(net, RECIPES[recipe], max_seq_len=max_seq_len, dynamic=dynamic)


def _lower_in_workers(
    model: str | os.PathLike,
    head: str | None,
    recipes: Sequence[str],
    max_seq_len: int,
    dynamic: bool,
    jobs: int,
    step: Callable[[str], None],
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
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))
    try:
        futures = {}
        for i, name in enumerate(recipes, 1):
            futures[pool.submit(_lower_in_worker, model, head, name, max_seq_len, dynamic)] = (i, name)
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
    from albert_edge.tokenizer import SPIECE_MODEL, TOKENIZER_JSON

    if tokenizer is not None:
        path = Path(resolve_model_path(tokenizer))  # "default": the shipped model's tokenizer
        return AlbertTokenizer.from_pretrained(path) if path.is_dir() else AlbertTokenizer.from_file(path)
    path = Path(model)
    if path.is_dir() and ((path / SPIECE_MODEL).is_file() or (path / TOKENIZER_JSON).is_file()):
        return AlbertTokenizer.from_pretrained(path)
    return None
