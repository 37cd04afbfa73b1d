package ai.onnxruntime;

/** Stub: the interface of every input and output value (OnnxTensor, sequences, maps). */
public interface OnnxValue extends AutoCloseable {
    /** A copy of the value as Java arrays (float[][] for a (1, n) float tensor). */
    Object getValue() throws OrtException;

    boolean isClosed();

    /** Frees the native memory; unlike AutoCloseable's, it throws nothing checked. */
    @Override
    void close();
}
