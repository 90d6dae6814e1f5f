package org.albertedge.textcore

/** A label with its probability (or score). */
data class LabelScore(val label: String, val score: Float)

/** What an app does with classification logits: probabilities and the best labels. */
object PostProcess {
    /** Softmax of [logits], computed stably (the max is subtracted first, sums in double). */
    fun softmax(logits: FloatArray): FloatArray {
        require(logits.isNotEmpty()) { "softmax of an empty logits array; expected one logit per label" }
        val max = logits.maxOf { it.toDouble() }
        val exps = DoubleArray(logits.size) { Math.exp(logits[it] - max) }
        val sum = exps.sum()
        return FloatArray(logits.size) { (exps[it] / sum).toFloat() }
    }

    /**
     * The [k] highest of [probs] with their labels, best first; equal scores keep the lower index
     * first (as numpy's argmax picks the first maximum). [k] larger than the label count gives all.
     */
    fun topK(probs: FloatArray, labels: List<String>, k: Int): List<LabelScore> {
        require(probs.size == labels.size) {
            "topK got ${probs.size} scores for ${labels.size} labels; the manifest's labels must match the model output"
        }
        require(k >= 0) { "topK k=$k; accepted: k >= 0" }
        // A stable sort on descending score keeps index order among equal scores.
        return probs.indices.sortedByDescending { probs[it] }.take(k).map { LabelScore(labels[it], probs[it]) }
    }
}

/** Latency summaries, matching numpy's default (linear) percentile. */
object LatencyStats {
    fun median(xs: DoubleArray): Double = percentile(xs, 50.0)

    /** The [p]-th percentile (0..100) of [xs], linearly interpolated between order statistics. */
    fun percentile(xs: DoubleArray, p: Double): Double {
        require(xs.isNotEmpty()) { "percentile of no latencies; run at least one measurement first" }
        require(p in 0.0..100.0) { "percentile p=$p; accepted: 0 <= p <= 100" }
        val sorted = xs.sortedArray()
        val pos = (sorted.size - 1) * p / 100.0
        val lo = Math.floor(pos).toInt()
        val hi = minOf(lo + 1, sorted.size - 1)
        val frac = pos - lo
        return sorted[lo] + (sorted[hi] - sorted[lo]) * frac
    }
}
