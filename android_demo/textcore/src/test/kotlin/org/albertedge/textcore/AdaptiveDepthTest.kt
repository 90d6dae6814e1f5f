package org.albertedge.textcore

import org.junit.Assert.assertEquals
import org.junit.Assert.assertTrue
import org.junit.Assert.fail
import org.junit.Test

class AdaptiveDepthTest {
    private fun rows(v: Any?): List<FloatArray> = (v as List<*>).map { r -> r.doubles().map { it.toFloat() }.toFloatArray() }

    /** exit_rule_cases.json, written by export/make_exit_rule_goldens.py from albert_edge/exit_rules.py. */
    @Test fun matchesPython() {
        val root = MiniJson.parse(TestFiles.resource("exit_rule_cases.json")).obj()
        assertEquals("albert-edge-exit-rule-cases/1", root["format"])
        var checked = 0
        for ((n, c) in (root["cases"] as List<*>).withIndex()) {
            val steps = rows(c.obj()["steps"])
            for (r in c.obj()["rules"] as List<*>) {
                val spec = r.obj()["rule"].obj()
                val rule = ExitRule.of(spec["kind"] as String, (spec["value"] as Number).toDouble())
                val stops = (r.obj()["stops"] as List<*>).map { it as Boolean }
                assertEquals("case $n $rule stops", stops, (1..steps.size).map { rule.stops(steps.subList(0, it)) })
                assertEquals("case $n $rule depth", (r.obj()["depth"] as Long).toInt(), rule.depth(steps))
                // The loop, fed these steps, stops where depth says and returns that step's logits.
                val result = runAdaptive(steps.size, rule, { 0 }, { it + 1 }, { k, _ -> steps[k - 1] })
                assertEquals("case $n $rule loop depth", rule.depth(steps), result.depth)
                assertTrue(result.logits === steps[result.depth - 1])
                // The fused form (first_step, step_k) on the same steps stops at the same step.
                val fused = runAdaptiveFused<Int>(steps.size, rule) { k, _ -> k to steps[k - 1] }
                assertEquals("case $n $rule fused loop depth", result.depth, fused.depth)
                assertTrue(fused.logits === steps[fused.depth - 1])
                checked++
            }
        }
        assertTrue(checked > 300)
    }

    @Test fun theLoopCallsEachMethodOncePerStep() {
        val calls = mutableListOf<String>()
        val steps = listOf(floatArrayOf(0f, 1f), floatArrayOf(0f, 1f), floatArrayOf(1f, 0f))
        val result = runAdaptive(3, ExitRule.Patience(1),
            embed = { calls += "embed"; 0 },
            layer = { h -> calls += "layer"; h + 1 },
            exit = { k, h -> calls += "exit_$k($h)"; steps[k - 1] },
        )
        assertEquals(listOf("embed", "layer", "exit_1(1)", "layer", "exit_2(2)"), calls)
        assertEquals(2, result.depth)
        assertEquals(2, result.steps.size)
        // No rule: full depth; and the last step always stops.
        assertEquals(3, runAdaptive(3, null, { 0 }, { it + 1 }, { k, _ -> steps[k - 1] }).depth)
        assertEquals(3, runAdaptive(3, ExitRule.Patience(5), { 0 }, { it + 1 }, { k, _ -> steps[k - 1] }).depth)
    }

    @Test fun theFusedLoopCallsOneStepPerLayerStep() {
        val calls = mutableListOf<String>()
        val steps = listOf(floatArrayOf(0f, 1f), floatArrayOf(0f, 1f), floatArrayOf(1f, 0f))
        // Each step is handed the hidden state the step before returned (none for step 1).
        val fused = { k: Int, h: String? -> calls += "step_$k($h)"; "h$k" to steps[k - 1] }
        val result = runAdaptiveFused(3, ExitRule.Patience(1), fused)
        assertEquals(listOf("step_1(null)", "step_2(h1)"), calls)
        assertEquals(2, result.depth)
        assertEquals(2, result.steps.size)
        assertTrue(result.logits === steps[1])
        assertTrue(result.steps[0] === steps[0])
        // No rule: full depth; and the last step always stops.
        calls.clear()
        val full = runAdaptiveFused(3, null, fused)
        assertEquals(listOf("step_1(null)", "step_2(h1)", "step_3(h2)"), calls)
        assertEquals(3, full.depth)
        assertTrue(full.logits === steps[2])
        assertEquals(3, runAdaptiveFused(3, ExitRule.Patience(5), fused).depth)
        assertEquals(1, runAdaptiveFused(3, ExitRule.Confidence(0.5), fused).depth)
        try {
            runAdaptiveFused(0, null, fused)
            fail("numSteps 0 accepted")
        } catch (e: IllegalArgumentException) {
            assertTrue(e.message!!, e.message!!.contains("numSteps must be >= 1, got 0"))
        }
    }

    @Test fun rulesRefuseWhatPythonRefuses() {
        for ((kind, value, fragment) in listOf(
            Triple("patience", 0.0, "patience must be an integer >= 1, got 0.0"),
            Triple("patience", 1.5, "patience must be an integer >= 1"),
            Triple("confidence", 0.0, "confidence must be in (0, 1]"),
            Triple("confidence", 1.01, "confidence must be in (0, 1]"),
            Triple("confidence", Double.NaN, "not a finite number"),
            Triple("entropy", 0.5, "\"entropy\" is not one of patience, confidence"),
        )) {
            try {
                ExitRule.of(kind, value)
                fail("$kind $value accepted")
            } catch (e: IllegalArgumentException) {
                assertTrue(e.message!!, e.message!!.contains(fragment))
            }
        }
        assertEquals(ExitRule.Patience(2), ExitRule.of("patience", 2.0))
    }

    private fun manifest(rule: String = """{"kind": "patience", "value": 1}""") = BundleManifest.parse(
        """{"format": "albert-edge-bundle", "schema_version": 1, "task": "sequence-classification",
        "architecture": "AlbertForSequenceClassification", "labels": ["neg", "pos"], "max_seq_len": 8, "vocab_size": 100,
        "type_vocab_size": 2, "pad_token_id": 0, "default_program": "fp32", "tokenizer": null, "goldens": null,
        "adaptive": {"num_steps": 3, "rule": $rule},
        "programs": [{"name": "fp32", "file": "m.pte", "size_bytes": 1, "sha256": "${"a".repeat(64)}", "method": "forward",
          "inputs": [${listOf("input_ids", "attention_mask", "token_type_ids").joinToString {
            """{"name": "$it", "min_seq_len": 1, "max_seq_len": 8, "dynamic": true}"""
        }}], "outputs": [{"name": "logits"}]}]}"""
    )

    private fun goldens(depth: Int, steps: String = "[[0, 1], [0, 2], [1, 0]]") =
        """{"cases": [{"id": 0}], "adaptive_cases": [{"id": 0, "programs": {"fp32": {"steps": $steps, "depth": $depth}}}]}"""

    @Test fun goldensReplayThroughTheLoop() {
        assertEquals(emptyList<String>(), AdaptiveGoldens.check(manifest(), AdaptiveGoldens.parse(goldens(2))))
        val wrong = AdaptiveGoldens.check(manifest(), AdaptiveGoldens.parse(goldens(3)))
        assertEquals(1, wrong.size)
        assertTrue(wrong[0], wrong[0].contains("adaptive_cases[0] fp32: textcore's patience=1 stops at step 2, golden depth 3"))
        val never = AdaptiveGoldens.check(manifest("""{"kind": "confidence", "value": 1}"""), AdaptiveGoldens.parse(goldens(2)))
        assertTrue(never.toString(), never.single().contains("stops at step 3, golden depth 2"))
        val short = AdaptiveGoldens.check(manifest(), AdaptiveGoldens.parse(goldens(2, "[[0, 1], [0, 2]]")))
        assertTrue(short.toString(), short.single().contains("2 golden steps, the manifest's num_steps is 3"))
        val noProgram = AdaptiveGoldens.check(manifest(), AdaptiveGoldens.parse(goldens(2).replace("\"fp32\"", "\"int8\"")))
        assertTrue(noProgram.toString(), noProgram.single().contains("fp32: no golden steps"))
    }

    @Test fun goldensErrorsNameTheField() {
        for ((json, fragment) in listOf(
            """{"cases": []}""" to "'adaptive_cases' is missing",
            """{"cases": [{}, {}], "adaptive_cases": [{}]}""" to "'adaptive_cases' has 1 entries but 'cases' has 2",
            goldens(2).replace("\"depth\": 2", "\"depth\": \"2\"") to "adaptive_cases[0].programs.fp32: field 'depth' must be an integer",
            goldens(2, "[[0, \"x\"]]") to "adaptive_cases[0].programs.fp32.steps holds x",
            goldens(2, "[1, 2]") to "adaptive_cases[0].programs.fp32.steps must be an array of arrays",
            goldens(2).replace("{\"id\": 0, \"programs\"", "{\"programs\"") to "adaptive_cases[0]: field 'id'",
            "{" to "not valid JSON",
        )) {
            try {
                AdaptiveGoldens.parse(json)
                fail("accepted $json")
            } catch (e: ManifestException) {
                assertTrue("'${e.message}' should mention '$fragment'", e.message!!.contains(fragment))
            }
        }
    }
}
