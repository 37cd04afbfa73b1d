package org.pytorch.executorch;
public class Tensor { public static Tensor fromBlob(long[] data, long[] shape) { return null; } public float[] getDataAsFloatArray() { return null; } }
