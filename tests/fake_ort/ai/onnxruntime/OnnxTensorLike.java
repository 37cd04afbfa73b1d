package ai.onnxruntime;

/** The fake phone's OnnxTensorLike (see Bridge). */
public abstract class OnnxTensorLike implements OnnxValue {
    OnnxTensorLike() {}
}
