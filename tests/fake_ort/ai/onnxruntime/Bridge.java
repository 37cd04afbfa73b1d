package ai.onnxruntime;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.Writer;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.util.Map;
import org.pocketbert.qa.Json;

/**
 * The fake phone's ONNX Runtime (tests/fake_ort, never in the app): the classes of this package
 * have the signatures of onnxruntime-android's (tests/android_stubs/onnxruntime-android-VERSION)
 * so the app's own OnnxRuntimeModel runs on the JVM unchanged, and a session's model runs in
 * onnxruntime's Python package (the same engine, same release) at the other end of a socket: the
 * fake adbd's model bridge (tests/fake_adb.py), whose HOST:PORT is the system property
 * pocketbert.model_bridge. One JSON line each way.
 */
final class Bridge implements AutoCloseable {
    private final Socket socket;
    private final Writer out;
    private final BufferedReader in;

    Bridge() throws OrtException {
        String at = System.getProperty("pocketbert.model_bridge");
        if (at == null) throw new OrtException("fake ONNX Runtime: no -Dpocketbert.model_bridge=HOST:PORT");
        try {
            String[] hp = at.split(":");
            socket = new Socket(hp[0], Integer.parseInt(hp[1]));
            out = new java.io.OutputStreamWriter(socket.getOutputStream(), StandardCharsets.UTF_8);
            in = new BufferedReader(new InputStreamReader(socket.getInputStream(), StandardCharsets.UTF_8));
        } catch (IOException e) {
            throw new OrtException("fake ONNX Runtime: cannot reach the model bridge at " + at + ": " + e);
        }
    }

    /** One request, its reply; a reply with "error" is an OrtException, as the native side raises. */
    @SuppressWarnings("unchecked")
    Map<String, Object> call(Map<String, Object> request) throws OrtException {
        try {
            out.write(Json.INSTANCE.write(request, 0) + "\n");
            out.flush();
            String line = in.readLine();
            if (line == null) throw new OrtException("fake ONNX Runtime: the model bridge closed the connection");
            Map<String, Object> reply = (Map<String, Object>) Json.INSTANCE.parse(line);
            if (reply.get("error") != null) throw new OrtException(String.valueOf(reply.get("error")));
            return reply;
        } catch (IOException e) {
            throw new OrtException("fake ONNX Runtime: model bridge: " + e);
        }
    }

    @Override
    public void close() {
        try { socket.close(); } catch (IOException e) { /* closing */ }
    }
}
