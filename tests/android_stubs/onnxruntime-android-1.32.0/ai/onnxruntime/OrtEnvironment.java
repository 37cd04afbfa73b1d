package ai.onnxruntime;

/** Stub of the process-wide ONNX Runtime environment, the factory of sessions. */
public class OrtEnvironment implements AutoCloseable {
    private OrtEnvironment() { throw new RuntimeException("Stub!"); }

    /** The singleton environment (created on first use, logging at WARNING). */
    public static OrtEnvironment getEnvironment() { throw new RuntimeException("Stub!"); }

    /** A session on the model file at [modelPath] with [options]. */
    public OrtSession createSession(String modelPath, OrtSession.SessionOptions options) throws OrtException {
        throw new RuntimeException("Stub!");
    }

    @Override
    public void close() { throw new RuntimeException("Stub!"); }
}
