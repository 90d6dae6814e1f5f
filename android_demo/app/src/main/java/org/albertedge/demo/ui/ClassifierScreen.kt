@file:OptIn(ExperimentalMaterial3Api::class)

package org.albertedge.demo.ui

import androidx.compose.foundation.horizontalScroll
import androidx.compose.foundation.layout.Arrangement
import androidx.compose.foundation.layout.Column
import androidx.compose.foundation.layout.Row
import androidx.compose.foundation.layout.Spacer
import androidx.compose.foundation.layout.fillMaxSize
import androidx.compose.foundation.layout.fillMaxWidth
import androidx.compose.foundation.layout.height
import androidx.compose.foundation.layout.padding
import androidx.compose.foundation.layout.safeDrawingPadding
import androidx.compose.foundation.layout.width
import androidx.compose.foundation.rememberScrollState
import androidx.compose.foundation.verticalScroll
import androidx.compose.material3.Button
import androidx.compose.material3.Card
import androidx.compose.material3.ExperimentalMaterial3Api
import androidx.compose.material3.FilterChip
import androidx.compose.material3.LinearProgressIndicator
import androidx.compose.material3.MaterialTheme
import androidx.compose.material3.OutlinedTextField
import androidx.compose.material3.Surface
import androidx.compose.material3.Text
import androidx.compose.runtime.Composable
import androidx.compose.runtime.getValue
import androidx.compose.runtime.mutableStateOf
import androidx.compose.runtime.saveable.rememberSaveable
import androidx.compose.runtime.setValue
import androidx.compose.ui.Alignment
import androidx.compose.ui.Modifier
import androidx.compose.ui.text.SpanStyle
import androidx.compose.ui.text.buildAnnotatedString
import androidx.compose.ui.text.font.FontWeight
import androidx.compose.ui.unit.dp
import java.util.Locale
import org.albertedge.demo.Classification
import org.albertedge.demo.QAResult
import org.albertedge.demo.highlightRange
import org.albertedge.demo.UiState
import org.albertedge.demo.threadsLabel

/**
 * The whole screen: everything comes from [state], every action goes to a callback. The text
 * fields' values are the one piece of state the screen owns (saved across recreation), so typing
 * never round-trips through the ViewModel; [onClassify] receives the text, [onAsk] the question
 * and passage (a question-answering bundle gets those two fields instead of the text).
 */
@Composable
fun ClassifierScreen(
    state: UiState,
    onClassify: (String) -> Unit,
    onAsk: (String, String) -> Unit,
    onSelectProgram: (String) -> Unit,
    onSelectThreads: (Int) -> Unit,
    onRetry: () -> Unit,
) {
    var text by rememberSaveable { mutableStateOf(UiState.SAMPLES.first()) }
    var question by rememberSaveable { mutableStateOf(UiState.QA_SAMPLES.first().first) }
    var passage by rememberSaveable { mutableStateOf(UiState.QA_SAMPLES.first().second) }
    Surface(modifier = Modifier.fillMaxSize()) {
        Column(
            modifier = Modifier
                .safeDrawingPadding()
                .verticalScroll(rememberScrollState())
                .padding(16.dp),
            verticalArrangement = Arrangement.spacedBy(12.dp),
        ) {
            Text("ALBERT on ExecuTorch", style = MaterialTheme.typography.headlineSmall)
            StatusLine(state)
            if (state.canRetry && !state.busy) {
                Button(onClick = onRetry) { Text("Retry") }
            }
            state.bundleDescription?.let { Text(it, style = MaterialTheme.typography.bodySmall) }

            if (state.programs.isNotEmpty()) {
                ChoiceRow("Program", state.programs.map { it.name }, state.selectedProgram, !state.busy, { it }, onSelectProgram)
                ChoiceRow("Threads", state.threadChoices, state.selectedThreads, !state.busy, ::threadsLabel, onSelectThreads)
                Text(
                    "ExecuTorch's thread pool is shared by the whole process and is set when a program " +
                        "is loaded, so changing threads reloads the program.",
                    style = MaterialTheme.typography.bodySmall,
                )
                ModelFacts(state)
            }

            if (state.isQuestionAnswering) {
                OutlinedTextField(
                    value = question,
                    onValueChange = { question = it },
                    label = { Text("Question") },
                    modifier = Modifier.fillMaxWidth(),
                    singleLine = true,
                )
                OutlinedTextField(
                    value = passage,
                    onValueChange = { passage = it },
                    label = { Text("Passage") },
                    modifier = Modifier.fillMaxWidth(),
                    minLines = 4,
                )
                ChoiceRow("Samples", UiState.QA_SAMPLES, question to passage, true, { it.first }) {
                    question = it.first
                    passage = it.second
                }
                Button(onClick = { onAsk(question, passage) }, enabled = !state.busy && state.selectedProgram != null) {
                    Text("Answer")
                }
                state.qaResult?.let { AnswerCard(it) }
            } else {
                OutlinedTextField(
                    value = text,
                    onValueChange = { text = it },
                    label = { Text("Text") },
                    modifier = Modifier.fillMaxWidth(),
                    minLines = 2,
                )
                ChoiceRow("Samples", UiState.SAMPLES, text, true, { it.take(24) + if (it.length > 24) "…" else "" }) { text = it }
                Button(onClick = { onClassify(text) }, enabled = !state.busy && state.selectedProgram != null) {
                    Text("Classify")
                }
                state.result?.let { ResultCard(it) }
            }
        }
    }
}

@Composable
private fun StatusLine(state: UiState) {
    Column(verticalArrangement = Arrangement.spacedBy(4.dp)) {
        Text(state.status, style = MaterialTheme.typography.titleSmall)
        if (state.busy) LinearProgressIndicator(modifier = Modifier.fillMaxWidth())
        state.error?.let {
            Text(it, color = MaterialTheme.colorScheme.error, style = MaterialTheme.typography.bodyMedium)
        }
    }
}

@Composable
private fun <T> ChoiceRow(
    title: String,
    choices: List<T>,
    selected: T?,
    enabled: Boolean,
    label: (T) -> String,
    onSelect: (T) -> Unit,
) {
    Column {
        Text(title, style = MaterialTheme.typography.labelLarge)
        Row(
            modifier = Modifier.horizontalScroll(rememberScrollState()),
            horizontalArrangement = Arrangement.spacedBy(8.dp),
        ) {
            for (choice in choices) {
                FilterChip(
                    selected = choice == selected,
                    onClick = { onSelect(choice) },
                    label = { Text(label(choice)) },
                    enabled = enabled,
                )
            }
        }
    }
}

@Composable
private fun ModelFacts(state: UiState) {
    val size = state.modelSizeBytes?.let { "%.2f MB".format(Locale.US, it / 1e6) } ?: "–"
    val load = state.loadMillis?.let { "%.0f ms".format(Locale.US, it) } ?: "–"
    val shape = state.programs.firstOrNull { it.name == state.selectedProgram }?.let {
        if (it.dynamic) "dynamic length" else "fixed length (padded)"
    } ?: ""
    Text("Model size $size · load time $load · $shape", style = MaterialTheme.typography.bodyMedium)
    val mb = { bytes: Long? -> bytes?.let { "+%.1f MB".format(Locale.US, it / 1e6) } ?: "–" }
    Text(
        "Native heap: ${mb(state.heapAddedByLoad)} after load, ${mb(state.heapAddedByFirstForward)} after the first forward",
        style = MaterialTheme.typography.bodyMedium,
    )
}

@Composable
private fun ResultCard(result: Classification) {
    Card(modifier = Modifier.fillMaxWidth()) {
        Column(modifier = Modifier.padding(16.dp), verticalArrangement = Arrangement.spacedBy(8.dp)) {
            Text(result.label, style = MaterialTheme.typography.headlineMedium, fontWeight = FontWeight.Bold)
            Text(
                "${result.program}, ${threadsLabel(result.threads)}, ${result.tokens} tokens",
                style = MaterialTheme.typography.bodySmall,
            )
            for (score in result.scores) {
                ScoreBar(score.label, score.score.toFloat())
            }
            result.depth?.let { depth ->
                Text(
                    "layer steps: $depth of ${result.numSteps} (exit rule ${result.exitRule})",
                    style = MaterialTheme.typography.bodyMedium,
                )
            }
            Spacer(Modifier.height(4.dp))
            Text(
                "Latency: median %.2f ms, p90 %.2f ms (%d runs after %d warm-up)".format(
                    Locale.US, result.latency.medianMs, result.latency.p90Ms, result.latency.runs, result.latency.warmup,
                ),
                style = MaterialTheme.typography.bodyMedium,
            )
        }
    }
}

/** The best answer, the passage with it highlighted, the other answers, and the latency of the question. */
@Composable
private fun AnswerCard(result: QAResult) {
    Card(modifier = Modifier.fillMaxWidth()) {
        Column(modifier = Modifier.padding(16.dp), verticalArrangement = Arrangement.spacedBy(8.dp)) {
            val best = result.answers.firstOrNull()
            Text(
                when {
                    best == null -> "(no answer)"
                    best.text.isEmpty() -> "No answer in the passage"
                    else -> best.text
                },
                style = MaterialTheme.typography.headlineMedium,
                fontWeight = FontWeight.Bold,
            )
            best?.let { Text("score %.3f".format(Locale.US, it.score), style = MaterialTheme.typography.bodyMedium) }
            val range = best?.let { highlightRange(it, result.context) }
            val highlight = SpanStyle(background = MaterialTheme.colorScheme.primaryContainer, fontWeight = FontWeight.Bold)
            Text(
                buildAnnotatedString {
                    append(result.context)
                    if (range != null) addStyle(highlight, range.first, range.last + 1)
                },
                style = MaterialTheme.typography.bodyMedium,
            )
            Text(
                "${result.program}, ${threadsLabel(result.threads)}, ${result.windows} window" +
                    "${if (result.windows == 1) "" else "s"} of up to ${result.tokens} tokens",
                style = MaterialTheme.typography.bodySmall,
            )
            for (other in result.answers.drop(1)) {
                Text(
                    "%s  (%.3f)".format(Locale.US, other.text.ifEmpty { "no answer" }, other.score),
                    style = MaterialTheme.typography.bodyMedium,
                )
            }
            Spacer(Modifier.height(4.dp))
            Text(
                "Latency of the question: median %.2f ms, p90 %.2f ms (%d runs after %d warm-up)".format(
                    Locale.US, result.latency.medianMs, result.latency.p90Ms, result.latency.runs, result.latency.warmup,
                ),
                style = MaterialTheme.typography.bodyMedium,
            )
        }
    }
}

@Composable
private fun ScoreBar(label: String, probability: Float) {
    Row(verticalAlignment = Alignment.CenterVertically) {
        Text(label, modifier = Modifier.width(96.dp), style = MaterialTheme.typography.bodyMedium)
        LinearProgressIndicator(
            progress = { probability.coerceIn(0f, 1f) },
            modifier = Modifier.weight(1f).height(10.dp),
        )
        Text(
            "%.1f%%".format(Locale.US, probability * 100),
            modifier = Modifier.width(64.dp).padding(start = 8.dp),
            style = MaterialTheme.typography.bodyMedium,
        )
    }
}
