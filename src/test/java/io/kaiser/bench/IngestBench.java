package io.kaiser.bench;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.Timestamp;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicLong;

import io.kaiser.support.FreePorts;
import org.eclipse.paho.mqttv5.client.IMqttToken;
import org.eclipse.paho.mqttv5.client.MqttAsyncClient;
import org.eclipse.paho.mqttv5.client.MqttCallback;
import org.eclipse.paho.mqttv5.client.MqttConnectionOptions;
import org.eclipse.paho.mqttv5.client.MqttDisconnectResponse;
import org.eclipse.paho.mqttv5.client.persist.MemoryPersistence;
import org.eclipse.paho.mqttv5.common.MqttException;
import org.eclipse.paho.mqttv5.common.MqttMessage;
import org.eclipse.paho.mqttv5.common.packet.MqttProperties;
import org.postgresql.PGConnection;
import org.postgresql.copy.CopyManager;

/**
 * Ingest benchmark: D devices publish QoS 1 readings as fast as the broker takes them for S seconds into, in turn,
 * (a) a plain counting subscriber (broker drain limit), (c) a real Kaiser server process, (d) a Node-RED flow
 * (MQTT in -> JSON -> PostgreSQL insert); and (b) the same rows written straight to PostgreSQL by a minimal JDBC
 * batch loop and by a COPY loop. All against a private Mosquitto and fresh databases, in one run.
 * Run: {@code bench/ingest} (see bench/README.md); {@code --devices 20 --seconds 20 --nodered true --profile false}.
 */
public final class IngestBench {
    private static final String INSERT = "INSERT INTO sensor_data (esp_id, gpio, sensor_type, sensor_address, measured_at, received_at,"
            + " raw_value, value, unit, quality, processing_mode, zone_id, subzone_id, seq) VALUES (?, ?, ?, '', ?, ?, ?, ?, ?, ?, ?, NULL, NULL, ?)"
            + " ON CONFLICT ON CONSTRAINT sensor_data_reading_uq DO NOTHING";

    static int warmupSeconds = 15;
    /** Rows per batch of the database baselines: Kaiser's default {@code kaiser.ingest.batch-size}. */
    static final int DB_BATCH = 2000;

    record Result(String name, long sent, long delivered, double seconds, double rate, double[] latency, double cpuPct, double rssMb,
                  double peakRssMb, String note) {
    }

    public static void main(String[] argv) throws Exception {
        run(argv);
    }

    /** Runs the benchmark, prints and publishes its section; returns the rows of its table. */
    static List<Result> run(String[] argv) throws Exception {
        Map<String, String> a = Bench.args(argv);
        int devices = Bench.intArg(a, "devices", 20);
        int seconds = Bench.intArg(a, "seconds", 20);
        int window = Bench.intArg(a, "window", 8);
        // the JVM's JIT compiler took a third of the server's CPU for the first ~20 s of load: measure past it
        warmupSeconds = Bench.intArg(a, "warmup-s", Math.max(1, Math.min(15, seconds * 3 / 4)));
        boolean nodered = Boolean.parseBoolean(a.getOrDefault("nodered", "true"));
        boolean profile = Boolean.parseBoolean(a.getOrDefault("profile", "false"));
        int paced = Bench.intArg(a, "paced-rate", 500);
        String command = a.getOrDefault("command", "bench/ingest");
        List<String> phases = List.of(a.getOrDefault("phases", "drain,jdbc,copy,kaiser,nodered").split(","));
        Files.createDirectories(Bench.WORK);
        List<Result> results = new ArrayList<>();
        String brokerConfig;
        try (Bench.Broker broker = new Bench.Broker(10_000_000)) {
            brokerConfig = broker.config;
            if (phases.contains("drain")) {
                results.add(drain(broker, devices, seconds, window));
            }
            if (phases.contains("jdbc")) {
                results.add(jdbc(seconds, false));
            }
            if (phases.contains("copy")) {
                results.add(jdbc(seconds, true));
            }
            if (phases.contains("kaiser")) {
                results.addAll(kaiser(broker, devices, seconds, window, profile, paced));
            }
            if (nodered && phases.contains("nodered")) {
                results.addAll(nodeRed(broker, devices, seconds, window, paced));
            }
        }
        Bench.Table t = new Bench.Table("writer", "sent", "delivered / stored", "msg/s stored (all stored)", "latency p50 / p95 / p99 / max ms",
                "CPU % of one core", "RSS MiB (end / peak)", "note");
        for (Result r : results) {
            t.row(r.name, r.sent < 0 ? "-" : Bench.f0(r.sent), Bench.f0(r.delivered), Bench.f0(r.rate),
                    r.latency == null ? "-" : Bench.f1(r.latency[0]) + " / " + Bench.f1(r.latency[1]) + " / " + Bench.f1(r.latency[2]) + " / "
                            + Bench.f1(r.latency[3]),
                    r.cpuPct < 0 ? "-" : Bench.f0(r.cpuPct), r.rssMb < 0 ? "-" : Bench.f0(r.rssMb) + " / " + Bench.f0(r.peakRssMb), r.note);
        }
        Result kaiser = results.stream().filter(r -> r.name.startsWith("Kaiser (")).findFirst().orElse(null);
        Result drain = results.stream().filter(r -> r.name.startsWith("broker")).findFirst().orElse(null);
        StringBuilder body = new StringBuilder();
        body.append(String.format("%d devices (one Paho client and thread each, at most %d unacknowledged QoS 1 publishes per device) publish"
                + " `sensor/4/data` as fast as the broker takes them for %d s into each writer in turn, through a private Mosquitto 2"
                + " (`max_queued_messages 10000000`, no persistence; the rest as in `mosquitto/mosquitto.conf`). Every database is fresh"
                + " and has Kaiser's schema (Flyway).%n%n", devices, window, seconds));
        body.append(t).append('\n');
        Bench.Table ratios = new Bench.Table("ratio", "value", "target");
        if (kaiser != null) {
            if (drain != null) {
                ratios.row("Kaiser / broker drain", Bench.f2(kaiser.rate / drain.rate), ">= 0.5");
            }
            results.stream().filter(r -> r.name.startsWith("Node-RED ")).findFirst()
                    .ifPresent(n -> ratios.row("Kaiser / Node-RED", Bench.f1(kaiser.rate / n.rate) + "x", ">= 5x"));
            results.stream().filter(r -> r.name.startsWith("JDBC")).findFirst()
                    .ifPresent(n -> ratios.row("Kaiser / JDBC batch (database limit)", Bench.f2(kaiser.rate / n.rate), "-"));
            results.stream().filter(r -> r.name.startsWith("COPY")).findFirst()
                    .ifPresent(n -> ratios.row("Kaiser / COPY (database limit)", Bench.f2(kaiser.rate / n.rate), "-"));
        }
        body.append(ratios).append('\n');
        body.append("How it is measured: *msg/s stored* is rows counted in PostgreSQL (or messages counted by the drain subscriber)"
                + " divided by the time from the first publish until the last one was stored (polled every 250 ms), so a backlog"
                + " worked off after the load counts against the writer. *Latency* is publish -> row: the load generator puts its"
                + " publish time (epoch µs) into each reading's `seq`, and a sampled row trigger (1 in 16 rows, `WHEN (seq % 16 = 0)`)"
                + " records `clock_timestamp()` when the row is inserted (inside the writer's transaction, so its commit adds a little);"
                + " the unpaced rows show latency at saturation (mostly the backlog's queueing); the *paced* rows (same writer, same"
                + " devices, a fixed total rate, `--paced-rate`) show it without a backlog. CPU is user+system time from"
                + " `/proc/<pid>/stat` over the same interval; RSS is `VmRSS` at the end and `VmHWM`. The drain subscriber runs in the"
                + " bench JVM (no CPU/RSS of its own is shown); the database baselines write pre-built rows from the bench JVM, one"
                + " connection, " + DB_BATCH + " rows per batch and transaction (Kaiser's `kaiser.ingest.batch-size`).\n");
        Bench.publish(a.getOrDefault("section", "ingest"), a.getOrDefault("title", "Ingest"), command, body.toString());
        return results;
    }

    // ------------------------------------------------------------------ (a) broker drain

    static Result drain(Bench.Broker broker, int devices, int seconds, int window) throws Exception {
        String kid = "bdrain" + System.nanoTime() % 100000;
        AtomicLong count = new AtomicLong();
        MqttAsyncClient sub = new MqttAsyncClient(broker.url(), kid + "-sub", new MemoryPersistence());
        sub.setCallback(new CountingCallback(count));
        MqttConnectionOptions o = new MqttConnectionOptions();
        o.setReceiveMaximum(20);
        o.setSocketFactory(io.kaiser.mqtt.NoDelaySockets.plain()); // as the server's ingest client
        sub.connect(o).waitForCompletion(5000);
        sub.subscribe("kaiser/" + kid + "/esp/+/sensor/+/data", 1).waitForCompletion(5000);
        try (LoadGenerator load = new LoadGenerator(broker.url(), kid, devices, window, (esp, s) -> "kaiser/" + kid + "/esp/" + esp + "/" + s)) {
            long warm = load.run(Duration.ofSeconds(warmupSeconds));
            settle(System.nanoTime(), warm, count::get);
            load.sent.set(0);
            count.set(0);
            long t0 = System.nanoTime();
            long sent = load.run(Duration.ofSeconds(seconds));
            double[] done = settle(t0, sent, count::get);
            sub.disconnect().waitForCompletion(2000);
            sub.close();
            System.err.printf("drain: sent %d delivered %d in %.1f s%n", sent, count.get(), done[0]);
            return new Result("broker drain (Paho subscriber, QoS 1, counts only)", sent, count.get(), done[0], count.get() / done[0], null,
                    -1, -1, -1, String.format("publishers: %,.0f msg/s", sent / load.publishSeconds));
        }
    }

    private record CountingCallback(AtomicLong count) implements MqttCallback {
        public void disconnected(MqttDisconnectResponse r) { }
        public void mqttErrorOccurred(MqttException e) { }
        public void messageArrived(String topic, MqttMessage m) {
            count.incrementAndGet();
        }
        public void deliveryComplete(IMqttToken t) { }
        public void connectComplete(boolean reconnect, String uri) { }
        public void authPacketArrived(int code, MqttProperties p) { }
    }

    /**
     * Waits until {@code counter} reaches {@code expected} or has not moved for 5 s (or 120 s overall); returns
     * {seconds from t0 until the last increase, final count}.
     */
    static double[] settle(long t0, long expected, java.util.function.LongSupplier counter) {
        long[] last = {counter.getAsLong()};
        long[] lastChange = {System.nanoTime()};
        Bench.await(Duration.ofSeconds(Math.max(1, 600 - (System.nanoTime() - t0) / 1_000_000_000L)), () -> {
            long c = counter.getAsLong();
            if (c != last[0]) {
                last[0] = c;
                lastChange[0] = System.nanoTime();
            }
            return last[0] >= expected || System.nanoTime() - lastChange[0] >= 5_000_000_000L;
        });
        return new double[] {(lastChange[0] - t0) / 1e9, last[0]};
    }

    // ------------------------------------------------------------------ (b) database limit

    static Result jdbc(int seconds, boolean copy) throws Exception {
        String db = Bench.createKaiserDatabase(copy ? "copy" : "jdbc");
        try {
            Bench.installLatencyProbe(db);
            long rows = 0;
            long t0 = System.nanoTime();
            long end = t0 + Duration.ofSeconds(seconds).toNanos();
            long ts = 1_790_000_000_000L;
            try (Connection c = java.sql.DriverManager.getConnection(Bench.jdbcUrl(db) + "?reWriteBatchedInserts=true", Bench.PG_USER, "")) {
                c.setAutoCommit(false);
                CopyManager cm = c.unwrap(PGConnection.class).getCopyAPI();
                PreparedStatement ps = c.prepareStatement(INSERT);
                StringBuilder sb = new StringBuilder();
                while (System.nanoTime() < end) {
                    sb.setLength(0);
                    for (int i = 0; i < DB_BATCH; i++, ts++) {
                        java.time.Instant now = java.time.Instant.now();
                        long micros = now.getEpochSecond() * 1_000_000L + now.getNano() / 1000;
                        String esp = String.format("ESP_B%04d", i % 20);
                        double raw = 300 + i % 50;
                        if (copy) {
                            sb.append(esp).append("\t4\tds18b20\t\t").append(new Timestamp(ts)).append("+00\t").append(new Timestamp(System.currentTimeMillis()))
                                    .append("+00\t").append(raw).append('\t').append(raw / 16).append("\t°C\tunknown\traw_conversion\t\\N\t\\N\t").append(micros)
                                    .append('\n');
                        } else {
                            ps.setString(1, esp);
                            ps.setInt(2, 4);
                            ps.setString(3, "ds18b20");
                            ps.setTimestamp(4, new Timestamp(ts));
                            ps.setTimestamp(5, new Timestamp(System.currentTimeMillis()));
                            ps.setDouble(6, raw);
                            ps.setDouble(7, raw / 16);
                            ps.setString(8, "°C");
                            ps.setString(9, "unknown");
                            ps.setString(10, "raw_conversion");
                            ps.setLong(11, micros);
                            ps.addBatch();
                        }
                    }
                    if (copy) {
                        cm.copyIn("COPY sensor_data (esp_id, gpio, sensor_type, sensor_address, measured_at, received_at, raw_value, value, unit,"
                                + " quality, processing_mode, zone_id, subzone_id, seq) FROM STDIN", new java.io.StringReader(sb.toString()));
                    } else {
                        ps.executeBatch();
                    }
                    c.commit();
                    rows += DB_BATCH;
                }
            }
            double secs = (System.nanoTime() - t0) / 1e9;
            long stored = Bench.count(db, "SELECT count(*) FROM sensor_data");
            System.err.printf("%s: %d rows in %.1f s%n", copy ? "copy" : "jdbc", stored, secs);
            return new Result(copy ? "COPY loop (" + DB_BATCH + " rows per COPY, database limit)" : "JDBC batch (multi-row INSERT .. ON CONFLICT, database limit)",
                    -1, stored, secs, stored / secs, Bench.latencyMs(db), -1, -1, -1, "rows built in the bench JVM, no MQTT");
        } finally {
            Bench.dropDatabase(db);
        }
    }

    // ------------------------------------------------------------------ (c) Kaiser

    static List<Result> kaiser(Bench.Broker broker, int devices, int seconds, int window, boolean profile, int paced) throws Exception {
        String db = Bench.createDatabase("ingest");
        List<String> jvm = new ArrayList<>(List.of("-Xmx1g"));
        Path jfr = Bench.WORK.resolve("ingest.jfr");
        if (profile) {
            Files.deleteIfExists(jfr);
            jvm.add("-XX:StartFlightRecording=filename=" + jfr + ",settings=profile,dumponexit=true");
        }
        try (Bench.Server server = new Bench.Server("ingest", broker.url(), db, Map.of(), jvm)) {
            double up = server.awaitUp(Duration.ofSeconds(90));
            System.err.printf("kaiser: UP after %.1f s (pid %d)%n", up, server.pid());
            try (LoadGenerator load = new LoadGenerator(broker.url(), server.kaiserId + "-load", devices, window, server::topic)) {
                load.heartbeats();
                if (!Bench.await(Duration.ofSeconds(30), () -> Bench.count(db, "SELECT count(*) FROM devices WHERE status = 'online'") >= devices)) {
                    throw new IllegalStateException("devices not online, see " + server.log);
                }
                long base = warmUp(load, db);
                Bench.installLatencyProbe(db);
                double cpu0 = Bench.cpuSeconds(server.pid());
                long wall0 = System.currentTimeMillis();
                long t0 = System.nanoTime();
                long sent = load.run(Duration.ofSeconds(seconds));
                long storedAtEnd = Bench.count(db, "SELECT count(*) FROM sensor_data") - base;
                double rssEnd = Bench.rssMb(server.pid());
                double[] done = settle(t0, sent, () -> Bench.count(db, "SELECT count(*) FROM sensor_data") - base);
                double cpu = Bench.cpuSeconds(server.pid()) - cpu0;
                // the measured interval, for JfrSummary: the load, then the backlog worked off
                Files.writeString(Bench.WORK.resolve("ingest-window.txt"), wall0 + " " + (wall0 + (long) (load.publishSeconds * 1000)) + " "
                        + (wall0 + (long) (done[0] * 1000)) + "\n");
                long stored = (long) done[1];
                double[] lat = Bench.latencyMs(db);
                double peak = Bench.peakRssMb(server.pid());
                System.err.printf("kaiser: sent %d stored %d (%d when the load ended) in %.1f s%n", sent, stored, storedAtEnd, done[0]);
                List<Result> out = new ArrayList<>();
                out.add(new Result("Kaiser (server process, QoS 1 ingest -> journal -> batched INSERT)", sent, stored, done[0], stored / done[0], lat,
                        cpu / done[0] * 100, rssEnd, peak, String.format("%,.0f msg/s stored while the load ran; publishers: %,.0f msg/s%s",
                                storedAtEnd / load.publishSeconds, sent / load.publishSeconds, profile ? "; JFR on" : "")));
                if (paced > 0) {
                    out.add(pacedRun("Kaiser, paced", load, db, seconds, paced, server.pid()));
                }
                return out;
            }
        } finally {
            Bench.dropDatabase(db);
        }
    }

    /** The same writer at a fixed total rate well below saturation: latency without a backlog. */
    static Result pacedRun(String name, LoadGenerator load, String db, int seconds, int rate, long pid) throws InterruptedException {
        Bench.exec(db, "TRUNCATE bench_latency");
        long base = Bench.count(db, "SELECT count(*) FROM sensor_data");
        load.sent.set(0);
        load.pace(rate);
        double cpu0 = Bench.cpuSeconds(pid);
        long t0 = System.nanoTime();
        long sent = load.run(Duration.ofSeconds(seconds));
        double[] done = settle(t0, sent, () -> Bench.count(db, "SELECT count(*) FROM sensor_data") - base);
        double cpu = Bench.cpuSeconds(pid) - cpu0;
        load.pace(0);
        System.err.printf("%s: sent %d stored %.0f in %.1f s%n", name, sent, done[1], done[0]);
        return new Result(name + String.format(" at %,d msg/s", rate), sent, (long) done[1], done[0], done[1] / done[0], Bench.latencyMs(db),
                cpu / done[0] * 100, Bench.rssMb(pid), Bench.peakRssMb(pid), "latency without a backlog");
    }

    /** JIT warm-up: the same load for {@code --warmup-s}, worked off; returns the rows stored so far. */
    static long warmUp(LoadGenerator load, String db) throws InterruptedException {
        long pre = Bench.count(db, "SELECT count(*) FROM sensor_data");
        long sent = load.run(Duration.ofSeconds(warmupSeconds));
        settle(System.nanoTime(), pre + sent, () -> Bench.count(db, "SELECT count(*) FROM sensor_data"));
        load.sent.set(0);
        return Bench.count(db, "SELECT count(*) FROM sensor_data");
    }

    // ------------------------------------------------------------------ (d) Node-RED

    static List<Result> nodeRed(Bench.Broker broker, int devices, int seconds, int window, int paced) throws Exception {
        Path red = Bench.ROOT.resolve("bench/nodered/node_modules/node-red/red.js");
        if (!Files.exists(red)) {
            throw new IllegalStateException("Node-RED not installed: run (cd bench/nodered && npm ci) or bench/ingest");
        }
        String db = Bench.createKaiserDatabase("nodered");
        String kid = "bnodered" + System.nanoTime() % 100000;
        int port = FreePorts.next();
        Path dir = Files.createDirectories(Bench.WORK.resolve("nodered-" + port));
        Path pg = Bench.ROOT.resolve("bench/nodered/node_modules/pg");
        Files.writeString(dir.resolve("settings.js"), "module.exports = { uiPort: " + port + ", uiHost: '127.0.0.1', flowFile: 'flows.json',"
                + " credentialSecret: false, userDir: '" + dir + "', logging: { console: { level: 'warn' } },"
                + " functionGlobalContext: { pg: require('" + pg + "') } };\n");
        String func = ("let pool = context.get('pool');\n"
                + "if (!pool) { pool = new (global.get('pg').Pool)({ host: '%s', port: %d, database: '%s', user: '%s', max: 10 }); context.set('pool', pool); }\n"
                + "const p = msg.payload;\n"
                + "pool.query(\"INSERT INTO sensor_data (esp_id, gpio, sensor_type, sensor_address, measured_at, received_at, raw_value, value, unit,"
                + " quality, processing_mode, seq) VALUES ($1, $2, $3, '', $4, now(), $5, $6, '°C', 'unknown', 'raw_conversion', $7)"
                + " ON CONFLICT ON CONSTRAINT sensor_data_reading_uq DO NOTHING\","
                + " [p.esp_id, p.gpio, p.sensor_type, new Date(p.ts), p.raw, p.raw / 16, p.seq]).then(() => node.done(), e => node.error(e, msg));\n"
                + "return null;").formatted(Bench.PG_HOST, Bench.PG_PORT, db, Bench.PG_USER);
        String flow = """
                [
                 {"id":"tab","type":"tab","label":"kaiser bench"},
                 {"id":"broker","type":"mqtt-broker","name":"bench","broker":"127.0.0.1","port":"%s","clientid":"%s-nodered",
                  "autoConnect":true,"usetls":false,"protocolVersion":"5","keepalive":"60","cleansession":true},
                 {"id":"in","type":"mqtt in","z":"tab","topic":"kaiser/%s/esp/+/sensor/+/data","qos":"1","datatype":"json",
                  "broker":"broker","nl":false,"rap":true,"rh":0,"inputs":0,"x":100,"y":100,"wires":[["fn"]]},
                 {"id":"fn","type":"function","z":"tab","name":"INSERT","outputs":0,"x":300,"y":100,"wires":[],"func":%s}
                ]
                """.formatted(Integer.toString(broker.port), kid, kid, new com.fasterxml.jackson.databind.ObjectMapper().writeValueAsString(func));
        Files.writeString(dir.resolve("flows.json"), flow);
        Process p = new ProcessBuilder("node", red.toString(), "--userDir", dir.toString(), "--settings", dir.resolve("settings.js").toString())
                .redirectErrorStream(true).redirectOutput(dir.resolve("node-red.log").toFile()).start();
        try (LoadGenerator load = new LoadGenerator(broker.url(), kid + "-load", devices, window, (esp, s) -> "kaiser/" + kid + "/esp/" + esp + "/" + s)) {
            // ready once a probe reading published now reaches the table
            MqttAsyncClient probe = load.clients.get(0);
            boolean ready = Bench.await(Duration.ofSeconds(60), () -> {
                try {
                    MqttMessage m = new MqttMessage(("{\"ts\":" + System.currentTimeMillis() + ",\"esp_id\":\"ESP_PROBE\",\"gpio\":4,"
                            + "\"sensor_type\":\"ds18b20\",\"raw\":300,\"seq\":1}").getBytes(StandardCharsets.UTF_8));
                    m.setQos(1);
                    probe.publish("kaiser/" + kid + "/esp/ESP_PROBE/sensor/4/data", m);
                } catch (MqttException e) {
                    return false;
                }
                // the flow needs a moment after a publish: give this probe its chance before the next one goes out
                return Bench.await(Duration.ofMillis(300), () -> Bench.count(db, "SELECT count(*) FROM sensor_data") > 0);
            });
            if (!ready) {
                throw new IllegalStateException("Node-RED flow did not store a probe reading, see " + dir.resolve("node-red.log"));
            }
            long base = warmUp(load, db);
            Bench.installLatencyProbe(db);
            double cpu0 = Bench.cpuSeconds(p.pid());
            long t0 = System.nanoTime();
            long sent = load.run(Duration.ofSeconds(seconds));
            long storedAtEnd = Bench.count(db, "SELECT count(*) FROM sensor_data") - base;
            double rssEnd = Bench.rssMb(p.pid());
            double[] done = settle(t0, sent, () -> Bench.count(db, "SELECT count(*) FROM sensor_data") - base);
            double cpu = Bench.cpuSeconds(p.pid()) - cpu0;
            long stored = (long) done[1];
            double peak = Bench.peakRssMb(p.pid());
            System.err.printf("node-red: sent %d stored %d (%d when the load ended) in %.1f s%n", sent, stored, storedAtEnd, done[0]);
            List<Result> out = new ArrayList<>();
            out.add(new Result("Node-RED 4.1.8 (mqtt in QoS 1 -> json -> function node: pg 8 Pool INSERT)", sent, stored, done[0],
                    stored / done[0], Bench.latencyMs(db), cpu / done[0] * 100, rssEnd, peak,
                    String.format("%,.0f msg/s stored while the load ran; acknowledges QoS 1 before the insert (not durable)",
                            storedAtEnd / load.publishSeconds)));
            if (paced > 0) {
                out.add(pacedRun("Node-RED, paced", load, db, seconds, paced, p.pid()));
            }
            return out;
        } finally {
            Bench.stop(p);
            Bench.dropDatabase(db);
        }
    }
}
