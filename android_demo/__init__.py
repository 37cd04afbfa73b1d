"""The Android demo: a Gradle project (app + plain-Kotlin qa-core) and `pocketbert android`."""
