// A JVM check of what the app does with an adaptive (early-exit) bundle, short of running its
// programs: it reads the real manifest.json (with `adaptive`) and goldens.json as the app does
// (BundleManifest, BundleFiles' size and SHA-256 checks), checks the tokenizer against the golden
// ids (firstTokenizerMismatch, as the app does at load), and replays every `adaptive_cases` entry's
// golden step logits through both forms of textcore's loop the app may run (AdaptiveGoldens.check:
// runAdaptive for embed/layer/exit_k and runAdaptiveFused for first_step/step_k, with fake step
// functions under the manifest's rule). ExecuTorch's Java runtime does not run on this JVM, so the
// programs' own step logits are checked on a device only (GoldenReplayTest).
// Usage: AdaptiveAppCheckKt BUNDLE_DIR; prints
// "checked N adaptive cases x P programs x 2 loop forms (...): D differ".
// Compiled and run by tests/test_android_textcore.py.
package org.albertedge.demo.check

import java.io.File
import kotlin.system.exitProcess
import org.albertedge.demo.BundleFiles
import org.albertedge.textcore.AdaptiveGoldens
import org.albertedge.textcore.AlbertTokenizer
import org.albertedge.textcore.BundleManifest
import org.albertedge.textcore.firstTokenizerMismatch

fun main(args: Array<String>) {
    val dir = File(args.single())
    val manifest = BundleManifest.parse(File(dir, "manifest.json").readText())
    val settings = manifest.adaptive ?: error("${dir.path}/manifest.json has no 'adaptive'; export a model with exit heads")
    val goldensEntry = manifest.goldens ?: error("${dir.path}/manifest.json has no goldens")
    val goldens = BundleFiles.verified(dir, goldensEntry).readText()
    val tokenizerEntry = manifest.tokenizer ?: error("${dir.path}/manifest.json has no tokenizer")
    val tokenizer = AlbertTokenizer.fromManifest(manifest, BundleFiles.verified(dir, tokenizerEntry.file).readBytes())
    firstTokenizerMismatch(manifest, tokenizer, goldens)?.let { println(it); exitProcess(1) }
    val cases = AdaptiveGoldens.parse(goldens)
    val problems = AdaptiveGoldens.check(manifest, cases)
    problems.forEach(::println)
    val differ = problems.map { it.substringBefore(':') }.distinct().size
    val depths = cases.flatMap { c -> c.programs.values.map { it.depth } }
    println("rule ${settings.rule}, ${settings.numSteps} layer steps, golden depths $depths")
    println("checked ${cases.size} adaptive cases x ${manifest.programs.size} programs x 2 loop forms " +
        "(embed, layer, exit_k; first_step, step_k): $differ differ")
    exitProcess(if (problems.isEmpty() && cases.isNotEmpty()) 0 else 1)
}
