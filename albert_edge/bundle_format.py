"""The bundle format and its readers: what an app (and ``runtime.Bundle``) checks before it loads.

A bundle is the folder ``albert-edge export`` writes (specification: ``export/BUNDLE.md``; the
Android app mirrors these readers in ``BundleManifest.kt``)::

    manifest.json      format, schema_version, task, labels, bounds, tokenizer settings, and one
                       entry per program: file, recipe, inputs, outputs, size, sha256, delegation
    model_<recipe>.pte one ExecuTorch program per recipe (e.g. model_fp32.pte, model_int8.pte)
    spiece.model       the SentencePiece model (when the bundle has a tokenizer)
    goldens.json       cases: texts -> token ids -> expected outputs of every program; for
                       question answering also qa_cases: question + context -> windows ->
                       logits and answers of every program

This module holds the format's constants, the manifest's input/output and tokenizer entries, and
the readers: ``read_manifest`` (fields, types, file names), ``verify_files`` (sizes and sha256),
``tokenizer_from_manifest`` and ``read_goldens``. Making a bundle is ``albert_edge.bundle``.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from pathlib import Path
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from albert_edge import __version__
from albert_edge._io import read_json_object
from albert_edge.config import HEADS, INPUT_NAMES
from albert_edge.errors import BundleError, ExitError
from albert_edge.exit_rules import ExitRule
from albert_edge.qa import QAError, QASettings
from albert_edge.tokenizer import AlbertTokenizer

if TYPE_CHECKING:
    from torch import Tensor, nn

FORMAT = "albert-edge-bundle"
SCHEMA_VERSION = 1
SUPPORTED_SCHEMA_VERSIONS = (1,)
GOLDENS_FORMAT = "albert-edge-goldens"
MANIFEST_FILE = "manifest.json"
GOLDENS_FILE = "goldens.json"
TOKENIZER_FILE = "spiece.model"

ARCHITECTURE_TASKS = {arch: task for task, arch in HEADS.items()}
QA_TASK = "question-answering"

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

_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


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


def task_of(model: nn.Module) -> tuple[str, str]:
    arch = type(model).__name__
    if arch not in ARCHITECTURE_TASKS:
        raise BundleError(f"model class {arch} is not an ALBERT head; accepted: {', '.join(ARCHITECTURE_TASKS)}")
    return arch, ARCHITECTURE_TASKS[arch]


def output_specs(model: nn.Module) -> list[dict[str, Any]]:
    """Manifest ``outputs`` of ``model``'s head: name, dtype, shape ("seq" = input length)."""
    arch, _ = task_of(model)
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


def is_bundle(path: Path) -> bool:
    """A folder holding a manifest.json of this format (readable JSON with the right ``format``)."""
    try:
        data = json.loads((path / MANIFEST_FILE).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return isinstance(data, dict) and data.get("format") == FORMAT


def file_entry(path: Path) -> dict[str, Any]:
    """A manifest file entry: name, size and sha256 of ``path``."""
    return {"file": path.name, "size_bytes": path.stat().st_size, "sha256": sha256_file(path)}


def tokenizer_settings(tokenizer: AlbertTokenizer, path: Path, max_seq_len: int, dynamic: bool) -> dict[str, Any]:
    """Manifest ``tokenizer``: the file, its hash, preprocessing flags, special ids, encoding."""
    return {
        **file_entry(path),
        "type": "sentencepiece-unigram",
        "do_lower_case": tokenizer.do_lower_case,
        "keep_accents": tokenizer.keep_accents,
        "split_digit_comma": tokenizer.split_digit_comma,
        "split_user_defined": tokenizer.split_user_defined,
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


def _int(obj: dict[str, Any], name: str, where: str, lo: int, hi: int | None = None) -> int:
    """``obj[name]``, an integer in [lo, hi] (hi None: no upper bound)."""
    value = obj.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or value < lo or (hi is not None and value > hi):
        accepted = f"an integer >= {lo}" if hi is None else f"an integer in [{lo}, {hi}]"
        raise BundleError(f"{where}: field {name!r} must be {accepted}, got {value!r}")
    return value


def _choice(obj: dict[str, Any], name: str, where: str, accepted: Sequence[Any]) -> Any:
    value = obj.get(name)
    if value not in accepted or isinstance(value, bool) != any(isinstance(a, bool) for a in accepted):
        raise BundleError(f"{where}: field {name!r} must be one of {', '.join(map(json.dumps, accepted))}, "
                          f"got {json.dumps(value)}")
    return value


def _check_top(manifest: dict[str, Any], where: str) -> None:
    task = manifest["task"]
    if task not in HEADS:
        raise BundleError(f"{where}: task {task!r} is not one of {', '.join(HEADS)}")
    if HEADS[task] != manifest["architecture"]:
        raise BundleError(f"{where}: architecture {manifest['architecture']!r} does not match task {task!r} "
                          f"(expected {HEADS[task]!r})")
    labels = manifest["labels"]
    if not labels or not all(isinstance(x, str) and x for x in labels) or len(set(labels)) != len(labels):
        raise BundleError(f"{where}: labels must be a non-empty array of distinct non-empty strings, got {labels!r}")
    _int(manifest, "max_seq_len", where, 1)
    vocab = _int(manifest, "vocab_size", where, 1)
    _int(manifest, "type_vocab_size", where, 1)
    if "pad_token_id" in manifest:
        _int(manifest, "pad_token_id", where, 0, vocab - 1)
    digest = manifest.get("weights_sha256")
    if digest is not None and not (isinstance(digest, str) and _SHA256_RE.match(digest)):
        raise BundleError(f"{where}: field 'weights_sha256' must be 64 lower-case hex digits, got {json.dumps(digest)}")
    if not manifest["programs"]:
        raise BundleError(f"{where}: programs is empty; a bundle has at least one program")
    if "adaptive" in manifest:
        if task != "sequence-classification" or len(labels) < 2:
            raise BundleError(f"{where}: adaptive (early exits) is for sequence-classification bundles with at least "
                              f"2 labels; this one's task is {task!r}")
        exit_settings(manifest, where)
    if task == QA_TASK:
        qa_settings(manifest, where)
    elif "qa" in manifest:
        raise BundleError(f"{where}: qa (question-answering settings) in a {task!r} bundle; only "
                          f"{QA_TASK!r} bundles have it")


def exit_settings(manifest: dict[str, Any], where: str = "manifest.json") -> tuple[int, ExitRule] | None:
    """The manifest's ``adaptive`` object, checked: (layer steps, exit rule) of an early-exit
    classifier whose programs hold the loop's methods; None for a bundle without one."""
    a = manifest.get("adaptive")
    if a is None:
        return None
    at = f"{where}: adaptive"
    if not isinstance(a, dict) or set(a) != {"num_steps", "rule"}:
        raise BundleError(f"{at} must be an object with num_steps and rule, got {json.dumps(a)[:120]}")
    steps = _int(a, "num_steps", at, 2)
    try:
        rule = ExitRule.from_dict(a["rule"], f"{at}.rule")
    except ExitError as e:
        raise BundleError(str(e)) from None
    return steps, rule


def qa_settings(manifest: dict[str, Any], where: str = "manifest.json") -> QASettings:
    """The manifest's ``qa`` object (how questions become windows and logits answers), checked."""
    if "qa" not in manifest:
        raise BundleError(f"{where}: a {QA_TASK!r} bundle needs qa (max_seq_len, doc_stride, max_question_len, "
                          "max_answer_len, no_answer_threshold, align_to_words): re-export it")
    try:
        settings = QASettings.from_dict(manifest["qa"], where=f"{where}: qa")
    except QAError as e:
        raise BundleError(str(e)) from None
    if settings.max_seq_len != manifest["max_seq_len"]:
        raise BundleError(f"{where}: qa.max_seq_len {settings.max_seq_len} differs from the manifest's max_seq_len "
                          f"{manifest['max_seq_len']}; the manifest was edited: re-export the bundle")
    return settings


def _check_program(entry: dict[str, Any], manifest: dict[str, Any], where: str) -> None:
    _require(entry, _PROGRAM_FIELDS, where)
    _check_file_entry(entry, where)
    inputs = entry["inputs"]
    if [x.get("name") if isinstance(x, dict) else x for x in inputs] != list(INPUT_NAMES):
        raise BundleError(f"{where}: inputs must be {list(INPUT_NAMES)} in that order")
    top = manifest["max_seq_len"]
    for j, spec in enumerate(inputs):
        at = f"{where}.inputs[{j}]"
        _choice(spec, "dtype", at, ["int64"])
        longest = _int(spec, "max_seq_len", at, 1)
        if longest != top:
            raise BundleError(f"{at}: max_seq_len {longest} differs from the manifest's max_seq_len {top}; "
                              "the manifest was edited: re-export the bundle")
        shortest = _int(spec, "min_seq_len", at, 1, longest)
        if _choice(spec, "dynamic", at, [True, False]) != (shortest < longest):
            raise BundleError(f"{at}: dynamic is {spec['dynamic']} but the lengths are {shortest}..{longest}")
    for j, out in enumerate(entry["outputs"]):
        at = f"{where}.outputs[{j}]"
        if not isinstance(out, dict) or not isinstance(out.get("name"), str) or not isinstance(out.get("shape"), list):
            raise BundleError(f"{at}: must be an object with a string name and a shape array, got {out!r}")
    _check_outputs(entry["outputs"], manifest, where)


def _check_outputs(outputs: list[dict[str, Any]], manifest: dict[str, Any], where: str) -> None:
    """A program's outputs must be its head's, in order, as an app reads them (export/BUNDLE.md):
    names, dtype float32, and shapes with "seq" where the input length goes, num_labels =
    len(labels), vocab_size = the manifest's (hidden_size: any positive integer)."""
    expected = OUTPUTS[manifest["architecture"]]
    names = [o["name"] for o in outputs]
    if names != [name for name, _ in expected]:
        raise BundleError(f"{where}.outputs: names {names} in that order; a {manifest['architecture']} program gives "
                          f"{[name for name, _ in expected]}: the manifest was edited: re-export the bundle")
    dims = {"num_labels": len(manifest["labels"]), "vocab_size": manifest["vocab_size"]}
    for j, (out, (name, shape)) in enumerate(zip(outputs, expected)):
        at = f"{where}.outputs[{j}] ({name})"
        _choice(out, "dtype", at, ["float32"])
        got = out["shape"]
        ok = len(got) == len(shape) and all(
            g == d if isinstance(d, int) or d == "seq" else
            (g == dims[d] if d in dims else isinstance(g, int) and not isinstance(g, bool) and g > 0)
            for g, d in zip(got, shape))
        if not ok and len(got) == len(shape) and "num_labels" in shape and \
                got[shape.index("num_labels")] != dims["num_labels"]:
            raise BundleError(f"{at}: {got[shape.index('num_labels')]} logits per prediction but labels names "
                              f"{len(manifest['labels'])} ({', '.join(manifest['labels'])}); every logit needs a "
                              "label: restore the manifest or re-export")
        if not ok:
            want = [dims.get(d, d) if isinstance(d, str) else d for d in shape]
            raise BundleError(f"{at}: shape {json.dumps(got)}; accepted: {json.dumps(want)} "
                              "(\"seq\" = the input length): the manifest was edited: re-export the bundle")


def _check_tokenizer_entry(tok: dict[str, Any], manifest: dict[str, Any], where: str) -> None:
    _check_file_entry(tok, where)
    _choice(tok, "type", where, ["sentencepiece-unigram"])
    for flag in ("do_lower_case", "keep_accents", "split_digit_comma"):
        _choice(tok, flag, where, [True, False])
    if "split_user_defined" in tok:  # absent in bundles written before it existed: false
        _choice(tok, "split_user_defined", where, [True, False])
    pieces = _int(tok, "vocab_size", where, 5, manifest["vocab_size"])
    for role in ("pad", "unk", "cls", "sep", "mask"):
        _int(tok, f"{role}_id", where, 0, pieces - 1)
    if _int(tok, "max_length", where, 1) != manifest["max_seq_len"]:
        raise BundleError(f"{where}: max_length {tok['max_length']} differs from the manifest's max_seq_len "
                          f"{manifest['max_seq_len']}; the manifest was edited: re-export the bundle")
    _choice(tok, "truncation", where, ["longest_first"])
    dynamic = manifest["programs"][0]["inputs"][0]["dynamic"]
    _choice(tok, "padding", where, ["do_not_pad"] if dynamic else ["max_length"])


def read_manifest(bundle_dir: str | os.PathLike) -> dict[str, Any]:
    """Read and validate ``bundle_dir/manifest.json`` as a whole: format and schema_version,
    every field's type and range, the programs' input bounds against the top-level
    max_seq_len, the tokenizer settings, plain file names, and that every named file is
    present. Raises BundleError naming the field, its value and what is accepted."""
    root = Path(bundle_dir)
    path = root / MANIFEST_FILE
    if root.is_file():
        hint = (f"give the folder that holds it, {root.parent}" if root.name == MANIFEST_FILE
                else "give the folder `albert-edge export` writes")
        raise BundleError(f"{root}: is a file, not a bundle folder; {hint}")
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
    _check_top(manifest, str(path))
    files: list[tuple[str, str]] = []
    seen: set[str] = set()
    for i, entry in enumerate(manifest["programs"]):
        where = f"{path}: programs[{i}]"
        if not isinstance(entry, dict):
            raise BundleError(f"{where} must be an object, got {entry!r}")
        _check_program(entry, manifest, where)
        if entry["name"] in seen:
            raise BundleError(f"{where}: program name {entry['name']!r} is used twice")
        seen.add(entry["name"])
        files.append((entry["file"], f"programs[{i}].file"))
    if len({e["inputs"][0]["dynamic"] for e in manifest["programs"]}) != 1:
        raise BundleError(f"{path}: the programs must all be dynamic-length or all fixed-length")
    if manifest.get("default_program") is not None:
        _choice(manifest, "default_program", str(path), sorted(seen))
    if manifest["tokenizer"] is not None:
        _check_tokenizer_entry(manifest["tokenizer"], manifest, f"{path}: tokenizer")
        files.append((manifest["tokenizer"]["file"], "tokenizer.file"))
    if manifest["goldens"] is not None:
        _check_file_entry(manifest["goldens"], f"{path}: goldens")
        _int(manifest["goldens"], "num_cases", f"{path}: goldens", 1)
        files.append((manifest["goldens"]["file"], "goldens.file"))
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
        split_user_defined=bool(settings.get("split_user_defined", False)),
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


def _numbers(values: Any) -> bool:
    return isinstance(values, list) and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values)


def _check_case(case: Any, i: int, names: Sequence[str], where: str) -> None:
    at = f"{where}: cases[{i}]"
    if not isinstance(case, dict):
        raise BundleError(f"{at} must be an object, got {type(case).__name__}")
    lengths = set()
    for name in INPUT_NAMES:
        ids = case.get(name)
        if not isinstance(ids, list) or not ids or not all(isinstance(v, int) and not isinstance(v, bool) for v in ids):
            raise BundleError(f"{at}: {name} must be a non-empty array of integers, got {str(ids)[:80]}")
        lengths.add(len(ids))
    if len(lengths) != 1:
        raise BundleError(f"{at}: {', '.join(INPUT_NAMES)} must have one length, got {sorted(lengths)}")
    if case.get("text") is not None and not isinstance(case["text"], str):
        raise BundleError(f"{at}: text must be a string or null, got {case['text']!r}")
    if not isinstance(case.get("programs"), dict):
        raise BundleError(f"{at}: programs must be an object of expected outputs per program")
    for pname in names:
        expected = case["programs"].get(pname)
        if not isinstance(expected, dict):
            raise BundleError(f"{at} has no expected outputs for program {pname!r}")
        for oname, out in expected.items():
            o = f"{at}.programs.{pname}.{oname}"
            if not isinstance(out, dict) or not isinstance(out.get("shape"), list):
                raise BundleError(f"{o}: must be an object with shape, stride and values")
            stride = _int(out, "stride", o, 1)
            if not _numbers(out.get("values")):
                raise BundleError(f"{o}: values must be an array of finite numbers")
            shape = out["shape"]
            if not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
                raise BundleError(f"{o}: shape must be an array of integers >= 0, got {shape!r}")
            want = -(-math.prod(shape) // stride)  # every stride-th value of the output
            if len(out["values"]) != want:
                raise BundleError(f"{o}: {len(out['values'])} values for shape {shape} and stride {stride} "
                                  f"(expected {want}): goldens.json was edited or cut; re-export the bundle")


def read_goldens(bundle_dir: str | os.PathLike, manifest: dict[str, Any]) -> dict[str, Any]:
    """The bundle's ``goldens.json``, validated: format, as many cases as the manifest says (at
    least one), each with integer inputs of one length and finite expected outputs for every
    program, and a tolerance per program. Raises BundleError naming the case and field."""
    if manifest.get("goldens") is None:
        raise BundleError(f"{bundle_dir}: this bundle has no golden cases (manifest.json goldens is null)")
    path = Path(bundle_dir) / manifest["goldens"]["file"]
    goldens = read_json_object(path, BundleError)
    if goldens.get("format") != GOLDENS_FORMAT:
        raise BundleError(f"{path}: format must be {GOLDENS_FORMAT!r}")
    if goldens.get("schema_version") not in SUPPORTED_SCHEMA_VERSIONS:
        raise BundleError(f"{path}: schema_version {goldens.get('schema_version')!r} is not supported")
    cases = goldens.get("cases")
    if not isinstance(cases, list) or not cases:
        raise BundleError(f"{path}: cases must be a non-empty array (a bundle's goldens have at least one case)")
    expected = manifest["goldens"]["num_cases"]
    if len(cases) != expected:
        raise BundleError(f"{path}: holds {len(cases)} cases but manifest.json goldens.num_cases is {expected}; "
                          "the files do not belong together: re-export the bundle")
    names = [p["name"] for p in manifest["programs"]]
    for i, case in enumerate(cases):
        _check_case(case, i, names, str(path))
    if not isinstance(goldens.get("outputs"), list) or not all(isinstance(n, str) for n in goldens["outputs"]):
        raise BundleError(f"{path}: outputs must be an array of output names")
    tolerances = goldens.get("tolerances")
    if not isinstance(tolerances, dict):
        raise BundleError(f"{path}: tolerances must be an object with an entry per program")
    for n in names:
        atol = tolerances.get(n, {}).get("atol") if isinstance(tolerances.get(n), dict) else None
        if not _numbers([atol]) or atol < 0:
            raise BundleError(f"{path}: tolerances.{n}.atol must be a number >= 0, got {atol!r}")
    adaptive = exit_settings(manifest)
    if adaptive is not None:
        _check_adaptive_cases(goldens.get("adaptive_cases"), len(cases), names, adaptive[0], len(manifest["labels"]),
                              str(path))
    if manifest["task"] == QA_TASK:
        qa_cases = goldens.get("qa_cases")
        if not isinstance(qa_cases, list) or not qa_cases:
            raise BundleError(f"{path}: qa_cases must be a non-empty array in a {QA_TASK!r} bundle")
        for i, case in enumerate(qa_cases):
            _check_qa_case(case, i, names, str(path))
    return goldens


def _check_adaptive_cases(cases: Any, n: int, names: Sequence[str], steps: int, labels: int, where: str) -> None:
    """goldens.json ``adaptive_cases``: per text case, per program, every step's logits and the
    depth the manifest's rule stops at."""
    if not isinstance(cases, list) or len(cases) != n:
        raise BundleError(f"{where}: adaptive_cases must be an array of {n} entries (one per case) in a bundle "
                          "with early exits; re-export the bundle")
    for i, case in enumerate(cases):
        at = f"{where}: adaptive_cases[{i}]"
        programs = case.get("programs") if isinstance(case, dict) else None
        if not isinstance(programs, dict):
            raise BundleError(f"{at} must be an object with programs")
        for pname in names:
            entry = programs.get(pname)
            o = f"{at}.programs.{pname}"
            if not isinstance(entry, dict):
                raise BundleError(f"{o}: missing (expected steps and depth)")
            rows = entry.get("steps")
            if (not isinstance(rows, list) or len(rows) != steps
                    or not all(_numbers(r) and len(r) == labels for r in rows)):
                raise BundleError(f"{o}.steps must be {steps} arrays of {labels} finite numbers (every step's logits)")
            _int(entry, "depth", o, 1, steps)


def _int_list(values: Any, allow_none: bool = False) -> bool:
    return isinstance(values, list) and all(
        (v is None and allow_none) or (isinstance(v, int) and not isinstance(v, bool)) for v in values)


def _check_window(w: dict[str, Any], at: str) -> None:
    """A golden QA window: its inputs, attention mask (0/1), offsets ([start, end] pairs), word
    and sequence ids (integers or null), all one length."""
    n = len(w["input_ids"])
    problems = [name for name in INPUT_NAMES if not _int_list(w[name]) or len(w[name]) != n]
    if not problems and any(v not in (0, 1) for v in w["attention_mask"]):
        problems.append("attention_mask (0 or 1)")
    offsets = w.get("offsets")
    if not (isinstance(offsets, list) and len(offsets) == n and all(
            _int_list(o) and len(o) == 2 and 0 <= o[0] <= o[1] for o in offsets)):
        problems.append("offsets ([start, end] per token)")
    for name in ("word_ids", "sequence_ids"):
        if not (_int_list(w.get(name), allow_none=True) and len(w[name]) == n):
            problems.append(f"{name} (an integer or null per token)")
    if problems:
        raise BundleError(f"{at}: {', '.join(problems)} must be arrays of {n} values, one per token: goldens.json "
                          "was edited; re-export the bundle")


def _check_qa_case(case: Any, i: int, names: Sequence[str], where: str) -> None:
    at = f"{where}: qa_cases[{i}]"
    if not isinstance(case, dict):
        raise BundleError(f"{at} must be an object, got {type(case).__name__}")
    for name in ("question", "context"):
        if not isinstance(case.get(name), str):
            raise BundleError(f"{at}: {name} must be a string")
    windows = case.get("windows")
    if not isinstance(windows, list) or not windows:
        raise BundleError(f"{at}: windows must be a non-empty array")
    for j, w in enumerate(windows):
        if not isinstance(w, dict) or not all(isinstance(w.get(n), list) for n in INPUT_NAMES):
            raise BundleError(f"{at}.windows[{j}]: needs {', '.join(INPUT_NAMES)} arrays")
        _check_window(w, f"{at}.windows[{j}]")
    programs = case.get("programs")
    if not isinstance(programs, dict):
        raise BundleError(f"{at}: programs must be an object of logits and answers per program")
    for pname in names:
        entry = programs.get(pname)
        if not isinstance(entry, dict) or not isinstance(entry.get("answers"), list):
            raise BundleError(f"{at}.programs.{pname}: needs start_logits, end_logits and answers")
        for key in ("start_logits", "end_logits"):
            rows = entry.get(key)
            if not isinstance(rows, list) or len(rows) != len(windows) or not all(_numbers(r) for r in rows):
                raise BundleError(f"{at}.programs.{pname}.{key}: one array of finite numbers per window")
            for j, (row, w) in enumerate(zip(rows, windows)):
                if len(row) != len(w["input_ids"]):
                    raise BundleError(f"{at}.programs.{pname}.{key}[{j}]: {len(row)} logits for a window of "
                                      f"{len(w['input_ids'])} tokens (one per token): goldens.json was edited or "
                                      "cut; re-export the bundle")
