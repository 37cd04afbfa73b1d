// Versions: gradle/libs.versions.toml (the `libs` catalog), checked by tests/test_android_build.py.
plugins {
    alias(libs.plugins.android.application) apply false
    alias(libs.plugins.kotlin.android) apply false
    alias(libs.plugins.kotlin.jvm) apply false
}
