package org.albertedge.demo

import android.app.Application
import android.content.res.AssetManager
import androidx.lifecycle.AndroidViewModel
import androidx.lifecycle.viewModelScope
import java.io.IOException
import java.io.InputStream
import kotlinx.coroutines.CancellationException
import kotlinx.coroutines.CoroutineScope
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.SupervisorJob
import kotlinx.coroutines.flow.MutableStateFlow
import kotlinx.coroutines.flow.StateFlow
import kotlinx.coroutines.flow.asStateFlow
import kotlinx.coroutines.flow.update
import kotlinx.coroutines.launch
import kotlinx.coroutines.sync.Mutex
import kotlinx.coroutines.sync.withLock
import org.albertedge.textcore.AlbertTokenizer
import org.albertedge.textcore.LabelScore
import org.albertedge.textcore.PostProcess
import org.albertedge.textcore.QAException
import org.albertedge.textcore.firstTokenizerMismatch

/** One program of the bundle as the screen lists it. */
data class ProgramChoice(val name: String, val sizeBytes: Long, val dynamic: Boolean)

/** The classification of one text by one program. */
data class Classification(
    val text: String,
    val program: String,
    val threads: Int,
    val tokens: Int,
    val label: String,
    /** Every class, most likely first. */
    val scores: List<LabelScore>,
    val latency: LatencySummary,
    /** Early exits (manifest `adaptive`): the layer steps this text ran, of [numSteps], under [exitRule]; null without. */
    val depth: Int? = null,
    val numSteps: Int? = null,
    val exitRule: String? = null,
)

data class UiState(
    val busy: Boolean = true,
    val status: String = "Looking for a bundle…",
    val error: String? = null,
    val bundleDescription: String? = null,
    val programs: List<ProgramChoice> = emptyList(),
    val selectedProgram: String? = null,
    val threadChoices: List<Int> = THREAD_CHOICES,
    val selectedThreads: Int = 0,
    val modelSizeBytes: Long? = null,
    val loadMillis: Double? = null,
    /** Native heap the loaded program added: after load, and after its first forward (bytes). */
    val heapAddedByLoad: Long? = null,
    val heapAddedByFirstForward: Long? = null,
    /** No bundle could be read: the screen offers "Retry" (runs the locator again). */
    val canRetry: Boolean = false,
    val result: Classification? = null,
    /** A question-answering bundle: the screen asks a question about a passage instead. */
    val isQuestionAnswering: Boolean = false,
    val qaResult: QAResult? = null,
) {
    companion object {
        /** 0 = ExecuTorch's default (half the cores). */
        val THREAD_CHOICES = listOf(0, 1, 2, 4)
        val SAMPLES = listOf(
            "thanks, this is wonderful",
            "my flight got cancelled again",
            "the meeting moved to 3pm on Thursday",
            "I can't believe how rude the staff was today",
            "Just finished the book. Loved every page!",
        )

        /** Question and passage samples for a question-answering bundle. */
        val QA_SAMPLES = listOf(
            "Who wrote the report?" to "The report was written by Alice Smith in 2019 and published in Paris.",
            "The city was founded in what year?" to "Paris grew quickly. The city was founded in 1821 by settlers from the coast.",
            "Who runs the ferry?" to "The ferry across the river is run by Maria Lopez. It leaves every hour from the old mill.",
        )
    }
}

/**
 * Holds the bundle, the tokenizer and the one loaded program; every model operation runs on
 * Dispatchers.Default, one at a time (a mutex), and the screen observes [state].
 */
class ClassifierViewModel(application: Application) : AndroidViewModel(application) {
    private val _state = MutableStateFlow(UiState())
    val state: StateFlow<UiState> = _state.asStateFlow()

    /** App-wide ([sharedModelLock]): a new ViewModel's load waits until a cleared one has released its program. */
    private val modelLock = sharedModelLock
    private var bundle: LocatedBundle? = null
    private var tokenizer: AlbertTokenizer? = null
    private var classifier: ExecutorchClassifier? = null

    /** The last text (or question and passage) submitted by the screen, which owns the fields; re-run after a reload. */
    private var submittedText: String = UiState.SAMPLES.first()
    private var submittedQuestion: String = UiState.QA_SAMPLES.first().first
    private var submittedContext: String = UiState.QA_SAMPLES.first().second

    init {
        loadBundle()
    }

    /** Looks for the bundle again, e.g. after push_bundle.sh when none was found. */
    fun retry() = loadBundle()

    private fun loadBundle() {
        _state.update { it.copy(canRetry = false) }
        launchModelWork("Loading the bundle…") {
            if (bundle == null) {
                try {
                    locateBundle()
                } catch (e: Throwable) {
                    _state.update { it.copy(canRetry = true) } // no bundle yet: offer "Retry"
                    throw e
                }
            }
            val manifest = checkNotNull(bundle).manifest
            loadProgram(manifest.defaultProgram, threads = 0)
            runCurrent()
        }
    }

    /** Finds the bundle and reads its manifest and tokenizer (sets [bundle] last, once all succeeded). */
    private fun locateBundle() {
        val app = getApplication<Application>()
        val located = BundleLocator(app.filesDir, AndroidAssets(app.assets)).locate()
        val manifest = located.manifest
        val settings = manifest.tokenizer
            ?: throw BundleException("${located.dir.path}/manifest.json has no tokenizer; this app needs one to encode text")
        val spiece = BundleFiles.verified(located.dir, settings.file).readBytes()
        val tok = AlbertTokenizer.fromManifest(manifest, spiece)
        // The manifest has no hash, and its tokenizer settings change every answer: the golden
        // text cases must still encode to their ids (export/BUNDLE.md, "Validating a bundle", step 5).
        manifest.goldens?.let { entry ->
            val goldens = BundleFiles.verified(located.dir, entry).readText(Charsets.UTF_8)
            firstTokenizerMismatch(manifest, tok, goldens)?.let { throw BundleException("${located.dir.path}/$it") }
        }
        tokenizer = tok
        val qa = manifest.qa
        val what = if (qa != null) {
            "question answering, windows of ${qa.maxSeqLen} tokens overlapping by ${qa.docStride}, " +
                "answers of at most ${qa.maxAnswerLen} tokens"
        } else {
            "${manifest.task}, labels ${manifest.labels.joinToString()}, max ${manifest.maxSeqLen} tokens" +
                manifest.adaptive?.let { ", early exits after any of ${it.numSteps} layer steps (${it.rule})" }.orEmpty()
        }
        _state.update {
            it.copy(
                bundleDescription = "${located.dir.path} (${located.origin.description}): $what",
                programs = manifest.programs.map { p -> ProgramChoice(p.name, p.file.sizeBytes, p.dynamic) },
                isQuestionAnswering = manifest.isQuestionAnswering,
            )
        }
        bundle = located
    }

    fun selectProgram(name: String) = launchModelWork("Loading $name…") {
        loadProgram(name, _state.value.selectedThreads)
        runCurrent()
    }

    fun selectThreads(threads: Int) = launchModelWork("Reloading with ${threadsLabel(threads)}…") {
        loadProgram(_state.value.selectedProgram ?: return@launchModelWork, threads)
        runCurrent()
    }

    fun classify(text: String) = launchModelWork("Running…") {
        submittedText = text
        classifyCurrentText()
    }

    fun ask(question: String, context: String) = launchModelWork("Answering…") {
        submittedQuestion = question
        submittedContext = context
        answerCurrentQuestion()
    }

    /** After a (re)load: the last text, or the last question, through the new program. */
    private fun runCurrent() {
        if (bundle?.manifest?.isQuestionAnswering == true) answerCurrentQuestion() else classifyCurrentText()
    }

    private fun answerCurrentQuestion() {
        val located = bundle ?: throw BundleException("no bundle loaded")
        val model = classifier ?: throw BundleException("no program loaded")
        val tok = tokenizer ?: throw BundleException("no tokenizer loaded")
        val result = answerQuestion(model, tok, located.manifest, submittedQuestion, submittedContext)
        _state.update { it.copy(qaResult = result, heapAddedByFirstForward = model.heapAddedByFirstForward) }
    }

    /** Closes the current program first: the thread pool must not be resized under a loaded one. */
    private fun loadProgram(name: String, threads: Int) {
        val located = bundle ?: throw BundleException("no bundle loaded")
        val program = located.manifest.program(name)
        classifier?.close()
        classifier = null
        _state.update {
            it.copy(selectedProgram = name, selectedThreads = threads, modelSizeBytes = null, loadMillis = null,
                heapAddedByLoad = null, heapAddedByFirstForward = null)
        }
        val file = BundleFiles.verified(located.dir, program.file)
        val loaded = ExecutorchClassifier.load(file, program, located.manifest, threads)
        classifier = loaded
        _state.update { it.copy(modelSizeBytes = file.length(), loadMillis = loaded.loadMillis, heapAddedByLoad = loaded.heapAddedByLoad) }
    }

    private fun classifyCurrentText() {
        val located = bundle ?: throw BundleException("no bundle loaded")
        val model = classifier ?: throw BundleException("no program loaded")
        val tok = tokenizer ?: throw BundleException("no tokenizer loaded")
        val manifest = located.manifest
        val text = submittedText
        val inputs = programInputs(tok.encode(text, maxLength = manifest.maxSeqLen), model.program, manifest)
        var logits = FloatArray(0)
        var depth: Int? = null
        // With early exits the loop runs (embed, then layer and exit_k until the manifest's rule stops); else forward.
        val latency = measureLatency(warmup = 3, runs = 20) {
            if (model.adaptive != null) {
                val result = model.adaptiveLogits(inputs)
                logits = result.logits
                depth = result.depth
            } else {
                logits = model.logits(inputs)
            }
        }
        check(logits.size == manifest.labels.size) {
            "program ${model.program.name} returned ${logits.size} logits for ${manifest.labels.size} labels"
        }
        val scores = PostProcess.topK(PostProcess.softmax(logits), manifest.labels, manifest.labels.size)
        val tokens = inputs.attentionMask.count { it == 1L }
        _state.update {
            it.copy(
                result = Classification(text, model.program.name, model.numThreads, tokens, scores.first().label, scores, latency,
                    depth, model.adaptive?.numSteps, model.adaptive?.rule?.toString()),
                heapAddedByFirstForward = model.heapAddedByFirstForward,
            )
        }
    }

    /** Runs [work] off the main thread, one at a time; any failure becomes the screen's error text. */
    private fun launchModelWork(status: String, work: suspend () -> Unit) {
        viewModelScope.launch(Dispatchers.Default) {
            modelLock.withLock {
                _state.update { it.copy(busy = true, status = status, error = null) }
                try {
                    work()
                    _state.update { it.copy(busy = false, status = "Ready") }
                } catch (e: CancellationException) {
                    throw e // the ViewModel is cleared; not an error to show
                } catch (e: BundleException) {
                    _state.update { it.copy(busy = false, status = "Bundle problem", error = e.message) }
                } catch (e: QAException) {
                    // An empty question or passage, or a passage too long: say what is accepted.
                    _state.update { it.copy(busy = false, status = "Cannot answer", error = e.message) }
                } catch (e: IOException) {
                    _state.update { it.copy(busy = false, status = "Failed", error = "I/O error: ${e.message}") }
                } catch (e: Throwable) {
                    // The native boundary: ExecuTorch errors (ExecutorchRuntimeException), bad inputs and
                    // manifest mismatches, and Errors from loading the native library
                    // (UnsatisfiedLinkError, ExceptionInInitializerError) are shown, never a crash.
                    _state.update { it.copy(busy = false, status = "Failed", error = "${e.javaClass.simpleName}: ${e.message}") }
                }
            }
        }
    }

    override fun onCleared() {
        // Never block the main thread here (a running load plus 23 forward calls would be an ANR).
        // viewModelScope is already cancelled, so the release runs on [releaseScope], which outlives
        // the ViewModel: it takes the lock after any in-flight work (native calls do not stop on
        // cancellation) and then closes the native module.
        releaseScope.launch {
            modelLock.withLock {
                classifier?.close()
                classifier = null
            }
        }
    }
}

/** Process-wide: releases native modules of cleared ViewModels in the background. */
private val releaseScope = CoroutineScope(SupervisorJob() + Dispatchers.Default)

/**
 * Process-wide, as the rule it guards is ([ExecutorchClassifier.load] refuses while another program
 * is open): a ViewModel created right after another was cleared (leave and come back) takes this
 * lock after the old one's release, instead of failing with "still loaded".
 */
private val sharedModelLock = Mutex()

fun threadsLabel(threads: Int): String = if (threads == 0) "auto threads" else "$threads thread${if (threads == 1) "" else "s"}"

private class AndroidAssets(private val assets: AssetManager) : AssetSource {
    override fun list(path: String): List<String> = assets.list(path)?.toList() ?: emptyList()

    override fun open(path: String): InputStream = assets.open(path, AssetManager.ACCESS_STREAMING)
}
