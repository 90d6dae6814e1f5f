package org.albertedge.demo

import android.os.Debug
import java.io.File
import org.albertedge.textcore.AdaptiveResult
import org.albertedge.textcore.AdaptiveSettings
import org.albertedge.textcore.BundleManifest
import org.albertedge.textcore.ExitRule
import org.albertedge.textcore.ProgramInfo
import org.albertedge.textcore.runAdaptive
import org.albertedge.textcore.runAdaptiveFused
import org.pytorch.executorch.EValue
import org.pytorch.executorch.Module
import org.pytorch.executorch.Tensor

/**
 * The only class that calls ExecuTorch: loads one `.pte` program and runs `forward` on
 * (input_ids, attention_mask, token_type_ids), each int64 of shape (1, S), for any task's
 * program (a classifier's logits, a QA program's start and end logits). For a bundle with early
 * exits (manifest `adaptive`) it also runs the adaptive loop ([adaptiveLogits]), driven by
 * textcore: one call per step of the fused methods `first_step`, `step_k` where the program has
 * them ([runAdaptiveFused]), else `embed`, then `layer` and `exit_k` per step ([runAdaptive]).
 *
 * Threads: `Module.load(path, loadMode, numThreads)` (executorch-android 0.7 and later) sets the
 * size of ExecuTorch's CPU thread pool, which is process-wide and shared by every loaded program;
 * 0 lets ExecuTorch choose (half the cores). Resizing that pool while an XNNPACK program is loaded
 * can crash the process (export/BUNDLE.md, "Threading"), so at most one classifier is open at a
 * time: [load] refuses while another is open, and callers [close] the old one first.
 *
 * Not thread-safe: call from one coroutine at a time (the view model holds a mutex).
 */
class ExecutorchClassifier private constructor(
    private val module: Module,
    override val program: ProgramInfo,
    override val numThreads: Int,
    /** Wall time of `Module.load` plus loading `forward` (and the loop's methods), in milliseconds. */
    val loadMillis: Double,
    /** Native heap ([Debug.getNativeHeapAllocatedSize]) just before `Module.load`, in bytes. */
    private val heapBeforeLoad: Long,
    /** Native heap the program added once loaded (packed weights, planned memory), in bytes. */
    val heapAddedByLoad: Long,
    /** The manifest's `adaptive` (the loop's methods are loaded); null for a bundle without early exits. */
    val adaptive: AdaptiveSettings?,
    /**
     * Whether the loop runs the program's fused step methods (`first_step`, `step_2` ..
     * `step_N`: all of them are in the program; only they are loaded), else `embed`, `layer`
     * and `exit_k`; false without `adaptive`.
     */
    val fusedSteps: Boolean,
) : ProgramRunner, AutoCloseable {
    private var closed = false

    /**
     * Native heap the program added by the end of its first `forward` (XNNPACK's workspace and
     * buffers join the packed weights), in bytes; null until then. The `.pte` itself is mapped
     * from its file (LOAD_MODE_MMAP), which the native heap does not count.
     */
    var heapAddedByFirstForward: Long? = null
        private set

    /** Runs `forward` once and returns the first output (the logits), flattened row-major. */
    fun logits(inputs: ProgramInputs): FloatArray = outputs(inputs)[0]

    /**
     * Runs `forward` once and returns every output, flattened row-major, in the manifest's order
     * ([ProgramInfo.outputs]: `logits`; `start_logits`, `end_logits` for question answering).
     */
    override fun outputs(inputs: ProgramInputs): List<FloatArray> {
        check(!closed) { "program ${program.name} was closed" }
        val shape = longArrayOf(1L, inputs.seqLen.toLong())
        val outputs = module.forward(
            EValue.from(Tensor.fromBlob(inputs.inputIds, shape)),
            EValue.from(Tensor.fromBlob(inputs.attentionMask, shape)),
            EValue.from(Tensor.fromBlob(inputs.tokenTypeIds, shape)),
        )
        check(outputs.size == program.outputs.size) {
            "program ${program.name}: forward returned ${outputs.size} outputs; the manifest lists ${program.outputs}"
        }
        noteFirstCall()
        return outputs.mapIndexed { o, value -> finite(value.toTensor().dataAsFloatArray, "output ${program.outputs[o]}") }
    }

    /**
     * The adaptive loop (export/BUNDLE.md, `adaptive`) on [inputs] until [rule] stops (null:
     * every step) or the last step. With [fusedSteps]: `first_step`, then `step_k`, one call per
     * step. ExecuTorch's Java output tensors point into the method's own memory; each step
     * method has its own, so step k's hidden state is passed to step k + 1 as it came back,
     * uncopied (ExecuTorch copies it into step k + 1's input), and stays valid until step k runs
     * again (the next input). Otherwise `embed`, then `layer` and `exit_k` per step: `layer`
     * takes its own previous output, so the hidden state is copied into a Java array
     * ([Tensor.getDataAsFloatArray]) before the next call can overwrite it.
     */
    fun adaptiveLogits(inputs: ProgramInputs, rule: ExitRule? = adaptive?.rule): AdaptiveResult {
        check(!closed) { "program ${program.name} was closed" }
        val settings = checkNotNull(adaptive) { "program ${program.name}: the bundle has no 'adaptive' (no early exits)" }
        val shape = longArrayOf(1L, inputs.seqLen.toLong())
        val ids = EValue.from(Tensor.fromBlob(inputs.inputIds, shape))
        val mask = EValue.from(Tensor.fromBlob(inputs.attentionMask, shape))
        val types = EValue.from(Tensor.fromBlob(inputs.tokenTypeIds, shape))
        val result = if (fusedSteps) {
            runAdaptiveFused<EValue>(settings.numSteps, rule) { k, h ->
                val method = stepMethod(k)
                val outputs = if (k == 1) module.execute(method, ids, mask, types) else module.execute(method, checkNotNull(h), mask)
                check(outputs.size == 2) { "program ${program.name}: $method returned ${outputs.size} outputs; expected 2 (hidden, logits)" }
                outputs[0] to finite(outputs[1].toTensor().dataAsFloatArray, "$method logits")
            }
        } else {
            runAdaptive(settings.numSteps, rule,
                embed = { hidden("embed", ids, types) },
                layer = { h -> hidden("layer", h.value(), mask) },
                exit = { k, h -> finite(single("exit_$k", h.value()).dataAsFloatArray, "exit_$k") },
            )
        }
        noteFirstCall()
        return result
    }

    /** A hidden state [1, S, H] float32, copied out of the method's memory. */
    private class Hidden(val data: FloatArray, val shape: LongArray) {
        fun value(): EValue = EValue.from(Tensor.fromBlob(data, shape))
    }

    private fun hidden(method: String, vararg inputs: EValue): Hidden {
        val t = single(method, *inputs)
        return Hidden(finite(t.dataAsFloatArray, method), t.shape())
    }

    private fun single(method: String, vararg inputs: EValue): Tensor {
        val outputs = module.execute(method, *inputs)
        check(outputs.size == 1) { "program ${program.name}: $method returned ${outputs.size} outputs; expected 1" }
        return outputs[0].toTensor()
    }

    private fun finite(data: FloatArray, what: String): FloatArray {
        val bad = data.indexOfFirst { it.isNaN() || it.isInfinite() }
        check(bad < 0) { "program ${program.name}: $what[$bad] is ${data[bad]}; the program is unusable" }
        return data
    }

    private fun noteFirstCall() {
        if (heapAddedByFirstForward == null) heapAddedByFirstForward = Debug.getNativeHeapAllocatedSize() - heapBeforeLoad
    }

    override fun close() {
        synchronized(Companion) {
            if (closed) return
            closed = true
            module.destroy()
            if (open === this) open = null
        }
    }

    companion object {
        private var open: ExecutorchClassifier? = null

        /**
         * Loads [file] (already checked against [program]'s size and SHA-256) with [numThreads]
         * (0 = ExecuTorch's default), loads its `forward` method (with `adaptive`, also the
         * loop's: `first_step`, `step_2..step_N` where the program has all of them, as Python's
         * runtime does, else `embed`, `layer` and `exit_1..exit_N`), and checks the program's
         * constant methods against the manifest (export/BUNDLE.md, "Validating a bundle", steps 4
         * and 6).
         */
        fun load(file: File, program: ProgramInfo, manifest: BundleManifest, numThreads: Int): ExecutorchClassifier =
            synchronized(this) {
                require(numThreads >= 0) { "numThreads must be 0 (ExecuTorch's default) or positive; got $numThreads" }
                val current = open
                check(current == null) {
                    "program ${current?.program?.name} is still loaded; close it before loading another " +
                        "(ExecuTorch's thread pool is process-wide)"
                }
                val heapBefore = Debug.getNativeHeapAllocatedSize()
                val start = System.nanoTime()
                val module = Module.load(file.absolutePath, Module.LOAD_MODE_MMAP, numThreads)
                try {
                    val adaptive = manifest.adaptive
                    val loopMethods = adaptive?.let { loopMethods(module, file, it.numSteps) }.orEmpty()
                    for (method in listOf("forward") + loopMethods) loadMethod(module, file, method)
                    val loadMillis = (System.nanoTime() - start) / 1e6
                    val heapAdded = Debug.getNativeHeapAllocatedSize() - heapBefore
                    checkConstant(module, file, "get_max_seq_len", program.maxSeqLen.toLong())
                    checkConstant(module, file, "get_vocab_size", manifest.vocabSize.toLong())
                    checkConstant(module, file, "get_type_vocab_size", manifest.typeVocabSize.toLong())
                    if (adaptive != null) checkConstant(module, file, "get_num_steps", adaptive.numSteps.toLong())
                    val fused = loopMethods.firstOrNull() == stepMethod(1)
                    ExecutorchClassifier(module, program, numThreads, loadMillis, heapBefore, heapAdded, adaptive, fused).also { open = it }
                } catch (e: Throwable) {
                    // Whatever failed (an ExecuTorch error, a native Error), the module is released.
                    module.destroy()
                    throw e
                }
            }

        /** The fused step method of layer step [k] (1-based), as albert_edge/adaptive.py `step_method` names it. */
        private fun stepMethod(k: Int): String = if (k == 1) "first_step" else "step_$k"

        /**
         * The loop's methods to load: the fused steps where the program has all of them, else the
         * separate methods, which every adaptive program has (refused, naming them, if missing).
         */
        private fun loopMethods(module: Module, file: File, numSteps: Int): List<String> {
            val methods = module.getMethods().toSet()
            val separate = listOf("embed", "layer") + (1..numSteps).map { "exit_$it" }
            val missing = separate.filter { it !in methods }
            check(missing.isEmpty()) {
                "${file.name}: the manifest has 'adaptive' with num_steps $numSteps but the program lacks method(s) " +
                    "${missing.joinToString()}; re-export the bundle"
            }
            val fused = (1..numSteps).map(::stepMethod)
            return if (methods.containsAll(fused)) fused else separate
        }

        private fun loadMethod(module: Module, file: File, method: String) {
            // loadMethod returns an error code (Int) in the Java API and throws in the Kotlin
            // rewrite (which returns Unit); handle both.
            val status: Any = module.loadMethod(method)
            if (status is Int && status != 0) {
                throw IllegalStateException(
                    "${file.name}: loading method $method failed with ExecuTorch error 0x${Integer.toHexString(status)}" +
                        if (method != "forward") "; the manifest has 'adaptive', so every program needs the loop's methods: re-export the bundle" else ""
                )
            }
        }

        private fun checkConstant(module: Module, file: File, method: String, expected: Long) {
            val outputs = module.execute(method)
            check(outputs.isNotEmpty()) { "${file.name}: $method returned nothing" }
            val actual = outputs[0].toInt()
            check(actual == expected) {
                "${file.name}: $method() = $actual but the manifest says $expected; the program and manifest do not belong together"
            }
        }
    }
}
