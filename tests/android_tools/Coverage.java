import java.io.File;
import java.io.InputStream;
import java.nio.file.Files;
import java.util.HashMap;
import java.util.Map;
import java.util.TreeMap;
import java.util.zip.ZipFile;
import org.jacoco.core.analysis.Analyzer;
import org.jacoco.core.analysis.CoverageBuilder;
import org.jacoco.core.analysis.IClassCoverage;
import org.jacoco.core.analysis.ICounter;
import org.jacoco.core.data.ExecutionData;
import org.jacoco.core.data.ExecutionDataStore;
import org.jacoco.core.internal.data.CRC64;
import org.jacoco.core.tools.ExecFileLoader;
import org.objectweb.asm.ClassReader;
import org.objectweb.asm.ClassVisitor;
import org.objectweb.asm.ClassWriter;
import org.objectweb.asm.Opcodes;

/**
 * Line coverage of the Kotlin classes in a jar from a JaCoCo exec file (Debian's libjacoco-java
 * 0.8.6): `java -cp org.jacoco.core.jar:asm*.jar Coverage.java EXEC JAR SOURCE_ROOT...` prints
 * "FILE COVERED TOTAL" per source file, then "TOTAL COVERED TOTAL". A line counts when it has
 * code; it is covered when any of its code ran.
 *
 * JaCoCo 0.8.6 cannot read the SMAP Kotlin 2 writes (its inline filter stops at "*S KotlinDebug"),
 * so the analysis drops each class's SourceDebugExtension (the execution data is moved to the
 * stripped class's id) and counts only lines inside the source file: Kotlin numbers inlined code
 * past the file's last line.
 */
public class Coverage {
    public static void main(String[] args) throws Exception {
        ExecFileLoader loader = new ExecFileLoader();
        loader.load(new File(args[0]));
        ExecutionDataStore moved = new ExecutionDataStore();
        Map<String, byte[]> stripped = new HashMap<>();
        try (ZipFile jar = new ZipFile(args[1])) {
            var entries = jar.entries();
            while (entries.hasMoreElements()) {
                var e = entries.nextElement();
                if (!e.getName().endsWith(".class")) continue;
                byte[] bytes;
                try (InputStream in = jar.getInputStream(e)) { bytes = in.readAllBytes(); }
                ClassWriter w = new ClassWriter(0);
                new ClassReader(bytes).accept(new ClassVisitor(Opcodes.ASM9, w) {
                    @Override public void visitSource(String source, String debug) { super.visitSource(source, null); }
                }, 0);
                byte[] plain = w.toByteArray();
                stripped.put(e.getName(), plain);
                ExecutionData d = loader.getExecutionDataStore().get(CRC64.classId(bytes));
                if (d != null) moved.put(new ExecutionData(CRC64.classId(plain), d.getName(), d.getProbes()));
            }
        }
        CoverageBuilder builder = new CoverageBuilder();
        Analyzer analyzer = new Analyzer(moved, builder);
        for (var e : stripped.entrySet()) analyzer.analyzeClass(e.getValue(), e.getKey());
        Map<String, Integer> lengths = new HashMap<>();
        TreeMap<String, TreeMap<Integer, Boolean>> files = new TreeMap<>();
        for (IClassCoverage c : builder.getClasses()) {
            String file = c.getPackageName() + "/" + c.getSourceFileName();
            int length = lengths.computeIfAbsent(file, f -> lineCount(f, args));
            var lines = files.computeIfAbsent(file, k -> new TreeMap<>());
            for (int n = c.getFirstLine(); n >= 0 && n <= Math.min(c.getLastLine(), length); n++) {
                int status = c.getLine(n).getStatus();
                if (status == ICounter.EMPTY) continue;
                lines.merge(n, status != ICounter.NOT_COVERED, Boolean::logicalOr);
            }
        }
        int covered = 0, total = 0;
        for (var f : files.entrySet()) {
            int cov = (int) f.getValue().values().stream().filter(b -> b).count();
            System.out.println(f.getKey() + " " + cov + " " + f.getValue().size());
            covered += cov;
            total += f.getValue().size();
        }
        System.out.println("TOTAL " + covered + " " + total);
    }

    private static int lineCount(String file, String[] args) {
        for (int i = 2; i < args.length; i++) {
            File f = new File(args[i], file);
            try {
                if (f.isFile()) return Files.readAllLines(f.toPath()).size();
            } catch (Exception e) { /* unreadable: counted as absent */ }
        }
        return Integer.MAX_VALUE;
    }
}
