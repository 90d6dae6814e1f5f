package org.albertedge.demo

import android.os.Bundle
import androidx.activity.ComponentActivity
import androidx.activity.compose.setContent
import androidx.activity.enableEdgeToEdge
import androidx.compose.material3.MaterialTheme
import androidx.lifecycle.compose.collectAsStateWithLifecycle
import androidx.lifecycle.viewmodel.compose.viewModel
import org.albertedge.demo.ui.ClassifierScreen

class MainActivity : ComponentActivity() {
    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        enableEdgeToEdge()
        setContent {
            MaterialTheme {
                val viewModel: ClassifierViewModel = viewModel()
                val state = viewModel.state.collectAsStateWithLifecycle().value
                ClassifierScreen(
                    state = state,
                    onClassify = viewModel::classify,
                    onAsk = viewModel::ask,
                    onSelectProgram = viewModel::selectProgram,
                    onSelectThreads = viewModel::selectThreads,
                    onRetry = viewModel::retry,
                )
            }
        }
    }
}
