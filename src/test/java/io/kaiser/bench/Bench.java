package io.kaiser.bench;

import java.io.File;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.time.ZoneOffset;
import java.time.ZonedDateTime;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.function.BooleanSupplier;

import io.kaiser.support.FreePorts;

/**
 * Shared plumbing of the benchmark mains: machine facts, process CPU/RSS from /proc, a private Mosquitto, fresh
 * databases, a Kaiser server in its own JVM, percentiles, markdown tables and the sections of docs/benchmarks.md.
 * Benchmarks are not tests; {@code BenchSmokeTest} runs them with tiny parameters.
 */
final class Bench {
    static final String PG_HOST = System.getenv().getOrDefault("KAISER_BENCH_DB_HOST", "127.0.0.1");
    static final int PG_PORT = Integer.parseInt(System.getenv().getOrDefault("KAISER_BENCH_DB_PORT", "5432"));
    static final String PG_USER = System.getenv().getOrDefault("KAISER_BENCH_DB_USER", "postgres");
    static final Path ROOT = Path.of(System.getProperty("kaiser.bench.root", System.getProperty("kaiser.project.dir", ".")))
            .toAbsolutePath().normalize();
    static final Path WORK = ROOT.resolve("target/bench");
    private static final HttpClient HTTP = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(2)).build();
    /**
     * Paho's MQTT 5 client logs every inbound QoS 2 release at INFO through java.util.logging (one console line per
     * command a bench device receives): load of the bench itself on the shared cores, not of the system measured.
     * Held in a field because java.util.logging keeps loggers weakly.
     */
    private static final java.util.logging.Logger PAHO_LOG = java.util.logging.Logger.getLogger("org.eclipse.paho");

    static {
        PAHO_LOG.setLevel(java.util.logging.Level.WARNING);
    }

    private Bench() {
    }

    // ------------------------------------------------------------------ arguments

    /** {@code --key value} pairs (and bare {@code --flag}s as "true"). */
    static Map<String, String> args(String[] args) {
        Map<String, String> m = new LinkedHashMap<>();
        for (int i = 0; i < args.length; i++) {
            if (!args[i].startsWith("--")) {
                throw new IllegalArgumentException("unexpected argument " + args[i]);
            }
            String k = args[i].substring(2);
            if (i + 1 < args.length && !args[i + 1].startsWith("--")) {
                m.put(k, args[++i]);
            } else {
                m.put(k, "true");
            }
        }
        return m;
    }

    static int intArg(Map<String, String> a, String k, int def) {
        return a.containsKey(k) ? Integer.parseInt(a.get(k)) : def;
    }

    // ------------------------------------------------------------------ machine and processes

    static String machine() {
        String cpu = "?";
        try {
            cpu = Files.readAllLines(Path.of("/proc/cpuinfo")).stream().filter(l -> l.startsWith("model name"))
                    .findFirst().map(l -> l.substring(l.indexOf(':') + 1).trim()).orElse("?");
        } catch (IOException e) {
            // keep "?"
        }
        long memKb = procKb(Path.of("/proc/meminfo"), "MemTotal:");
        return String.format("nproc=%d, RAM=%.1f GiB, CPU %s, Linux %s, Java %s", Runtime.getRuntime().availableProcessors(),
                memKb / 1024.0 / 1024.0, cpu, System.getProperty("os.version"), System.getProperty("java.version"));
    }

    static String loadAvg() {
        try {
            String[] f = Files.readString(Path.of("/proc/loadavg")).trim().split("\\s+");
            return f[0] + " " + f[1] + " " + f[2];
        } catch (IOException e) {
            return "?";
        }
    }

    static String now() {
        return ZonedDateTime.now(ZoneOffset.UTC).format(DateTimeFormatter.ofPattern("yyyy-MM-dd HH:mm 'UTC'"));
    }

    private static long procKb(Path file, String key) {
        try {
            for (String l : Files.readAllLines(file)) {
                if (l.startsWith(key)) {
                    return Long.parseLong(l.substring(key.length()).trim().split("\\s+")[0]);
                }
            }
        } catch (IOException | RuntimeException e) {
            return -1;
        }
        return -1;
    }

    /** Resident set of a process in MiB (VmRSS), or -1. */
    static double rssMb(long pid) {
        return procKb(Path.of("/proc/" + pid + "/status"), "VmRSS:") / 1024.0;
    }

    /** Peak resident set of a process in MiB (VmHWM), or -1. */
    static double peakRssMb(long pid) {
        return procKb(Path.of("/proc/" + pid + "/status"), "VmHWM:") / 1024.0;
    }

    /** CPU seconds (user + system) a process has used so far, from /proc/<pid>/stat (clock ticks of 1/100 s). */
    static double cpuSeconds(long pid) {
        try {
            String s = Files.readString(Path.of("/proc/" + pid + "/stat"));
            String[] f = s.substring(s.lastIndexOf(')') + 2).split(" ");
            return (Long.parseLong(f[11]) + Long.parseLong(f[12])) / 100.0; // fields 14 and 15 of stat(5)
        } catch (IOException | RuntimeException e) {
            return -1;
        }
    }

    /**
     * CPU seconds used so far by the JIT compiler threads of a HotSpot process (threads named "C1/C2 CompilerThread"),
     * -1 when unknown.
     */
    static double jitCpuSeconds(long pid) {
        double sum = 0;
        try (var tasks = Files.list(Path.of("/proc/" + pid + "/task"))) {
            for (Path task : (Iterable<Path>) tasks::iterator) {
                try {
                    String comm = Files.readString(task.resolve("comm")).trim();
                    if (comm.startsWith("C1 Compiler") || comm.startsWith("C2 Compiler")) {
                        String s = Files.readString(task.resolve("stat"));
                        String[] f = s.substring(s.lastIndexOf(')') + 2).split(" ");
                        sum += (Long.parseLong(f[11]) + Long.parseLong(f[12])) / 100.0;
                    }
                } catch (IOException e) {
                    // the thread ended meanwhile
                }
            }
            return sum;
        } catch (IOException | RuntimeException e) {
            return -1;
        }
    }

    /** CPU seconds used so far by every process named {@code comm} (all of PostgreSQL's backends, say); ended ones not counted. */
    static double cpuSecondsOfAll(String comm) {
        double sum = 0;
        try (var procs = Files.list(Path.of("/proc"))) {
            for (Path proc : (Iterable<Path>) procs::iterator) {
                String name = proc.getFileName().toString();
                if (!name.chars().allMatch(Character::isDigit)) {
                    continue;
                }
                try {
                    if (Files.readString(proc.resolve("comm")).trim().equals(comm)) {
                        sum += Math.max(0, cpuSeconds(Long.parseLong(name)));
                    }
                } catch (IOException e) {
                    // the process ended meanwhile
                }
            }
            return sum;
        } catch (IOException | RuntimeException e) {
            return -1;
        }
    }

    static boolean portOpen(int port) {
        try (Socket s = new Socket()) {
            s.connect(new InetSocketAddress("127.0.0.1", port), 200);
            return true;
        } catch (IOException e) {
            return false;
        }
    }

    /** Polls (Awaitility, every 50 ms) until the condition holds; false on timeout. */
    static boolean await(Duration timeout, BooleanSupplier condition) {
        try {
            org.awaitility.Awaitility.await().atMost(timeout).pollInterval(Duration.ofMillis(50)).until(condition::getAsBoolean);
            return true;
        } catch (org.awaitility.core.ConditionTimeoutException e) {
            return false;
        }
    }

    /**
     * A fixed measurement window (warm-up, measuring interval): the benchmark's timeline, not a wait for a condition.
     */
    static void window(Duration length) {
        try {
            Thread.sleep(length.toMillis());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }

    static int httpStatus(String url) {
        try {
            return HTTP.send(HttpRequest.newBuilder(URI.create(url)).timeout(Duration.ofSeconds(2)).GET().build(),
                    HttpResponse.BodyHandlers.discarding()).statusCode();
        } catch (IOException e) {
            return -1;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return -1;
        }
    }

    static void stop(Process p) {
        if (p == null || !p.isAlive()) {
            return;
        }
        p.destroy();
        try {
            if (!p.waitFor(15, java.util.concurrent.TimeUnit.SECONDS)) {
                p.destroyForcibly().waitFor();
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    // ------------------------------------------------------------------ broker

    /** A Mosquitto of the bench's own on a free port, config derived from mosquitto/mosquitto.conf with a larger queue. */
    static final class Broker implements AutoCloseable {
        final int port;
        final Process process;
        final String config;

        Broker(int maxQueued) throws IOException {
            port = FreePorts.next();
            Path dir = Files.createDirectories(WORK.resolve("mosquitto-" + port));
            config = String.join("\n",
                    "# derived from mosquitto/mosquitto.conf: one MQTT listener, no persistence, larger queue",
                    "listener " + port + " 127.0.0.1",
                    "allow_anonymous true",
                    "persistence false",
                    "log_dest stderr",
                    "log_type error",
                    "log_type warning",
                    "max_inflight_messages 20",
                    "max_queued_messages " + maxQueued,
                    "max_queued_bytes 0",
                    "message_size_limit 262144",
                    "max_keepalive 65535",
                    "set_tcp_nodelay true",
                    "");
            Path conf = dir.resolve("mosquitto.conf");
            Files.writeString(conf, config);
            // raise the open-file limit for many device connections; mosquitto may not raise it itself
            process = new ProcessBuilder("bash", "-c", "ulimit -n $(ulimit -Hn) 2>/dev/null; exec mosquitto -c " + conf)
                    .redirectErrorStream(true).redirectOutput(dir.resolve("mosquitto.log").toFile()).start();
            if (!await(Duration.ofSeconds(10), () -> portOpen(port))) {
                throw new IllegalStateException("mosquitto did not open port " + port + ", see " + dir.resolve("mosquitto.log"));
            }
        }

        String url() {
            return "tcp://127.0.0.1:" + port;
        }

        long pid() {
            return process.pid();
        }

        @Override
        public void close() {
            stop(process);
        }
    }

    // ------------------------------------------------------------------ database

    static String jdbcUrl(String db) {
        return "jdbc:postgresql://" + PG_HOST + ":" + PG_PORT + "/" + db;
    }

    static Connection connect(String db) throws SQLException {
        return DriverManager.getConnection(jdbcUrl(db), PG_USER, "");
    }

    /** A fresh, empty database {@code kbench_<prefix>_<random>}. */
    static String createDatabase(String prefix) {
        String name = "kbench_" + prefix + "_" + UUID.randomUUID().toString().substring(0, 8);
        exec("postgres", "CREATE DATABASE " + name);
        return name;
    }

    /** A fresh database with Kaiser's schema (Flyway, the server's own migrations). */
    static String createKaiserDatabase(String prefix) {
        String db = createDatabase(prefix);
        org.flywaydb.core.Flyway.configure().dataSource(jdbcUrl(db), PG_USER, "").locations("classpath:db/migration").load().migrate();
        return db;
    }

    static void dropDatabase(String db) {
        try {
            exec("postgres", "DROP DATABASE IF EXISTS " + db + " WITH (FORCE)");
        } catch (RuntimeException e) {
            System.err.println("bench: could not drop " + db + ": " + e.getMessage());
        }
    }

    static void exec(String db, String sql) {
        try (Connection c = connect(db); Statement s = c.createStatement()) {
            s.execute(sql);
        } catch (SQLException e) {
            throw new IllegalStateException(sql + ": " + e.getMessage(), e);
        }
    }

    static long count(String db, String sql) {
        try (Connection c = connect(db); Statement s = c.createStatement(); ResultSet rs = s.executeQuery(sql)) {
            rs.next();
            return rs.getLong(1);
        } catch (SQLException e) {
            throw new IllegalStateException(sql + ": " + e.getMessage(), e);
        }
    }

    static double[] doubles(String db, String sql) {
        try (Connection c = connect(db); Statement s = c.createStatement(); ResultSet rs = s.executeQuery(sql)) {
            rs.next();
            double[] out = new double[rs.getMetaData().getColumnCount()];
            for (int i = 0; i < out.length; i++) {
                out[i] = rs.getDouble(i + 1);
            }
            return out;
        } catch (SQLException e) {
            throw new IllegalStateException(sql + ": " + e.getMessage(), e);
        }
    }

    /**
     * Latency probe: a sampled row trigger records the database clock when 1 in 16 readings is inserted. The load
     * generator puts its wall-clock publish time (epoch microseconds) into the reading's {@code seq}, which every
     * writer stores unchanged, so {@code inserted_at - seq} is publish -> row (same machine, same clock).
     */
    static void installLatencyProbe(String db) {
        exec(db, "CREATE TABLE IF NOT EXISTS bench_latency (seq bigint, inserted_at timestamptz)");
        exec(db, "CREATE OR REPLACE FUNCTION bench_latency_probe() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                + "INSERT INTO bench_latency VALUES (NEW.seq, clock_timestamp()); RETURN NULL; END $$");
        exec(db, "CREATE TRIGGER bench_latency_probe AFTER INSERT ON sensor_data FOR EACH ROW "
                + "WHEN (NEW.seq % 16 = 0) EXECUTE FUNCTION bench_latency_probe()");
    }

    /** p50, p95, p99, max of publish -> row in ms (see {@link #installLatencyProbe}). */
    static double[] latencyMs(String db) {
        return doubles(db, "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY l), percentile_cont(0.95) WITHIN GROUP (ORDER BY l),"
                + " percentile_cont(0.99) WITHIN GROUP (ORDER BY l), max(l), count(*) FROM (SELECT"
                + " (extract(epoch FROM inserted_at) * 1e6 - seq) / 1000.0 AS l FROM bench_latency) x");
    }

    // ------------------------------------------------------------------ Kaiser server process

    /** Class path of the server: the production artifact (target/classes + target/lib) if built, else this JVM's. */
    static String serverClassPath() {
        Path lib = ROOT.resolve("target/lib");
        if (Files.isDirectory(lib) && Files.isDirectory(ROOT.resolve("target/classes"))) {
            return ROOT.resolve("target/classes") + File.pathSeparator + lib + File.separator + "*";
        }
        String cp = System.getProperty("surefire.test.class.path");
        return cp == null || cp.isBlank() ? System.getProperty("java.class.path") : cp;
    }

    /** A Kaiser server (io.kaiser.KaiserMain) in a child JVM with a fresh identity. */
    static final class Server implements AutoCloseable {
        final String kaiserId;
        final String db;
        final int port;
        final Process process;
        final Path log;

        Server(String name, String mqttUrl, String db, Map<String, String> props, List<String> jvmArgs) throws IOException {
            this.kaiserId = "b" + name + UUID.randomUUID().toString().substring(0, 6);
            this.db = db;
            this.port = FreePorts.next();
            Path journal = Files.createDirectories(WORK.resolve("journal-" + kaiserId));
            List<String> cmd = new ArrayList<>();
            cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
            cmd.addAll(jvmArgs);
            // extra JVM options for the server, e.g. an -agentpath for async-profiler (bench/README.md)
            String extra = System.getenv("KAISER_BENCH_SERVER_OPTS");
            if (extra != null && !extra.isBlank()) {
                cmd.addAll(List.of(extra.trim().split("\\s+")));
            }
            Map<String, String> p = new LinkedHashMap<>();
            p.put("kaiser.id", kaiserId);
            p.put("kaiser.instance-id", kaiserId);
            p.put("kaiser.mqtt.url", mqttUrl);
            p.put("kaiser.db.url", jdbcUrl(db));
            p.put("kaiser.db.user", PG_USER);
            p.put("kaiser.db.password", "");
            p.put("kaiser.ingest.journal-dir", journal.toString());
            p.put("kaiser.registration.auto-approve", "true");
            p.put("camel.server.port", Integer.toString(port));
            p.put("camel.server.host", "127.0.0.1");
            p.putAll(props);
            p.forEach((k, v) -> cmd.add("-D" + k + "=" + v));
            cmd.add("-cp");
            cmd.add(serverClassPath());
            cmd.add("io.kaiser.KaiserMain");
            log = WORK.resolve("server-" + kaiserId + ".log");
            process = new ProcessBuilder(cmd).directory(ROOT.toFile()).redirectErrorStream(true).redirectOutput(log.toFile()).start();
        }

        String baseUrl() {
            return "http://127.0.0.1:" + port + "/api/v1";
        }

        long pid() {
            return process.pid();
        }

        /** Waits for GET /health 200; returns the seconds it took since the process started. */
        double awaitUp(Duration timeout) {
            long t0 = process.info().startInstant().map(i -> i.toEpochMilli()).orElse(System.currentTimeMillis());
            if (!await(timeout, () -> httpStatus(baseUrl() + "/health") == 200 || !process.isAlive())) {
                throw new IllegalStateException("server not UP within " + timeout + ", see " + log);
            }
            if (!process.isAlive()) {
                throw new IllegalStateException("server died, see " + log);
            }
            return (System.currentTimeMillis() - t0) / 1000.0;
        }

        String topic(String esp, String suffix) {
            return "kaiser/" + kaiserId + "/esp/" + esp + "/" + suffix;
        }

        @Override
        public void close() {
            stop(process);
        }
    }

    // ------------------------------------------------------------------ statistics and output

    /** Percentile (nearest rank) of sorted values. */
    static double pct(long[] sorted, double p) {
        if (sorted.length == 0) {
            return Double.NaN;
        }
        int i = (int) Math.ceil(p / 100.0 * sorted.length) - 1;
        return sorted[Math.max(0, Math.min(sorted.length - 1, i))];
    }

    static String f0(double v) {
        return Double.isNaN(v) ? "n/a" : String.format("%,.0f", v);
    }

    static String f1(double v) {
        return Double.isNaN(v) ? "n/a" : String.format("%.1f", v);
    }

    static String f2(double v) {
        return Double.isNaN(v) ? "n/a" : String.format("%.2f", v);
    }

    /** A markdown table. */
    static final class Table {
        private final List<String[]> rows = new ArrayList<>();

        Table(String... header) {
            rows.add(header);
        }

        Table row(Object... cells) {
            rows.add(Arrays.stream(cells).map(String::valueOf).toArray(String[]::new));
            return this;
        }

        int size() {
            return rows.size() - 1;
        }

        @Override
        public String toString() {
            StringBuilder b = new StringBuilder();
            for (int r = 0; r < rows.size(); r++) {
                b.append("| ").append(String.join(" | ", rows.get(r))).append(" |\n");
                if (r == 0) {
                    b.append("|").append("---|".repeat(rows.get(0).length)).append("\n");
                }
            }
            return b.toString();
        }
    }

    /**
     * Prints a benchmark's section and, with {@code -Dkaiser.bench.doc=true} (the bench/ scripts), replaces the
     * section between {@code <!-- bench:NAME -->} and {@code <!-- /bench:NAME -->} in docs/benchmarks.md. Smoke
     * runs write target/bench/NAME.md only.
     */
    static void publish(String name, String title, String command, String body) throws IOException {
        String section = "<!-- bench:" + name + " -->\n## " + title + "\n\n"
                + "- command: `" + command + "`\n"
                + "- run: " + now() + "; machine: " + machine() + "; load average at the end: " + loadAvg() + "\n\n"
                + body.strip() + "\n<!-- /bench:" + name + " -->";
        System.out.println();
        System.out.println(section);
        Files.createDirectories(WORK);
        Files.writeString(WORK.resolve(name + ".md"), section + "\n");
        if (!Boolean.getBoolean("kaiser.bench.doc")) {
            return;
        }
        Path doc = ROOT.resolve("docs/benchmarks.md");
        String text = Files.exists(doc) ? Files.readString(doc) : "# Benchmarks\n\nSee bench/README.md.\n";
        String start = "<!-- bench:" + name + " -->";
        String end = "<!-- /bench:" + name + " -->";
        int a = text.indexOf(start);
        int b = text.indexOf(end);
        if (a >= 0 && b > a) {
            text = text.substring(0, a) + section + text.substring(b + end.length());
        } else if (text.contains("<!-- analysis")) {
            int at = text.indexOf("<!-- analysis"); // new sections go before the hand-written analysis
            text = text.substring(0, at) + section + "\n\n" + text.substring(at);
        } else {
            text = text.stripTrailing() + "\n\n" + section + "\n";
        }
        Files.writeString(doc, text, StandardCharsets.UTF_8);
        System.err.println("bench: updated " + doc + " section " + name);
    }
}
