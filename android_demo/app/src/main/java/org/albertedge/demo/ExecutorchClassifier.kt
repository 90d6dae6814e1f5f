package org.albertedge.demo

import android.os.Debug
import java.io.File
import org.albertedge.textcore.BundleManifest
import org.albertedge.textcore.ProgramInfo
import org.pytorch.executorch.EValue
import org.pytorch.executorch.Module
import org.pytorch.executorch.Tensor

/**
 * The only class that calls ExecuTorch: loads one `.pte` program and runs `forward` on
 * (input_ids, attention_mask, token_type_ids), each int64 of shape (1, S), for any task's
 * program (a classifier's logits, a QA program's start and end logits).
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
    /** Wall time of `Module.load` plus loading the `forward` method, in milliseconds. */
    val loadMillis: Double,
    /** Native heap ([Debug.getNativeHeapAllocatedSize]) just before `Module.load`, in bytes. */
    private val heapBeforeLoad: Long,
    /** Native heap the program added once loaded (packed weights, planned memory), in bytes. */
    val heapAddedByLoad: Long,
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
        if (heapAddedByFirstForward == null) heapAddedByFirstForward = Debug.getNativeHeapAllocatedSize() - heapBeforeLoad
        return outputs.mapIndexed { o, value ->
            value.toTensor().dataAsFloatArray.also { data ->
                val bad = data.indexOfFirst { it.isNaN() || it.isInfinite() }
                check(bad < 0) { "program ${program.name}: output ${program.outputs[o]}[$bad] is ${data[bad]}; the program is unusable" }
            }
        }
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
         * (0 = ExecuTorch's default), loads its `forward` method, and checks the program's constant
         * methods against the manifest (export/BUNDLE.md, "Validating a bundle", step 4).
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
                    // loadMethod returns an error code (Int) in the Java API and throws in the Kotlin
                    // rewrite (which returns Unit); handle both.
                    val status: Any = module.loadMethod("forward")
                    if (status is Int && status != 0) {
                        throw IllegalStateException(
                            "${file.name}: loading method forward failed with ExecuTorch error 0x${Integer.toHexString(status)}"
                        )
                    }
                    val loadMillis = (System.nanoTime() - start) / 1e6
                    val heapAdded = Debug.getNativeHeapAllocatedSize() - heapBefore
                    checkConstant(module, file, "get_max_seq_len", program.maxSeqLen.toLong())
                    checkConstant(module, file, "get_vocab_size", manifest.vocabSize.toLong())
                    checkConstant(module, file, "get_type_vocab_size", manifest.typeVocabSize.toLong())
                    ExecutorchClassifier(module, program, numThreads, loadMillis, heapBefore, heapAdded).also { open = it }
                } catch (e: Throwable) {
                    // Whatever failed (an ExecuTorch error, a native Error), the module is released.
                    module.destroy()
                    throw e
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
