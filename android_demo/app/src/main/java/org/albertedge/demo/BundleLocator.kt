package org.albertedge.demo

import java.io.File
import java.io.IOException
import java.io.InputStream
import org.albertedge.textcore.BundleManifest

/** Where a bundle was found; the app looks in this order. */
enum class BundleOrigin(val description: String) {
    APP_FILES("the app's files folder"),
    DEVICE_TMP("/data/local/tmp (pushed with push_bundle.sh)"),
    ASSETS("the APK's assets (copied to a file)"),
}

/** A bundle folder whose manifest was read; nothing in it has been verified or loaded yet. */
class LocatedBundle(val dir: File, val origin: BundleOrigin, val manifest: BundleManifest)

/** Read-only view of the APK's assets, so that this class needs no Android types. */
interface AssetSource {
    /** Names in an asset folder; empty when the folder does not exist. */
    fun list(path: String): List<String>

    fun open(path: String): InputStream
}

class BundleException(message: String, cause: Throwable? = null) : Exception(message, cause)

/**
 * Finds a bundle (export/BUNDLE.md): `filesDir/albert_edge`, then `/data/local/tmp/albert_edge`,
 * then the APK's `assets/albert_edge/`, which is copied to `filesDir/albert_edge_assets` first
 * because `Module.load` needs a file path.
 */
class BundleLocator(
    private val filesDir: File,
    private val assets: AssetSource?,
    private val deviceTmpDir: File = File(DEVICE_TMP_PATH),
) {
    fun locate(): LocatedBundle {
        val looked = mutableListOf<String>()
        val folders = listOf(
            File(filesDir, BUNDLE_DIR_NAME) to BundleOrigin.APP_FILES,
            deviceTmpDir to BundleOrigin.DEVICE_TMP,
        )
        for ((dir, origin) in folders) {
            val manifestFile = File(dir, MANIFEST_NAME)
            if (manifestFile.isFile && manifestFile.canRead()) {
                return LocatedBundle(dir, origin, readManifest(manifestFile))
            }
            looked += manifestFile.path
        }
        looked += "assets/$BUNDLE_DIR_NAME/$MANIFEST_NAME"
        if (assets != null && MANIFEST_NAME in assets.list(BUNDLE_DIR_NAME)) {
            val dir = copyAssetBundle(assets)
            return LocatedBundle(dir, BundleOrigin.ASSETS, readManifest(File(dir, MANIFEST_NAME)))
        }
        throw BundleException(
            "No bundle found. Looked for ${looked.joinToString(", ")}. Build one with " +
                "`albert-edge export default --recipe fp32 --recipe int8 --out out/android-bundle` " +
                "(or `albert-edge export default-qa ...` for question answering) " +
                "and push it with `android_demo/push_bundle.sh out/android-bundle`."
        )
    }

    /** Copies assets/albert_edge/ unless the copy's manifest is already identical. */
    private fun copyAssetBundle(assets: AssetSource): File {
        val target = File(filesDir, ASSET_COPY_DIR_NAME)
        val assetManifest = assets.open("$BUNDLE_DIR_NAME/$MANIFEST_NAME").use { it.readBytes() }
        val copiedManifest = File(target, MANIFEST_NAME)
        if (copiedManifest.isFile && copiedManifest.readBytes().contentEquals(assetManifest)) {
            return target // sizes and hashes are checked against the manifest before loading
        }
        if (!target.isDirectory && !target.mkdirs()) {
            throw BundleException("Cannot create ${target.path} to copy the bundle from the APK's assets")
        }
        for (name in assets.list(BUNDLE_DIR_NAME)) {
            try {
                assets.open("$BUNDLE_DIR_NAME/$name").use { input ->
                    File(target, name).outputStream().use { input.copyTo(it) }
                }
            } catch (e: IOException) {
                throw BundleException("Cannot copy assets/$BUNDLE_DIR_NAME/$name to ${target.path}: ${e.message}", e)
            }
        }
        return target
    }

    private fun readManifest(file: File): BundleManifest {
        val text = try {
            file.readText(Charsets.UTF_8)
        } catch (e: IOException) {
            throw BundleException("Cannot read ${file.path}: ${e.message}", e)
        }
        return try {
            BundleManifest.parse(text)
        } catch (e: RuntimeException) {
            throw BundleException("${file.path} is not a valid albert-edge manifest: ${e.message}", e)
        }
    }

    companion object {
        const val BUNDLE_DIR_NAME = "albert_edge"
        const val ASSET_COPY_DIR_NAME = "albert_edge_assets"
        const val DEVICE_TMP_PATH = "/data/local/tmp/albert_edge"
        const val MANIFEST_NAME = "manifest.json"
        const val GOLDENS_NAME = "goldens.json"
    }
}
