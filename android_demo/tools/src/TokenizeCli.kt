// The JVM command behind android_demo/tools/tokenize: runs textcore's AlbertTokenizer over stdin.
package org.albertedge.textcore.tools

import org.albertedge.textcore.AlbertTokenizer
import org.albertedge.textcore.BundleManifest
import org.albertedge.textcore.QAGoldens
import org.albertedge.textcore.firstTokenizerMismatch
import org.albertedge.textcore.MiniJson
import org.albertedge.textcore.SentencePieceModel
import org.albertedge.textcore.SentencePieceException
import org.albertedge.textcore.UnicodeProps
import java.io.BufferedWriter
import java.io.File
import java.io.OutputStreamWriter
import kotlin.system.exitProcess

private const val USAGE = """usage: tokenize SPIECE_MODEL [--max-len N] [--no-lower-case] [--keep-accents] [--split-digit-comma] [--split-user-defined] [--json] [--all]
       tokenize --dump-unicode
       tokenize --check-bundle BUNDLE_DIR

Reads UTF-8 texts from stdin, one per line (a TAB separates the two texts of a pair), and prints
one JSON array of token ids per line. --json: each line is instead a JSON string or an array of
one or two strings (for texts containing newlines or tabs). --all: print an object with
input_ids, token_type_ids, attention_mask and offsets ([start, end] code points per token).
--dump-unicode: print textcore's per-code-point Unicode table (category class, accents
stripped, lower case, isdigit), in the format of android_demo/tools/gen_unicode_tables.py.
--check-bundle: read a bundle's manifest with textcore, check that its tokenizer gives every
golden text case's ids and, for a question-answering bundle, its goldens.json qa_cases (windows,
and answers decoded from every program's golden logits); prints one line per difference and
exits 1 if there is any."""

private fun fail(message: String): Nothing {
    System.err.println("tokenize: $message")
    exitProcess(2)
}

private fun hex(cps: IntArray): String = cps.joinToString(" ") { Integer.toHexString(it) }

private fun dumpUnicode(out: BufferedWriter) {
    val catNames = mapOf(UnicodeProps.MN to "Mn", UnicodeProps.ME to "Me", UnicodeProps.MC to "Mc")
    for (cp in 0..0x10FFFF) {
        if (cp in 0xD800..0xDFFF) continue
        val strip = UnicodeProps.stripAccents(cp)
        val cat = UnicodeProps.category(cp)
        val digit = UnicodeProps.isDigit(cp)
        val stripLower = strip.flatMap { UnicodeProps.lower(it).asList() }.toIntArray()
        val catName = if (cat == UnicodeProps.CONTROL) "C" else catNames[cat] ?: "-"
        out.write("${Integer.toHexString(cp)}\t${hex(strip)}\t${hex(UnicodeProps.lower(cp))}\t${hex(stripLower)}\t$catName\t${if (digit) 1 else 0}\n")
    }
}

private fun checkBundle(dir: File): Int {
    val manifest = BundleManifest.parse(File(dir, "manifest.json").readText(Charsets.UTF_8))
    val settings = manifest.tokenizer ?: fail("$dir: the bundle has no tokenizer")
    val tokenizer = AlbertTokenizer.fromManifest(manifest, File(dir, settings.file.file).readBytes())
    val goldens = manifest.goldens ?: fail("$dir: the bundle has no goldens")
    val text = File(dir, goldens.file).readText(Charsets.UTF_8)
    val problems = listOfNotNull(firstTokenizerMismatch(manifest, tokenizer, text)).toMutableList()
    println("tokenizer: ${if (problems.isEmpty()) "gives every golden case's ids" else "differs"}")
    if (manifest.isQuestionAnswering) {
        val cases = QAGoldens.parse(text)
        val qa = QAGoldens.check(manifest, tokenizer, cases)
        println("checked ${cases.size} qa cases, ${manifest.programs.size} programs: ${qa.size} differences")
        problems += qa
    }
    problems.forEach { println(it) }
    return if (problems.isEmpty()) 0 else 1
}

fun main(args: Array<String>) {
    if (args.isNotEmpty() && args[0] == "--check-bundle") {
        val dir = File(args.getOrNull(1) ?: fail("--check-bundle needs a bundle folder\n$USAGE"))
        val code = try {
            checkBundle(dir)
        } catch (e: IllegalArgumentException) {
            fail("$dir: ${e.message}")
        }
        exitProcess(code)
    }
    val out = BufferedWriter(OutputStreamWriter(System.out, Charsets.UTF_8), 1 shl 16)
    if (args.isNotEmpty() && args[0] == "--dump-unicode") {
        dumpUnicode(out)
        out.flush()
        return
    }
    var spiece: String? = null
    var maxLen: Int? = null
    var lower = true
    var keepAccents = false
    var splitDigitComma = false
    var splitUserDefined = false
    var json = false
    var all = false
    var i = 0
    while (i < args.size) {
        when (val a = args[i]) {
            "--max-len" -> {
                maxLen = args.getOrNull(++i)?.toIntOrNull() ?: fail("--max-len needs an integer >= 2\n$USAGE")
            }
            "--no-lower-case" -> lower = false
            "--keep-accents" -> keepAccents = true
            "--split-digit-comma" -> splitDigitComma = true
            "--split-user-defined" -> splitUserDefined = true
            "--json" -> json = true
            "--all" -> all = true
            "-h", "--help" -> { println(USAGE); return }
            else -> if (a.startsWith("-") || spiece != null) fail("unexpected argument '$a'\n$USAGE") else spiece = a
        }
        i++
    }
    val path = File(spiece ?: fail("missing SPIECE_MODEL\n$USAGE"))
    if (!path.isFile) fail("SentencePiece model file $path does not exist (expected e.g. spiece.model)")
    val tokenizer = try {
        AlbertTokenizer(SentencePieceModel.parse(path.readBytes()), lower, keepAccents, splitDigitComma, splitUserDefined)
    } catch (e: IllegalArgumentException) {
        fail("$path: ${e.message}")
    }
    // Lines end at "\n" only: a text may hold "\r", U+0085 or U+2028, which are not line ends here.
    val input = String(System.`in`.readBytes(), Charsets.UTF_8)
    val lines = input.split('\n').let { if (it.last().isEmpty()) it.dropLast(1) else it }
    for ((n, line) in lines.withIndex()) {
        val texts: List<String> = if (json) {
            when (val v = MiniJson.parse(line)) {
                is String -> listOf(v)
                is List<*> -> v.map { it as? String ?: fail("line ${n + 1}: expected strings, got $it") }
                else -> fail("line ${n + 1}: expected a JSON string or an array of one or two strings")
            }
        } else {
            line.split('\t')
        }
        if (texts.size !in 1..2) fail("line ${n + 1}: ${texts.size} texts; accepted: one, or two separated by a TAB")
        val enc = try {
            tokenizer.encode(texts[0], texts.getOrNull(1), maxLen)
        } catch (e: IllegalArgumentException) {
            fail("line ${n + 1}: ${e.message}")
        }
        val ids = enc.inputIds.joinToString(", ", "[", "]")
        if (all) {
            out.write("{\"input_ids\": $ids, \"token_type_ids\": ${enc.tokenTypeIds.joinToString(", ", "[", "]")}, " +
                "\"attention_mask\": ${enc.attentionMask.joinToString(", ", "[", "]")}, " +
                "\"offsets\": ${(0 until enc.size).joinToString(", ", "[", "]") { "[${enc.start(it)}, ${enc.end(it)}]" }}}\n")
        } else {
            out.write(ids + "\n")
        }
    }
    out.flush()
}
