// pocketbert Android demo: `app` (the Android layer, thin) + `qa-core` (plain Kotlin, JVM-tested).
pluginManagement {
    repositories {
        google()
        mavenCentral()
        gradlePluginPortal()
    }
}
dependencyResolutionManagement {
    repositoriesMode.set(RepositoriesMode.FAIL_ON_PROJECT_REPOS)
    repositories {
        google()
        mavenCentral() // org.pytorch:executorch-android
    }
}
rootProject.name = "pocketbert-demo"
include(":app", ":qa-core")
