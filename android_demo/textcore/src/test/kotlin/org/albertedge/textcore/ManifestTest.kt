package org.albertedge.textcore

import org.junit.Assert.assertEquals
import org.junit.Assert.assertNull
import org.junit.Assert.assertTrue
import org.junit.Assert.fail
import org.junit.Test

class ManifestTest {
    private val sha = "a".repeat(64)

    private fun input(name: String, dynamic: Boolean = true) =
        """{"name": "$name", "dtype": "int64", "shape": [1, "seq"], "min_seq_len": ${if (dynamic) 1 else 32},
           "max_seq_len": 32, "dynamic": $dynamic, "min_value": 0, "max_value": 98}"""

    private fun program(name: String, dynamic: Boolean = true, outputs: List<String> = listOf("logits")) =
        """{"name": "$name", "file": "model_$name.pte", "size_bytes": 70664, "sha256": "$sha", "method": "forward",
           "recipe": {"name": "$name"}, "inputs": [${input("input_ids", dynamic)}, ${input("attention_mask", dynamic)},
           ${input("token_type_ids", dynamic)}], "outputs": [${outputs.joinToString { """{"name": "$it", "dtype": "float32", "shape": [1, 3]}""" }}],
           "executorch_version": "1.5.1"}"""

    private val tokenizer = """{"file": "spiece.model", "size_bytes": 261888, "sha256": "$sha", "type": "sentencepiece-unigram",
        "do_lower_case": true, "keep_accents": false, "split_digit_comma": false, "vocab_size": 1500, "pad_id": 0,
        "unk_id": 1, "cls_id": 2, "sep_id": 3, "mask_id": 4, "max_length": 32, "truncation": "longest_first",
        "padding": "do_not_pad"}"""

    private fun manifest(
        schema: String = "1",
        tok: String = tokenizer,
        default: String = "int8",
        programs: String = "${program("fp32")}, ${program("int8")}",
    ) = """{"format": "albert-edge-bundle", "schema_version": $schema, "created_by": "albert-edge 0.1.0",
        "task": "sequence-classification", "architecture": "AlbertForSequenceClassification",
        "labels": ["negative", "neutral", "positive"], "max_seq_len": 32, "vocab_size": 1500, "type_vocab_size": 2,
        "pad_token_id": 0, "default_program": "$default", "tokenizer": $tok,
        "goldens": {"file": "goldens.json", "size_bytes": 6913, "sha256": "$sha", "num_cases": 5},
        "programs": [$programs]}"""

    private fun assertRejected(json: String, vararg fragments: String) {
        try {
            BundleManifest.parse(json)
            fail("expected a ManifestException mentioning ${fragments.toList()}")
        } catch (e: ManifestException) {
            for (f in fragments) assertTrue("'${e.message}' should mention '$f'", e.message!!.contains(f))
        }
    }

    @Test fun parsesAValidManifest() {
        val m = BundleManifest.parse(manifest())
        assertEquals(1, m.schemaVersion)
        assertEquals("sequence-classification", m.task)
        assertEquals(listOf("negative", "neutral", "positive"), m.labels)
        assertEquals(32, m.maxSeqLen)
        assertEquals(1500, m.vocabSize)
        assertEquals(2, m.typeVocabSize)
        assertEquals(0, m.padTokenId)
        assertEquals("int8", m.defaultProgram)
        val t = m.tokenizer!!
        assertEquals(FileEntry("spiece.model", 261888, sha), t.file)
        assertTrue(t.doLowerCase && !t.keepAccents && !t.splitDigitComma)
        assertEquals(listOf(0, 1, 2, 3, 4), listOf(t.padId, t.unkId, t.clsId, t.sepId, t.maskId))
        assertEquals(32, t.maxLength)
        assertEquals("do_not_pad", t.padding)
        assertEquals(listOf("fp32", "int8"), m.programs.map { it.name })
        val p = m.program()
        assertEquals(ProgramInfo("int8", FileEntry("model_int8.pte", 70664, sha), "forward", true, 1, 32), p)
        assertEquals("goldens.json", m.goldens!!.file)
    }

    @Test fun splitUserDefinedIsOptional() {
        assertTrue(!BundleManifest.parse(manifest()).tokenizer!!.splitUserDefined)
        val on = tokenizer.replace("\"split_digit_comma\": false", "\"split_digit_comma\": false, \"split_user_defined\": true")
        assertTrue(BundleManifest.parse(manifest(tok = on)).tokenizer!!.splitUserDefined)
        assertRejected(manifest(tok = on.replace("\"split_user_defined\": true", "\"split_user_defined\": 1")),
            "tokenizer.split_user_defined", "true or false")
    }

    @Test fun fixedLengthProgramsAndNullTokenizer() {
        val m = BundleManifest.parse(manifest(tok = "null", default = "fp32", programs = program("fp32", dynamic = false)))
        assertNull(m.tokenizer)
        val p = m.program("fp32")
        assertEquals(false, p.dynamic)
        assertEquals(32, p.minSeqLen)
        assertEquals(32, p.maxSeqLen)
    }

    @Test fun refusesOtherSchemaVersions() {
        assertRejected(manifest(schema = "2"), "schema_version 2", "supported: 1")
    }

    @Test fun errorsNameTheField() {
        assertRejected(manifest().replace("\"max_seq_len\": 32, \"vocab_size\"", "\"vocab_size\""), "'max_seq_len'", "missing")
        assertRejected(manifest().replace("\"do_lower_case\": true", "\"do_lower_case\": 1"), "'tokenizer.do_lower_case'", "true or false")
        assertRejected(manifest().replace("\"labels\": [\"negative\"", "\"labels\": [7"), "'labels[0]'")
        assertRejected(manifest(default = "int4"), "'default_program'", "\"int4\"")
        assertRejected(manifest().replace("\"model_int8.pte\"", "\"../model_int8.pte\""), "'programs[1].file'", "plain file name")
        assertRejected(manifest().replace("\"padding\": \"do_not_pad\"", "\"padding\": \"longest\""), "'tokenizer.padding'")
        assertRejected(manifest().replace("\"albert-edge-bundle\"", "\"other\""), "'format'")
        assertRejected(manifest(programs = ""), "'programs'", "empty")
        assertRejected(manifest(programs = program("fp32").replace("attention_mask", "mask")), "'programs[0].inputs'")
        assertRejected("{\"format\": ", "not valid JSON")
    }

    /** export/BUNDLE.md, "Validating a bundle", step 2: what albert_edge.bundle_format.read_manifest refuses. */
    @Test fun refusesWhatThePythonReaderRefuses() {
        assertRejected(manifest().replace("\"sequence-classification\"", "\"summarization\""), "'task'", "\"question-answering\"")
        assertRejected(manifest().replace("AlbertForSequenceClassification", "AlbertForMaskedLM"), "'architecture'", "\"AlbertForSequenceClassification\"")
        assertRejected(manifest().replace("[\"negative\", \"neutral\", \"positive\"]", "[]"), "'labels' is empty")
        assertRejected(manifest().replace("[\"negative\", \"neutral\", \"positive\"]", "[\"a\", \"a\"]"), "\"a\" twice")
        assertRejected(manifest().replace("[\"negative\", \"neutral\"", "[\"\", \"neutral\""), "'labels[0]'", "non-empty")
        assertRejected(manifest().replace("\"max_length\": 32", "\"max_length\": 64"), "'tokenizer.max_length' is 64", "re-export")
        assertRejected(manifest().replace("\"mask_id\": 4", "\"mask_id\": 1500"), "'tokenizer.mask_id'", "[0, 1499]")
        assertRejected(manifest().replace("\"vocab_size\": 1500, \"pad_id\"", "\"vocab_size\": 2000, \"pad_id\""), "'tokenizer.vocab_size'", "[5, 1500]")
        assertRejected(manifest().replace("\"pad_token_id\": 0", "\"pad_token_id\": 1500"), "'pad_token_id'")
        assertRejected(manifest().replace("\"num_cases\": 5", "\"num_cases\": 0"), "'goldens.num_cases'")
        assertRejected(manifest(programs = program("fp32", dynamic = false), default = "fp32"), "'tokenizer.padding'", "\"max_length\"")
        val longer = program("fp32").replace("\"max_seq_len\": 32, \"dynamic\"", "\"max_seq_len\": 64, \"dynamic\"")
        assertRejected(manifest(programs = longer, default = "fp32"), "'programs[0].inputs[0].max_seq_len' is 64")
        val lying = program("fp32").replace("\"dynamic\": true", "\"dynamic\": false")
        assertRejected(manifest(programs = lying, default = "fp32"), "'programs[0].inputs[0].dynamic' is false", "1..32")
    }

    private val qa = """{"max_seq_len": 32, "doc_stride": 16, "max_question_len": 16, "max_answer_len": 15,
        "no_answer_threshold": null, "align_to_words": true}"""

    private fun qaManifest(qaField: String? = qa, outputs: List<String> = listOf("start_logits", "end_logits"), tok: String = tokenizer) =
        manifest(tok = tok, programs = "${program("fp32", outputs = outputs)}, ${program("int8", outputs = outputs)}")
            .replace("\"sequence-classification\"", "\"question-answering\"")
            .replace("AlbertForSequenceClassification", "AlbertForQuestionAnswering")
            .replace("[\"negative\", \"neutral\", \"positive\"]", "[\"start\", \"end\"]")
            .let { if (qaField == null) it else it.replace("\"programs\": [", "\"qa\": $qaField, \"programs\": [") }

    @Test fun questionAnsweringBundles() {
        val m = BundleManifest.parse(qaManifest())
        assertTrue(m.isQuestionAnswering)
        assertEquals(QASettings(32, 16, 16, 15, null, true), m.qa)
        assertEquals(listOf("start_logits", "end_logits"), m.program().outputs)
        val t = BundleManifest.parse(qaManifest(qa.replace("\"no_answer_threshold\": null", "\"no_answer_threshold\": 0")))
        assertEquals(0.0, t.qa!!.noAnswerThreshold!!, 0.0)
        assertNull(BundleManifest.parse(manifest()).qa)
        assertRejected(qaManifest(qaField = null), "needs field 'qa'")
        assertRejected(manifest().replace("\"programs\": [", "\"qa\": $qa, \"programs\": ["), "'qa' in a \"sequence-classification\" bundle")
        assertRejected(qaManifest(qa.replace("\"max_seq_len\": 32", "\"max_seq_len\": 64")), "'qa.max_seq_len' is 64", "re-export")
        assertRejected(qaManifest(qa.replace("\"doc_stride\": 16", "\"doc_stride\": 40")), "doc_stride=40 must be smaller")
        assertRejected(qaManifest(qa.replace("\"no_answer_threshold\": null", "\"no_answer_threshold\": \"0\"")), "'qa.no_answer_threshold'", "a number or null")
        assertRejected(qaManifest(qa.replace("\"align_to_words\": true", "\"align_to_words\": true, \"top\": 1")), "unknown field(s) top")
        assertRejected(qaManifest(qa.replace(", \"align_to_words\": true", "")), "'qa.align_to_words'", "missing")
        assertRejected(qaManifest(outputs = listOf("logits")), "outputs [logits]", "start_logits, end_logits")
        assertRejected(qaManifest(tok = "null"), "needs its tokenizer")
    }

    private val adaptive = """{"num_steps": 4, "rule": {"kind": "patience", "value": 1}}"""

    private fun adaptiveManifest(field: String = adaptive, base: String = manifest()) =
        base.replace("\"programs\": [", "\"adaptive\": $field, \"programs\": [")

    /** albert_edge/bundle_format.py `exit_settings` and ExitRule: what it accepts, and errors naming the field. */
    @Test fun adaptiveBundles() {
        assertNull(BundleManifest.parse(manifest()).adaptive)
        assertEquals(AdaptiveSettings(4, ExitRule.Patience(1)), BundleManifest.parse(adaptiveManifest()).adaptive)
        assertNull(BundleManifest.parse(adaptiveManifest("null")).adaptive)
        val conf = """{"num_steps": 6, "rule": {"kind": "confidence", "value": 0.9}}"""
        assertEquals(AdaptiveSettings(6, ExitRule.Confidence(0.9)), BundleManifest.parse(adaptiveManifest(conf)).adaptive)
        // Python accepts 2.0 as patience 2 and the integer 1 as confidence 1.
        assertEquals(ExitRule.Patience(2), BundleManifest.parse(adaptiveManifest(adaptive.replace("\"value\": 1", "\"value\": 2.0"))).adaptive!!.rule)
        assertEquals(ExitRule.Confidence(1.0), BundleManifest.parse(adaptiveManifest(conf.replace("0.9", "1"))).adaptive!!.rule)
        assertRejected(adaptiveManifest(adaptive.replace("\"num_steps\": 4", "\"num_steps\": 1")), "'adaptive.num_steps'", "an integer >= 2")
        assertRejected(adaptiveManifest(adaptive.replace("\"num_steps\": 4", "\"num_steps\": 4.5")), "'adaptive.num_steps'", "an integer")
        assertRejected(adaptiveManifest("""{"num_steps": 4}"""), "'adaptive'", "exactly num_steps, rule")
        assertRejected(adaptiveManifest(adaptive.replace("}}", "}, \"extra\": 1}")), "'adaptive'", "exactly num_steps, rule")
        assertRejected(adaptiveManifest("[4]"), "'adaptive'", "an object")
        assertRejected(adaptiveManifest(adaptive.replace("\"patience\"", "\"entropy\"")), "'adaptive.rule'", "\"entropy\" is not one of patience, confidence")
        assertRejected(adaptiveManifest(adaptive.replace("\"value\": 1", "\"value\": 0")), "'adaptive.rule'", "patience must be an integer >= 1")
        assertRejected(adaptiveManifest(adaptive.replace("\"value\": 1", "\"value\": 1.5")), "'adaptive.rule'", "patience must be an integer >= 1")
        assertRejected(adaptiveManifest(adaptive.replace("\"value\": 1", "\"value\": true")), "'adaptive.rule.value'", "a number")
        assertRejected(adaptiveManifest(adaptive.replace(", \"value\": 1", "")), "'adaptive.rule'", "exactly kind, value")
        assertRejected(adaptiveManifest(conf.replace("0.9", "1.5")), "'adaptive.rule'", "confidence must be in (0, 1]")
        assertRejected(adaptiveManifest(conf.replace("0.9", "0")), "'adaptive.rule'", "confidence must be in (0, 1]")
        assertRejected(adaptiveManifest(adaptive.replace("{\"kind\": \"patience\", \"value\": 1}", "null")), "'adaptive.rule'")
        assertRejected(adaptiveManifest(base = qaManifest()), "'adaptive'", "\"question-answering\"")
        val oneLabel = manifest().replace("[\"negative\", \"neutral\", \"positive\"]", "[\"only\"]")
        assertRejected(adaptiveManifest(base = oneLabel), "'adaptive'", "at least 2 labels")
        assertRejected(adaptiveManifest("null", base = qaManifest()), "'adaptive'", "\"sequence-classification\"")
    }

    @Test fun programLookupNamesTheAvailableOnes() {
        try {
            BundleManifest.parse(manifest()).program("int4")
            fail()
        } catch (e: ManifestException) {
            assertTrue(e.message!!, e.message!!.contains("fp32, int8"))
        }
    }

    @Test fun miniJsonValues() {
        val v = MiniJson.parse("""{"a": [1, -2.5e1, true, false, null, "x\"\u00e9\ud83d\ude00\n"], "b": {}}""").obj()
        assertEquals(listOf(1L, -25.0, true, false, null, "x\"é\uD83D\uDE00\n"), v["a"])
        assertEquals(emptyMap<String, Any?>(), v["b"])
        for (bad in listOf("", "[1,]", "{\"a\" 1}", "01", "\"abc", "[1] 2", "{\"a\": 1, \"a\": 2}")) {
            try {
                MiniJson.parse(bad); fail("accepted $bad")
            } catch (e: JsonException) {
                assertTrue(e.message!!.contains("offset"))
            }
        }
    }
}
