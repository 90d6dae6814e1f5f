// textcore: the app's pure Kotlin/JVM logic (tokenizer, manifest, post-processing, latency stats).
// No Android and no third-party runtime dependency, so it is tested on a plain JVM; the
// repository's `make test` also compiles and runs these tests with kotlinc
// (tests/test_android_textcore.py).
import org.jetbrains.kotlin.gradle.dsl.JvmTarget

plugins {
    alias(libs.plugins.kotlin.jvm)
}

// Bytecode for Java 17, compiled by whatever JDK runs Gradle (17 or newer, e.g. Android Studio's
// bundled JBR 21). No jvmToolchain(17): without a toolchain resolver that fails on a machine
// whose only JDK is not 17. Same settings as app/build.gradle.kts.
java {
    sourceCompatibility = JavaVersion.VERSION_17
    targetCompatibility = JavaVersion.VERSION_17
}

kotlin {
    compilerOptions {
        jvmTarget.set(JvmTarget.JVM_17)
    }
}

dependencies {
    testImplementation(libs.junit)
}

tasks.test {
    // The tokenizer tests read the shared goldens in <repo>/export/goldens/.
    systemProperty("textcore.repo", rootProject.projectDir.parentFile.absolutePath)
}
