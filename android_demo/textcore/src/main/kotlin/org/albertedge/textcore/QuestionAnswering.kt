package org.albertedge.textcore

/** A question, passage, QA setting or logits that cannot be used; the message says what is accepted. */
class QAException(message: String) : IllegalArgumentException(message)

/**
 * How questions and passages become windows and logits become answers: a bundle manifest's `qa`
 * (export/BUNDLE.md; Python's `albert_edge.qa.QASettings`). Defaults are the transformers
 * pipeline's. [noAnswerThreshold] null never answers "no answer"; t ranks the no-answer `""`
 * above a span when `ln(p_null) - ln(p_span) > t` (0 is the pipeline's handle_impossible_answer).
 */
data class QASettings(
    val maxSeqLen: Int = 384,
    val docStride: Int = 128,
    val maxQuestionLen: Int = 64,
    val maxAnswerLen: Int = 15,
    val noAnswerThreshold: Double? = null,
    val alignToWords: Boolean = true,
) {
    init {
        fun check(name: String, value: Int, low: Int) {
            if (value < low) throw QAException("QA setting $name=$value; accepted: an int >= $low")
        }
        check("max_seq_len", maxSeqLen, 8)
        check("doc_stride", docStride, 0)
        check("max_question_len", maxQuestionLen, 1)
        check("max_answer_len", maxAnswerLen, 1)
        if (docStride >= maxSeqLen) throw QAException("QA setting doc_stride=$docStride must be smaller than max_seq_len=$maxSeqLen")
        noAnswerThreshold?.let {
            if (it.isNaN() || it.isInfinite()) throw QAException("QA setting no_answer_threshold=$it; accepted: null or a finite number")
        }
    }

    companion object {
        /** Settings for programs of [maxSeqLen] tokens: stride `min(maxSeqLen / 2, 128)`, question `min(64, maxSeqLen / 2)` tokens. */
        fun forLength(maxSeqLen: Int): QASettings =
            QASettings(maxSeqLen, minOf(maxSeqLen / 2, 128), minOf(64, maxSeqLen / 2))
    }
}

/**
 * One answer: [text] is `context` code points [start] until [end] (use [utf16Index] to highlight
 * it in a `String`); the no-answer is `""` at (0, 0). [score] is the summed span probability over
 * windows (for the no-answer, the lowest window's no-answer probability).
 */
data class Answer(val text: String, val start: Int, val end: Int, val score: Double)

/**
 * Extractive question answering around a program that maps a window to start and end logits: a
 * port of albert_edge/qa.py (docs/qa.md), which gives the answers transformers 4.57's
 * question-answering pipeline gives. textcore's JUnit tests replay
 * `src/test/resources/qa_cases.json` (export/make_qa_goldens.py) and check windows and answers.
 */
object QuestionAnswering {
    /** A longer passage is refused (about 200 windows of 384 tokens: minutes on a phone). */
    const val MAX_CONTEXT_CHARS = 100_000
    private const val MASKED = -10000f // the pipeline's logit for tokens that cannot be in an answer

    /**
     * `[CLS] question [SEP] window [SEP]` for each window of [context]: the question cut to
     * `maxQuestionLen` tokens, windows of what fits in `maxSeqLen`, consecutive ones sharing
     * `docStride` tokens (half a window when a long question leaves less room than that).
     * Offsets of token type 1 index [context] in code points. [padTo] pads each window (for a
     * fixed-length program).
     */
    fun windows(tokenizer: AlbertTokenizer, question: String, context: String, settings: QASettings, padTo: Int? = null): List<Encoding> {
        checkText(question, "question")
        checkText(context, "context")
        val chars = context.codePointCount(0, context.length)
        if (chars > MAX_CONTEXT_CHARS) {
            throw QAException("context has $chars characters; accepted: at most $MAX_CONTEXT_CHARS (split the document into passages and ask each)")
        }
        val windows = try {
            tokenizer.encodeWindows(
                question, context, settings.maxSeqLen, settings.docStride,
                maxTextTokens = settings.maxQuestionLen, shrinkStride = true,
            )
        } catch (e: TokenizerException) {
            throw QAException("cannot make QA windows: ${e.message}")
        }
        return if (padTo == null) windows else windows.map { it.padTo(padTo, tokenizer.padId) }
    }

    /**
     * The [topK] best answers from each window's start and end logits, best first.
     *
     * Per window: tokens outside the passage (question, `[SEP]`, padding) get logit -10000 except
     * `[CLS]`; softmax of each row; `[CLS]`'s product is the window's no-answer probability, then
     * `[CLS]` is zeroed. Spans `start <= end < start + maxAnswerLen` score `p_start * p_end`; the
     * `2 topK + 10` best (`topK` without word alignment) are kept when both ends are passage
     * tokens, widened to whole words if `alignToWords`. Across windows, answers with the same
     * lower-cased text are one, their scores summed.
     */
    fun decode(
        windows: List<Encoding>,
        startLogits: List<FloatArray>,
        endLogits: List<FloatArray>,
        context: String,
        settings: QASettings,
        clsId: Int,
        topK: Int = 1,
    ): List<Answer> {
        if (topK < 1) throw QAException("topK=$topK; accepted: an int >= 1")
        if (windows.isEmpty() || windows.size != startLogits.size || windows.size != endLogits.size) {
            throw QAException(
                "${windows.size} windows, ${startLogits.size} start and ${endLogits.size} end logit rows; need one of each per window"
            )
        }
        val cps = context.codePoints().toArray()
        val preK = if (settings.alignToWords) 2 * topK + 10 else topK
        val answers = ArrayList<MutableAnswer>()
        val byText = HashMap<String, MutableAnswer>()
        var nullScore = Double.POSITIVE_INFINITY
        for ((w, enc) in windows.withIndex()) {
            val n = enc.size
            if (startLogits[w].size != n || endLogits[w].size != n) {
                throw QAException("window $w has $n tokens but ${startLogits[w].size} start and ${endLogits[w].size} end logits")
            }
            val keep = BooleanArray(n) {
                (enc.sequenceIds[it] == 1 || enc.inputIds[it] == clsId.toLong()) && enc.attentionMask[it] == 1L
            }
            val pStart = softmaxMasked(startLogits[w], keep)
            val pEnd = softmaxMasked(endLogits[w], keep)
            nullScore = minOf(nullScore, (pStart[0] * pEnd[0]).toDouble())
            pStart[0] = 0f
            pEnd[0] = 0f
            val words = contextWords(enc)
            for ((s, e, score) in topSpans(pStart, pEnd, preK, settings.maxAnswerLen)) {
                // A span is context tokens only: [CLS] stands for "no answer" (nullScore), never for an
                // end of a text (albert_edge.qa.decode_answers does the same).
                // Spans whose probability underflowed to 0 carry no evidence (and tie arbitrarily in numpy): dropped.
                if (!keep[s] || !keep[e] || enc.inputIds[s] == clsId.toLong() || enc.inputIds[e] == clsId.toLong() || score <= 0f) continue
                val a: Int
                val b: Int
                if (settings.alignToWords && enc.wordIds[s] >= 0 && enc.wordIds[e] >= 0) {
                    a = words[enc.wordIds[s]]!!.first
                    b = words[enc.wordIds[e]]!!.second
                } else { // [CLS] has no word: token offsets for both ends, as the pipeline does
                    a = enc.start(s)
                    b = enc.end(e)
                }
                val text = String(cps, a, b - a)
                val key = lowerKey(cps, a, b)
                val seen = byText[key]
                if (seen != null) {
                    seen.score += score.toDouble()
                } else {
                    val answer = MutableAnswer(text, a, b, score.toDouble())
                    byText[key] = answer
                    answers.add(answer)
                }
            }
        }
        // (rank key, answer); the no-answer ranks as p_null / e^t, so it wins exactly when ln(p_null / p_span) > t.
        val ranked = answers.map { it.score to Answer(it.text, it.start, it.end, it.score) }.toMutableList()
        settings.noAnswerThreshold?.let { t -> ranked.add(nullScore * StrictMath.exp(-t) to Answer("", 0, 0, nullScore)) }
        // Every span's probability underflowed to 0: "no answer", score 0, rather than none (as Python).
        if (ranked.isEmpty()) return listOf(Answer("", 0, 0, 0.0))
        return ranked.sortedByDescending { it.first }.take(topK).map { it.second } // stable, as Python's sort
    }

    private class MutableAnswer(val text: String, val start: Int, val end: Int, var score: Double)

    /**
     * float32 softmax of [logits] with tokens not in [keep] at -10000, as numpy computes it up to
     * rounding: numpy's float32 `exp` and pairwise float32 sum (which vary with the CPU) can differ
     * from this by a few ulp, so two spans whose scores are that close may swap ranks
     * ([QAGoldens.check] allows it). `StrictMath.exp` makes the result the same on every device.
     */
    private fun softmaxMasked(logits: FloatArray, keep: BooleanArray): FloatArray {
        if (logits.any { it.isNaN() || it.isInfinite() }) throw QAException("the logits hold NaN or infinite values; the program output is unusable")
        val x = FloatArray(logits.size) { if (keep[it]) logits[it] else MASKED }
        val max = x.max()
        var sum = 0.0
        for (i in x.indices) {
            x[i] = StrictMath.exp((x[i] - max).toDouble()).toFloat()
            sum += x[i]
        }
        val total = sum.toFloat()
        for (i in x.indices) x[i] = x[i] / total
        return x
    }

    /**
     * The [k] best `(start, end, score)` with `0 <= end - start < maxAnswerLen`; equal scores in
     * row-major order (what numpy's argmax gives for k = 1; for larger k numpy's argpartition leaves
     * the order of exact ties, and which of them survives the cut, unspecified).
     */
    private fun topSpans(pStart: FloatArray, pEnd: FloatArray, k: Int, maxAnswerLen: Int): List<Triple<Int, Int, Float>> {
        val n = pStart.size
        val spans = ArrayList<Triple<Int, Int, Float>>()
        for (s in 0 until n) for (e in s until minOf(n, s + maxAnswerLen)) spans.add(Triple(s, e, pStart[s] * pEnd[e]))
        // sortedByDescending is stable: ties keep the row-major order they were added in.
        return spans.sortedByDescending { it.third }.take(k)
    }

    /** Code-point span of each passage word of the window: its first token's start, last token's end. */
    private fun contextWords(enc: Encoding): Map<Int, Pair<Int, Int>> {
        val spans = HashMap<Int, Pair<Int, Int>>()
        for (i in 0 until enc.size) {
            val w = enc.wordIds[i]
            if (enc.sequenceIds[i] != 1 || w < 0) continue
            val prev = spans[w]
            spans[w] = if (prev == null) enc.start(i) to enc.end(i) else prev.first to enc.end(i)
        }
        return spans
    }

    /**
     * The answer's merge key: lower case per code point from textcore's Unicode tables (Python's
     * `str.lower`, except that a capital sigma ending a word becomes `σ`, not `ς`: only whether
     * "ΟΔΟΣ" and "οδος" count as one answer can differ).
     */
    private fun lowerKey(cps: IntArray, start: Int, end: Int): String {
        val sb = StringBuilder(end - start)
        for (i in start until end) for (c in UnicodeProps.lower(cps[i])) sb.appendCodePoint(c)
        return sb.toString()
    }

    /** Python's `str.isspace` (what `str.strip` removes): White_Space and U+001C..U+001F. */
    private fun isSpace(cp: Int): Boolean = when (cp) {
        0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x1C, 0x1D, 0x1E, 0x1F, 0x20, 0x85, 0xA0, 0x1680, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000 -> true
        else -> cp in 0x2000..0x200A
    }

    private fun checkText(value: String, name: String) {
        if (value.codePoints().allMatch { isSpace(it) }) throw QAException("$name is empty; give a non-blank $name")
    }
}
