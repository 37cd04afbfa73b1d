package ai.onnxruntime;

/** Stub of onnxruntime-android 1.32.0's checked exception (java/src/main/java/ai/onnxruntime/OrtException.java). */
public class OrtException extends Exception {
    public OrtException(String message) { super(message); }
}
