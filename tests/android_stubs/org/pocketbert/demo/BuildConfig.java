package org.pocketbert.demo;
public final class BuildConfig { public static final String EXECUTORCH_VERSION = "1.4.1"; }
