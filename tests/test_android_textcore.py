"""android_demo/textcore (the app's Kotlin tokenizer, manifest reader and post-processing) on the JVM.

Compiles textcore and its JUnit tests with kotlinc (`make kotlin` installs it under .kotlin/, and
Debian's junit4), runs JUnit, then replays every golden tokenizer case and a second set of texts
through `android_demo/tools/tokenize` against the Python tokenizer (ids and offsets), checks textcore's Unicode
tables against Python's `unicodedata` for every code point and that textcore's bytecode asks the
platform no Unicode question, compiles the app's SDK-free sources against ExecuTorch stubs, runs
the app's QA path with a fake program, replays an exported adaptive (early-exit) bundle's
goldens through textcore's exit rule and both loop forms (android_demo/tools/appcheck/AdaptiveAppCheck.kt),
and checks that the post-processing and exit-rule fixtures are what export/make_postprocess_goldens.py
and export/make_exit_rule_goldens.py write. (The QA fixture's own check is tests/test_qa_goldens.py;
the replay of exported QA bundles' golden cases is in tests/test_qa_bundle.py.) A missing
toolchain is a failure, never a skip: CI must run these.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import random
import re
import shutil
import subprocess
import sys
import tomllib
from collections import defaultdict
from pathlib import Path

import pytest
from adaptive_models import save_adaptive_model

from albert_edge.bundle import export_bundle
from albert_edge.runtime import Program
from albert_edge.tokenizer import AlbertTokenizer
from albert_edge.tokenizer_goldens import read_goldens

REPO = Path(__file__).resolve().parents[1]
TEXTCORE = REPO / "android_demo" / "textcore"
TOKENIZE = REPO / "android_demo" / "tools" / "tokenize"
KOTLINC = REPO / ".kotlin" / "node_modules" / "kotlin-compiler" / "bin" / "kotlinc"
JUNIT_JARS = [
    Path("/usr/share/java/junit4.jar"),
    Path("/usr/share/java/hamcrest-core.jar"),
]
GOLDENS = REPO / "export" / "goldens"
SPIECE = GOLDENS / "spiece.model"
FIXTURE = TEXTCORE / "src" / "test" / "resources" / "postprocess_cases.json"
EXIT_RULE_FIXTURE = TEXTCORE / "src" / "test" / "resources" / "exit_rule_cases.json"
CATALOG = REPO / "android_demo" / "gradle" / "libs.versions.toml"


def _check_toolchain() -> None:
    missing = [str(p) for p in [KOTLINC, *JUNIT_JARS] if not p.exists()]
    if missing:
        pytest.fail(
            f"Kotlin toolchain missing ({', '.join(missing)}); run `make kotlin` first",
            pytrace=False,
        )


def test_kotlinc_is_the_catalogs_kotlin() -> None:
    """The JVM tests compile with the Kotlin the Gradle build uses, so they reject what it rejects."""
    _check_toolchain()
    with CATALOG.open("rb") as f:
        want = tomllib.load(f)["versions"]["kotlin"]
    build = (KOTLINC.parent.parent / "build.txt").read_text().strip()  # e.g. 2.1.0-release-394
    assert build.split("-")[0] == want, (
        f"{KOTLINC} is Kotlin {build}, {CATALOG.relative_to(REPO)} pins {want}; "
        "run `make kotlin`"
    )


@pytest.fixture(scope="session")
def textcore_jar() -> Path:
    """textcore + tools/src compiled into one runnable jar (cached by tools/tokenize on a source hash)."""
    _check_toolchain()
    r = subprocess.run(
        [str(TOKENIZE), "--build"], check=False, capture_output=True, text=True
    )
    if r.returncode != 0:
        pytest.fail(f"compiling textcore failed:\n{r.stderr}", pytrace=False)
    return Path(r.stdout.strip())


@pytest.fixture(scope="session")
def test_jar(textcore_jar: Path) -> Path:
    """textcore's JUnit tests compiled against ``textcore_jar`` (cached on a hash of both)."""
    sources = sorted((TEXTCORE / "src" / "test" / "kotlin").rglob("*.kt"))
    digest = hashlib.sha256(textcore_jar.read_bytes())
    for src in sources:
        digest.update(
            str(src.relative_to(TEXTCORE)).encode() + b"\0" + src.read_bytes()
        )
    out_dir = TEXTCORE / "build" / "jvm-test"
    jar, key = out_dir / "textcore-tests.jar", out_dir / "textcore-tests.jar.key"
    if jar.is_file() and key.is_file() and key.read_text() == digest.hexdigest():
        return jar
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = out_dir / f".tests.{id(digest)}.jar"
    classpath = ":".join(map(str, [textcore_jar, *JUNIT_JARS]))
    r = subprocess.run(
        [
            str(KOTLINC),
            "-jvm-target",
            "17",
            "-nowarn",
            "-cp",
            classpath,
            "-d",
            str(tmp),
            *map(str, sources),
        ],
        check=False,
        capture_output=True,
        text=True,
    )
    if r.returncode != 0:
        tmp.unlink(missing_ok=True)
        pytest.fail(
            f"kotlinc failed compiling textcore's tests:\n{r.stdout}{r.stderr}",
            pytrace=False,
        )
    tmp.replace(jar)
    key.write_text(digest.hexdigest())
    return jar


def _tokenize(
    texts: list[tuple[str, str | None]], *options: str
) -> list[dict[str, list[int]]]:
    """Run the Kotlin tokenizer once over ``texts`` (JSON lines, so any character survives)."""
    lines = "".join(json.dumps([a] if b is None else [a, b]) + "\n" for a, b in texts)
    r = subprocess.run(
        [str(TOKENIZE), str(SPIECE), "--json", "--all", *options],
        input=lines.encode(),
        check=False,
        capture_output=True,
    )
    assert r.returncode == 0, (
        f"tokenize {' '.join(options)} failed:\n{r.stderr.decode()}"
    )
    out = [json.loads(line) for line in r.stdout.decode().splitlines()]
    assert len(out) == len(texts)
    return out


@pytest.mark.slow
def test_junit(textcore_jar: Path, test_jar: Path) -> None:
    names = []
    for src in sorted((TEXTCORE / "src" / "test" / "kotlin").rglob("*.kt")):
        names += [
            f"org.albertedge.textcore.{m}"
            for m in re.findall(r"^class (\w+Test)\b", src.read_text(), re.MULTILINE)
        ]
    assert len(names) >= 4, names
    classpath = ":".join(
        map(
            str,
            [
                textcore_jar,
                test_jar,
                TEXTCORE / "src" / "test" / "resources",
                *JUNIT_JARS,
            ],
        )
    )
    r = subprocess.run(
        [
            "java",
            f"-Dtextcore.repo={REPO}",
            "-cp",
            classpath,
            "org.junit.runner.JUnitCore",
            *names,
        ],
        check=False,
        capture_output=True,
        text=True,
        cwd=TEXTCORE,
    )
    if r.returncode != 0 or "OK (" not in r.stdout:
        pytest.fail(
            f"JUnit failed:\n{r.stdout[-6000:]}{r.stderr[-2000:]}", pytrace=False
        )


@pytest.mark.slow
def test_every_golden_case(textcore_jar: Path) -> None:
    """export/goldens/tokenizer_cases.jsonl: the Kotlin tokenizer gives exactly the golden ids and offsets."""
    header, cases = read_goldens(GOLDENS / "tokenizer_cases.jsonl")
    assert hashlib.sha256(SPIECE.read_bytes()).hexdigest() == header["spiece_sha256"]
    flags = [f for f, key in [("--no-lower-case", "do_lower_case")] if not header[key]]
    flags += [
        f
        for f, key in [
            ("--keep-accents", "keep_accents"),
            ("--split-digit-comma", "split_digit_comma"),
            ("--split-user-defined", "split_user_defined"),
        ]
        if header[key]
    ]
    by_length: dict[int, list[dict]] = defaultdict(list)
    for case in cases:
        assert case["truncation"] == "longest_first"
        by_length[case["max_length"]].append(case)
    mismatches, checked = [], 0
    for length, group in by_length.items():
        outs = _tokenize(
            [(c["text"], c.get("text_pair")) for c in group],
            "--max-len",
            str(length),
            *flags,
        )
        for case, out in zip(group, outs):
            checked += 1
            want = {
                k: case[k]
                for k in ("input_ids", "token_type_ids", "attention_mask", "offsets")
            }
            if out != want:
                mismatches.append(
                    f"text={case['text']!r} pair={case.get('text_pair')!r} max_length={length}:\n"
                    f"  golden {want['input_ids']} {want['offsets']}\n"
                    f"  kotlin {out['input_ids']} {out['offsets']}"
                )
    assert checked == header["num_cases"] == 800
    assert not mismatches, (
        f"{len(mismatches)} of {checked} golden cases differ:\n"
        + "\n".join(mismatches[:5])
    )


_EXTRA_TEXTS = [
    "İstanbul ΣΑΣ Straße ǅungla ﬁne ŉ",
    "naïve café résumé Ångström Ørsted Łódź",
    "e\u0301\u0302 a\u0308\u0304 o\u20dd \u0e01\u0e33 \u0ea1\u0eb3",
    "中文字符 日本語のテキスト ｶﾞｷﾞ ｱｲｳ 한국어 \u1100\u1161\u11a8 \u1112\u1161\u11ab",
    "👍🏽 👨\u200d👩\u200d👧 🇺🇸🇫🇷🇩 ❤\ufe0f \U0001faf0 \U0001f9d1\u200d\U0001f4bb",
    "zero\u200bwidth\u200cjoin\u200dhere \ufeffbom \u2060wj \u00ad soft",
    "ctrl\x00\x07\x1b\x1f\x7f mid\x85line\u2028sep\u2029para a\r\nb \t\x0b\x0c end",
    "1,000,000 9, 12,34 x²,³ ①,② ١٢٣,٤ 𝟙,𝟚 ⅻ, １２３，４５６",
    "``quoted'' ''again`` “curly” ‘single’ – £5 €3 (yes) well-known.",
    "the u.s. grew 3.5% - then (parenthesised) e.g. “a”–”b” -x .5 ..., £1.50€ 3-4 (a)(b)",
    "hello [MASK] world [CLS][SEP] <pad> <unk> [mask]",
    "हिन्दी ভাষা தமிழ் ภาษาไทย العربية עברית ქართული",
    "\u0898x\u1ac1y \u10780 \U00010780 \u2c2f\u2c5f \ua7c0 \U00010570",
    "   leading   and  trailing\u3000\u00a0 spaces  ",
    "ℌ𝔢𝔩𝔩𝔬 ㎏ ㍻ ½ ™ Ⅻ ﷺ",
    "",
]


def _long_text() -> str:
    return " ".join(f"word{i}, café {i * 1000:,} 漢字" for i in range(60))


def _random_texts(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    pools = [
        (0x20, 0x7E),
        (0xA0, 0x24F),
        (0x300, 0x36F),
        (0x370, 0x3FF),
        (0x400, 0x4FF),
        (0x590, 0x6FF),
        (0x890, 0x8FF),
        (0x900, 0xDFF),
        (0x1100, 0x11FF),
        (0x1AB0, 0x1AFF),
        (0x1E00, 0x1FFF),
        (0x2000, 0x206F),
        (0x2150, 0x218F),
        (0x2460, 0x24FF),
        (0x2C00, 0x2C7F),
        (0x3000, 0x30FF),
        (0x4E00, 0x4E80),
        (0xA700, 0xA7FF),
        (0xAC00, 0xAD00),
        (0xFB00, 0xFB4F),
        (0xFE00, 0xFE0F),
        (0xFF00, 0xFFEF),
        (0x10570, 0x105BF),
        (0x10780, 0x107BF),
        (0x1D400, 0x1D7FF),
        (0x1F1E6, 0x1F1FF),
        (0x1F300, 0x1FAFF),
        (0xE0000, 0xE007F),
        (0x0, 0x1F),
    ]
    out = []
    for _ in range(n):
        chars = []
        for _ in range(rng.randint(1, 40)):
            lo, hi = rng.choice(pools)
            cp = rng.randint(lo, hi)
            chars.append(" " if 0xD800 <= cp <= 0xDFFF else chr(cp))
            if rng.random() < 0.15:
                chars.append(rng.choice([" ", ",", "1", "9,", "\u200d", "\u0301"]))
        out.append("".join(chars))
    return out


@pytest.mark.slow
@pytest.mark.parametrize(
    "lower,accents,digit_comma,user_defined",
    [
        (True, False, False, False),
        (False, False, False, False),
        (True, True, False, False),
        (False, True, False, False),
        (True, False, True, False),
        (True, False, False, True),
    ],
    ids=["default", "cased", "keep-accents", "cased-keep-accents", "split-digit-comma", "split-user-defined"],
)
def test_matches_python_tokenizer(
    textcore_jar: Path, lower: bool, accents: bool, digit_comma: bool, user_defined: bool
) -> None:
    """Texts beyond the goldens, in every flag combination; the Python tokenizer is the reference (ids and offsets)."""
    py = AlbertTokenizer.from_file(
        SPIECE, do_lower_case=lower, keep_accents=accents, split_digit_comma=digit_comma,
        split_user_defined=user_defined,
    )
    singles = [*_EXTRA_TEXTS, _long_text(), *_random_texts(200, seed=7)]
    cases = [(t, None) for t in singles] + [
        (a, b) for a, b in zip(singles[::2], singles[1::2])
    ]
    flags = [
        f
        for f, on in [
            ("--no-lower-case", not lower),
            ("--keep-accents", accents),
            ("--split-digit-comma", digit_comma),
            ("--split-user-defined", user_defined),
        ]
        if on
    ]
    for max_length in (128, 16):
        outs = _tokenize(cases, "--max-len", str(max_length), *flags)
        mismatches = []
        for (a, b), out in zip(cases, outs):
            enc = py.encode(a, b, max_length=max_length)
            offsets = [list(span) for span in enc.offsets]
            if (
                out["input_ids"] != list(enc.input_ids)
                or out["token_type_ids"] != list(enc.token_type_ids)
                or out["offsets"] != offsets
            ):
                mismatches.append(
                    f"text={a!r} pair={b!r}:\n  python {list(enc.input_ids)} {offsets}\n"
                    f"  kotlin {out['input_ids']} {out['offsets']}"
                )
        assert not mismatches, (
            f"max_length={max_length}, {len(mismatches)} of {len(cases)} differ:\n"
            + "\n".join(mismatches[:5])
        )


def _load_tool(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_unicode_tables_match_python_for_every_code_point(textcore_jar: Path) -> None:
    """Category, NFKD-without-marks, lower case and isdigit agree with Python for all 1.1M code points.

    On a failure, regenerate the tables: .venv/bin/python android_demo/tools/gen_unicode_tables.py
    """
    gen = _load_tool(
        "gen_unicode_tables", REPO / "android_demo" / "tools" / "gen_unicode_tables.py"
    )
    kotlin, python = gen.kotlin_dump(), gen.python_dump()
    assert len(kotlin) == len(python) == 0x110000 - 0x800
    diffs = [(k, p) for k, p in zip(kotlin, python) if k != p]
    assert not diffs, (
        f"{len(diffs)} code points differ (cp, strip, lower, strip+lower, category, isdigit):\n"
        + "\n".join(f"  kotlin {k!r}\n  python {p!r}" for k, p in diffs[:5])
        + "\nregenerate with android_demo/tools/gen_unicode_tables.py"
    )


def test_unicode_tables_are_generated_and_compact() -> None:
    """UnicodeTables.kt is what the generator writes from this Python, as ranges and runs."""
    gen = _load_tool(
        "gen_unicode_tables", REPO / "android_demo" / "tools" / "gen_unicode_tables.py"
    )
    assert gen.OUT.read_text(encoding="utf-8") == gen.render(), (
        "UnicodeTables.kt is stale; run .venv/bin/python android_demo/tools/gen_unicode_tables.py"
    )
    tables = gen.tables()
    # About 2,400 mark and 5,700 decomposition code points, 1,400 lower-case mappings, 760
    # digits: one entry per code point would be over 10,000.
    assert sum(len(v) for v in tables.values()) < 4000, {k: len(v) for k, v in tables.items()}


# What textcore may call on java.lang.Character: UTF-16 arithmetic, no Unicode data.
_CHARACTER_OK = {
    "charCount", "highSurrogate", "isBmpCodePoint", "isHighSurrogate", "isLowSurrogate",
    "isSupplementaryCodePoint", "isSurrogate", "isValidCodePoint", "lowSurrogate", "toChars",
    "toCodePoint", "valueOf", "charValue", "hashCode", "equals", "compare", "toString",
}
# Methods, on any class, whose answer comes from the platform's Unicode tables.
_UNICODE_METHODS = {
    "getType", "isDigit", "isLetter", "isLetterOrDigit", "isWhitespace", "isSpaceChar",
    "isUpperCase", "isLowerCase", "isTitleCase", "isAlphabetic", "isIdeographic", "toLowerCase",
    "toUpperCase", "toTitleCase", "lowercase", "uppercase", "titlecase", "lowercaseChar",
    "uppercaseChar", "titlecaseChar", "isBlank", "isNotBlank", "isNullOrBlank", "trim",
    "trimStart", "trimEnd", "strip", "isEmptyOrWhitespace", "equalsIgnoreCase",
    "compareToIgnoreCase", "getNumericValue", "digit", "getDirectionality", "isMirrored",
    "normalize", "isNormalized", "capitalize", "decapitalize", "isIdentifierIgnorable",
}
_UNICODE_CLASSES = ("java/text/", "java/util/regex/", "kotlin/text/Regex", "android/icu/")


@pytest.mark.slow
def test_textcore_asks_the_platform_no_unicode_question(textcore_jar: Path, tmp_path: Path) -> None:
    """No class of textcore calls a platform Unicode lookup (Character categories, case mapping,
    Normalizer, regex, ICU), so every golden and property case above, run on this JVM's Unicode
    15, runs on textcore's own tables alone, as it will on an Android 7 device with Unicode 8."""
    import zipfile

    with zipfile.ZipFile(textcore_jar) as jar:
        names = [
            n for n in jar.namelist()
            if n.startswith("org/albertedge/textcore/") and n.endswith(".class")
            and not n.startswith("org/albertedge/textcore/tools/")
        ]
        jar.extractall(tmp_path, members=names)
    assert len(names) > 20, names
    r = subprocess.run(
        ["javap", "-c", "-p", *(str(tmp_path / n) for n in names)],
        check=True, capture_output=True, text=True,
    )
    calls = re.findall(r"// (?:Interface)?Method ([\w/$]+)\.(\w+|\"<init>\"):", r.stdout)
    assert len(calls) > 500  # the pattern does read javap's output
    bad = sorted({
        f"{owner}.{name}" for owner, name in calls
        if (owner == "java/lang/Character" and name not in _CHARACTER_OK)
        or (name in _UNICODE_METHODS and not owner.startswith("org/albertedge/"))
        or owner.startswith(_UNICODE_CLASSES)
    })
    assert not bad, f"textcore asks the platform about Unicode: {bad}"


@pytest.mark.slow
def test_tokenize_tool_errors(textcore_jar: Path, tmp_path: Path) -> None:
    r = subprocess.run(
        [str(TOKENIZE), str(tmp_path / "nope.model")],
        input=b"x\n",
        check=False,
        capture_output=True,
    )
    assert r.returncode == 2 and b"nope.model does not exist" in r.stderr
    bad = tmp_path / "bad.model"
    bad.write_bytes(b"not a model")
    r = subprocess.run(
        [str(TOKENIZE), str(bad)], input=b"x\n", check=False, capture_output=True
    )
    assert r.returncode == 2 and b"not a SentencePiece model" in r.stderr
    r = subprocess.run(
        [str(TOKENIZE), str(SPIECE), "--max-len", "1"],
        input=b"x\n",
        check=False,
        capture_output=True,
    )
    assert r.returncode == 2 and b">= 2" in r.stderr
    # Plain mode: one text per line, a TAB between the texts of a pair.
    r = subprocess.run(
        [str(TOKENIZE), str(SPIECE)],
        input=b"Hello, world!\nHello world\tsecond text\n",
        check=False,
        capture_output=True,
    )
    assert r.returncode == 0, r.stderr.decode()
    py = AlbertTokenizer.from_file(SPIECE)
    assert [json.loads(x) for x in r.stdout.decode().splitlines()] == [
        list(py.encode("Hello, world!").input_ids),
        list(py.encode("Hello world", "second text").input_ids),
    ]


APP_SOURCES = REPO / "android_demo" / "app" / "src" / "main" / "java" / "org" / "albertedge" / "demo"
STUBS = REPO / "android_demo" / "tools" / "stubs"


@pytest.mark.slow
def test_sdk_free_app_sources_compile_against_stubs(textcore_jar: Path, tmp_path: Path) -> None:
    """The app sources that need no Android SDK compile with the catalog's Kotlin.

    Compiled: ProgramInputs.kt, BundleFiles.kt, BundleLocator.kt, Latency.kt,
    ExecutorchClassifier.kt and QuestionAnswerer.kt, against textcore and the signature-only stubs in
    android_demo/tools/stubs/ (ExecuTorch's Module, EValue, Tensor, and android.os.Debug, with the
    Java signatures of the real classes), so a wrong ExecuTorch call fails here.
    Left out (they need the Android SDK, AndroidX or Compose): ClassifierViewModel.kt
    (AndroidViewModel, AssetManager), MainActivity.kt, ui/ClassifierScreen.kt, and
    androidTest/.../GoldenReplayTest.kt.
    """
    names = ["ProgramInputs.kt", "BundleFiles.kt", "BundleLocator.kt", "Latency.kt", "ExecutorchClassifier.kt",
             "QuestionAnswerer.kt"]
    stubs = sorted(STUBS.rglob("*.java"))
    assert stubs, f"no stubs under {STUBS}"
    r = subprocess.run(
        [
            str(KOTLINC),
            "-jvm-target",
            "17",
            "-Werror",
            "-cp",
            str(textcore_jar),
            "-d",
            str(tmp_path / "classes"),
            *(str(APP_SOURCES / n) for n in names),
            *map(str, stubs),  # Java sources: resolved for their signatures, not compiled
        ],
        check=False,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, f"kotlinc failed on the app sources:\n{r.stdout}{r.stderr}"
    assert (tmp_path / "classes" / "org" / "albertedge" / "demo" / "ExecutorchClassifier.class").is_file()


@pytest.mark.slow
def test_app_question_answering_path_on_the_jvm(textcore_jar: Path, tmp_path: Path) -> None:
    """The app's QA path (QuestionAnswerer.kt: windows, program inputs, padding for fixed-length
    programs, one forward per window, decoding) answers every case of qa_cases.json as Python
    did, with a fake program returning the stored logits (android_demo/tools/appcheck)."""
    sources = [APP_SOURCES / n for n in ("ProgramInputs.kt", "Latency.kt", "QuestionAnswerer.kt", "BundleLocator.kt", "BundleFiles.kt")]
    check = REPO / "android_demo" / "tools" / "appcheck" / "QAAppCheck.kt"
    r = subprocess.run(
        [str(KOTLINC), "-jvm-target", "17", "-Werror", "-cp", str(textcore_jar), "-d", str(tmp_path / "classes"),
         *map(str, sources), str(check)],
        check=False, capture_output=True, text=True,
    )
    assert r.returncode == 0, f"kotlinc failed:\n{r.stdout}{r.stderr}"
    r = subprocess.run(
        ["java", "-cp", f"{tmp_path / 'classes'}:{textcore_jar}", "org.albertedge.demo.check.QAAppCheckKt", str(REPO)],
        check=False, capture_output=True, text=True,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert re.search(r"checked (\d+) cases: 0 differ", r.stdout), r.stdout


def test_postprocess_fixture_is_up_to_date(tmp_path: Path) -> None:
    out = tmp_path / "postprocess_cases.json"
    r = subprocess.run(
        [
            sys.executable,
            str(REPO / "export" / "make_postprocess_goldens.py"),
            "--out",
            str(out),
        ],
        check=False,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    assert out.read_text() == FIXTURE.read_text(), (
        f"{FIXTURE.relative_to(REPO)} is stale; run `.venv/bin/python export/make_postprocess_goldens.py`"
    )


def test_exit_rule_fixture_is_up_to_date(tmp_path: Path) -> None:
    """textcore's ExitRule is tested against exit_rule_cases.json; it must be what exit_rules.py gives today."""
    out = tmp_path / "exit_rule_cases.json"
    r = subprocess.run([sys.executable, str(REPO / "export" / "make_exit_rule_goldens.py"), "--out", str(out)],
                       check=False, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert out.read_text() == EXIT_RULE_FIXTURE.read_text(), (
        f"{EXIT_RULE_FIXTURE.relative_to(REPO)} is stale; run `.venv/bin/python export/make_exit_rule_goldens.py`"
    )


ADAPTIVE_TEXTS = ["good day", "the food was awful", "a film", "we were so happy and it was great", "terrible " * 20]


@pytest.fixture(scope="module")
def adaptive_bundle(tmp_path_factory: pytest.TempPathFactory, spiece_model_path: Path) -> Path:
    """A small fp32 bundle with early exits: tests/test_adaptive_bundle.py's tiny model with trained exit heads."""
    d = tmp_path_factory.mktemp("adaptive-model")
    save_adaptive_model(d, spiece_model_path)
    return export_bundle(d, tmp_path_factory.mktemp("adaptive-bundle") / "b", ("fp32",), golden_texts=ADAPTIVE_TEXTS)


def _with_goldens(bundle: Path, out: Path, edit) -> Path:
    """A copy of ``bundle`` whose goldens.json ``edit`` changed, its manifest entry (size, sha256) updated."""
    shutil.copytree(bundle, out)
    goldens = json.loads((out / "goldens.json").read_text())
    edit(goldens)
    data = json.dumps(goldens).encode()
    (out / "goldens.json").write_bytes(data)
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["goldens"].update(size_bytes=len(data), sha256=hashlib.sha256(data).hexdigest())
    (out / "manifest.json").write_text(json.dumps(manifest))
    return out


@pytest.mark.slow
def test_app_adaptive_path_on_the_jvm(textcore_jar: Path, adaptive_bundle: Path, tmp_path: Path) -> None:
    """An exported adaptive bundle as the app reads it (manifest with `adaptive`, goldens, file hashes,
    tokenizer ids), and every adaptive_cases entry's golden step logits through both forms of
    textcore's loop (embed/layer/exit_k and the fused first_step/step_k, which the app runs where
    the program has them, as this one does) and rule: the depths Python recorded
    (android_demo/tools/appcheck/AdaptiveAppCheck.kt). A golden depth edited by one step is
    reported, once. (The programs' own step logits need ExecuTorch's Android runtime:
    GoldenReplayTest on a device.)"""
    manifest = json.loads((adaptive_bundle / "manifest.json").read_text())
    # The goldens come from the fused step methods, the path the app takes with this program.
    assert Program(adaptive_bundle / manifest["programs"][0]["file"]).fused_steps
    sources = [APP_SOURCES / n for n in ("BundleFiles.kt", "BundleLocator.kt")]
    check = REPO / "android_demo" / "tools" / "appcheck" / "AdaptiveAppCheck.kt"
    r = subprocess.run(
        [str(KOTLINC), "-jvm-target", "17", "-Werror", "-cp", str(textcore_jar), "-d", str(tmp_path / "classes"),
         *map(str, sources), str(check)],
        check=False, capture_output=True, text=True,
    )
    assert r.returncode == 0, f"kotlinc failed:\n{r.stdout}{r.stderr}"

    def app_check(bundle: Path) -> subprocess.CompletedProcess:
        return subprocess.run(["java", "-cp", f"{tmp_path / 'classes'}:{textcore_jar}",
                               "org.albertedge.demo.check.AdaptiveAppCheckKt", str(bundle)],
                              check=False, capture_output=True, text=True)

    r = app_check(adaptive_bundle)
    assert r.returncode == 0, r.stdout + r.stderr
    forms = "x 2 loop forms (embed, layer, exit_k; first_step, step_k)"
    assert f"checked {len(ADAPTIVE_TEXTS)} adaptive cases x 1 programs {forms}: 0 differ" in r.stdout, r.stdout
    depths = [c["programs"]["fp32"]["depth"] for c in json.loads((adaptive_bundle / "goldens.json").read_text())["adaptive_cases"]]
    assert any(d < 4 for d in depths), f"every case ran all 4 steps ({depths}): the replay would test no early stop"

    def one_step_later(goldens: dict) -> None:
        entry = goldens["adaptive_cases"][1]["programs"]["fp32"]
        entry["depth"] = entry["depth"] % 4 + 1
    r = app_check(_with_goldens(adaptive_bundle, tmp_path / "edited", one_step_later))
    assert r.returncode == 1, r.stdout + r.stderr
    assert f"checked {len(ADAPTIVE_TEXTS)} adaptive cases x 1 programs {forms}: 1 differ" in r.stdout, r.stdout
    assert r.stdout.count("adaptive_cases[1] fp32: textcore's patience=1 stops at step") == 1, r.stdout
    assert "fused steps" not in r.stdout, r.stdout  # both forms stop at the same step: one line
