package ai.onnxruntime;

/** The fake phone's OrtEnvironment (see Bridge). */
public class OrtEnvironment implements AutoCloseable {
    private static OrtEnvironment instance;

    private OrtEnvironment() {}

    public static synchronized OrtEnvironment getEnvironment() {
        if (instance == null) instance = new OrtEnvironment();
        return instance;
    }

    public OrtSession createSession(String modelPath, OrtSession.SessionOptions options) throws OrtException {
        return new OrtSession(modelPath, options);
    }

    @Override
    public void close() {}
}
