plugins {
    alias(libs.plugins.android.application)
    alias(libs.plugins.kotlin.android)
}

// Every version is in gradle/libs.versions.toml (executorch and onnxruntime in step with the Python
// pins); what the ExecuTorch and ONNX Runtime AARs need from this build is in gradle/requirements.toml.
val executorchVersion = libs.versions.executorch.get()
val onnxruntimeVersion = libs.versions.onnxruntime.get()

android {
    namespace = "org.pocketbert.demo"
    compileSdk = libs.versions.compileSdk.get().toInt()

    defaultConfig {
        applicationId = "org.pocketbert.demo" // the benchmark protocol names this package
        minSdk = libs.versions.minSdk.get().toInt()
        targetSdk = libs.versions.targetSdk.get().toInt()
        versionCode = 1
        versionName = "0.1.0"
        ndk { abiFilters += listOf("arm64-v8a", "x86_64") } // what the ExecuTorch AAR ships (ONNX Runtime's ships these too)
        buildConfigField("String", "EXECUTORCH_VERSION", "\"$executorchVersion\"")
        buildConfigField("String", "ONNXRUNTIME_VERSION", "\"$onnxruntimeVersion\"")
        testInstrumentationRunner = "androidx.test.runner.AndroidJUnitRunner" // FarmBenchmarkTest
    }
    buildFeatures {
        buildConfig = true
    }

    buildTypes {
        release {
            isMinifyEnabled = false
        }
    }
    compileOptions {
        sourceCompatibility = JavaVersion.toVersion(libs.versions.jvmTarget.get())
        targetCompatibility = JavaVersion.toVersion(libs.versions.jvmTarget.get())
    }
    testOptions {
        unitTests.all { it.useJUnitPlatform() } // app/src/test: the app's plain Kotlin under JUnit 5 (./gradlew :app:testDebugUnitTest)
    }
    androidResources {
        noCompress += listOf("pte", "onnx", "txt", "json") // model files are copied out of the APK as they are
    }
}

kotlin {
    compilerOptions { jvmTarget.set(org.jetbrains.kotlin.gradle.dsl.JvmTarget.fromTarget(libs.versions.jvmTarget.get())) }
}

dependencies {
    implementation(project(":qa-core"))
    implementation(libs.executorch.android)
    implementation(libs.onnxruntime.android)
    testImplementation(platform(libs.junit.bom))
    testImplementation(libs.junit.jupiter)
    testRuntimeOnly(libs.junit.platform.launcher)
    androidTestImplementation(libs.androidx.test.runner)
    androidTestImplementation(libs.androidx.test.ext.junit)
}
