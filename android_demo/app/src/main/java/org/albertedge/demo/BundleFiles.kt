package org.albertedge.demo

import java.io.File
import java.security.MessageDigest
import java.util.concurrent.ConcurrentHashMap
import org.albertedge.textcore.FileEntry

/** Checks one file named by the manifest (export/BUNDLE.md, "Validating a bundle", step 3). */
object BundleFiles {
    /** A file as it was when hashed; a change of size or modification time means hash it again. */
    private data class FileStamp(val path: String, val sizeBytes: Long, val lastModified: Long)

    /** SHA-256 of each file already hashed, so switching programs or threads does not re-hash. */
    private val hashes = ConcurrentHashMap<FileStamp, String>()

    /**
     * Returns the file when it exists with the manifest's size and SHA-256; otherwise throws a
     * [BundleException] naming the file, the expected and the actual value. The hash is computed
     * once per (path, size, modification time).
     */
    fun verified(dir: File, entry: FileEntry): File {
        val name = entry.file
        val expectedSize = entry.sizeBytes
        val expectedSha256 = entry.sha256
        if (name.isEmpty() || name.contains('/') || name.contains('\\') || name == "." || name == "..") {
            throw BundleException("Manifest names the file \"$name\"; only plain file names inside the bundle folder are accepted")
        }
        val file = File(dir, name)
        if (!file.isFile) {
            throw BundleException("${file.path} is missing (the manifest lists it)")
        }
        val size = file.length()
        if (size != expectedSize) {
            throw BundleException(
                "${file.path} has $size bytes, the manifest says $expectedSize: the bundle was partly copied or edited; push it again"
            )
        }
        val stamp = FileStamp(file.absolutePath, size, file.lastModified())
        val actualSha = hashes.getOrPut(stamp) { sha256(file) }
        if (!actualSha.equals(expectedSha256, ignoreCase = true)) {
            throw BundleException("${file.path} has SHA-256 $actualSha, the manifest says $expectedSha256")
        }
        return file
    }

    fun sha256(file: File): String {
        val digest = MessageDigest.getInstance("SHA-256")
        file.inputStream().use { input ->
            val buffer = ByteArray(1 shl 16)
            while (true) {
                val n = input.read(buffer)
                if (n < 0) break
                digest.update(buffer, 0, n)
            }
        }
        return digest.digest().joinToString("") { "%02x".format(it) }
    }
}
