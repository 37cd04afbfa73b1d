package ai.onnxruntime;

import java.util.Map;
import java.util.Optional;

/** Stub of a loaded model: run() on named inputs, closed when done. */
public class OrtSession implements AutoCloseable {
    OrtSession() { throw new RuntimeException("Stub!"); }

    /** Runs the model on [inputs] by input name; every output, in the model's order. */
    public Result run(Map<String, ? extends OnnxTensorLike> inputs) throws OrtException {
        throw new RuntimeException("Stub!");
    }

    @Override
    public void close() throws OrtException { throw new RuntimeException("Stub!"); }

    /** Stub of the options a session is created with (threads, optimization level, providers). */
    public static class SessionOptions implements AutoCloseable {
        public SessionOptions() { throw new RuntimeException("Stub!"); }

        /** The size of the intra-op thread pool (one graph's operators); 0 = ONNX Runtime's default. */
        public void setIntraOpNumThreads(int numThreads) throws OrtException { throw new RuntimeException("Stub!"); }

        @Override
        public void close() { throw new RuntimeException("Stub!"); }
    }

    /** Stub of a run's outputs: closing it closes every value in it. */
    public static class Result implements AutoCloseable, Iterable<Map.Entry<String, OnnxValue>> {
        Result() { throw new RuntimeException("Stub!"); }

        /** The output at [index], in the order the outputs were requested. */
        public OnnxValue get(int index) { throw new RuntimeException("Stub!"); }

        /** The output named [key], or empty. */
        public Optional<OnnxValue> get(String key) { throw new RuntimeException("Stub!"); }

        public int size() { throw new RuntimeException("Stub!"); }

        @Override
        public java.util.Iterator<Map.Entry<String, OnnxValue>> iterator() { throw new RuntimeException("Stub!"); }

        @Override
        public void close() { throw new RuntimeException("Stub!"); }
    }
}
