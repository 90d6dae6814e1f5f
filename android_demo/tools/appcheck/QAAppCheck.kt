// A JVM check of the app's question-answering path (app/.../QuestionAnswerer.kt, ProgramInputs.kt)
// without a device: a fake ProgramRunner returns the logits stored in textcore's qa_cases.json for
// each window it is given (found by its input ids), and the app's answers must be the stored ones.
// Compiled and run by tests/test_android_textcore.py with the SDK-free app sources and the stubs.
package org.albertedge.demo.check

import java.io.File
import kotlin.system.exitProcess
import org.albertedge.demo.ProgramInputs
import org.albertedge.demo.ProgramRunner
import org.albertedge.demo.answerQuestion
import org.albertedge.textcore.AlbertTokenizer
import org.albertedge.textcore.BundleManifest
import org.albertedge.textcore.FileEntry
import org.albertedge.textcore.MiniJson
import org.albertedge.textcore.ProgramInfo
import org.albertedge.textcore.QASettings
import org.albertedge.textcore.SentencePieceModel

private class StoredLogits(
    override val program: ProgramInfo,
    private val byIds: Map<List<Long>, List<FloatArray>>,
) : ProgramRunner {
    override val numThreads = 1
    var calls = 0

    override fun outputs(inputs: ProgramInputs): List<FloatArray> {
        calls++
        return byIds[inputs.inputIds.toList()] ?: error("no stored logits for window ${inputs.inputIds.toList()}")
    }
}

private fun floats(v: Any?) = (v as List<*>).map { (it as Number).toFloat() }.toFloatArray()

fun main(args: Array<String>) {
    val repo = File(args[0])
    val fixture = MiniJson.parse(File(repo, "android_demo/textcore/src/test/resources/qa_cases.json").readText()) as Map<*, *>
    val tokenizer = AlbertTokenizer(
        SentencePieceModel.parse(File(repo, fixture["spiece"] as String).readBytes()),
        fixture["do_lower_case"] as Boolean, fixture["keep_accents"] as Boolean, fixture["split_digit_comma"] as Boolean,
    )
    val entry = FileEntry("x", 1, "0".repeat(64))
    var failures = 0
    var checked = 0
    for ((n, c) in (fixture["cases"] as List<*>).withIndex()) {
        val case = c as Map<*, *>
        val s = case["settings"] as Map<*, *>
        val settings = QASettings(
            (s["max_seq_len"] as Long).toInt(), (s["doc_stride"] as Long).toInt(), (s["max_question_len"] as Long).toInt(),
            (s["max_answer_len"] as Long).toInt(), (s["no_answer_threshold"] as Number?)?.toDouble(), s["align_to_words"] as Boolean,
        )
        val dynamic = !(case["pad"] as Boolean)
        val program = ProgramInfo("p", entry, "forward", dynamic, if (dynamic) 1 else settings.maxSeqLen, settings.maxSeqLen,
            listOf("start_logits", "end_logits"))
        val manifest = BundleManifest(1, BundleManifest.QA_TASK, listOf("start", "end"), settings.maxSeqLen, tokenizer.vocabSize,
            2, tokenizer.padId, "p", null, null, listOf(program), settings)
        val windows = case["windows"] as List<*>
        val byIds = windows.withIndex().associate { (w, window) ->
            ((window as Map<*, *>)["input_ids"] as List<*>).map { it as Long } to
                listOf(floats((case["start_logits"] as List<*>)[w]), floats((case["end_logits"] as List<*>)[w]))
        }
        val runner = StoredLogits(program, byIds)
        val result = answerQuestion(runner, tokenizer, manifest, case["question"] as String, case["context"] as String,
            topK = (case["top_k"] as Long).toInt(), warmup = 0, runs = 1)
        val want = (case["answers"] as List<*>).map { a -> (a as Map<*, *>).let { Triple(it["answer"], (it["start"] as Long).toInt(), (it["end"] as Long).toInt()) } }
        val got = result.answers.map { Triple(it.text, it.start, it.end) }
        if (got != want || result.windows != windows.size || runner.calls != windows.size) {
            println("case $n: app answers $got from ${result.windows} windows (${runner.calls} forward calls), stored $want from ${windows.size}")
            failures++
        }
        checked++
    }
    println("checked $checked cases: $failures differ")
    exitProcess(if (failures == 0 && checked > 0) 0 else 1)
}
