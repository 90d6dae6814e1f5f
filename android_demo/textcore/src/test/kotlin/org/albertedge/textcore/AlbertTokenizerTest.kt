package org.albertedge.textcore

import org.junit.Assert.assertArrayEquals
import org.junit.Assert.assertEquals
import org.junit.Assert.assertTrue
import org.junit.Assert.fail
import org.junit.Test

class AlbertTokenizerTest {
    private val tok by lazy { AlbertTokenizer(SentencePieceModel.parse(TestFiles.spiece)) }

    private fun ids(vararg xs: Long) = xs

    @Test fun specialIdsAndModel() {
        assertEquals(listOf(0, 1, 2, 3, 4), listOf(tok.padId, tok.unkId, tok.clsId, tok.sepId, tok.maskId))
        assertEquals(1500, tok.vocabSize)
        val model = SentencePieceModel.parse(TestFiles.spiece)
        assertEquals("[CLS]", model.pieces[2])
        assertTrue(model.precompiledCharsmap.isNotEmpty())
        assertTrue(model.addDummyPrefix && model.removeExtraWhitespaces && model.escapeWhitespaces)
    }

    @Test fun fewCases() {
        // From export/goldens/tokenizer_cases.jsonl.
        assertArrayEquals(ids(2, 3), tok.encode("").inputIds)
        assertArrayEquals(ids(2, 135, 1494, 1494, 1497, 1486, 84, 15, 3), tok.encode("Hello, world!").inputIds)
        val pair = tok.encode("Hello world", "second text")
        assertArrayEquals(ids(2, 135, 1494, 1494, 1497, 84, 3, 13, 1492, 1499, 1490, 1497, 1495, 270, 13, 31, 1499, 1476, 31, 3), pair.inputIds)
        assertArrayEquals(LongArray(7) { 0 } + LongArray(13) { 1 }, pair.tokenTypeIds)
        assertArrayEquals(LongArray(20) { 1 }, pair.attentionMask)
        // Lower case, accents and TeX quotes normalize away (the offsets still index what was typed).
        assertArrayEquals(tok.encode("\"hello\" cafe").inputIds, tok.encode("``HÉLLO'' CAFÉ").inputIds)
        // Special-token strings in the text are real special tokens.
        assertEquals(tok.tokenize("a") + "[MASK]" + tok.tokenize("b"), tok.tokenize("a [MASK] b"))
    }

    @Test fun offsetsIndexCodePointsOfEachText() {
        // From export/goldens/tokenizer_cases.jsonl: [CLS] ▁h e l l o , ▁world ! [SEP].
        val hello = tok.encode("Hello, world!")
        assertArrayEquals(intArrayOf(0, 0, 0, 2, 2, 3, 3, 4, 4, 5, 5, 6, 7, 12, 12, 13, 0, 0), hello.offsets)
        assertEquals(7, hello.start(6))
        assertEquals(12, hello.end(6))
        // Pair tokens index the pair; [CLS] and [SEP] get (0, 0).
        val pair = tok.encode("Hello world", "second text")
        assertArrayEquals(intArrayOf(5, 6, 7, 7, 7, 8, 8, 9, 9, 10, 10, 11, 0, 0), pair.offsets.copyOfRange(26, 40))
        // The '"' made from `` spans both characters; a deleted accent joins its letter's span.
        val quoted = tok.encode("``HÉLLO'' CAFE\u0301")
        assertEquals(listOf(0, 2), listOf(quoted.start(1), quoted.end(1)))
        assertEquals(15, quoted.end(quoted.size - 2))
    }

    @Test fun utf16IndexHighlightsTokensOutsideTheBmp() {
        // Python: [text[s:e] for s, e in tok.encode(text).offsets]; 👍🏽 and 𝟙 are two UTF-16 chars each.
        val text = "I 👍🏽 it, 𝟙x"
        val enc = tok.encode(text)
        assertArrayEquals(intArrayOf(0, 0, 0, 0, 0, 1, 2, 2, 2, 4, 5, 5, 5, 7, 7, 8, 9, 10, 10, 11, 0, 0), enc.offsets)
        val shown = (0 until enc.size).map { text.substring(utf16Index(text, enc.start(it)), utf16Index(text, enc.end(it))) }
        assertEquals(listOf("", "", "I", "", "👍🏽", "", "it", ",", "𝟙", "x", ""), shown)
        assertEquals(14, utf16Index(text, 11))
        assertEquals(text.length, utf16Index(text, text.codePointCount(0, text.length)))
        for (bad in listOf(-1, 12)) {
            try {
                utf16Index(text, bad); fail()
            } catch (e: TokenizerException) {
                assertTrue(e.message!!, e.message!!.contains("$bad is outside the text; accepted: 0..11"))
            }
        }
    }

    @Test fun truncatesLongestFirst() {
        val long = "one two three four five six seven eight nine ten eleven twelve"
        val a = tok.encode(long).inputIds.size
        assertEquals(10, tok.encode(long, maxLength = 10).size)
        assertTrue(a > 10)
        val p = tok.encode(long, "short", maxLength = 12)
        assertEquals(12, p.size)
        val shortLen = tok.encode("short").size - 2
        // The shorter text keeps all of its tokens (fewer than half the budget of 9).
        assertEquals(shortLen + 1L, p.tokenTypeIds.sum())
        assertEquals(3L, p.inputIds.last())
        try {
            tok.encode("x", maxLength = 1); fail()
        } catch (e: TokenizerException) {
            assertTrue(e.message!!.contains(">= 2"))
        }
        try {
            tok.encode("x", "y", maxLength = 2); fail()
        } catch (e: TokenizerException) {
            assertTrue(e.message!!.contains(">= 3"))
        }
    }

    @Test fun padsForFixedLengthPrograms() {
        val e = tok.encode("Hello world").padTo(10, tok.padId)
        assertArrayEquals(ids(2, 135, 1494, 1494, 1497, 84, 3, 0, 0, 0), e.inputIds)
        assertArrayEquals(ids(1, 1, 1, 1, 1, 1, 1, 0, 0, 0), e.attentionMask)
        assertArrayEquals(LongArray(10), e.tokenTypeIds)
        assertArrayEquals(intArrayOf(0, 0, 0, 2, 2, 3, 3, 4, 4, 5, 6, 11, 0, 0) + IntArray(6), e.offsets)
    }

    @Test fun rejectsNonModels() {
        for (bad in listOf(ByteArray(0), "not a model".toByteArray(), byteArrayOf(0x0A, 0x7F))) {
            try {
                SentencePieceModel.parse(bad); fail()
            } catch (e: SentencePieceException) {
                assertTrue(e.message!!, e.message!!.contains("SentencePiece"))
            }
        }
    }

    @Test fun fromManifestUsesFlagsAndChecksIds() {
        fun manifest(unk: Int, lower: Boolean) = BundleManifest.parse(
            """{"format": "albert-edge-bundle", "schema_version": 1, "task": "sequence-classification",
            "architecture": "AlbertForSequenceClassification",
            "labels": ["a", "b"], "max_seq_len": 16, "vocab_size": 1500, "type_vocab_size": 2, "pad_token_id": 0,
            "default_program": "fp32", "goldens": null,
            "tokenizer": {"file": "spiece.model", "size_bytes": 1, "sha256": "${"0".repeat(64)}", "do_lower_case": $lower,
              "keep_accents": false, "split_digit_comma": false, "vocab_size": 1500, "pad_id": 0, "unk_id": $unk,
              "cls_id": 2, "sep_id": 3, "mask_id": 4, "max_length": 16, "truncation": "longest_first", "padding": "do_not_pad"},
            "programs": [{"name": "fp32", "file": "model_fp32.pte", "size_bytes": 1, "sha256": "${"0".repeat(64)}",
              "method": "forward", "inputs": [
                {"name": "input_ids", "min_seq_len": 1, "max_seq_len": 16, "dynamic": true},
                {"name": "attention_mask", "min_seq_len": 1, "max_seq_len": 16, "dynamic": true},
                {"name": "token_type_ids", "min_seq_len": 1, "max_seq_len": 16, "dynamic": true}],
              "outputs": [{"name": "logits"}]}]}"""
        )
        val cased = AlbertTokenizer.fromManifest(manifest(1, lower = false), TestFiles.spiece)
        assertEquals(false, cased.doLowerCase)
        try {
            AlbertTokenizer.fromManifest(manifest(7, lower = true), TestFiles.spiece); fail()
        } catch (e: ManifestException) {
            assertTrue(e.message!!, e.message!!.contains("'tokenizer.unk_id' is 7"))
        }
    }

    /** Every case of export/goldens/tokenizer_cases.jsonl (the Python tokenizer's output): ids and offsets. */
    @Test fun allGoldenCases() {
        val header = MiniJson.parse(TestFiles.goldenLines[0]).obj()
        assertEquals("albert-edge-tokenizer-goldens/3", header["format"])
        val golden = AlbertTokenizer(
            SentencePieceModel.parse(TestFiles.spiece),
            doLowerCase = header["do_lower_case"] as Boolean,
            keepAccents = header["keep_accents"] as Boolean,
            splitDigitComma = header["split_digit_comma"] as Boolean,
            splitUserDefined = header["split_user_defined"] as Boolean,
        )
        val cases = TestFiles.goldenLines.drop(1).filter { it.isNotBlank() }
        assertEquals(header["num_cases"], cases.size.toLong())
        val failures = ArrayList<String>()
        for ((n, line) in cases.withIndex()) {
            val c = MiniJson.parse(line).obj()
            val enc = golden.encode(c["text"] as String, c["text_pair"] as String?, (c["max_length"] as Long).toInt())
            val want = Encoding(
                c["input_ids"].doubles().map { it.toLong() }.toLongArray(),
                c["attention_mask"].doubles().map { it.toLong() }.toLongArray(),
                c["token_type_ids"].doubles().map { it.toLong() }.toLongArray(),
                (c["offsets"] as List<*>).flatMap { span -> span.doubles().map { it.toInt() } }.toIntArray(),
                enc.wordIds, // not in the goldens (the QA fixture checks them)
                enc.sequenceIds,
            )
            if (enc != want) {
                failures.add(
                    "case ${n + 1} ${MiniJsonQuote(c["text"] as String)}: expected ${want.inputIds.toList()} " +
                        "${want.offsets.toList()}, got ${enc.inputIds.toList()} ${enc.offsets.toList()}"
                )
            }
        }
        assertTrue("${failures.size} of ${cases.size} golden cases differ:\n" + failures.take(5).joinToString("\n"), failures.isEmpty())
    }

    private fun MiniJsonQuote(s: String) = s.codePoints().toArray().joinToString("", "\"", "\"") {
        if (it in 0x20..0x7E) String(Character.toChars(it)) else "\\u{%x}".format(it)
    }
}
