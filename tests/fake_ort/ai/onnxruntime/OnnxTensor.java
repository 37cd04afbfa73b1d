package ai.onnxruntime;

import java.nio.FloatBuffer;
import java.nio.LongBuffer;
import java.util.Arrays;

/** The fake phone's OnnxTensor: the data on the JVM heap, with its ONNX element type and shape (see Bridge). */
public class OnnxTensor extends OnnxTensorLike {
    final String dtype; // ONNX element type name as numpy spells it: "int64", "float32"
    final long[] shape;
    final long[] longs; // int64 data
    final float[] floats; // float32 data
    private boolean closed;

    OnnxTensor(String dtype, long[] shape, long[] longs, float[] floats) {
        this.dtype = dtype;
        this.shape = shape.clone();
        this.longs = longs;
        this.floats = floats;
    }

    /** As the real one: the buffer's remaining elements must be the shape's element count. */
    public static OnnxTensor createTensor(OrtEnvironment env, LongBuffer data, long[] shape) throws OrtException {
        long n = 1;
        for (long d : shape) n *= d;
        if (data.remaining() != n) {
            throw new OrtException("Shape " + Arrays.toString(shape) + " does not match the buffer's " + data.remaining() + " elements");
        }
        long[] copy = new long[data.remaining()];
        data.duplicate().get(copy);
        return new OnnxTensor("int64", shape, copy, null);
    }

    public FloatBuffer getFloatBuffer() {
        checkClosed();
        return floats == null ? null : FloatBuffer.wrap(floats.clone());
    }

    @Override
    public Object getValue() throws OrtException {
        checkClosed();
        if (shape.length != 2 || shape[0] != 1) throw new OrtException("fake ONNX Runtime: getValue() of rank-2 (1, n) tensors only");
        return floats != null ? new float[][] {floats.clone()} : new long[][] {longs.clone()};
    }

    @Override
    public boolean isClosed() { return closed; }

    @Override
    public void close() { closed = true; }

    private void checkClosed() {
        if (closed) throw new IllegalStateException("Trying to use a closed OnnxValue");
    }
}
