package org.albertedge.demo

import org.albertedge.textcore.LatencyStats

/** Latency of repeated calls, in milliseconds. */
data class LatencySummary(val warmup: Int, val runs: Int, val medianMs: Double, val p90Ms: Double)

/** Calls [call] [warmup] times untimed, then [runs] times timed one by one. */
inline fun measureLatency(warmup: Int = 3, runs: Int = 20, call: () -> Unit): LatencySummary {
    require(warmup >= 0 && runs >= 1) { "warmup must be >= 0 and runs >= 1; got $warmup and $runs" }
    repeat(warmup) { call() }
    val millis = DoubleArray(runs)
    for (i in 0 until runs) {
        val start = System.nanoTime()
        call()
        millis[i] = (System.nanoTime() - start) / 1e6
    }
    return LatencySummary(warmup, runs, LatencyStats.median(millis), LatencyStats.percentile(millis, 90.0))
}
