package org.albertedge.textcore

import java.io.File

/** Files the tests share with the Python side: export/goldens/ (found from the module dir or -Dtextcore.repo). */
object TestFiles {
    val repo: File by lazy {
        System.getProperty("textcore.repo")?.let { return@lazy File(it) }
        var dir: File? = File("").absoluteFile
        while (dir != null && !File(dir, "export/goldens/spiece.model").isFile) dir = dir.parentFile
        dir ?: error("cannot find export/goldens/spiece.model above ${File("").absolutePath}; set -Dtextcore.repo=REPO")
    }
    val spiece: ByteArray by lazy { File(repo, "export/goldens/spiece.model").readBytes() }
    val goldenLines: List<String> by lazy { File(repo, "export/goldens/tokenizer_cases.jsonl").readLines(Charsets.UTF_8) }

    fun resource(name: String): String =
        (TestFiles::class.java.getResourceAsStream("/$name") ?: error("test resource $name is not on the classpath"))
            .readBytes().toString(Charsets.UTF_8)
}

@Suppress("UNCHECKED_CAST")
fun Any?.obj(): Map<String, Any?> = this as Map<String, Any?>
fun Any?.doubles(): DoubleArray = (this as List<*>).map { (it as Number).toDouble() }.toDoubleArray()
