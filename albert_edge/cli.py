"""The ``albert-edge`` command: a thin layer over the library, one small function per command."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from albert_edge import __version__
from albert_edge.cli_args import add_weight_cache_flag, read_texts
from albert_edge.errors import AlbertEdgeError

log = logging.getLogger("albert_edge")


def cmd_info(args: argparse.Namespace) -> None:
    """Summarise a model and run one forward pass on example inputs."""
    import torch

    from albert_edge.bundle_format import MANIFEST_FILE, read_manifest
    from albert_edge.checkpoint import load_model
    from albert_edge.errors import ConfigError
    from albert_edge.model import example_inputs

    if (Path(args.model) / MANIFEST_FILE).is_file():  # a bundle: describe it instead
        manifest = read_manifest(args.model)
        tok = manifest["tokenizer"]
        print(f"bundle       {args.model}: {manifest['task']} ({manifest['architecture']}), labels "
              f"{', '.join(manifest['labels'])}, max {manifest['max_seq_len']} tokens, "
              + ("no tokenizer" if tok is None else f"tokenizer {tok['file']} ({tok['vocab_size']} pieces)"))
        print(summary_table(manifest))
        run = (f"albert-edge ask {args.model} --question Q --context TEXT" if manifest["task"] == "question-answering"
               else f"albert-edge run {args.model} TEXT")
        if "qa" in manifest:
            print("qa           " + ", ".join(f"{k}={v}" for k, v in manifest["qa"].items()))
        print(f"run it: {run}; check it: albert-edge verify {args.model}")
        return
    model = load_model(args.model, args.head)
    c = model.config
    if not 1 <= args.seq_len <= c.max_position_embeddings:
        raise ConfigError(f"--seq-len {args.seq_len} is outside [1, {c.max_position_embeddings}] (the model's "
                          "max_position_embeddings)")
    print(f"model        {args.model} ({type(model).__name__})")
    print(f"parameters   {model.num_parameters():,}")
    print(f"shape        V={c.vocab_size} E={c.embedding_size} H={c.hidden_size} I={c.intermediate_size} "
          f"heads={c.num_attention_heads}")
    print(f"sharing      {c.num_hidden_layers} layer steps over {c.num_hidden_groups} group(s) "
          f"of {c.inner_group_num} layer(s)")
    print(f"activation   {c.hidden_act}; labels {list(c.labels)}")
    inputs = example_inputs(c, args.seq_len)
    start = time.perf_counter()
    with torch.no_grad():
        out = model(*inputs)
    ms = (time.perf_counter() - start) * 1e3
    outs = out if isinstance(out, tuple) else (out,)
    shapes = ", ".join(str(tuple(t.shape)) for t in outs)
    print(f"forward      input (1, {args.seq_len}) -> {shapes} in {ms:.1f} ms (eager fp32, first call)")


def cmd_tokenize(args: argparse.Namespace) -> None:
    """Print one JSON object per text: ids, tokens, token types and offsets."""
    from albert_edge.checkpoint import load_tokenizer

    tok = load_tokenizer(args.tokenizer)
    texts = read_texts(args.text)
    for text in texts:
        enc = tok.encode(text, args.pair, max_length=args.max_length)
        print(json.dumps({"input_ids": enc.input_ids, "tokens": enc.tokens,
                          "token_type_ids": enc.token_type_ids, "offsets": enc.offsets},
                         ensure_ascii=False))


def _stderr_line(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def summary_table(manifest: dict) -> str:
    """One row per program (size, delegated share, XNNPACK operators and the delegate calls
    they run in, export time), then every op left outside the delegate with its count and reason."""
    header = (f"{'program':<10} {'size (MB)':>10} {'delegated (%)':>14} {'XNNPACK ops':>12} "
              f"{'delegate calls':>15} {'export (s)':>11}")
    rows = [header]
    for p in manifest["programs"]:
        d = p["delegation"]
        rows.append(f"{p['name']:<10} {p['size_bytes'] / 1e6:>10.3f} {100 * d['delegated_share']:>14.1f} "
                    f"{d.get('xnnpack_operators', 0):>12d} {d['delegate_calls']:>15d} {p['export_seconds']:>11.1f}")
    rows.append("outside the XNNPACK delegate:")
    for p in manifest["programs"]:
        for op, info in p["delegation"]["undelegated_ops"].items():
            rows.append(f"  {p['name']:<8} {op} x{info['count']}: {info['reason']}")
    return "\n".join(rows)


def cmd_export(args: argparse.Namespace) -> None:
    """Lower a model once per recipe and write a bundle; print a summary table."""
    from albert_edge.bundle import DEFAULT_RECIPES, export_bundle
    from albert_edge.bundle_format import read_manifest

    qa = {k: v for k in ("doc_stride", "max_question_len", "max_answer_len", "no_answer_threshold")
          if (v := getattr(args, k)) is not None}
    out = export_bundle(args.model, args.out, args.recipes or DEFAULT_RECIPES, max_seq_len=args.max_seq_len,
                        dynamic=not args.fixed_length, head=args.head, tokenizer=args.tokenizer,
                        progress=_stderr_line, jobs=args.jobs, qa_options=qa, exits=args.exits,
                        exit_rule=args.exit_rule)
    print(summary_table(read_manifest(out)))
    print(f"bundle: {out}")


def cmd_run(args: argparse.Namespace) -> None:
    """Classify texts with a bundle: one line per text, the label then every probability."""
    from albert_edge.runtime import Bundle

    bundle = Bundle.load(args.bundle, num_threads=args.threads, weight_cache=args.weight_cache)
    texts = read_texts(args.text)
    for result in bundle.classify(texts, program=args.program, rule=args.exit_rule, full_depth=args.full_depth):
        probs = "  ".join(f"{label}={p:.4f}" for label, p in result["probs"].items())
        depth = f"\tdepth={result['depth']}" if "depth" in result else ""
        print(f"{result['label']}\t{probs}{depth}\t{result['text']}")


def _read_context(value: str) -> str:
    """``--context``: the text itself, or ``@FILE`` for a UTF-8 file's text."""
    from albert_edge.errors import DataError

    if not value.startswith("@"):
        return value
    path = Path(value[1:])
    if not path.is_file():
        raise DataError(f"--context {value}: {path} is not a file (give the passage, or @FILE for a text file)")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise DataError(f"--context {value}: {path} is not UTF-8 text (byte {e.start})") from None


def cmd_ask(args: argparse.Namespace) -> None:
    """Answer a question from a passage: one line per answer, score, character span, text."""
    from albert_edge.bundle_format import MANIFEST_FILE
    from albert_edge.runtime import Bundle

    from albert_edge.cli_args import not_utf8
    from albert_edge.errors import DataError

    for option, value in (("--question", args.question), ("--context", args.context)):
        where = None if option == "--context" and value.startswith("@") else not_utf8(value)  # @FILE: any path
        if where:
            raise DataError(f"{option} is not UTF-8 ({where}); pass UTF-8 text")
    context = _read_context(args.context)
    if (Path(args.model) / MANIFEST_FILE).is_file():
        bundle = Bundle.load(args.model, num_threads=args.threads, weight_cache=args.weight_cache)
        answers = bundle.answer(args.question, context, top_k=args.top_k, program=args.program)
        source = f"program {args.program or bundle.default_program}"
    else:
        if args.program:
            raise AlbertEdgeError(f"--program {args.program}: {args.model} is a checkpoint, not a bundle; "
                                  "it is run eagerly (export it to choose a program)")
        from albert_edge.workflows import eager_answers

        answers = eager_answers(args.model, args.question, context, top_k=args.top_k)
        source = "eager fp32"
    print(f"# {args.model} ({source})")
    for a in answers:
        text = a["answer"] if a["answer"] else "(no answer)"
        print(f"{a['score']:.4f}\t{a['start']}-{a['end']}\t{text}")


def cmd_verify(args: argparse.Namespace) -> None:
    """Verify a bundle's files and replay its golden cases through every program."""
    from albert_edge.bundle import BundleError
    from albert_edge.runtime import Bundle

    bundle = Bundle.load(args.bundle, num_threads=args.threads, weight_cache=args.weight_cache)
    failed = []
    for check in bundle.check_goldens():
        status = "ok" if check.ok else "FAILED"
        if check.token_id_mismatches:
            status += f" (token ids differ for case(s) {', '.join(map(str, check.token_id_mismatches))})"
        elif check.depth_mismatches:
            status += (f" (the exit rule stops case(s) {', '.join(map(str, check.depth_mismatches))} at another depth "
                       "than goldens.json records)")
        elif check.answer_mismatches:
            status += (f" (golden answers of case(s) {', '.join(map(str, check.answer_mismatches))} are not what "
                       "their logits decode to under the manifest's QA settings)")
        elif not check.ok:
            status += " (outputs differ from the goldens by more than the tolerance)"
        print(f"{check.program:<10} {check.cases} cases  max |diff| {check.max_abs_diff:.3g}  "
              f"tolerance {check.atol:.3g}  {status}")
        if not check.ok:
            failed.append(check.program)
    if failed:
        raise BundleError(f"{args.bundle}: golden cases do not match for program(s) {', '.join(failed)}")


def build_parser() -> argparse.ArgumentParser:
    from albert_edge.config import HEADS

    parser = argparse.ArgumentParser(
        prog="albert-edge", description="ALBERT from a checkpoint to a phone."
    )
    parser.add_argument("--version", action="version", version=f"albert-edge {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress and details")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("info", help="summarise a model and run one forward pass",
                       description="Summarise a model (parameters, shape, sharing) and run one forward "
                                   "pass on example inputs.")
    p.add_argument("model", metavar="MODEL",
                   help="a Hugging Face checkpoint directory, a bundle folder, 'default', 'default-qa', "
                        "or a preset name (random weights), e.g. albert-base-v2 or tiny")
    p.add_argument("--head", choices=sorted(HEADS), default=None,
                   help="model head; default: the checkpoint's architectures, or 'base' for a preset")
    p.add_argument("--seq-len", type=int, default=128, help="sequence length of the example input (default 128)")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("tokenize", help="tokenize text with an ALBERT tokenizer",
                       description="Tokenize texts (arguments, or one per line on stdin) and print one "
                                   "JSON object per text.")
    p.add_argument("tokenizer", metavar="TOKENIZER",
                   help="a checkpoint directory (spiece.model or tokenizer.json) or an spiece.model file")
    p.add_argument("text", nargs="*", help="texts to tokenize; default: read lines from stdin")
    p.add_argument("--pair", default=None, help="second segment for every text ([CLS] A [SEP] B [SEP])")
    p.add_argument("--max-length", type=int, default=None, help="truncate to this many tokens (longest first)")
    p.set_defaults(func=cmd_tokenize)

    from albert_edge.recipes import RECIPES

    recipes = "; ".join(f"{name}: {r.when}" for name, r in RECIPES.items())
    p = sub.add_parser("export", help="lower a model to ExecuTorch programs and write a bundle",
                       description="Quantize and lower a model once per recipe (XNNPACK delegate) and "
                                   "write a bundle folder: the .pte programs, manifest.json, the "
                                   "tokenizer and golden cases. Format: export/BUNDLE.md.")
    p.add_argument("model", metavar="MODEL",
                   help="a Hugging Face checkpoint directory (its tokenizer is used when present), "
                        "a preset name (random weights), e.g. albert-base-v2 or tiny, 'default' (the "
                        "shipped sentiment model) or 'default-qa' (the shipped question-answering model)")
    p.add_argument("--recipe", dest="recipes", action="append", choices=list(RECIPES), metavar="RECIPE",
                   help=f"repeat for several programs (default: fp32 and int8). {recipes}")
    p.add_argument("--max-seq-len", type=int, default=None,
                   help="longest input, in tokens including [CLS] and [SEP] (default 128; 384 for question "
                        "answering; or the model's max_position_embeddings if smaller)")
    p.add_argument("--fixed-length", action="store_true",
                   help="export for exactly --max-seq-len tokens (inputs padded) instead of any length up to it")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="bundle folder to write; an existing bundle there is replaced")
    p.add_argument("--head", choices=sorted(HEADS), default=None,
                   help="model head; default: the checkpoint's architectures, or 'base' for a preset")
    p.add_argument("--tokenizer", default=None, metavar="PATH",
                   help="a checkpoint directory, an spiece.model file, or 'default' (the shipped "
                        "model's); default: MODEL's, if it has one")
    p.add_argument("--jobs", type=int, default=1, metavar="N",
                   help="processes that lower recipes in parallel (default 1; e.g. 2 on a 2-core machine)")
    qa = p.add_argument_group("question answering (stored in the manifest's qa settings)")
    qa.add_argument("--doc-stride", type=int, default=None,
                    help="tokens shared by consecutive windows of a long passage (default min(max-seq-len/2, 128))")
    qa.add_argument("--max-question-len", type=int, default=None,
                    help="question tokens kept (default min(64, max-seq-len/2))")
    qa.add_argument("--max-answer-len", type=int, default=None, help="longest answer in tokens (default 15)")
    qa.add_argument("--no-answer-threshold", type=float, default=None,
                    help="answer \"no answer\" when log(p_null / p_best_span) exceeds this (SQuAD 2.0 models; "
                         "0 = transformers' handle_impossible_answer); default: always give a span")
    ex = p.add_argument_group("early exits (a classifier with exits.safetensors: `albert-edge finetune --exits`)")
    ex.add_argument("--no-exits", dest="exits", action="store_false", default=None,
                    help="export plain programs even though MODEL has exit heads")
    ex.add_argument("--exit-rule", default=None, metavar="RULE",
                    help="the exit rule the bundle records, patience=N or confidence=P (default: the one "
                         "exits.safetensors recommends)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("run", help="classify texts with a bundle",
                       description="Load a sequence-classification bundle (files verified against "
                                   "manifest.json) and print label and probabilities per text.")
    p.add_argument("bundle", metavar="BUNDLE", help="a bundle folder written by `albert-edge export`")
    p.add_argument("text", nargs="*", help="texts to classify; default: read lines from stdin")
    p.add_argument("--program", default=None, help="program name, e.g. int8 (default: the manifest's default_program)")
    p.add_argument("--threads", type=int, default=None, help="ExecuTorch CPU threads, 1 to 8 per CPU (default: ExecuTorch's choice)")
    add_weight_cache_flag(p)
    g = p.add_argument_group("early exits (bundles exported with exit heads print depth=K, the layer steps run)")
    g.add_argument("--exit-rule", default=None, metavar="RULE",
                   help="patience=N or confidence=P instead of the manifest's rule")
    g.add_argument("--full-depth", action="store_true", help="run every layer step (the forward method)")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("ask", help="answer a question from a passage (question-answering models)",
                       description="Answer a question from a passage with a question-answering bundle "
                                   "(its default program, e.g. int8) or checkpoint (eager fp32): one line "
                                   "per answer with its score, character span in the passage, and text. "
                                   "Long passages are read in overlapping windows.")
    p.add_argument("model", metavar="MODEL",
                   help="a question-answering bundle folder, a checkpoint directory, or 'default-qa' "
                        "(the shipped model)")
    p.add_argument("--question", required=True, help="the question")
    p.add_argument("--context", required=True, metavar="TEXT|@FILE", help="the passage, or @FILE to read it from a file")
    p.add_argument("--top-k", type=int, default=1, help="answers to print, best first (default 1)")
    p.add_argument("--program", default=None, help="bundle program, e.g. fp32 (default: the manifest's default_program)")
    p.add_argument("--threads", type=int, default=None, help="ExecuTorch CPU threads, 1 to 8 per CPU (default: ExecuTorch's choice)")
    add_weight_cache_flag(p)
    p.set_defaults(func=cmd_ask)

    p = sub.add_parser("verify", help="check a bundle's files and replay its golden cases",
                       description="Verify sizes and sha256 of a bundle's files, then run its golden "
                                   "cases through every program and compare with the expected outputs.")
    p.add_argument("bundle", metavar="BUNDLE", help="a bundle folder written by `albert-edge export`")
    p.add_argument("--threads", type=int, default=None, help="ExecuTorch CPU threads, 1 to 8 per CPU (default: ExecuTorch's choice)")
    add_weight_cache_flag(p)
    p.set_defaults(func=cmd_verify)

    from albert_edge import cli_compare, cli_train

    cli_train.add_parsers(sub)
    cli_compare.add_parsers(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    # Texts may come after options too (`run BUNDLE --threads 1 "text"`): argparse gives those
    # back as extras, which are the command's texts when it takes texts.
    args, extra = parser.parse_known_args(argv)
    if extra:
        options = [x for x in extra if x.startswith("-")]
        if not hasattr(args, "text") or options:
            parser.error(f"unrecognized arguments: {' '.join(options or extra)}")
        args.text = [*args.text, *extra]
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
    # multiprocessing's resource tracker (a helper process of the worker pools) warns about the
    # pools' semaphores, which it frees, when Ctrl-C ends a run: noise after the one line. It
    # takes its warning filters from these options when it starts.
    if not any(o.startswith("ignore:resource_tracker") for o in sys.warnoptions):
        sys.warnoptions.append("ignore:resource_tracker:UserWarning")
    try:
        rc = args.func(args)  # a command may return an exit code (report --baseline: 1 on a regression)
    except AlbertEdgeError as err:
        print(f"albert-edge: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        # Files are written atomically and worker processes end with this one: nothing to undo.
        print(f"albert-edge: {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (`| head`): stop quietly, as shell tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 141
    except OSError as err:  # the machine's, not the input's: a full disk, a folder that vanished, EACCES
        if args.verbose:
            raise
        where = f"{err.filename}: " if err.filename else ""
        print(f"albert-edge: error: {where}{err.strerror or err} (the system refused; -v for the traceback)",
              file=sys.stderr)
        return 2
    return rc or 0


if __name__ == "__main__":
    sys.exit(main())
