package org.albertedge.demo

import org.albertedge.textcore.BundleManifest
import org.albertedge.textcore.Encoding
import org.albertedge.textcore.ProgramInfo

/** The three int64 rows of one `forward` call, shape (1, S). */
class ProgramInputs(val inputIds: LongArray, val attentionMask: LongArray, val tokenTypeIds: LongArray) {
    val seqLen: Int get() = inputIds.size
}

/**
 * Turns an [Encoding] into inputs for [program] (export/BUNDLE.md): dynamic programs take the
 * unpadded (1, S); fixed-length ones take (1, max_seq_len), padded with the pad id, mask 0 and
 * type 0. Then checks every value against the manifest (step 5 of "Validating a bundle"), because
 * ExecuTorch answers a bad input with an opaque error code.
 */
fun programInputs(encoding: Encoding, program: ProgramInfo, manifest: BundleManifest): ProgramInputs {
    val n = encoding.inputIds.size
    require(encoding.attentionMask.size == n && encoding.tokenTypeIds.size == n) {
        "input_ids, attention_mask and token_type_ids differ in length: $n, " +
            "${encoding.attentionMask.size}, ${encoding.tokenTypeIds.size}"
    }
    val maxLen = program.maxSeqLen
    val inputs = if (program.dynamic || n == maxLen) {
        ProgramInputs(encoding.inputIds, encoding.attentionMask, encoding.tokenTypeIds)
    } else {
        require(n < maxLen) { "program ${program.name} takes exactly $maxLen tokens; got $n (truncate with the tokenizer)" }
        val padded = encoding.padTo(maxLen, manifest.padTokenId)
        ProgramInputs(padded.inputIds, padded.attentionMask, padded.tokenTypeIds)
    }
    checkInputs(inputs, program, manifest)
    return inputs
}

private fun checkInputs(inputs: ProgramInputs, program: ProgramInfo, manifest: BundleManifest) {
    val s = inputs.seqLen
    val minLen = program.minSeqLen
    val maxLen = program.maxSeqLen
    require(s in minLen..maxLen) {
        "program ${program.name} takes $minLen..$maxLen tokens; got $s"
    }
    val vocab = manifest.vocabSize.toLong()
    val types = manifest.typeVocabSize.toLong()
    for (i in 0 until s) {
        val id = inputs.inputIds[i]
        require(id in 0 until vocab) { "input_ids[$i] = $id is outside [0, $vocab)" }
        val m = inputs.attentionMask[i]
        require(m == 0L || m == 1L) { "attention_mask[$i] = $m; only 0 and 1 are accepted" }
        val t = inputs.tokenTypeIds[i]
        require(t in 0 until types) { "token_type_ids[$i] = $t is outside [0, $types)" }
    }
}
