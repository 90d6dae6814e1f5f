"""Deterministic synthetic text for tokenizer training, tests and golden files.

Nothing here is meant to be natural language. It is built to exercise the tokenizer: English-like
sentences with numbers written with commas (so pieces like ``▁1,`` exist), accented words, a
little CJK, and, for the probe texts, the awkward inputs an on-device tokenizer meets: emoji,
control and zero-width characters, curly and TeX quotes, odd whitespace, special-token strings.
The same seed always gives the same texts, so the test model and the golden files are
reproducible.
"""

from __future__ import annotations

import random

__all__ = ["training_corpus", "probe_texts", "probe_pairs", "HAND_TEXTS"]

_WORDS = (
    "the of and to in a is that for it as was with be by on not he this are or his from at "
    "which but have an they you were her she there been one all we their has would when if so "
    "no what up out about who more can said these some could them into only than time other two "
    "new people year years way day days man men woman women world life hand part child eye place "
    "work week case point government company number group problem fact city country state house "
    "market school river water music history science report music story family game money night "
    "model phone token piece engine train small large early late long short high low good great "
    "first last next local public private national open close run runs running ran make makes made "
    "take takes took see saw seen know knew known think thought come came give gave find found tell "
    "told ask asked work worked seem seemed feel felt try tried leave left call called keep kept "
    "begin began show showed hear heard play played move moved live lived believe believed bring "
    "brought happen happened write wrote written provide provided sit sat stand stood lose lost pay "
    "paid meet met include included continue continued set learn learned change changed lead led "
    "understand understood watch watched follow followed stop stopped create created speak spoke "
    "read allow allowed add added spend spent grow grew offer offered remember remembered love "
    "consider considered appear appeared buy bought wait waited serve served die died send sent "
    "expect expected build built stay stayed fall fell cut reach reached kill killed remain "
    "remained suggest suggested raise raised pass passed sell sold require required decide decided "
    "quickly slowly really almost always never often sometimes together however therefore because "
    "although while during before after between under over through against without within"
).split()

_NAMES = (
    "Alice Bob Carol Dave London Paris Berlin Tokyo Kyoto Madrid Rome Oslo Cairo Lagos Lima "
    "Toronto Sydney Monday Friday January March October Google Android Kotlin Python ALBERT BERT"
).split()

_ACCENTED = (
    "café naïve résumé façade Zürich São Paulo Málaga crème brûlée Ångström Dvořák jalapeño über "
    "coöperate El Niño Kraków Łódź İstanbul Ñandú Ærø Besançon Göteborg Škoda Curaçao déjà vu "
    "piñata Citroën Renée Noël Chloé Bogotá Reykjavík Montréal Québec"
).split()

_CJK = (
    "東京", "日本語", "中文", "北京", "学生", "今日は", "天気", "漢字", "한국어", "서울",
    "大学", "電話", "模型", "ありがとう", "カタカナ",
)

_NUMBERS_WITH_COMMAS = (
    "1,", "2,", "3,", "4,", "5,", "10,", "1,000", "2,500", "10,000", "12,345", "1,234,567",
    "100,000", "3,", "7,", "9,",
)

_PUNCT = (".", ",", ";", ":", "!", "?", "-", "(", ")", "\"", "'", "£", "€", "$", "%", "–")


def _number(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.35:
        return f"{rng.randint(1, 9)},"
    if kind < 0.6:
        return f"{rng.randint(1, 999)},{rng.randint(0, 999):03d}"
    if kind < 0.75:
        return f"{rng.randint(1900, 2030)},"
    if kind < 0.9:
        return f"{rng.randint(0, 99)}.{rng.randint(0, 99)}"
    return str(rng.randint(0, 10_000))


def _sentence(rng: random.Random) -> str:
    words: list[str] = []
    for _ in range(rng.randint(4, 18)):
        r = rng.random()
        if r < 0.72:
            words.append(rng.choice(_WORDS))
        elif r < 0.8:
            words.append(rng.choice(_NAMES))
        elif r < 0.86:
            words.append(rng.choice(_ACCENTED))
        elif r < 0.95:
            words.append(_number(rng))
        elif r < 0.97:
            words.append(rng.choice(_CJK))
        else:
            words.append(rng.choice(_PUNCT))
    if rng.random() < 0.15:
        # Lists like "chapters 1, 2, 3, and 4" are where "▁1," style pieces come from.
        n = rng.randint(2, 5)
        words += [f"{i}," for i in range(1, n)] + ["and", str(n)]
    if rng.random() < 0.1:
        words = ["``", *words, "''"]
    elif rng.random() < 0.1:
        words = ["“", *words, "”"]
    text = " ".join(words)
    return text[0].upper() + text[1:] + rng.choice((".", ".", ".", "!", "?"))


def training_corpus(n_sentences: int = 6000, seed: int = 0) -> list[str]:
    """Return ``n_sentences`` English-like sentences (numbers with commas, accents, some CJK)."""
    rng = random.Random(seed)
    return [_sentence(rng) for _ in range(n_sentences)]


# Fragments for probe texts, grouped by what they exercise.
_FRAGMENTS: dict[str, tuple[str, ...]] = {
    "accents": (
        "Café", "naïve", "RÉSUMÉ", "e\u0301", "A\u030a", "İstanbul", "straße", "ﬁne", "Ⅸ", "½",
        "x²", "ΣΟΦΙΑΣ", "Ǆemal", "Ωmega", "ﬀ", "Ḱ", "ǅ", "ŉ", "ﬆ", "Å", "nа\u0308ive",
    ),
    "cjk": (
        "日本語", "東京タワー", "中文字符", "한국어", "ｶﾀｶﾅ", "ＡＢＣ１２３", "。", "「引用」", "㍻", "〜",
    ),
    "scripts": (
        "مرحبا", "שלום", "नमस्ते", "नाम", "สวัสดี", "Привет", "Ελλάδα", "ქართული", "ᚠᚢᚦ",
    ),
    "emoji": ("😀", "👍🏽", "👨\u200d👩\u200d👧", "🇯🇵", "❤\ufe0f", "🤖", "☃", "✓", "🏳\ufe0f\u200d🌈"),
    "control": (
        "\u200b", "\u200c", "\u200d", "\ufeff", "\x00", "\x07", "\x1f", "\x7f", "\u00ad", "\u202e",
        "\u2060", "\ufffd", "\x1c", "\x9f",
    ),
    "quotes": ("``", "''", "“", "”", "‘", "’", "'", "\"", "'''", "````", "`", "„", "«", "»"),
    "space": (
        "  ", "\t", "\n", "\r\n", "\xa0", "\u3000", "\u2003", "\u1680", "\x85", "\x0b", "\x0c",
        "\u2028", "\u202f", " \t \n ",
    ),
    "numbers": (
        "1,", "1,234", "12,000,000", "3.14", "1,5", "2019,", "№5", "-7", "100%", "$1,000", "9,9",
        "0,", "٣", "１,",
    ),
    "specials": (
        "[MASK]", "[CLS]", "[SEP]", "<unk>", "<pad>", "[mask]", "[MASK ]", "▁", "▁▁", "▁word",
        "x▁y", "[[MASK]]",
    ),
    "punct": ("(", ")", "-", "–", "—", ".", "£", "€", "...", "!?", "/", "&", "@", "#", "©"),
}


def _probe_text(rng: random.Random, words_weight: float = 0.55) -> str:
    parts: list[str] = []
    for _ in range(rng.randint(0, 14)):
        if rng.random() < words_weight:
            part = rng.choice(_WORDS) if rng.random() < 0.8 else rng.choice(_ACCENTED + _NAMES)
            r = rng.random()
            part = part.upper() if r < 0.1 else part.title() if r < 0.25 else part
        else:
            part = rng.choice(_FRAGMENTS[rng.choice(sorted(_FRAGMENTS))])
        parts.append(part)
        sep = rng.random()
        parts.append(" " if sep < 0.75 else "" if sep < 0.9 else rng.choice(_FRAGMENTS["space"]))
    return "".join(parts)


HAND_TEXTS: tuple[str, ...] = (
    "",
    " ",
    "Hello world",
    "Hello, world!",
    "  leading and trailing  ",
    "The answer is 1,234,567, not 1,2.",
    "In 1998, 2, 3, and 4, things changed.",
    "``TeX quotes'' and “curly quotes” and 'single'",
    "Café naïve résumé façade Zürich",
    "İstanbul ΣΟΦΙΑΣ straße ﬁne",
    "東京は日本の首都です。",
    "emoji 😀👍🏽 family 👨\u200d👩\u200d👧 flag 🇯🇵",
    "zero\u200bwidth\u200cjoiner\u200dhere",
    "tabs\tand\nnewlines\r\nand\xa0nbsp\u3000ideographic",
    "control\x00chars\x07here\x7f",
    "[CLS] special [SEP] tokens [MASK] in text <unk> <pad>",
    "hello [MASK] world",
    "▁already ▁marked",
    "a\u0301\u0302\u0303 stacked marks",
    "(parenthesised) - dashes – and — £5 €10",
    "nmt_nfkc maps ＦＵＬＬＷＩＤＴＨ and ① and ™",
    "x" * 300,
    "word " * 150,
    "9,9,9,9 12,34,56",
)


def probe_texts(n: int, seed: int = 1) -> list[str]:
    """Return ``HAND_TEXTS`` followed by seeded random compositions, ``n`` texts in all.

    About one text in twenty is long (100-300 words), so truncation is exercised.
    """
    rng = random.Random(seed)
    texts = list(HAND_TEXTS[:n])
    while len(texts) < n:
        if rng.random() < 0.05:
            texts.append(" ".join(_probe_text(rng, 0.8) for _ in range(rng.randint(10, 25))))
        else:
            texts.append(_probe_text(rng))
    return texts


def probe_pairs(n: int, seed: int = 2) -> list[tuple[str, str]]:
    """Return ``n`` (text, text_pair) tuples built like :func:`probe_texts`."""
    rng = random.Random(seed)
    a = probe_texts(n, seed=rng.randint(0, 2**31))
    b = probe_texts(n + len(HAND_TEXTS), seed=rng.randint(0, 2**31))[len(HAND_TEXTS):]
    rng.shuffle(a)
    return list(zip(a, b, strict=True))
