package ai.onnxruntime;

/** The fake phone's OnnxValue (see Bridge). */
public interface OnnxValue extends AutoCloseable {
    Object getValue() throws OrtException;

    boolean isClosed();

    @Override
    void close();
}
