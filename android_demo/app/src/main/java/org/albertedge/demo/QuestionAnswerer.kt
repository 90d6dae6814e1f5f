package org.albertedge.demo

import org.albertedge.textcore.AlbertTokenizer
import org.albertedge.textcore.Answer
import org.albertedge.textcore.BundleManifest
import org.albertedge.textcore.ProgramInfo
import org.albertedge.textcore.QuestionAnswering
import org.albertedge.textcore.utf16Index

/** A loaded program that runs `forward` ([ExecutorchClassifier]; a fake in the JVM check). */
interface ProgramRunner {
    val program: ProgramInfo
    val numThreads: Int

    /** Every output of one `forward`, flattened, in [ProgramInfo.outputs] order. */
    fun outputs(inputs: ProgramInputs): List<FloatArray>
}

/** The answers to one question about one passage by one program. */
data class QAResult(
    val question: String,
    val context: String,
    val program: String,
    val threads: Int,
    /** Windows the passage was cut into (one `forward` each) and tokens in the first. */
    val windows: Int,
    val tokens: Int,
    /** Best first; `text` is `context` code points `start until end` (`""`: no answer). */
    val answers: List<Answer>,
    /** Of the whole question: every window through the program, then decoding. */
    val latency: LatencySummary,
)

/**
 * Answers [question] about [context] with a question-answering bundle's program (export/BUNDLE.md,
 * `qa`): textcore cuts the passage into windows, each window runs through [model] (start and end
 * logits), and textcore decodes the [topK] best answers, as albert_edge/qa.py does. Latency is
 * measured over the whole question, [warmup] untimed and [runs] timed.
 */
fun answerQuestion(
    model: ProgramRunner,
    tokenizer: AlbertTokenizer,
    manifest: BundleManifest,
    question: String,
    context: String,
    topK: Int = 3,
    warmup: Int = 1,
    runs: Int = 5,
): QAResult {
    val settings = manifest.qa ?: throw BundleException("this bundle's task is ${manifest.task}; it has no question-answering settings")
    val program = model.program
    // The program's own windows (padded for a fixed-length program): its inputs, and what decoding reads.
    val windows = QuestionAnswering.windows(tokenizer, question, context, settings, if (program.dynamic) null else program.maxSeqLen)
    val inputs = windows.map { programInputs(it, program, manifest) }
    var answers: List<Answer> = emptyList()
    val latency = measureLatency(warmup, runs) {
        val starts = ArrayList<FloatArray>(inputs.size)
        val ends = ArrayList<FloatArray>(inputs.size)
        for (input in inputs) {
            val out = model.outputs(input)
            check(out.size >= 2 && out[0].size == input.seqLen && out[1].size == input.seqLen) {
                "program ${program.name} returned ${out.map { it.size }} values for a window of ${input.seqLen} tokens; " +
                    "a question-answering program gives start_logits and end_logits, one per token"
            }
            starts.add(out[0])
            ends.add(out[1])
        }
        answers = QuestionAnswering.decode(windows, starts, ends, context, settings, tokenizer.clsId, topK)
    }
    val tokens = windows[0].attentionMask.count { it == 1L }
    return QAResult(question, context, program.name, model.numThreads, windows.size, tokens, answers, latency)
}

/** [answer]'s `String` (UTF-16) range in [context], for highlighting; null for the no-answer. */
fun highlightRange(answer: Answer, context: String): IntRange? =
    if (answer.text.isEmpty()) null else utf16Index(context, answer.start) until utf16Index(context, answer.end)
