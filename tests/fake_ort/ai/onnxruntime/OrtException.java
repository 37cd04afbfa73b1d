package ai.onnxruntime;

/** The fake phone's OrtException (see Bridge). */
public class OrtException extends Exception {
    public OrtException(String message) { super(message); }
}
