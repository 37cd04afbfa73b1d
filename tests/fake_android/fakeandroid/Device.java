package fakeandroid;

import java.io.File;

/**
 * The JVM tests' phone (tests/fake_android, never in the app): what the fake framework classes
 * answer (the app's files folders, the APK's assets folder, the package's version, memory). A
 * test sets these before it starts an Activity. Like Robolectric, in a few dozen lines: the
 * framework's classes with the signatures of tests/android_stubs/android-35, doing the least that
 * lets the app's Activities run (views keep their state, handlers run what they are given).
 */
public final class Device {
    private Device() {}
    public static File filesDir = new File(System.getProperty("java.io.tmpdir"), "fake-android/files");
    public static File externalFilesDir = null; // no shared storage unless a test mounts one
    public static File assets = new File(System.getProperty("java.io.tmpdir"), "fake-android/assets");
    public static String packageName = "org.pocketbert.demo";
    public static String versionName = "0.1.0";
    public static long totalMem = 8L << 30;
    public static float density = 2.0f;
    public static final java.util.List<String> log = java.util.Collections.synchronizedList(new java.util.ArrayList<>());
}
