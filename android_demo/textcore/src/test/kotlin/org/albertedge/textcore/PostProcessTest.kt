package org.albertedge.textcore

import org.junit.Assert.assertEquals
import org.junit.Assert.assertTrue
import org.junit.Assert.fail
import org.junit.Test

class PostProcessTest {
    @Test fun softmaxFixedCases() {
        val p = PostProcess.softmax(floatArrayOf(1f, 2f, 3f))
        val e = doubleArrayOf(0.09003057317038046, 0.24472847105479764, 0.6652409557748219)
        for (i in e.indices) assertEquals(e[i], p[i].toDouble(), 1e-7)
        // Stable: huge logits do not overflow.
        val big = PostProcess.softmax(floatArrayOf(1000f, 1000f, -1000f))
        assertEquals(0.5f, big[0], 1e-7f)
        assertEquals(0.5f, big[1], 1e-7f)
        assertEquals(0f, big[2], 0f)
    }

    @Test fun topKPutsEqualScoresInIndexOrder() {
        val labels = listOf("a", "b", "c", "d")
        val top = PostProcess.topK(floatArrayOf(0.1f, 0.4f, 0.1f, 0.4f), labels, 3)
        assertEquals(listOf(LabelScore("b", 0.4f), LabelScore("d", 0.4f), LabelScore("a", 0.1f)), top)
        assertEquals(4, PostProcess.topK(floatArrayOf(0.1f, 0.4f, 0.1f, 0.4f), labels, 10).size)
        try {
            PostProcess.topK(floatArrayOf(1f), labels, 1); fail()
        } catch (e: IllegalArgumentException) {
            assertTrue(e.message!!.contains("1 scores for 4 labels"))
        }
    }

    /** postprocess_cases.json, written by export/make_postprocess_goldens.py from numpy. */
    @Test fun matchesNumpy() {
        val root = MiniJson.parse(TestFiles.resource("postprocess_cases.json")).obj()
        assertEquals("albert-edge-postprocess-cases/1", root["format"])
        val cases = root["cases"] as List<*>
        assertTrue(cases.size > 20)
        for ((n, c) in cases.withIndex()) {
            val case = c.obj()
            val logits = case["logits"].doubles().map { it.toFloat() }.toFloatArray()
            @Suppress("UNCHECKED_CAST") val labels = case["labels"] as List<String>
            val probs = PostProcess.softmax(logits)
            val expected = case["softmax"].doubles()
            for (i in expected.indices) assertEquals("case $n softmax[$i]", expected[i], probs[i].toDouble(), 1e-6)
            val top = PostProcess.topK(probs, labels, (case["k"] as Long).toInt())
            val want = (case["top_k"] as List<*>).map { it.obj() }
            assertEquals("case $n top-k labels", want.map { it["label"] }, top.map { it.label })
            for (i in want.indices) assertEquals("case $n top-k score", (want[i]["score"] as Number).toDouble(), top[i].score.toDouble(), 1e-6)
            assertEquals("case $n argmax", labels[(case["argmax"] as Long).toInt()], top[0].label)
        }
        for ((n, c) in (root["percentiles"] as List<*>).withIndex()) {
            val case = c.obj()
            val value = LatencyStats.percentile(case["xs"].doubles(), (case["p"] as Number).toDouble())
            assertEquals("percentile case $n", (case["value"] as Number).toDouble(), value, 1e-9)
        }
    }
}

class LatencyStatsTest {
    @Test fun handComputedValues() {
        assertEquals(5.0, LatencyStats.median(doubleArrayOf(5.0)), 0.0)
        assertEquals(2.5, LatencyStats.median(doubleArrayOf(4.0, 1.0, 3.0, 2.0)), 1e-12)
        assertEquals(3.0, LatencyStats.median(doubleArrayOf(9.0, 1.0, 3.0)), 0.0)
        val xs = doubleArrayOf(10.0, 20.0, 30.0, 40.0, 50.0)
        assertEquals(10.0, LatencyStats.percentile(xs, 0.0), 0.0)
        assertEquals(50.0, LatencyStats.percentile(xs, 100.0), 0.0)
        assertEquals(46.0, LatencyStats.percentile(xs, 90.0), 1e-12) // position 3.6
        assertEquals(20.0, LatencyStats.percentile(xs, 25.0), 1e-12) // position 1.0
        assertEquals(11.6, LatencyStats.percentile(xs, 4.0), 1e-12) // position 0.16
    }

    @Test fun emptyInputIsAClearError() {
        try {
            LatencyStats.median(DoubleArray(0)); fail()
        } catch (e: IllegalArgumentException) {
            assertTrue(e.message!!, e.message!!.contains("no latencies"))
        }
    }
}
