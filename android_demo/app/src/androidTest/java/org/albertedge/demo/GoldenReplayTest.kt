package org.albertedge.demo

import androidx.test.ext.junit.runners.AndroidJUnit4
import androidx.test.platform.app.InstrumentationRegistry
import java.io.File
import kotlin.math.abs
import org.albertedge.textcore.AdaptiveGoldens
import org.albertedge.textcore.AlbertTokenizer
import org.albertedge.textcore.Encoding
import org.albertedge.textcore.QAGoldens
import org.albertedge.textcore.QuestionAnswering
import org.albertedge.textcore.firstTokenizerMismatch
import org.json.JSONArray
import org.json.JSONObject
import org.junit.Assert.assertTrue
import org.junit.Before
import org.junit.Test
import org.junit.runner.RunWith

/**
 * Replays the bundle's goldens.json on the device (export/BUNDLE.md): every case through every
 * program with the real ExecuTorch runtime, each output (`logits`; `start_logits` and
 * `end_logits` for question answering) compared with `programs.<name>.<output>.values` within
 * `tolerances.<name>.atol`; and the Kotlin tokenizer must give each case's ids. A
 * question-answering bundle's `qa_cases` are replayed too: textcore's windows and its answers
 * from the golden logits must be Python's ([QAGoldens.check]), and every window through every
 * program must give the golden start/end logits within the tolerance. A bundle with early exits
 * (`adaptive`) has its `adaptive_cases` replayed: textcore's rule on the golden step logits must
 * stop at the golden depth ([AdaptiveGoldens.check]), and every case through every program's loop
 * must give each step's golden logits within the tolerance and stop at the golden depth. The loop
 * is the app's own ([ExecutorchClassifier.adaptiveLogits]): the fused step methods `first_step`,
 * `step_k` where the program has them (goldens.json's step logits come from those then), else
 * `embed`, `layer`, `exit_k`; differences name the path.
 *
 * Needs a bundle: `android_demo/push_bundle.sh out/android-bundle` before
 * `./gradlew :app:connectedAndroidTest`. Everything runs and asserts on the test thread.
 */
@RunWith(AndroidJUnit4::class)
class GoldenReplayTest {
    private lateinit var bundle: LocatedBundle
    private lateinit var goldensText: String
    private lateinit var goldens: JSONObject

    @Before
    fun loadBundle() {
        val context = InstrumentationRegistry.getInstrumentation().targetContext
        bundle = BundleLocator(context.filesDir, assets = null).locate()
        val entry = bundle.manifest.goldens
        val file = if (entry != null) BundleFiles.verified(bundle.dir, entry) else File(bundle.dir, BundleLocator.GOLDENS_NAME)
        goldensText = file.readText(Charsets.UTF_8)
        goldens = JSONObject(goldensText)
        assertTrue("goldens.json has no cases", goldens.getJSONArray("cases").length() > 0)
    }

    @Test
    fun everyProgramReproducesTheGoldenLogits() {
        val manifest = bundle.manifest
        val cases = goldens.getJSONArray("cases")
        val tolerances = goldens.getJSONObject("tolerances")
        val failures = mutableListOf<String>()
        var compared = 0
        for (program in manifest.programs) {
            val atol = tolerances.getJSONObject(program.name).getDouble("atol")
            val file = BundleFiles.verified(bundle.dir, program.file)
            ExecutorchClassifier.load(file, program, manifest, numThreads = 0).use { classifier ->
                for (i in 0 until cases.length()) {
                    val case = cases.getJSONObject(i)
                    val encoding = Encoding(
                        longs(case.getJSONArray("input_ids")),
                        longs(case.getJSONArray("attention_mask")),
                        longs(case.getJSONArray("token_type_ids")),
                    )
                    val outputs = classifier.outputs(programInputs(encoding, program, manifest))
                    val goldenProgram = case.getJSONObject("programs").getJSONObject(program.name)
                    for ((o, name) in program.outputs.withIndex()) {
                        val flat = outputs[o]
                        val expected = goldenProgram.getJSONObject(name)
                        val shape = longs(expected.getJSONArray("shape"))
                        val stride = expected.getInt("stride")
                        val values = expected.getJSONArray("values")
                        val numel = shape.fold(1L) { acc, d -> acc * d }
                        if (flat.size.toLong() != numel) {
                            failures += "${program.name} case ${case.get("id")} $name: ${flat.size} values, expected shape ${shape.toList()}"
                            continue
                        }
                        for (k in 0 until values.length()) {
                            val actual = flat[k * stride].toDouble()
                            val want = values.getDouble(k)
                            if (abs(actual - want) > atol) {
                                failures += "${program.name} case ${case.get("id")} $name[${k * stride}]: $actual vs golden $want (atol $atol)"
                            }
                            compared++
                        }
                    }
                }
            }
        }
        assertTrue("no values compared", compared > 0)
        assertTrue("${failures.size} values outside tolerance:\n" + failures.take(20).joinToString("\n"), failures.isEmpty())
    }

    @Test
    fun kotlinTokenizerReproducesTheGoldenIds() {
        val manifest = bundle.manifest
        val settings = manifest.tokenizer ?: return // a bundle without a tokenizer has text-less cases
        val tokenizer = AlbertTokenizer.fromManifest(manifest, BundleFiles.verified(bundle.dir, settings.file).readBytes())
        // Every text case's input_ids, attention_mask and token_type_ids (padded for fixed-length
        // bundles): the check the app runs at load, here on the device's textcore.
        val mismatch = firstTokenizerMismatch(manifest, tokenizer, goldensText)
        assertTrue(mismatch ?: "", mismatch == null)
        val cases = goldens.getJSONArray("cases")
        val checked = (0 until cases.length()).count { !cases.getJSONObject(it).isNull("text") }
        assertTrue("goldens.json has no text cases although the bundle has a tokenizer", checked > 0)
    }

    @Test
    fun questionAnsweringCasesReplay() {
        val manifest = bundle.manifest
        if (!manifest.isQuestionAnswering) return // a classification bundle has no qa_cases
        val settings = checkNotNull(manifest.tokenizer)
        val tokenizer = AlbertTokenizer.fromManifest(manifest, BundleFiles.verified(bundle.dir, settings.file).readBytes())
        val entry = checkNotNull(manifest.goldens) { "a question-answering bundle needs goldens.json" }
        val cases = QAGoldens.parse(BundleFiles.verified(bundle.dir, entry).readText(Charsets.UTF_8))
        assertTrue("goldens.json has no qa_cases", cases.isNotEmpty())
        // Windows, and decoding of the golden logits, on the device's textcore.
        val problems = QAGoldens.check(manifest, tokenizer, cases).toMutableList()
        // Every window through every program: start and end logits within the tolerance.
        val tolerances = goldens.getJSONObject("tolerances")
        var compared = 0
        // textcore's windows (equal to the goldens', checked above); programInputs pads them for a fixed-length program.
        val windowsOf = cases.map { QuestionAnswering.windows(tokenizer, it.question, it.context, checkNotNull(manifest.qa)) }
        for (program in manifest.programs) {
            val atol = tolerances.getJSONObject(program.name).getDouble("atol")
            ExecutorchClassifier.load(BundleFiles.verified(bundle.dir, program.file), program, manifest, numThreads = 0).use { model ->
                for ((i, case) in cases.withIndex()) {
                    val golden = case.programs.getValue(program.name)
                    val windows = windowsOf[i]
                    if (windows.size != golden.startLogits.size) continue // reported by QAGoldens.check
                    for ((w, window) in windows.withIndex()) {
                        val out = model.outputs(programInputs(window, program, manifest))
                        for ((name, row, want) in listOf(Triple("start_logits", out[0], golden.startLogits[w]), Triple("end_logits", out[1], golden.endLogits[w]))) {
                            compared += compareRow(row, want, atol, "${program.name} qa_cases[$i] window $w $name", problems)
                        }
                    }
                }
            }
        }
        assertTrue("no QA logits compared", compared > 0)
        assertTrue("${problems.size} QA differences:\n" + problems.take(20).joinToString("\n"), problems.isEmpty())
    }

    @Test
    fun adaptiveCasesReplay() {
        val manifest = bundle.manifest
        val settings = manifest.adaptive ?: return // a bundle without early exits has no adaptive_cases
        val golden = AdaptiveGoldens.parse(goldensText)
        // textcore's rule and loop on the golden step logits (also checked on the JVM by make test).
        val problems = AdaptiveGoldens.check(manifest, golden).toMutableList()
        val cases = goldens.getJSONArray("cases")
        val tolerances = goldens.getJSONObject("tolerances")
        var compared = 0
        for (program in manifest.programs) {
            val atol = tolerances.getJSONObject(program.name).getDouble("atol")
            ExecutorchClassifier.load(BundleFiles.verified(bundle.dir, program.file), program, manifest, numThreads = 0).use { model ->
                // The path the app takes: the fused step methods where the program has them.
                val at = "${program.name} (${if (model.fusedSteps) "first_step, step_k" else "embed, layer, exit_k"})"
                for ((i, case) in golden.withIndex()) {
                    val want = case.programs[program.name] ?: continue // reported by AdaptiveGoldens.check
                    val c = cases.getJSONObject(i)
                    val encoding = Encoding(longs(c.getJSONArray("input_ids")), longs(c.getJSONArray("attention_mask")), longs(c.getJSONArray("token_type_ids")))
                    val inputs = programInputs(encoding, program, manifest)
                    val full = model.adaptiveLogits(inputs, rule = null) // every step, to compare each one
                    for ((k, row) in full.steps.withIndex()) {
                        val expected = want.steps.getOrNull(k) ?: continue
                        compared += compareRow(row, expected, atol, "$at adaptive_cases[$i] step ${k + 1}", problems)
                    }
                    val stopped = model.adaptiveLogits(inputs)
                    val depth = stopped.depth
                    if (depth != want.depth) problems += "$at adaptive_cases[$i]: the loop stops at step $depth under ${settings.rule}, golden depth ${want.depth}"
                    // The answer is the stopping step's logits (the hidden state reached it intact).
                    val expected = want.steps.getOrNull(depth - 1)
                    if (expected != null && stopped.logits.size == expected.size) {
                        val worst = expected.indices.maxOf { abs(stopped.logits[it] - expected[it]).toDouble() }
                        if (worst > atol) problems += "$at adaptive_cases[$i]: the answer at step $depth is off by $worst (atol $atol)"
                    }
                }
            }
        }
        assertTrue("no step logits compared", compared > 0)
        assertTrue("${problems.size} adaptive differences:\n" + problems.take(20).joinToString("\n"), problems.isEmpty())
    }

    private fun longs(array: JSONArray): LongArray = LongArray(array.length()) { array.getLong(it) }

    /** [row] against the golden [want] within [atol]: a line in [problems] (at [where]) when the
     *  sizes differ or a value is off by more; returns how many values were compared. */
    private fun compareRow(row: FloatArray, want: FloatArray, atol: Double, where: String, problems: MutableList<String>): Int {
        if (row.size != want.size) {
            problems += "$where: ${row.size} values, golden ${want.size}"
            return 0
        }
        val worst = row.indices.maxOf { abs(row[it] - want[it]).toDouble() }
        if (worst > atol) problems += "$where: off by $worst (atol $atol)"
        return row.size
    }
}
