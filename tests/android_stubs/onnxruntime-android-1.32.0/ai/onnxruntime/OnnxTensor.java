package ai.onnxruntime;

import java.nio.FloatBuffer;
import java.nio.LongBuffer;

/** Stub of the dense tensor: the factory the app feeds int64 ids through, the float read-back. */
public class OnnxTensor extends OnnxTensorLike {
    OnnxTensor() { throw new RuntimeException("Stub!"); }

    /**
     * A tensor of int64 [data] (a direct buffer is used as is, a heap buffer copied) of [shape];
     * OrtException when the buffer's remaining size is not the shape's element count.
     */
    public static OnnxTensor createTensor(OrtEnvironment env, LongBuffer data, long[] shape) throws OrtException {
        throw new RuntimeException("Stub!");
    }

    /** A copy of the values when the tensor is float (or fp16), else null. */
    public FloatBuffer getFloatBuffer() { throw new RuntimeException("Stub!"); }

    @Override
    public Object getValue() throws OrtException { throw new RuntimeException("Stub!"); }

    @Override
    public boolean isClosed() { throw new RuntimeException("Stub!"); }

    @Override
    public void close() { throw new RuntimeException("Stub!"); }
}
