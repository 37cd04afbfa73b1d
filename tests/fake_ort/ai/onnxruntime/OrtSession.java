package ai.onnxruntime;

import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * The fake phone's OrtSession: the model is loaded and run by onnxruntime's Python package at the
 * other end of the model bridge (see Bridge), with the session options the app set; inputs go by
 * name with their element type and shape, so a wrong name, type or shape fails there as it would
 * in ONNX Runtime on the phone.
 */
public class OrtSession implements AutoCloseable {
    private final Bridge bridge;
    private final List<String> inputNames = new ArrayList<>();
    private final List<String> outputNames = new ArrayList<>();
    private boolean closed;

    OrtSession(String modelPath, SessionOptions options) throws OrtException {
        bridge = new Bridge();
        Map<String, Object> req = new LinkedHashMap<>();
        req.put("onnx", modelPath);
        req.put("intra_op_num_threads", options.intraOpNumThreads);
        Map<String, Object> reply = bridge.call(req);
        for (Object n : (List<?>) reply.get("inputs")) inputNames.add((String) n);
        for (Object n : (List<?>) reply.get("outputs")) outputNames.add((String) n);
    }

    public Result run(Map<String, ? extends OnnxTensorLike> inputs) throws OrtException {
        if (closed) throw new IllegalStateException("Trying to score a closed OrtSession.");
        if (inputs.isEmpty() || inputs.size() > inputNames.size()) {
            throw new OrtException("Unexpected number of inputs, expected [1," + inputNames.size() + ") found " + inputs.size());
        }
        List<Object> feeds = new ArrayList<>();
        for (Map.Entry<String, ? extends OnnxTensorLike> e : inputs.entrySet()) {
            if (!inputNames.contains(e.getKey())) {
                throw new OrtException("Unknown input name " + e.getKey() + ", expected one of " + inputNames);
            }
            OnnxTensor t = (OnnxTensor) e.getValue();
            if (t.isClosed()) throw new IllegalStateException("Trying to use a closed OnnxValue");
            Map<String, Object> f = new LinkedHashMap<>();
            f.put("name", e.getKey());
            f.put("dtype", t.dtype);
            List<Object> shape = new ArrayList<>();
            for (long d : t.shape) shape.add(d);
            f.put("shape", shape);
            List<Object> data = new ArrayList<>();
            if (t.longs != null) for (long v : t.longs) data.add(v);
            else for (float v : t.floats) data.add((double) v);
            f.put("data", data);
            feeds.add(f);
        }
        Map<String, Object> req = new LinkedHashMap<>();
        req.put("feeds", feeds);
        Map<String, Object> reply = bridge.call(req);
        LinkedHashMap<String, OnnxValue> outs = new LinkedHashMap<>();
        for (Object o : (List<?>) reply.get("outputs")) {
            Map<?, ?> m = (Map<?, ?>) o;
            List<?> shapeList = (List<?>) m.get("shape");
            long[] shape = new long[shapeList.size()];
            for (int i = 0; i < shape.length; i++) shape[i] = ((Number) shapeList.get(i)).longValue();
            List<?> data = (List<?>) m.get("data");
            float[] values = new float[data.size()];
            for (int i = 0; i < values.length; i++) values[i] = ((Number) data.get(i)).floatValue();
            outs.put((String) m.get("name"), new OnnxTensor("float32", shape, null, values));
        }
        return new Result(outs);
    }

    @Override
    public void close() throws OrtException {
        if (closed) throw new IllegalStateException("Trying to close an already closed OrtSession.");
        closed = true;
        bridge.close();
    }

    /** The fake phone's SessionOptions: it keeps what the app set, for the bridge's session. */
    public static class SessionOptions implements AutoCloseable {
        int intraOpNumThreads; // 0: ONNX Runtime's default
        private boolean closed;

        public SessionOptions() {}

        public void setIntraOpNumThreads(int numThreads) throws OrtException {
            if (closed) throw new IllegalStateException("Trying to use a closed SessionOptions");
            intraOpNumThreads = numThreads;
        }

        @Override
        public void close() {
            if (closed) throw new IllegalStateException("Trying to close a closed SessionOptions.");
            closed = true;
        }
    }

    /** The fake phone's Result: the outputs by name, in the model's order. */
    public static class Result implements AutoCloseable, Iterable<Map.Entry<String, OnnxValue>> {
        private final LinkedHashMap<String, OnnxValue> map;
        private final List<OnnxValue> list;

        Result(LinkedHashMap<String, OnnxValue> map) {
            this.map = map;
            this.list = new ArrayList<>(map.values());
        }

        public OnnxValue get(int index) { return list.get(index); }

        public Optional<OnnxValue> get(String key) { return Optional.ofNullable(map.get(key)); }

        public int size() { return map.size(); }

        @Override
        public Iterator<Map.Entry<String, OnnxValue>> iterator() { return map.entrySet().iterator(); }

        @Override
        public void close() {
            for (OnnxValue v : map.values()) v.close();
        }
    }
}
