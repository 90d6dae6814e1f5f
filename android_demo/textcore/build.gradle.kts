// textcore: the app's pure Kotlin/JVM logic (tokenizer, manifest, post-processing, latency stats).
// No Android and no third-party runtime dependency, so it is tested on a plain JVM; the
// repository's `make test` also compiles and runs these tests with kotlinc
// (tests/test_android_textcore.py).
plugins {
    alias(libs.plugins.kotlin.jvm)
}

kotlin {
    jvmToolchain(17)
}

dependencies {
    testImplementation(libs.junit)
}

tasks.test {
    // The tokenizer tests read the shared goldens in <repo>/export/goldens/.
    systemProperty("textcore.repo", rootProject.projectDir.parentFile.absolutePath)
}
