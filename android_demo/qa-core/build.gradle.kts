// Plain Kotlin (no Android imports): WordPiece, windows, span search, manifest, benchmark record.
// Also compiled and tested without Gradle by tests/test_android_kotlin.py (kotlinc + JUnit 5).
plugins {
    id("org.jetbrains.kotlin.jvm")
}

java {
    sourceCompatibility = JavaVersion.VERSION_17
    targetCompatibility = JavaVersion.VERSION_17
}

kotlin {
    compilerOptions { jvmTarget.set(org.jetbrains.kotlin.gradle.dsl.JvmTarget.JVM_17) }
}

dependencies {
    testImplementation(platform("org.junit:junit-bom:5.11.3"))
    testImplementation("org.junit.jupiter:junit-jupiter")
    testRuntimeOnly("org.junit.platform:junit-platform-launcher")
}

tasks.test {
    useJUnitPlatform()
    // the real bert-base-uncased vocab, when the shared data is next to the checkout
    val vocab = rootProject.file("../../shared/data/vocab/vocab.txt")
    if (vocab.isFile) systemProperty("pocketbert.vocab", vocab.path)
}
