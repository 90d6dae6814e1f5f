"""Labelled data files: CSV, TSV, JSON Lines, configurable columns, and errors with row numbers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from albert_edge.datasets import DataError, encode_rows, read_labelled
from albert_edge.tokenizer import AlbertTokenizer
from albert_edge.datasets import ClassificationExample


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_csv_tsv_and_jsonl_give_the_same_rows(tmp_path: Path) -> None:
    csv = _write(tmp_path / "d.csv", 'text,label\n"Hello, world",pos\nbad day,neg\n')
    tsv = _write(tmp_path / "d.tsv", "text\tlabel\nHello, world\tpos\nbad day\tneg\n")
    jsonl = _write(tmp_path / "d.jsonl", "\n".join(json.dumps(r) for r in
                                                   [{"text": "Hello, world", "label": "pos"},
                                                    {"text": "bad day", "label": "neg"}]) + "\n\n")
    got = [[(r.text, r.label) for r in read_labelled(p)] for p in (csv, tsv, jsonl)]
    assert got[0] == got[1] == got[2] == [("Hello, world", "pos"), ("bad day", "neg")]
    assert [r.row for r in read_labelled(jsonl)] == [1, 2]


def test_columns_pairs_limit_and_regression(tmp_path: Path) -> None:
    path = _write(tmp_path / "p.jsonl", "\n".join(json.dumps({"q": f"q{i}", "a": f"a{i}", "y": i / 2}) for i in range(5)))
    rows = read_labelled(path, text_column="q", text_pair_column="a", label_column="y", regression=True, limit=3)
    assert [(r.text, r.text_pair, r.label) for r in rows] == [("q0", "a0", 0.0), ("q1", "a1", 0.5), ("q2", "a2", 1.0)]


@pytest.mark.parametrize(
    ("name", "content", "kwargs", "message"),
    [
        ("empty.csv", "text,label\n", {}, "empty.csv: no data rows"),
        ("cols.csv", "sentence,y\nhi,a\n", {}, "no column 'text', 'label'; columns present: 'sentence', 'y'"),
        ("bad.jsonl", '{"text": "a", "label": "x"}\n{"text": \n[1]\n', {},
         "2 bad row(s): line 2: not valid JSON"),
        ("bad.jsonl", '{"text": "a", "label": "x"}\n[1]\n', {}, "line 2: expected a JSON object, got list"),
        ("lab.csv", "text,label\na,pos\nb,meh\nc,neg\nd,what\n", {"labels": ["pos", "neg"]},
         "2 bad row(s): row 2: unknown label 'meh' (accepted: pos, neg); row 4: unknown label 'what'"),
        ("txt.csv", "text,label\n,pos\n  ,neg\n", {}, "row 1: empty or missing 'text'; row 2: empty or missing 'text'"),
        ("wide.csv", "text,label\na,pos,extra\n", {}, "row 1: 3 fields, the header has 2"),
        ("num.csv", "text,label\na,1.5\nb,high\n", {"regression": True}, "row 2: label 'high' is not a number"),
        ("data.xlsx", "x", {}, "cannot tell the format from the suffix '.xlsx'; accepted suffixes: .csv, .tsv, .jsonl"),
    ],
)
def test_bad_files_name_the_file_and_rows(tmp_path: Path, name: str, content: str, kwargs: dict, message: str) -> None:
    path = _write(tmp_path / name, content)
    with pytest.raises(DataError, match=None) as err:
        read_labelled(path, **kwargs)
    assert str(path) in str(err.value)
    assert message in str(err.value)


def test_many_bad_rows_are_counted_not_all_listed(tmp_path: Path) -> None:
    path = _write(tmp_path / "many.csv", "text,label\n" + "".join(f"t{i},zzz\n" for i in range(12)))
    with pytest.raises(DataError, match=r"12 bad row\(s\).*\(and 7 more\)"):
        read_labelled(path, labels=["a", "b"])


def test_missing_file_and_non_utf8(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="nope.csv: no such file"):
        read_labelled(tmp_path / "nope.csv")
    path = tmp_path / "latin.csv"
    path.write_bytes("text,label\ncaf\xe9,a\n".encode("latin-1"))
    with pytest.raises(DataError, match="latin.csv: not UTF-8"):
        read_labelled(path)


def test_encode_rows_matches_the_tokenizer(tmp_path: Path, spiece_model_path: Path) -> None:
    tok = AlbertTokenizer.from_file(spiece_model_path)
    path = _write(tmp_path / "d.tsv", "text\tpair\tlabel\nThe cat sat on the mat.\tIt was warm.\tb\n"
                                      "A much longer sentence that will be cut short here\tand more\ta\n")
    rows = read_labelled(path, text_pair_column="pair")
    examples = encode_rows(rows, tok, ["a", "b"], max_seq_len=10)
    for r, e in zip(rows, examples):
        enc = tok.encode(r.text, r.text_pair, max_length=10)
        assert e == ClassificationExample(tuple(enc.input_ids), tuple(enc.token_type_ids), ["a", "b"].index(r.label))
        assert len(e.input_ids) <= 10
