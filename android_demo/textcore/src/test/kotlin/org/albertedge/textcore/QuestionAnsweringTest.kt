package org.albertedge.textcore

import java.io.File
import org.junit.Assert.assertEquals
import org.junit.Assert.assertTrue
import org.junit.Assert.fail
import org.junit.Test

class QuestionAnsweringTest {
    private val fixture: Map<String, Any?> by lazy { MiniJson.parse(TestFiles.resource("qa_cases.json")).obj() }

    private val tokenizer: AlbertTokenizer by lazy {
        val spiece = File(TestFiles.repo, fixture["spiece"] as String).readBytes()
        AlbertTokenizer(
            SentencePieceModel.parse(spiece),
            fixture["do_lower_case"] as Boolean,
            fixture["keep_accents"] as Boolean,
            fixture["split_digit_comma"] as Boolean,
        )
    }

    private fun settings(o: Map<String, Any?>) = QASettings(
        (o["max_seq_len"] as Long).toInt(),
        (o["doc_stride"] as Long).toInt(),
        (o["max_question_len"] as Long).toInt(),
        (o["max_answer_len"] as Long).toInt(),
        (o["no_answer_threshold"] as Number?)?.toDouble(),
        o["align_to_words"] as Boolean,
    )

    private fun ints(v: Any?): List<Int> = (v as List<*>).map { if (it == null) -1 else (it as Long).toInt() }
    private fun floats(v: Any?): FloatArray = (v as List<*>).map { (it as Number).toFloat() }.toFloatArray()

    /** qa_cases.json (export/make_qa_goldens.py): Python's windows and answers, from the stored logits. */
    @Test fun windowsAndAnswersEqualPythons() {
        assertEquals("albert-edge-qa-cases/1", fixture["format"])
        val cases = fixture["cases"] as List<*>
        assertTrue(cases.size >= 20)
        var windowsChecked = 0
        for ((n, c) in cases.withIndex()) {
            val case = c.obj()
            val s = settings(case["settings"].obj())
            val context = case["context"] as String
            val padTo = if (case["pad"] as Boolean) s.maxSeqLen else null
            val windows = QuestionAnswering.windows(tokenizer, case["question"] as String, context, s, padTo)
            val want = case["windows"] as List<*>
            assertEquals("case $n: number of windows", want.size, windows.size)
            for ((w, expected) in want.withIndex()) {
                val e = expected.obj()
                val got = windows[w]
                val label = "case $n window $w"
                assertEquals("$label input_ids", ints(e["input_ids"]), got.inputIds.map { it.toInt() })
                assertEquals("$label attention_mask", ints(e["attention_mask"]), got.attentionMask.map { it.toInt() })
                assertEquals("$label token_type_ids", ints(e["token_type_ids"]), got.tokenTypeIds.map { it.toInt() })
                assertEquals("$label offsets", (e["offsets"] as List<*>).flatMap { ints(it) }, got.offsets.toList())
                assertEquals("$label word_ids", ints(e["word_ids"]), got.wordIds.toList())
                assertEquals("$label sequence_ids", ints(e["sequence_ids"]), got.sequenceIds.toList())
                windowsChecked++
            }
            val answers = QuestionAnswering.decode(
                windows,
                (case["start_logits"] as List<*>).map { floats(it) },
                (case["end_logits"] as List<*>).map { floats(it) },
                context, s, (fixture["cls_id"] as Long).toInt(), (case["top_k"] as Long).toInt(),
            )
            val expected = (case["answers"] as List<*>).map { it.obj() }
            assertEquals(
                "case $n answers",
                expected.map { Triple(it["answer"], (it["start"] as Long).toInt(), (it["end"] as Long).toInt()) },
                answers.map { Triple(it.text, it.start, it.end) },
            )
            for ((a, e) in answers.zip(expected)) {
                val want = (e["score"] as Number).toDouble()
                assertEquals("case $n score of '${a.text}'", want, a.score, 1e-5 * want + 1e-12)
                // start/end count code points: the String slice is the answer.
                assertEquals(a.text, context.substring(utf16Index(context, a.start), utf16Index(context, a.end)))
            }
        }
        assertTrue(windowsChecked > 100)
    }

    @Test fun goldenAnswersAllowNearTiesToSwapButNothingElse() {
        val a = Answer("Alice", 26, 31, 0.400000)
        val b = Answer("Smith", 32, 37, 0.3999999)
        val c = Answer("Paris", 60, 65, 0.2)
        assertEquals(null, QAGoldens.sameAnswers(listOf(a, b, c), listOf(a, b, c)))
        assertEquals(null, QAGoldens.sameAnswers(listOf(b, a, c), listOf(a, b, c))) // a near-tie swapped
        val d = Answer("Lopez", 80, 85, 0.2000001)
        assertEquals(null, QAGoldens.sameAnswers(listOf(a, b, d), listOf(a, b, c))) // traded at the cut
        assertTrue(QAGoldens.sameAnswers(listOf(a, c, b), listOf(a, b, c))!!.startsWith("answer 1"))
        assertTrue(QAGoldens.sameAnswers(listOf(Answer("Alice", 26, 32, 0.4), b, c), listOf(a, b, c))!!.startsWith("answer 0"))
        assertTrue(QAGoldens.sameAnswers(listOf(a, b), listOf(a, b, c))!!.contains("2 answers, golden 3"))
        assertTrue(QAGoldens.sameAnswers(listOf(a.copy(score = 0.41), b, c), listOf(a, b, c))!!.contains("score 0.41"))
    }

    @Test fun loneSurrogatesAreRefused() {
        try {
            QuestionAnswering.windows(tokenizer, "who?", "half an emoji \uD83D here", QASettings.forLength(64)); fail()
        } catch (e: QAException) {
            assertTrue(e.message!!, e.message!!.contains("text_pair is not valid Unicode: lone surrogate U+D83D at code point 14"))
        }
    }

    @Test fun windowsOverlapByTheStride() {
        val context = (0 until 60).joinToString(" ") { "w$it" }
        val s = QASettings(maxSeqLen = 24, docStride = 5, maxQuestionLen = 8)
        val windows = QuestionAnswering.windows(tokenizer, "which word?", context, s)
        assertTrue(windows.size > 3)
        for (w in windows) assertTrue(w.size <= 24)
        // The last 5 passage tokens of a window are the first 5 of the next.
        fun passage(e: Encoding) = (0 until e.size).filter { e.sequenceIds[it] == 1 }.map { e.inputIds[it] to e.start(it) }
        for (k in 1 until windows.size) assertEquals(passage(windows[k - 1]).takeLast(5), passage(windows[k]).take(5))
    }

    @Test fun badInputIsRefusedWithOneLine() {
        val s = QASettings.forLength(64)
        fun refused(fragment: String, block: () -> Unit) {
            try {
                block(); fail("expected a QAException mentioning '$fragment'")
            } catch (e: QAException) {
                assertTrue("'${e.message}' should mention '$fragment'", e.message!!.contains(fragment))
            }
        }
        refused("question is empty") { QuestionAnswering.windows(tokenizer, " \u3000\n", "a passage", s) }
        refused("context is empty") { QuestionAnswering.windows(tokenizer, "q?", "\u001c ", s) }
        refused("at most 100000") { QuestionAnswering.windows(tokenizer, "q?", "a".repeat(100_001), s) }
        refused("doc_stride=64 must be smaller") { QASettings(maxSeqLen = 64, docStride = 64) }
        refused("max_seq_len=4") { QASettings(maxSeqLen = 4, docStride = 1) }
        refused("no_answer_threshold=NaN") { QASettings(noAnswerThreshold = Double.NaN) }
        val windows = QuestionAnswering.windows(tokenizer, "q?", "a short passage", s)
        val row = FloatArray(windows[0].size)
        refused("topK=0") { QuestionAnswering.decode(windows, listOf(row), listOf(row), "a short passage", s, tokenizer.clsId, 0) }
        refused("1 windows, 0 start") { QuestionAnswering.decode(windows, listOf(), listOf(row), "a short passage", s, tokenizer.clsId) }
        refused("but 3 start") { QuestionAnswering.decode(windows, listOf(FloatArray(3)), listOf(row), "a short passage", s, tokenizer.clsId) }
        val nan = row.copyOf().also { it[2] = Float.NaN }
        refused("NaN") { QuestionAnswering.decode(windows, listOf(nan), listOf(row), "a short passage", s, tokenizer.clsId) }
        // A question that leaves no room for the passage.
        val long = (0 until 80).joinToString(" ") { "q$it" }
        refused("cannot make QA windows") { QuestionAnswering.windows(tokenizer, long, "p", QASettings(maxSeqLen = 8, docStride = 2, maxQuestionLen = 64)) }
    }
}

class TokenizerGoldensTest {
    private val tokenizer = AlbertTokenizer(SentencePieceModel.parse(TestFiles.spiece))

    private fun manifest(dynamic: Boolean) = BundleManifest(
        1, "sequence-classification", listOf("a", "b"), 16, tokenizer.vocabSize, 2, tokenizer.padId, "p", null, null,
        listOf(ProgramInfo("p", FileEntry("p.pte", 1, "0".repeat(64)), "forward", dynamic, if (dynamic) 1 else 16, 16)),
    )

    private fun goldens(enc: Encoding, text: String) =
        """{"cases": [{"text": null, "input_ids": [5]}, {"text": ${MiniJsonText.quote(text)}, "input_ids": ${enc.inputIds.toList()},
            "attention_mask": ${enc.attentionMask.toList()}, "token_type_ids": ${enc.tokenTypeIds.toList()}}]}"""

    @Test fun goldenIdsMustBeWhatTheSettingsGive() {
        val text = "Hello, World! Café"
        val enc = tokenizer.encode(text, maxLength = 16)
        assertEquals(null, firstTokenizerMismatch(manifest(true), tokenizer, goldens(enc, text)))
        // Fixed-length programs: the goldens hold padded ids.
        assertEquals(null, firstTokenizerMismatch(manifest(false), tokenizer, goldens(enc.padTo(16, tokenizer.padId), text)))
        val cased = AlbertTokenizer(SentencePieceModel.parse(TestFiles.spiece), doLowerCase = false)
        val message = firstTokenizerMismatch(manifest(true), cased, goldens(enc, text))
        assertTrue(message, message!!.contains("case 1") && message.contains("input_ids") && message.contains("re-export"))
    }
}

private object MiniJsonText {
    fun quote(s: String) = "\"" + s.replace("\\", "\\\\").replace("\"", "\\\"") + "\""
}
