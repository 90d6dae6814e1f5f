package org.albertedge.textcore

/** A manifest.json that this reader cannot use; the message names the field and what is accepted. */
class ManifestException(message: String) : IllegalArgumentException(message)

/** A file of the bundle: a plain name inside the bundle folder, its size and SHA-256 (lower-case hex). */
data class FileEntry(val file: String, val sizeBytes: Long, val sha256: String)

/** `manifest.tokenizer`: the SentencePiece file, ALBERT's preprocessing flags and special ids. */
data class TokenizerSettings(
    val file: FileEntry,
    val doLowerCase: Boolean,
    val keepAccents: Boolean,
    val splitDigitComma: Boolean,
    /** Optional in the manifest (bundles written before it existed): false. */
    val splitUserDefined: Boolean,
    val vocabSize: Int,
    val padId: Int,
    val unkId: Int,
    val clsId: Int,
    val sepId: Int,
    val maskId: Int,
    /** Encode with this maximum length (= max_seq_len), [CLS] and [SEP] included. */
    val maxLength: Int,
    val truncation: String,
    /** `do_not_pad` (dynamic programs) or `max_length` (fixed-length programs). */
    val padding: String,
)

/** `manifest.programs[i]`; seq-len bounds come from `inputs[0]`. */
data class ProgramInfo(
    val name: String,
    val file: FileEntry,
    val method: String,
    /** True: any length in [minSeqLen, maxSeqLen]; false: exactly maxSeqLen, padded. */
    val dynamic: Boolean,
    val minSeqLen: Int,
    val maxSeqLen: Int,
    /** Output names in the order `forward` returns them (`logits`; `start_logits`, `end_logits` for QA). */
    val outputs: List<String> = listOf("logits"),
)

/** The parts of an albert-edge bundle's manifest.json (export/BUNDLE.md, schema_version 1) an app needs. */
data class BundleManifest(
    val schemaVersion: Int,
    val task: String,
    val labels: List<String>,
    val maxSeqLen: Int,
    val vocabSize: Int,
    val typeVocabSize: Int,
    val padTokenId: Int,
    val defaultProgram: String,
    val tokenizer: TokenizerSettings?,
    val goldens: FileEntry?,
    val programs: List<ProgramInfo>,
    /** `manifest.qa`: present exactly in `question-answering` bundles. */
    val qa: QASettings? = null,
    /** `manifest.adaptive`: early exits (the programs hold the loop's methods); null without. */
    val adaptive: AdaptiveSettings? = null,
) {
    /** True for a question-answering bundle (programs give start and end logits per token). */
    val isQuestionAnswering: Boolean get() = task == QA_TASK

    /** The program called [name]; throws naming the available ones. */
    fun program(name: String = defaultProgram): ProgramInfo =
        programs.firstOrNull { it.name == name }
            ?: throw ManifestException("no program '$name' in the bundle (available: ${programs.joinToString { it.name }})")

    companion object {
        const val FORMAT = "albert-edge-bundle"
        const val QA_TASK = "question-answering"

        /** The architecture of each task (albert_edge/config.py HEADS). */
        val HEADS = mapOf(
            "base" to "AlbertModel",
            "pretraining" to "AlbertForPreTraining",
            "masked-lm" to "AlbertForMaskedLM",
            "sequence-classification" to "AlbertForSequenceClassification",
            "token-classification" to "AlbertForTokenClassification",
            QA_TASK to "AlbertForQuestionAnswering",
        )
        val SUPPORTED_SCHEMA_VERSIONS = listOf(1)
        private val INPUT_NAMES = listOf("input_ids", "attention_mask", "token_type_ids")

        /** Parse and validate manifest.json text; throws [ManifestException] naming the field. */
        fun parse(json: String): BundleManifest {
            val root = try {
                MiniJson.parse(json)
            } catch (e: JsonException) {
                throw ManifestException("manifest.json is not valid JSON (${e.message})")
            }
            val top = Obj(root as? Map<*, *> ?: throw ManifestException("manifest.json must be a JSON object"), "")
            val format = top.str("format")
            if (format != FORMAT) throw ManifestException("manifest.json: field 'format' is \"$format\", expected \"$FORMAT\"")
            // Checked before anything else: a future version may change fields in ways we would misread.
            val version = top.int("schema_version")
            if (version !in SUPPORTED_SCHEMA_VERSIONS) {
                throw ManifestException(
                    "manifest.json: schema_version $version is not supported by this app " +
                        "(supported: ${SUPPORTED_SCHEMA_VERSIONS.joinToString()}); use a matching app or re-export the bundle"
                )
            }
            val task = top.str("task")
            val architecture = HEADS[task]
                ?: throw ManifestException("manifest.json: field 'task' is \"$task\"; accepted: ${HEADS.keys.joinToString { "\"$it\"" }}")
            if (top.str("architecture") != architecture) {
                throw ManifestException("manifest.json: field 'architecture' is \"${top.str("architecture")}\"; a \"$task\" bundle has \"$architecture\"")
            }
            val labels = top.list("labels").mapIndexed { i, v ->
                (v as? String)?.takeIf { it.isNotEmpty() }
                    ?: throw ManifestException("manifest.json: field 'labels[$i]' must be a non-empty string, got ${show(v)}")
            }
            if (labels.isEmpty()) throw ManifestException("manifest.json: field 'labels' is empty; accepted: a non-empty array of distinct strings")
            labels.groupBy { it }.values.firstOrNull { it.size > 1 }?.let {
                throw ManifestException("manifest.json: field 'labels' names \"${it[0]}\" twice; labels must be distinct")
            }
            val maxSeqLen = top.int("max_seq_len", min = 1)
            val vocabSize = top.int("vocab_size", min = 1)
            val tokenizer = top.objOrNull("tokenizer")?.let { t ->
                val pieces = t.int("vocab_size", min = 5, max = vocabSize)
                TokenizerSettings(
                    file = fileEntry(t),
                    doLowerCase = t.bool("do_lower_case"),
                    keepAccents = t.bool("keep_accents"),
                    splitDigitComma = t.bool("split_digit_comma"),
                    splitUserDefined = t.has("split_user_defined") && t.bool("split_user_defined"),
                    vocabSize = pieces,
                    padId = t.int("pad_id", min = 0, max = pieces - 1),
                    unkId = t.int("unk_id", min = 0, max = pieces - 1),
                    clsId = t.int("cls_id", min = 0, max = pieces - 1),
                    sepId = t.int("sep_id", min = 0, max = pieces - 1),
                    maskId = t.int("mask_id", min = 0, max = pieces - 1),
                    maxLength = t.int("max_length", min = 2).also {
                        if (it != maxSeqLen) {
                            throw ManifestException(
                                "manifest.json: field 'tokenizer.max_length' is $it but 'max_seq_len' is $maxSeqLen; the manifest was edited: re-export the bundle"
                            )
                        }
                    },
                    truncation = t.str("truncation").also {
                        if (it != "longest_first") throw ManifestException("manifest.json: field 'tokenizer.truncation' is \"$it\"; accepted: \"longest_first\"")
                    },
                    padding = t.str("padding").also {
                        if (it != "do_not_pad" && it != "max_length") {
                            throw ManifestException("manifest.json: field 'tokenizer.padding' is \"$it\"; accepted: \"do_not_pad\", \"max_length\"")
                        }
                    },
                )
            }
            val goldens = top.objOrNull("goldens")?.let { it.int("num_cases", min = 1); fileEntry(it) }
            val programList = top.list("programs")
            if (programList.isEmpty()) throw ManifestException("manifest.json: field 'programs' is empty; a bundle has at least one program")
            val programs = programList.mapIndexed { i, v ->
                val p = Obj(v as? Map<*, *> ?: throw ManifestException("manifest.json: field 'programs[$i]' must be an object, got ${show(v)}"), "programs[$i].")
                val inputs = p.list("inputs")
                val names = inputs.map { (it as? Map<*, *>)?.get("name") }
                if (names != INPUT_NAMES) {
                    throw ManifestException("manifest.json: field 'programs[$i].inputs' must name $INPUT_NAMES in that order, got $names")
                }
                val bounds = inputs.mapIndexed { j, input ->
                    val o = Obj(input as Map<*, *>, "programs[$i].inputs[$j].")
                    val maxLen = o.int("max_seq_len", min = 1)
                    if (maxLen != maxSeqLen) {
                        throw ManifestException(
                            "manifest.json: field 'programs[$i].inputs[$j].max_seq_len' is $maxLen but 'max_seq_len' is $maxSeqLen; the manifest was edited: re-export the bundle"
                        )
                    }
                    val minLen = o.int("min_seq_len", min = 1, max = maxLen)
                    val dynamic = o.bool("dynamic")
                    if (dynamic != (minLen < maxLen)) {
                        throw ManifestException("manifest.json: field 'programs[$i].inputs[$j].dynamic' is $dynamic but the lengths are $minLen..$maxLen")
                    }
                    Triple(minLen, maxLen, dynamic)
                }
                if (bounds.distinct().size != 1) throw ManifestException("manifest.json: field 'programs[$i].inputs': the three inputs' lengths differ: $bounds")
                val (minLen, maxLen, dynamic) = bounds[0]
                val outputs = p.list("outputs").mapIndexed { j, o ->
                    (o as? Map<*, *>)?.get("name") as? String
                        ?: throw ManifestException("manifest.json: field 'programs[$i].outputs[$j]' must be an object with a string name, got ${show(o)}")
                }
                if (outputs.isEmpty()) throw ManifestException("manifest.json: field 'programs[$i].outputs' is empty")
                ProgramInfo(p.str("name"), fileEntry(p), p.str("method"), dynamic, minLen, maxLen, outputs)
            }
            programs.groupBy { it.name }.values.firstOrNull { it.size > 1 }?.let {
                throw ManifestException("manifest.json: field 'programs': program name \"${it[0].name}\" is used twice")
            }
            val defaultProgram = top.str("default_program")
            if (programs.none { it.name == defaultProgram }) {
                throw ManifestException(
                    "manifest.json: field 'default_program' is \"$defaultProgram\"; accepted: one of ${programs.joinToString { "\"${it.name}\"" }}"
                )
            }
            if (tokenizer != null) {
                val want = if (programs[0].dynamic) "do_not_pad" else "max_length"
                if (tokenizer.padding != want) {
                    throw ManifestException(
                        "manifest.json: field 'tokenizer.padding' is \"${tokenizer.padding}\" but the programs are " +
                            "${if (programs[0].dynamic) "dynamic" else "fixed-length"}; accepted: \"$want\""
                    )
                }
            }
            val padTokenId = top.int("pad_token_id", min = 0, max = vocabSize - 1)
            val qa = if (task == QA_TASK) {
                if (!top.has("qa")) {
                    throw ManifestException(
                        "manifest.json: a \"$QA_TASK\" bundle needs field 'qa' (max_seq_len, doc_stride, " +
                            "max_question_len, max_answer_len, no_answer_threshold, align_to_words); re-export it"
                    )
                }
                qaSettings(top.objOrNull("qa") ?: throw ManifestException("manifest.json: field 'qa' must be an object, got null"), maxSeqLen)
            } else {
                if (top.has("qa")) throw ManifestException("manifest.json: field 'qa' in a \"$task\" bundle; only \"$QA_TASK\" bundles have it")
                null
            }
            if (qa != null) {
                if (tokenizer == null) throw ManifestException("manifest.json: field 'tokenizer' is null; a \"$QA_TASK\" bundle needs its tokenizer")
                programs.firstOrNull { it.outputs.take(2) != listOf("start_logits", "end_logits") }?.let {
                    throw ManifestException(
                        "manifest.json: program \"${it.name}\" has outputs ${it.outputs}; a \"$QA_TASK\" program gives start_logits, end_logits"
                    )
                }
            }
            val adaptive = adaptiveSettings(top, task, labels)
            return BundleManifest(
                schemaVersion = version,
                task = task,
                labels = labels,
                maxSeqLen = maxSeqLen,
                vocabSize = vocabSize,
                typeVocabSize = top.int("type_vocab_size", min = 1),
                padTokenId = padTokenId,
                defaultProgram = defaultProgram,
                tokenizer = tokenizer,
                goldens = goldens,
                programs = programs,
                qa = qa,
                adaptive = adaptive,
            )
        }

        /** `adaptive` as albert_edge/bundle_format.py `exit_settings` accepts it; null when absent (or null). */
        private fun adaptiveSettings(top: Obj, task: String, labels: List<String>): AdaptiveSettings? {
            if (!top.has("adaptive")) return null
            if (task != "sequence-classification" || labels.size < 2) {
                throw ManifestException(
                    "manifest.json: field 'adaptive' (early exits) is for \"sequence-classification\" bundles with at least 2 labels; " +
                        "this one is \"$task\" with ${labels.size} label(s)"
                )
            }
            val a = top.objOrNull("adaptive") ?: return null
            a.exactly(listOf("num_steps", "rule"))
            val numSteps = a.int("num_steps", min = 2)
            val r = a.objOrNull("rule")
                ?: throw ManifestException("manifest.json: field 'adaptive.rule' must be {\"kind\": \"patience\" or \"confidence\", \"value\": number}, got null")
            r.exactly(listOf("kind", "value"))
            val kind = r.str("kind")
            val value = r.number("value")
            val rule = try {
                ExitRule.of(kind, value)
            } catch (e: IllegalArgumentException) {
                throw ManifestException("manifest.json: field 'adaptive.rule': ${e.message}")
            }
            return AdaptiveSettings(numSteps, rule)
        }

        private val QA_FIELDS = listOf("max_seq_len", "doc_stride", "max_question_len", "max_answer_len", "no_answer_threshold", "align_to_words")

        private fun qaSettings(o: Obj, maxSeqLen: Int): QASettings {
            val unknown = o.keys().filter { it !in QA_FIELDS }.sorted()
            if (unknown.isNotEmpty()) {
                throw ManifestException("manifest.json: field 'qa' has unknown field(s) ${unknown.joinToString()}; accepted: ${QA_FIELDS.sorted().joinToString()}")
            }
            val settings = try {
                QASettings(
                    maxSeqLen = o.int("max_seq_len", min = 1),
                    docStride = o.int("doc_stride", min = 0),
                    maxQuestionLen = o.int("max_question_len", min = 1),
                    maxAnswerLen = o.int("max_answer_len", min = 1),
                    noAnswerThreshold = o.numberOrNull("no_answer_threshold"),
                    alignToWords = o.bool("align_to_words"),
                )
            } catch (e: QAException) {
                throw ManifestException("manifest.json: field 'qa': ${e.message}")
            }
            if (settings.maxSeqLen != maxSeqLen) {
                throw ManifestException(
                    "manifest.json: field 'qa.max_seq_len' is ${settings.maxSeqLen} but 'max_seq_len' is $maxSeqLen; the manifest was edited: re-export the bundle"
                )
            }
            return settings
        }

        private fun fileEntry(o: Obj): FileEntry {
            val name = o.str("file")
            if (name.isEmpty() || name == "." || name == ".." || '/' in name || '\\' in name) {
                throw ManifestException("manifest.json: field '${o.prefix}file' is \"$name\"; it must be a plain file name inside the bundle folder")
            }
            val sha = o.str("sha256")
            if (sha.length != 64 || sha.any { it !in '0'..'9' && it !in 'a'..'f' }) {
                throw ManifestException("manifest.json: field '${o.prefix}sha256' must be 64 lower-case hex digits, got \"$sha\"")
            }
            return FileEntry(name, o.long("size_bytes", min = 0), sha)
        }

        private fun show(v: Any?): String = when (v) {
            null -> "null"
            is String -> "\"$v\""
            is Map<*, *> -> "an object"
            is List<*> -> "an array"
            else -> v.toString()
        }
    }

    /** A JSON object with typed, field-naming accessors; [prefix] is the path of the object ("tokenizer."). */
    private class Obj(val map: Map<*, *>, val prefix: String) {
        private fun get(name: String): Any? {
            if (!map.containsKey(name)) throw ManifestException("manifest.json: required field '$prefix$name' is missing")
            return map[name]
        }

        private fun wrong(name: String, kind: String, v: Any?): Nothing =
            throw ManifestException("manifest.json: field '$prefix$name' must be $kind, got ${show(v)}")

        fun has(name: String): Boolean = map.containsKey(name)

        /** Refuses any field but [names] and any of them missing (as Python's `set(a) != {...}`). */
        fun exactly(names: List<String>) {
            if (keys().toSet() != names.toSet()) {
                throw ManifestException(
                    "manifest.json: field '${prefix.removeSuffix(".")}' has fields ${keys().sorted()}; accepted: exactly ${names.joinToString()}"
                )
            }
        }
        fun keys(): List<String> = map.keys.map { it.toString() }

        fun str(name: String): String = get(name).let { it as? String ?: wrong(name, "a string", it) }

        /** A JSON number (integer or not), or null; a boolean or string is refused, not coerced. */
        fun numberOrNull(name: String): Double? = when (val v = get(name)) {
            null -> null
            is Long -> v.toDouble()
            is Double -> v
            else -> wrong(name, "a number or null", v)
        }
        fun number(name: String): Double = when (val v = get(name)) {
            is Long -> v.toDouble()
            is Double -> v
            else -> wrong(name, "a number", v)
        }
        fun bool(name: String): Boolean = get(name).let { it as? Boolean ?: wrong(name, "true or false", it) }
        fun list(name: String): List<*> = get(name).let { it as? List<*> ?: wrong(name, "an array", it) }

        fun long(name: String, min: Long, max: Long = Long.MAX_VALUE): Long {
            val v = get(name)
            val n = v as? Long ?: wrong(name, "an integer", v)
            // int() passes Int.MAX_VALUE for "no upper bound".
            if (n < min || n > max) wrong(name, if (max >= Int.MAX_VALUE) "an integer >= $min" else "an integer in [$min, $max]", v)
            return n
        }

        fun int(name: String, min: Int = Int.MIN_VALUE, max: Int = Int.MAX_VALUE): Int =
            long(name, min.toLong(), max.toLong()).toInt()

        fun objOrNull(name: String): Obj? = when (val v = get(name)) {
            null -> null
            is Map<*, *> -> Obj(v, "$prefix$name.")
            else -> wrong(name, "an object or null", v)
        }
    }
}
