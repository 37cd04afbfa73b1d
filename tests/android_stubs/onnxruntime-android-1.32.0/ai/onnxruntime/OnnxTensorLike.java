package ai.onnxruntime;

/** Stub: the abstract base of OnnxTensor and OnnxSparseTensor, what OrtSession.run takes. */
public abstract class OnnxTensorLike implements OnnxValue {
    OnnxTensorLike() { throw new RuntimeException("Stub!"); }
}
