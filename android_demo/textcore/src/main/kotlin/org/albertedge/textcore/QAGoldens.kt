package org.albertedge.textcore

/**
 * A question-answering bundle's `goldens.json` `qa_cases` (export/BUNDLE.md): a question and a
 * passage, the windows Python made, and for every program its start/end logits per window and
 * the answers Python decoded from them.
 */
class QAGoldenCase(
    val question: String,
    val context: String,
    val topK: Int,
    val windows: List<Encoding>,
    val programs: Map<String, QAGoldenProgram>,
)

class QAGoldenProgram(val startLogits: List<FloatArray>, val endLogits: List<FloatArray>, val answers: List<Answer>)

/**
 * Step 5 of export/BUNDLE.md's "Validating a bundle": the manifest is covered by no hash, and its
 * tokenizer settings change every answer, so each golden text case of goldens.json must encode to
 * its `input_ids`, `attention_mask` and `token_type_ids` (padded to `max_seq_len` for fixed-length
 * programs). Returns a one-line description of the first case that differs, or null.
 */
fun firstTokenizerMismatch(manifest: BundleManifest, tokenizer: AlbertTokenizer, goldensJson: String): String? {
    val cases = goldensArray(goldensJson, "cases", "")
    for ((i, c) in cases.withIndex()) {
        val case = c as? Map<*, *> ?: throw ManifestException("goldens.json: cases[$i] must be an object")
        val text = case["text"] as? String ?: continue // cases of a bundle without a tokenizer have no text
        fun longs(name: String) = (case[name] as? List<*>)?.map { it as? Long ?: throw ManifestException("goldens.json: cases[$i].$name holds $it") }
            ?: throw ManifestException("goldens.json: cases[$i].$name must be an array of integers")
        var enc = tokenizer.encode(text, case["text_pair"] as? String, manifest.maxSeqLen)
        if (!manifest.programs[0].dynamic) enc = enc.padTo(manifest.maxSeqLen, manifest.padTokenId)
        for ((name, got) in listOf("input_ids" to enc.inputIds, "attention_mask" to enc.attentionMask, "token_type_ids" to enc.tokenTypeIds)) {
            if (got.toList() != longs(name)) {
                return "goldens.json: case $i (\"${text.take(40)}\"): the manifest's tokenizer settings give $name ${got.toList().take(12)}…, " +
                    "the golden case has ${longs(name).take(12)}…; the manifest or spiece.model was edited: re-export the bundle"
            }
        }
    }
    return null
}

/** The array [field] of goldens.json text; [ManifestException] (with [hint]) when it is not there. */
private fun goldensArray(goldensJson: String, field: String, hint: String): List<*> {
    val root = try {
        MiniJson.parse(goldensJson)
    } catch (e: JsonException) {
        throw ManifestException("goldens.json is not valid JSON (${e.message})")
    }
    return (root as? Map<*, *>)?.get(field) as? List<*>
        ?: throw ManifestException("goldens.json: field '$field' is missing or not an array$hint")
}

object QAGoldens {
    /** `qa_cases` of goldens.json text; throws [ManifestException] naming the field that is wrong. */
    fun parse(goldensJson: String): List<QAGoldenCase> {
        val cases = goldensArray(goldensJson, "qa_cases", "; this is not a question-answering bundle's goldens")
        return cases.mapIndexed { i, c -> parseCase(c, "goldens.json: qa_cases[$i]") }
    }

    /**
     * What textcore gives differently from the goldens, one line per difference (empty: all equal):
     * its windows for each question, and the answers it decodes from each program's golden logits
     * (texts and spans exactly, scores within 1e-5 relative).
     */
    fun check(manifest: BundleManifest, tokenizer: AlbertTokenizer, cases: List<QAGoldenCase>): List<String> {
        val settings = manifest.qa ?: throw ManifestException("manifest.json: this bundle has no 'qa'; it is not a question-answering bundle")
        val out = ArrayList<String>()
        for ((i, case) in cases.withIndex()) {
            val at = "qa_cases[$i] \"${case.question}\""
            val windows = QuestionAnswering.windows(tokenizer, case.question, case.context, settings)
            if (windows.size != case.windows.size) {
                out += "$at: ${windows.size} windows, golden ${case.windows.size}"
                continue
            }
            for ((w, golden) in case.windows.withIndex()) {
                // A fixed-length bundle's golden windows are padded.
                if (windows[w].padTo(golden.size, tokenizer.padId) != golden) out += "$at window $w: differs from the golden window"
            }
            for (program in manifest.programs) {
                val expected = case.programs[program.name]
                if (expected == null) {
                    out += "$at: no golden logits for program ${program.name}"
                    continue
                }
                val padded = if (program.dynamic) windows else windows.map { it.padTo(program.maxSeqLen, tokenizer.padId) }
                val answers = try {
                    QuestionAnswering.decode(padded, expected.startLogits, expected.endLogits, case.context, settings, tokenizer.clsId, case.topK)
                } catch (e: QAException) {
                    out += "$at ${program.name}: ${e.message}"
                    continue
                }
                sameAnswers(answers, expected.answers)?.let { out += "$at ${program.name}: $it" }
            }
        }
        return out
    }

    /**
     * Null when [got] are [want]: the same answers (text, start, end) with scores within 1e-5
     * relative. numpy's float32 rounding varies with the CPU and differs from textcore's by a few
     * ulp, so two answers whose scores are that close may swap ranks, or trade places at the last
     * rank (the top-k cut): accepted when the scores rank by rank still agree. Otherwise a
     * one-line description of the first difference.
     */
    fun sameAnswers(got: List<Answer>, want: List<Answer>): String? {
        fun close(a: Double, b: Double) = kotlin.math.abs(a - b) <= 1e-5 * maxOf(kotlin.math.abs(a), kotlin.math.abs(b)) + 1e-12
        fun Answer.span() = Triple(text, start, end)
        fun Answer.show() = "\"$text\" ($start..$end, score $score)"
        if (got.size != want.size) return "${got.size} answers, golden ${want.size}: ${got.map { it.text }} vs ${want.map { it.text }}"
        for (k in got.indices) {
            val a = got[k]
            val e = want[k]
            if (!close(a.score, e.score)) return "answer $k is ${a.show()}, golden ${e.show()}"
            if (a.span() == e.span()) continue
            // A swap of two near-equal answers: each is in the other list with a close score.
            val swapped = want.any { it.span() == a.span() && close(it.score, a.score) } &&
                got.any { it.span() == e.span() && close(it.score, e.score) }
            if (!swapped && k != want.size - 1) return "answer $k is ${a.show()}, golden ${e.show()}"
        }
        return null
    }

    private fun parseCase(c: Any?, at: String): QAGoldenCase {
        val case = c as? Map<*, *> ?: throw ManifestException("$at must be an object")
        fun str(name: String) = case[name] as? String ?: throw ManifestException("$at: field '$name' must be a string")
        val windows = (case["windows"] as? List<*>)?.mapIndexed { j, w -> parseWindow(w, "$at.windows[$j]") }
            ?: throw ManifestException("$at: field 'windows' must be an array")
        val programs = (case["programs"] as? Map<*, *>)
            ?: throw ManifestException("$at: field 'programs' must be an object")
        return QAGoldenCase(
            question = str("question"),
            context = str("context"),
            topK = (case["top_k"] as? Long)?.toInt() ?: throw ManifestException("$at: field 'top_k' must be an integer"),
            windows = windows,
            programs = programs.entries.associate { (name, v) ->
                val p = v as? Map<*, *> ?: throw ManifestException("$at.programs.$name must be an object")
                val where = "$at.programs.$name"
                name.toString() to QAGoldenProgram(
                    rows(p["start_logits"], "$where.start_logits"),
                    rows(p["end_logits"], "$where.end_logits"),
                    (p["answers"] as? List<*>)?.mapIndexed { k, a -> parseAnswer(a, "$where.answers[$k]") }
                        ?: throw ManifestException("$where: field 'answers' must be an array"),
                )
            },
        )
    }

    private fun parseWindow(w: Any?, at: String): Encoding {
        val o = w as? Map<*, *> ?: throw ManifestException("$at must be an object")
        fun ints(name: String, nullAs: Int? = null): IntArray = (o[name] as? List<*>)?.map {
            when {
                it is Long -> it.toInt()
                it == null && nullAs != null -> nullAs
                else -> throw ManifestException("$at: field '$name' holds ${it ?: "null"}; accepted: integers")
            }
        }?.toIntArray() ?: throw ManifestException("$at: field '$name' must be an array")
        val offsets = (o["offsets"] as? List<*>)?.flatMap { span ->
            (span as? List<*>)?.map { (it as? Long)?.toInt() ?: throw ManifestException("$at: field 'offsets' holds $it") }
                ?.takeIf { it.size == 2 } ?: throw ManifestException("$at: field 'offsets' must hold [start, end] pairs")
        }?.toIntArray() ?: throw ManifestException("$at: field 'offsets' must be an array")
        val ids = ints("input_ids")
        return try {
            Encoding(
                LongArray(ids.size) { ids[it].toLong() },
                ints("attention_mask").map { it.toLong() }.toLongArray(),
                ints("token_type_ids").map { it.toLong() }.toLongArray(),
                offsets,
                ints("word_ids", nullAs = -1),
                ints("sequence_ids", nullAs = -1),
            )
        } catch (e: IllegalArgumentException) {
            throw ManifestException("$at: ${e.message}")
        }
    }

    private fun rows(v: Any?, at: String): List<FloatArray> = (v as? List<*>)?.map { row ->
        (row as? List<*>)?.map { (it as? Number)?.toFloat() ?: throw ManifestException("$at holds $it; accepted: numbers") }
            ?.toFloatArray() ?: throw ManifestException("$at must be an array of arrays of numbers")
    } ?: throw ManifestException("$at must be an array of arrays of numbers")

    private fun parseAnswer(a: Any?, at: String): Answer {
        val o = a as? Map<*, *> ?: throw ManifestException("$at must be an object")
        return Answer(
            o["answer"] as? String ?: throw ManifestException("$at: field 'answer' must be a string"),
            (o["start"] as? Long)?.toInt() ?: throw ManifestException("$at: field 'start' must be an integer"),
            (o["end"] as? Long)?.toInt() ?: throw ManifestException("$at: field 'end' must be an integer"),
            (o["score"] as? Number)?.toDouble() ?: throw ManifestException("$at: field 'score' must be a number"),
        )
    }
}
