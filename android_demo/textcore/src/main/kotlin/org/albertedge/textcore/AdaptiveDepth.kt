package org.albertedge.textcore

import kotlin.math.exp

/**
 * When an input of an early-exit classifier stops (export/BUNDLE.md, `adaptive`; the reference is
 * albert_edge/exit_rules.py `ExitRule`, which this reproduces exactly). The answer is the logits
 * of the step that stopped; the last step always stops (the loop's job, not the rule's).
 */
sealed class ExitRule {
    /** `kind` as the manifest writes it: "patience" or "confidence". */
    abstract val kind: String

    /**
     * Whether an input whose steps so far gave [stepLogits] (one row of num_labels logits per
     * step, the newest last) stops after the newest step.
     */
    abstract fun stops(stepLogits: List<FloatArray>): Boolean

    /** How many steps an input runs, given every step's logits (the rule applied step by step). */
    fun depth(stepLogits: List<FloatArray>): Int {
        for (k in 1 until stepLogits.size) if (stops(stepLogits.subList(0, k))) return k
        return stepLogits.size
    }

    /** Stop once the prediction is unchanged for [patience] steps: steps k-p..k agree, so the earliest stop is p + 1. */
    data class Patience(val patience: Int) : ExitRule() {
        init {
            require(patience >= 1) { "exit rule patience must be an integer >= 1, got $patience" }
        }

        override val kind get() = "patience"

        override fun toString() = "patience=$patience"

        override fun stops(stepLogits: List<FloatArray>): Boolean {
            if (stepLogits.size <= patience) return false
            val newest = argmax(stepLogits.last())
            return stepLogits.subList(stepLogits.size - patience - 1, stepLogits.size - 1).all { argmax(it) == newest }
        }
    }

    /** Stop at the first step whose top softmax probability is >= [threshold], in (0, 1]. */
    data class Confidence(val threshold: Double) : ExitRule() {
        init {
            require(threshold > 0.0 && threshold <= 1.0) { "exit rule confidence must be in (0, 1], got $threshold" }
        }

        override val kind get() = "confidence"

        override fun toString() = "confidence=$threshold"

        override fun stops(stepLogits: List<FloatArray>): Boolean = topProbability(stepLogits.last()) >= threshold
    }

    companion object {
        val KINDS = listOf("patience", "confidence")

        /**
         * The rule of manifest `{"kind": kind, "value": value}`, accepted as Python accepts it:
         * patience an integer >= 1 (2.0 is 2), confidence in (0, 1]; [IllegalArgumentException] otherwise.
         */
        fun of(kind: String, value: Double): ExitRule {
            require(value.isFinite()) { "exit rule $kind value $value is not a finite number" }
            return when (kind) {
                "patience" -> {
                    require(value == Math.floor(value) && value >= 1.0) { "exit rule patience must be an integer >= 1, got $value" }
                    Patience(if (value >= Int.MAX_VALUE) Int.MAX_VALUE else value.toInt())
                }
                "confidence" -> Confidence(value)
                else -> throw IllegalArgumentException("exit rule kind \"$kind\" is not one of ${KINDS.joinToString()}")
            }
        }

        /**
         * The top softmax probability of [row], as Python computes it: 1 / sum(exp(v - top)) in
         * double, summed left to right (CPython 3.11's `sum`; 3.12's compensated `sum` can differ
         * in the last bit, which only matters for a threshold set to that very bit).
         */
        fun topProbability(row: FloatArray): Double {
            require(row.isNotEmpty()) { "exit rule: a step gave no logits" }
            val top = row.max().toDouble()
            var sum = 0.0
            for (v in row) sum += exp(v.toDouble() - top)
            return 1.0 / sum
        }

        /** The first index of the largest value (numpy's argmax). */
        fun argmax(row: FloatArray): Int {
            require(row.isNotEmpty()) { "exit rule: a step gave no logits" }
            var best = 0
            for (i in 1 until row.size) if (row[i] > row[best]) best = i
            return best
        }
    }
}

/** `manifest.adaptive`: the model's layer steps (>= 2) and the rule the bundle was exported with. */
data class AdaptiveSettings(val numSteps: Int, val rule: ExitRule)

/** What the loop gave one input: the logits of the step that stopped, that step (the depth), and every step's logits. */
class AdaptiveResult(val logits: FloatArray, val depth: Int, val steps: List<FloatArray>)

/**
 * The adaptive loop of export/BUNDLE.md with the program's methods as functions: [embed] once,
 * then per step k [layer] and [exit] (k, 1-based), until [rule] stops or step [numSteps]; a null
 * [rule] runs every step (full depth). [H] is whatever the caller carries between calls (the app:
 * the hidden state copied out of the method's memory).
 */
fun <H : Any> runAdaptive(
    numSteps: Int,
    rule: ExitRule?,
    embed: () -> H,
    layer: (H) -> H,
    exit: (k: Int, hidden: H) -> FloatArray,
): AdaptiveResult = runAdaptiveFused<H>(numSteps, rule) { k, previous ->
    val hidden = layer(if (k == 1) embed() else checkNotNull(previous))
    hidden to exit(k, hidden)
}

/**
 * The same loop with the program's fused step methods (export/BUNDLE.md, `first_step` and
 * `step_k`): per step k (1-based) one call of [step], given the hidden state step k - 1 returned
 * (null for step 1, which embeds the inputs itself) and returning this step's hidden state and
 * logits, until [rule] stops or step [numSteps]; a null [rule] runs every step. [H] is whatever
 * the caller carries between steps (the app: step k's output, passed uncopied to step k + 1).
 * [runAdaptive] is this loop too, so both forms stop at the same step on the same logits.
 */
fun <H : Any> runAdaptiveFused(
    numSteps: Int,
    rule: ExitRule?,
    step: (k: Int, hidden: H?) -> Pair<H, FloatArray>,
): AdaptiveResult {
    require(numSteps >= 1) { "numSteps must be >= 1, got $numSteps" }
    val steps = ArrayList<FloatArray>(numSteps)
    var hidden: H? = null
    for (k in 1..numSteps) {
        val (next, logits) = step(k, hidden)
        hidden = next
        steps += logits
        if (k == numSteps || rule?.stops(steps) == true) break
    }
    return AdaptiveResult(steps.last(), steps.size, steps)
}

/** One program's entry of an `adaptive_cases` case: every step's logits and the depth the manifest's rule stops at. */
class AdaptiveGoldenProgram(val steps: List<FloatArray>, val depth: Int)

/** One entry of goldens.json `adaptive_cases` (the text case of `cases` with the same index). */
class AdaptiveGoldenCase(val id: Long, val programs: Map<String, AdaptiveGoldenProgram>)

object AdaptiveGoldens {
    /** `adaptive_cases` of goldens.json text, one per entry of `cases`; [ManifestException] naming the field that is wrong. */
    fun parse(goldensJson: String): List<AdaptiveGoldenCase> {
        val root = try {
            MiniJson.parse(goldensJson) as? Map<*, *>
        } catch (e: JsonException) {
            throw ManifestException("goldens.json is not valid JSON (${e.message})")
        } ?: throw ManifestException("goldens.json must be a JSON object")
        val cases = root["adaptive_cases"] as? List<*>
            ?: throw ManifestException("goldens.json: field 'adaptive_cases' is missing or not an array; this is not an adaptive bundle's goldens")
        val textCases = (root["cases"] as? List<*>)?.size
        if (textCases != cases.size) {
            throw ManifestException("goldens.json: field 'adaptive_cases' has ${cases.size} entries but 'cases' has $textCases; accepted: one per case: re-export the bundle")
        }
        return cases.mapIndexed { i, c -> parseCase(c, "goldens.json: adaptive_cases[$i]") }
    }

    /**
     * Each case's golden step logits through both forms of the loop ([runAdaptive]: embed, layer,
     * exit_k; [runAdaptiveFused]: first_step, step_k) with fake step functions, under the
     * manifest's rule, one line per difference (empty: all agree; a difference both forms share
     * is one line): a depth other than the golden one, the step functions called another number
     * of times or handed another step's hidden state, or logits other than the golden step's.
     * Also reports a program without golden steps, or steps not num_steps × num_labels.
     */
    fun check(manifest: BundleManifest, cases: List<AdaptiveGoldenCase>): List<String> {
        val settings = manifest.adaptive ?: throw ManifestException("manifest.json: this bundle has no 'adaptive'; it has no early exits")
        val out = ArrayList<String>()
        for ((i, case) in cases.withIndex()) {
            for (program in manifest.programs) {
                val at = "adaptive_cases[$i] ${program.name}"
                val golden = case.programs[program.name]
                if (golden == null) {
                    out += "$at: no golden steps for this program"
                    continue
                }
                val shapeProblem = shapeProblem(golden, settings.numSteps, manifest.labels.size)
                if (shapeProblem != null) {
                    out += "$at: $shapeProblem"
                    continue
                }
                // A golden depth the rule does not give fails both forms alike: one line for it.
                val separate = replay(golden, settings)
                val fused = replayFused(golden, settings)
                separate?.let { out += "$at: $it" }
                if (fused != null && fused != separate) out += "$at: fused steps (first_step, step_k): $fused"
            }
        }
        return out
    }

    private fun shapeProblem(golden: AdaptiveGoldenProgram, numSteps: Int, numLabels: Int): String? = when {
        golden.steps.size != numSteps -> "${golden.steps.size} golden steps, the manifest's num_steps is $numSteps"
        golden.steps.any { it.size != numLabels } -> "golden steps must have $numLabels logits each (one per label)"
        golden.depth !in 1..numSteps -> "golden depth ${golden.depth} is outside [1, $numSteps]"
        else -> null
    }

    /** Null when the loop over [golden]'s steps reproduces its depth and logits; else the first difference. */
    private fun replay(golden: AdaptiveGoldenProgram, settings: AdaptiveSettings): String? {
        var layerCalls = 0
        val result = runAdaptive(settings.numSteps, settings.rule,
            embed = { 0 },
            layer = { step -> layerCalls++; step + 1 },
            exit = { k, step -> check(k == step) { "exit_$k called after $step layer steps" }; golden.steps[k - 1] },
        )
        return difference(result, golden, settings, layerCalls, "layer")
    }

    /** As [replay], through [runAdaptiveFused]: step k must be handed step k - 1's hidden state (none for step 1). */
    private fun replayFused(golden: AdaptiveGoldenProgram, settings: AdaptiveSettings): String? {
        var stepCalls = 0
        val result = runAdaptiveFused<Int>(settings.numSteps, settings.rule) { k, previous ->
            check(previous == (if (k == 1) null else k - 1)) { "step $k was handed step $previous's hidden state" }
            stepCalls++
            k to golden.steps[k - 1]
        }
        return difference(result, golden, settings, stepCalls, "the step methods")
    }

    private fun difference(result: AdaptiveResult, golden: AdaptiveGoldenProgram, settings: AdaptiveSettings, calls: Int, called: String): String? =
        when {
            result.depth != golden.depth -> "textcore's ${settings.rule} stops at step ${result.depth}, golden depth ${golden.depth}"
            calls != golden.depth -> "the loop called $called $calls times for depth ${golden.depth}"
            !result.logits.contentEquals(golden.steps[golden.depth - 1]) -> "the loop returned other logits than golden step ${golden.depth}'s"
            else -> null
        }

    private fun parseCase(c: Any?, at: String): AdaptiveGoldenCase {
        val case = c as? Map<*, *> ?: throw ManifestException("$at must be an object")
        val id = case["id"] as? Long ?: throw ManifestException("$at: field 'id' must be an integer, got ${case["id"]}")
        val programs = case["programs"] as? Map<*, *> ?: throw ManifestException("$at: field 'programs' must be an object")
        return AdaptiveGoldenCase(id, programs.entries.associate { (name, v) ->
            val where = "$at.programs.$name"
            val p = v as? Map<*, *> ?: throw ManifestException("$where must be an object with steps and depth")
            val depth = p["depth"] as? Long ?: throw ManifestException("$where: field 'depth' must be an integer, got ${p["depth"]}")
            name.toString() to AdaptiveGoldenProgram(rows(p["steps"], "$where.steps"), depth.toInt())
        })
    }

    private fun rows(v: Any?, at: String): List<FloatArray> = (v as? List<*>)?.map { row ->
        (row as? List<*>)?.map { (it as? Number)?.toFloat() ?: throw ManifestException("$at holds $it; accepted: numbers") }
            ?.toFloatArray() ?: throw ManifestException("$at must be an array of arrays of numbers (every step's logits)")
    } ?: throw ManifestException("$at must be an array of arrays of numbers (every step's logits)")
}
