"""The runtime wrapper: .pte vs eager parity, and a readable message for every bad input."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch

from albert_edge.runtime import (
    Program,
    ProgramError,
    RuntimeInputError,
    check_pte_header,
    get_num_threads,
    set_num_threads,
)
from export_models import MAX_SEQ_LEN, lowered_text_classifier


@pytest.fixture(scope="module")
def lowered(spiece_model_path):
    return lowered_text_classifier(spiece_model_path)


@pytest.fixture(scope="module")
def fp32(lowered) -> Program:
    return Program(lowered.programs["fp32"].buffer, name="model_fp32.pte")


@pytest.fixture(scope="module")
def int8(lowered) -> Program:
    return Program(lowered.programs["int8"].buffer, name="model_int8.pte")


@pytest.fixture(scope="module")
def pte_file(lowered, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("pte") / "model_fp32.pte"
    path.write_bytes(lowered.programs["fp32"].buffer)
    return path


def random_inputs(vocab_size: int, S: int, seed: int, pad: int = 0) -> tuple[torch.Tensor, ...]:
    """Random ids (1, S); the last ``pad`` positions are padding (mask 0); a second segment."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, vocab_size, (1, S), generator=g)
    mask = torch.ones_like(ids)
    if pad:
        ids[0, S - pad:] = 0
        mask[0, S - pad:] = 0
    types = torch.zeros_like(ids)
    types[0, S // 2:] = 1
    return ids, mask, types


def eager(model, inputs):
    with torch.no_grad():
        return model(*inputs)


# ---- parity with eager PyTorch ----------------------------------------------------------------


def test_program_reads_its_bounds(fp32, lowered):
    assert (fp32.min_seq_len, fp32.max_seq_len) == (1, MAX_SEQ_LEN)
    assert fp32.vocab_size == lowered.tokenizer.vocab_size == 1500
    assert fp32.type_vocab_size == 2 and fp32.dynamic


@pytest.mark.parametrize("S,pad", [(1, 0), (7, 0), (MAX_SEQ_LEN, 0), (MAX_SEQ_LEN, 9)])
def test_fp32_program_matches_eager(fp32, lowered, S, pad):
    inputs = random_inputs(fp32.vocab_size, S, seed=S + pad, pad=pad)
    (out,) = fp32.run(*inputs)
    ref = eager(lowered.model, inputs)
    assert out.shape == ref.shape == (1, 3)
    assert (out - ref).abs().max() <= 1e-4


def test_int8_program_agrees_with_fp32(int8, lowered):
    """SQNR of the int8 logits against eager fp32, and top-1 agreement, over 40 random inputs."""
    g = torch.Generator().manual_seed(7)
    signal = noise = 0.0
    agree = 0
    for i in range(40):
        S = int(torch.randint(1, MAX_SEQ_LEN + 1, (1,), generator=g))
        inputs = random_inputs(int8.vocab_size, S, seed=100 + i)
        (q,) = int8.run(*inputs)
        ref = eager(lowered.model, inputs)
        signal += float(ref.pow(2).sum())
        noise += float((q - ref).pow(2).sum())
        agree += int(q.argmax() == ref.argmax())
    sqnr_db = 10 * torch.log10(torch.tensor(signal / noise))
    assert sqnr_db > 25, f"int8 SQNR {sqnr_db:.1f} dB"
    assert agree >= 38, f"int8 top-1 agreement {agree}/40"


def test_nested_lists_and_numpy_are_accepted(fp32):
    ids, mask, types = random_inputs(fp32.vocab_size, 5, seed=3)
    (a,) = fp32.run(ids, mask, types)
    (b,) = fp32.run(ids.tolist(), mask.tolist(), types.tolist())
    (c,) = fp32.run(ids.numpy(), mask.numpy(), types.numpy())
    assert torch.equal(a, b) and torch.equal(a, c)


def test_defaults_are_full_mask_and_segment_zero(fp32):
    ids = random_inputs(fp32.vocab_size, 6, seed=4)[0]
    (a,) = fp32.run(ids)
    (b,) = fp32.run(ids, torch.ones_like(ids), torch.zeros_like(ids))
    assert torch.equal(a, b)


def test_outputs_survive_the_next_call(fp32):
    (first,) = fp32.run(random_inputs(fp32.vocab_size, 5, seed=5)[0])
    kept = first.clone()
    fp32.run(random_inputs(fp32.vocab_size, 9, seed=6)[0])
    assert torch.equal(first, kept)


def test_program_loads_from_a_path(pte_file, fp32):
    prog = Program(pte_file)
    ids = random_inputs(fp32.vocab_size, 4, seed=8)[0]
    assert torch.equal(prog.run(ids)[0], fp32.run(ids)[0])
    assert "model_fp32.pte" in repr(prog)


def test_thread_count_is_fixed_while_programs_are_loaded(fp32):
    """Resizing ExecuTorch's pool under a loaded XNNPACK program crashes the process: refused."""
    set_num_threads(get_num_threads())  # the current size is fine (resizing: see test_export_cli)
    other = 1 if get_num_threads() != 1 else 2
    with pytest.raises(RuntimeInputError, match=rf"num_threads={other}: .* set the thread count before loading any program"):
        set_num_threads(other)
    assert fp32.run(ids_of(3))[0].shape == (1, 3)
    with pytest.raises(RuntimeInputError, match=r"num_threads must be a positive integer, got 0"):
        set_num_threads(0)


# ---- every bad input has its own message ------------------------------------------------------


def ids_of(S: int) -> torch.Tensor:
    return torch.full((1, S), 7, dtype=torch.int64)


@pytest.mark.parametrize(
    "args,message",
    [
        ((ids_of(5).int(),), "model_fp32.pte: input_ids has dtype torch.int32; programs take int64"),
        ((ids_of(5).float(),), "input_ids has dtype torch.float32; programs take int64"),
        ((ids_of(5), ids_of(5).bool()), "attention_mask has dtype torch.bool; programs take int64"),
        (([[1.5, 2.0]],), "input_ids has dtype torch.float32"),
        (("hello",), "input_ids must be a torch.Tensor, a numpy array or nested lists of ints of shape (1, S), got str"),
        ((np.full((1, 5), 7, dtype=np.int32),), "input_ids has dtype torch.int32; programs take int64"),
        (([[1, 2], [3]],), "input_ids: nested lists must be rectangular"),
        ((ids_of(40),), "input_ids has 40 tokens; this program takes at most max_seq_len=32: truncate the "
                        "input (tokenizer.encode(..., max_length=32)) or re-export with --max-seq-len 40"),
        ((torch.zeros((0, 5), dtype=torch.int64),), "input_ids is an empty batch (shape (0, 5)); pass exactly one"),
        (([],), "input_ids has shape (0,); programs take shape (1, S)"),
        ((ids_of(0),), "input_ids is empty (shape (1, 0)); a sequence needs at least 1 token(s)"),
        ((torch.full((2, 5), 7),), "input_ids has a batch of 2 (shape (2, 5)); programs take one sequence at a time"),
        ((torch.full((5,), 7),), "input_ids has shape (5,); programs take shape (1, S)"),
        ((torch.tensor([[2, 17, 1500, 3]]),), "input_ids[0, 2] = 1500 is outside the vocabulary [0, 1500)"),
        ((torch.tensor([[2, -1, 9, 3]]),), "input_ids[0, 1] = -1 is outside the vocabulary [0, 1500)"),
        ((ids_of(4), torch.tensor([[1, 1, 2, 0]])), "attention_mask[0, 2] = 2 is outside {0, 1}"),
        ((ids_of(4), torch.tensor([[1, -1, 1, 1]])), "attention_mask[0, 1] = -1 is outside {0, 1}"),
        ((ids_of(4), None, torch.tensor([[0, 0, 1, 2]])), "token_type_ids[0, 3] = 2 is outside [0, type_vocab_size=2)"),
        ((ids_of(4), ids_of(5)), "attention_mask has shape (1, 5) but input_ids has (1, 4); they must match"),
    ],
)
def test_bad_inputs_are_named(fp32, args, message):
    with pytest.raises(RuntimeInputError, match=re.escape(message)):
        fp32.run(*args)


def test_many_out_of_range_ids_are_counted(fp32):
    with pytest.raises(RuntimeInputError, match=r"input_ids\[0, 0\] = 2000 .* \(3 values out of range in all\)"):
        fp32.run(torch.tensor([[2000, 3000, 4000, 5]]))


def test_the_program_still_works_after_refusals(fp32):
    with pytest.raises(RuntimeInputError):
        fp32.run(torch.tensor([[1, 99999]]))
    assert fp32.run(ids_of(3))[0].shape == (1, 3)


# ---- bad program files -------------------------------------------------------------------------


def test_missing_pte(tmp_path):
    with pytest.raises(ProgramError, match=re.escape(f"{tmp_path / 'nope.pte'}: no such .pte file")):
        Program(tmp_path / "nope.pte")


def test_corrupt_pte_is_refused(tmp_path):
    path = tmp_path / "model_int8.pte"
    path.write_bytes(b"PK\x03\x04 this is a zip, not a program" * 10)
    with pytest.raises(ProgramError, match=re.escape(f"{path}: not an ExecuTorch program (.pte): bytes 4..8 are")):
        Program(path)


def test_tiny_file_is_refused():
    with pytest.raises(ProgramError, match=r"<bytes>: not an ExecuTorch program"):
        Program(b"ET")


def test_truncated_pte_is_refused(pte_file, tmp_path):
    data = pte_file.read_bytes()
    cut = tmp_path / "model_fp32.pte"
    cut.write_bytes(data[: len(data) // 2])
    expected = f"{cut}: truncated: its header says {len(data)} bytes, the file has {len(data) // 2}"
    with pytest.raises(ProgramError, match=re.escape(expected)):
        Program(cut)


def test_damaged_pte_body_is_refused_by_the_runtime_with_the_file_name(pte_file, tmp_path):
    """Header intact, flatbuffer zeroed: the runtime refuses it; the message names the file."""
    data = bytearray(pte_file.read_bytes())
    data[64:4096] = bytes(4096 - 64)
    bad = tmp_path / "model_fp32.pte"
    bad.write_bytes(bytes(data))
    with pytest.raises(ProgramError, match=re.escape(f"{bad}: ExecuTorch could not load this program")):
        Program(bad)


def test_header_check_accepts_a_whole_program(pte_file):
    data = pte_file.read_bytes()
    check_pte_header(data[:64], len(data), "x.pte")  # no exception


def test_outputs_are_each_calls_own_and_equal_the_runtimes_copy(fp32, lowered, pte_file):
    """run copies the outputs out of the method's memory itself (numpy, not the pybinding's torch
    op): the same values, and a later call does not change an earlier result."""
    first_inputs = random_inputs(lowered.tokenizer.vocab_size, 9, seed=1)
    (first,) = fp32.run(*first_inputs)
    kept = first.clone()
    fp32.run(*random_inputs(lowered.tokenizer.vocab_size, 9, seed=2))
    assert torch.equal(first, kept)
    (cloned,) = fp32._forward(list(fp32.check_inputs(*first_inputs)))  # clone_outputs=True
    assert torch.equal(first, cloned) and first.dtype == torch.float32 and first.is_contiguous()
    # A program loaded from its path (mapped by the runtime) gives the same outputs as from bytes.
    assert Program(pte_file)._data is None and fp32._data is not None
    assert torch.equal(Program(pte_file).run(*first_inputs)[0], first)


def test_a_tensor_off_the_cpu_is_refused_by_name(fp32):
    ids = torch.zeros((1, 4), dtype=torch.long, device="meta")
    with pytest.raises(RuntimeInputError, match=r"input_ids is on meta; programs take CPU tensors: pass input_ids.cpu\(\)"):
        fp32.run(ids)
