// Plain Kotlin (no Android imports): WordPiece, windows, span search, manifest, benchmark record.
// Also compiled and tested without Gradle by tests/test_android_kotlin.py (kotlinc + JUnit 5).
plugins {
    alias(libs.plugins.kotlin.jvm)
}

java {
    sourceCompatibility = JavaVersion.toVersion(libs.versions.jvmTarget.get())
    targetCompatibility = JavaVersion.toVersion(libs.versions.jvmTarget.get())
}

kotlin {
    compilerOptions { jvmTarget.set(org.jetbrains.kotlin.gradle.dsl.JvmTarget.fromTarget(libs.versions.jvmTarget.get())) }
}

dependencies {
    testImplementation(platform(libs.junit.bom))
    testImplementation(libs.junit.jupiter)
    testRuntimeOnly(libs.junit.platform.launcher)
}

tasks.test {
    useJUnitPlatform()
    // the real bert-base-uncased vocab, when the shared data is next to the checkout
    val vocab = rootProject.file("../../shared/data/vocab/vocab.txt")
    if (vocab.isFile) systemProperty("pocketbert.vocab", vocab.path)
}
