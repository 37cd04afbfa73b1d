plugins {
    id("com.android.application")
    id("org.jetbrains.kotlin.android")
}

// Keep in step with the Python pin (executorch==1.4.1) that exports the .pte files.
val executorchVersion = "1.4.1"

android {
    namespace = "org.pocketbert.demo"
    compileSdk = 35

    defaultConfig {
        applicationId = "org.pocketbert.demo" // the benchmark protocol names this package
        minSdk = 28
        targetSdk = 35
        versionCode = 1
        versionName = "0.1.0"
        ndk { abiFilters += listOf("arm64-v8a", "x86_64") } // what the ExecuTorch AAR ships
        buildConfigField("String", "EXECUTORCH_VERSION", "\"$executorchVersion\"")
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
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }
    androidResources {
        noCompress += listOf("pte", "txt", "json") // model files are copied out of the APK as they are
    }
}

kotlin {
    compilerOptions { jvmTarget.set(org.jetbrains.kotlin.gradle.dsl.JvmTarget.JVM_17) }
}

dependencies {
    implementation(project(":qa-core"))
    implementation("org.pytorch:executorch-android:$executorchVersion")
}
