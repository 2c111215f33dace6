package io.kaiser.bench;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.UUID;

import io.kaiser.support.FreePorts;

/**
 * Startup: seconds from process start to {@code GET /api/v1/health} 200, and resident memory then, for the embedded
 * default ({@code mvn -B -q -Pembedded compile exec:java}, what {@code ./kaiser run} runs: Maven, in-process HiveMQ
 * and an embedded PostgreSQL) and for external services ({@code java -jar target/kaiser-server-*.jar}, the production
 * artifact, against the local Mosquitto 127.0.0.1:1883 and PostgreSQL). Run 1 of each mode starts from nothing
 * (new data directory / new database: initdb, Flyway), the following ones reuse it. Run: {@code bench/startup}.
 */
public final class StartupBench {
    public static void main(String[] argv) throws Exception {
        Map<String, String> a = Bench.args(argv);
        int runs = Bench.intArg(a, "runs", 3);
        String command = a.getOrDefault("command", "bench/startup");
        List<String> modes = List.of(a.getOrDefault("modes", "external,embedded").split(","));
        String mqtt = a.getOrDefault("mqtt", "tcp://127.0.0.1:1883");
        Bench.Table t = new Bench.Table("mode", "run", "to health UP s", "RSS at UP MiB (process tree)", "note");
        if (modes.contains("external")) {
            String jar = Files.list(Bench.ROOT.resolve("target")).map(Path::toString).filter(p -> p.matches(".*/kaiser-server-[^/]*\\.jar"))
                    .findFirst().orElseThrow(() -> new IllegalStateException("no target/kaiser-server-*.jar: run ./kaiser jar"));
            String db = Bench.createDatabase("startup");
            try {
                for (int r = 1; r <= runs; r++) {
                    String id = "bstart" + UUID.randomUUID().toString().substring(0, 6);
                    int port = FreePorts.next();
                    List<String> cmd = List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(), "-Dkaiser.id=" + id,
                            "-Dkaiser.instance-id=" + id, "-Dkaiser.mqtt.url=" + mqtt, "-Dkaiser.db.url=" + Bench.jdbcUrl(db),
                            "-Dkaiser.db.user=" + Bench.PG_USER, "-Dkaiser.ingest.journal-dir=" + Bench.WORK.resolve("journal-" + id),
                            "-Dcamel.server.port=" + port, "-Dcamel.server.host=127.0.0.1", "-jar", jar);
                    double[] m = time(cmd, port, Bench.WORK.resolve("startup-" + id + ".log"));
                    t.row("external: `java -jar " + Bench.ROOT.relativize(Path.of(jar)) + "`", r, Bench.f2(m[0]), Bench.f0(m[1]),
                            r == 1 ? "new database (Flyway migrates)" : "same database");
                }
            } finally {
                Bench.dropDatabase(db);
            }
        }
        if (modes.contains("embedded")) {
            Path data = Bench.WORK.resolve("embedded-data-" + UUID.randomUUID().toString().substring(0, 6));
            for (int r = 1; r <= runs; r++) {
                String id = "bemb" + UUID.randomUUID().toString().substring(0, 6);
                int port = FreePorts.next();
                List<String> cmd = List.of("mvn", "-B", "-q", "-Pembedded", "compile", "exec:java", "-Dcamel.server.port=" + port,
                        "-Dkaiser.embedded.mqtt-port=" + FreePorts.next(), "-Dkaiser.embedded.data-dir=" + data, "-Dkaiser.id=" + id,
                        "-Dkaiser.instance-id=kaiser-" + id);
                double[] m = time(cmd, port, Bench.WORK.resolve("startup-" + id + ".log"));
                t.row("embedded: `mvn -B -q -Pembedded compile exec:java` (= `./kaiser run`)", r, Bench.f2(m[0]), Bench.f0(m[1]),
                        r == 1 ? "new data directory (initdb)" : "same data directory");
            }
        }
        String body = "Seconds from starting the command until `GET /api/v1/health` answers 200 (polled every 50 ms), and the resident"
                + " memory of the whole process tree at that moment (the JVM plus, embedded, the PostgreSQL processes; `VmRSS` summed over"
                + " `/proc`). External mode runs the production artifact (`./kaiser jar`) against the local Mosquitto and PostgreSQL."
                + " The embedded time includes Maven's own start and its up-to-date check of the compiled classes (nothing to compile).\n\n"
                + t;
        Bench.publish("startup", "Startup", command, body);
        System.exit(0);
    }

    /** {seconds to health 200, RSS MiB of the process tree then}; stops the process with SIGTERM afterwards. */
    static double[] time(List<String> cmd, int port, Path log) throws Exception {
        ProcessBuilder pb = new ProcessBuilder(cmd).directory(Bench.ROOT.toFile()).redirectErrorStream(true).redirectOutput(log.toFile());
        pb.environment().keySet().removeIf(k -> k.startsWith("KAISER_") || k.startsWith("CAMEL_"));
        long t0 = System.nanoTime();
        Process p = pb.start();
        try {
            String url = "http://127.0.0.1:" + port + "/api/v1/health";
            boolean up = Bench.await(Duration.ofSeconds(180), () -> !p.isAlive() || Bench.httpStatus(url) == 200);
            if (!up || !p.isAlive()) {
                throw new IllegalStateException("not UP, see " + log);
            }
            double s = (System.nanoTime() - t0) / 1e9;
            double rss = Bench.rssMb(p.pid());
            for (ProcessHandle h : p.descendants().toList()) {
                rss += Math.max(0, Bench.rssMb(h.pid()));
            }
            System.err.printf("%s: UP after %.2f s, RSS %.0f MiB%n", cmd.get(cmd.size() - 1), s, rss);
            return new double[] {s, rss};
        } finally {
            List<ProcessHandle> tree = new ArrayList<>(p.descendants().toList());
            Bench.stop(p);
            Bench.await(Duration.ofSeconds(20), () -> tree.stream().noneMatch(ProcessHandle::isAlive));
        }
    }
}
