package io.kaiser.bench;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.IntFunction;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import org.eclipse.paho.mqttv5.client.IMqttToken;
import org.eclipse.paho.mqttv5.client.MqttAsyncClient;
import org.eclipse.paho.mqttv5.client.MqttCallback;
import org.eclipse.paho.mqttv5.client.MqttConnectionOptions;
import org.eclipse.paho.mqttv5.client.MqttDisconnectResponse;
import org.eclipse.paho.mqttv5.client.persist.MemoryPersistence;
import org.eclipse.paho.mqttv5.common.MqttException;
import org.eclipse.paho.mqttv5.common.MqttMessage;
import org.eclipse.paho.mqttv5.common.packet.MqttProperties;

/**
 * Command round trip: {@code POST /esp/devices/{id}/system-command} with {@code Prefer: wait=5} to a device (a plain
 * Paho client answering {@code system/command} with {@code system/command/response}), through a Kaiser server
 * process, a private Mosquitto and a fresh database; median, p99 and max at 1, 10 and 100 concurrent callers. The
 * baseline, in the same run and against the same devices: the raw MQTT round trip between two plain clients
 * (publish the command at QoS 2, wait for the device's answer). All bench clients disable Nagle's algorithm, as the server does. Not a test. Run: {@code bench/command-latency}
 * (options {@code --n 300 --callers 1,10,100 --devices 10 --profile false}; with {@code --profile true} the server records JFR to
 * target/bench/command.jfr and the REST part of each level is written to target/bench/command-window.txt, see
 * {@code bench/profile-command}).
 */
public final class CommandRoundTrip {
    private static final Pattern CORR = Pattern.compile("\"correlation_id\"\\s*:\\s*\"([^\"]+)\"");

    public static void main(String[] argv) throws Exception {
        run(argv);
        System.exit(0);
    }

    /** Runs the benchmark, prints and publishes its section; returns {REST median µs, raw median µs} per level. */
    static List<double[]> run(String[] argv) throws Exception {
        List<double[]> medians = new ArrayList<>();
        Map<String, String> a = Bench.args(argv);
        int n = Bench.intArg(a, "n", 2000);
        int deviceCount = Bench.intArg(a, "devices", 10);
        String command = a.getOrDefault("command", "bench/command-latency");
        int[] levels = java.util.Arrays.stream(a.getOrDefault("callers", "1,10,100").split(",")).mapToInt(Integer::parseInt).toArray();
        Bench.Table t = new Bench.Table("callers", "requests", "REST median ms", "REST p99 ms", "REST max ms", "raw MQTT median ms",
                "raw MQTT p99 ms", "raw MQTT max ms", "REST / raw (median)", "REST / raw (p99)");
        double serverCpu;
        double rss;
        String warmupText;
        Bench.Table segmentTable = new Bench.Table("callers", "calls traced", "request -> stored", "stored -> device", "device -> server",
                "queued -> applied", "applied -> response");
        Bench.Table cpuTable = new Bench.Table("callers", "round trip", "round trips/s", "server", "load generator", "PostgreSQL",
                "Mosquitto", "all four", "cores busy");
        boolean profile = Boolean.parseBoolean(a.getOrDefault("profile", "false"));
        List<String> jvm = new ArrayList<>(List.of("-Xmx512m"));
        java.nio.file.Path jfr = Bench.WORK.resolve("command.jfr");
        if (profile) {
            java.nio.file.Files.deleteIfExists(jfr);
            jvm.add("-XX:StartFlightRecording=filename=" + jfr + ",settings=profile,dumponexit=true");
        }
        String db = Bench.createDatabase("roundtrip");
        try (Bench.Broker broker = new Bench.Broker(100_000);
             Bench.Server server = new Bench.Server("rt", broker.url(), db, Map.of("kaiser.command.rate-limit.per-second", "100000",
                     "kaiser.command.rate-limit.burst", "100000"), jvm)) {
            server.awaitUp(Duration.ofSeconds(90));
            List<Device> devices = new ArrayList<>();
            for (int d = 0; d < deviceCount; d++) {
                devices.add(new Device(broker.url(), server.kaiserId, String.format("ESP_RT%02d", d)));
            }
            if (!Bench.await(Duration.ofSeconds(30), () -> Bench.count(db, "SELECT count(*) FROM devices WHERE status = 'online'") >= deviceCount)) {
                throw new IllegalStateException("devices not online, see " + server.log);
            }
            // HTTP/1.1 keep-alive, as curl, requests or fetch speak to an http:// server (Java's client would upgrade to h2c)
            HttpClient.Version version = "2".equals(a.get("http")) ? HttpClient.Version.HTTP_2 : HttpClient.Version.HTTP_1_1;
            HttpClient http = HttpClient.newBuilder().version(version).executor(Executors.newFixedThreadPool(8)).build();
            Commander raw = new Commander(broker.url(), server.kaiserId);
            Map<String, long[]> restTimes = new ConcurrentHashMap<>();
            IntFunction<Long> rest = i -> restCall(http, server, devices.get(i % deviceCount).esp, restTimes);
            IntFunction<Long> mqtt = i -> raw.call(devices.get(i % deviceCount).esp);
            // warm-up until the server's JIT is done with the hot path: on 2 slow cores its compiler threads still took a
            // third of the server's CPU after 3,000 calls; rounds of calls until they use under 5 % of the round's time
            int warmup = Bench.intArg(a, "warmup", 3000);
            int warmupMaxS = Bench.intArg(a, "warmup-max-s", 240);
            long warmupFrom = System.nanoTime();
            int warmupCalls = 0;
            double jitShare;
            do {
                double jit0 = Bench.jitCpuSeconds(server.pid());
                long round0 = System.nanoTime();
                measure(rest, Math.min(10, deviceCount), warmup);
                warmupCalls += warmup;
                jitShare = (Bench.jitCpuSeconds(server.pid()) - jit0) / ((System.nanoTime() - round0) / 1e9);
                System.err.printf("warm-up: %d calls, JIT compiler threads at %.0f %% of a core in the last round%n", warmupCalls, jitShare * 100);
            } while (jitShare > 0.05 && System.nanoTime() - warmupFrom < warmupMaxS * 1_000_000_000L);
            measure(rest, 1, Math.max(1, warmup / 20));
            measure(mqtt, Math.min(10, deviceCount), warmup);
            warmupText = warmupCalls + " REST calls at 10 callers in " + Bench.f0((System.nanoTime() - warmupFrom) / 1e9)
                    + " s, until the server's JIT compiler threads used " + Bench.f0(jitShare * 100) + " % of a core over the last "
                    + warmup + " (rounds until under 5 %, at most " + warmupMaxS + " s), then " + Math.max(1, warmup / 20)
                    + " at 1 caller and " + warmup + " raw MQTT calls";
            double cpu0 = Bench.cpuSeconds(server.pid());
            long t0 = System.nanoTime();
            StringBuilder windows = new StringBuilder();
            List<String[]> segments = new ArrayList<>();
            for (int callers : levels) {
                int requests = Math.max(n, callers * 10);
                // interleaved per level so that both see the same background load
                long restFrom = System.currentTimeMillis();
                restTimes.clear();
                long[] r = measureWithCpu(rest, callers, requests, "REST", cpuTable, server, broker);
                segments.add(segments(db, callers, restTimes, devices));
                // the REST part of each level, for JfrSummary (--window target/bench/command-window.txt)
                windows.append(callers).append(' ').append(restFrom).append(' ').append(System.currentTimeMillis()).append('\n');
                long[] m = measureWithCpu(mqtt, callers, requests, "raw MQTT", cpuTable, server, broker);
                medians.add(new double[] {Bench.pct(r, 50), Bench.pct(m, 50)});
                t.row(callers, requests, Bench.f2(Bench.pct(r, 50) / 1000), Bench.f2(Bench.pct(r, 99) / 1000), Bench.f2(Bench.pct(r, 100) / 1000),
                        Bench.f2(Bench.pct(m, 50) / 1000), Bench.f2(Bench.pct(m, 99) / 1000), Bench.f2(Bench.pct(m, 100) / 1000),
                        Bench.f1(Bench.pct(r, 50) / Bench.pct(m, 50)) + "x", Bench.f1(Bench.pct(r, 99) / Bench.pct(m, 99)) + "x");
                System.err.println(t);
            }
            java.nio.file.Files.writeString(Bench.WORK.resolve("command-window.txt"), windows);
            for (String[] row : segments) {
                segmentTable.row((Object[]) row);
            }
            serverCpu = (Bench.cpuSeconds(server.pid()) - cpu0) / ((System.nanoTime() - t0) / 1e9) * 100;
            rss = Bench.rssMb(server.pid());
            raw.close();
            devices.forEach(Device::close);
        } finally {
            Bench.dropDatabase(db);
        }
        String body = "REST `POST /api/v1/esp/devices/{id}/system-command` `{\"command\":\"status\"}` with `Prefer: wait=5` (200 with the"
                + " device's outcome) against a Kaiser server process (private Mosquitto, fresh database), " + deviceCount + " devices (plain Paho"
                + " clients that answer `system/command` at once with `system/command/response`, QoS 1); caller *i* talks to device *i* mod "
                + deviceCount + ". Each caller sends its next request when the previous one is answered. Baseline *raw MQTT*: one plain client"
                + " publishes the same command at QoS 2 to the same devices and waits for the answer with the same `correlation_id`"
                + " (the floor: broker + device, no server). Both measured interleaved per level in one run, after a warm-up of " + warmupText + ";"
                + " client-side wall clock (`System.nanoTime`); REST over HTTP/1.1 keep-alive connections, as curl or a script's HTTP"
                + " library would use. Every MQTT client here has TCP_NODELAY, like the server's.\n\n"
                + t + "\nServer CPU during the measurement: " + Bench.f0(serverCpu) + " % of one core; RSS at the end " + Bench.f0(rss) + " MiB.\n"
                + "\nWhere a REST round trip's time goes (p50 / p99 ms per segment, from the same calls): *request -> stored* is the"
                + " client's send until the command row's `created_at`; *stored -> device* until the device's callback saw the command"
                + " (server publish at QoS 2, broker); *device -> server* until the answer's `received_at` in the server's ingest (the device"
                + " answers at once; broker, ingest receive); *queued -> applied* until the answer transaction's `completed_at` (journal,"
                + " drainer, batch); *applied -> response* until the client has the response (commit, waking the request, reading the"
                + " command, HTTP). All clocks are this machine's; PostgreSQL's `now()` is the start of its transaction.\n\n"
                + segmentTable + "\nCPU per round trip (ms of CPU per call, from /proc over each part of each level; *load"
                + " generator* is this benchmark's process: callers, devices and the raw client; PostgreSQL is all its processes;"
                + " *cores busy*: the four together, of the machine's 2). Every caller waits for its answer before the next call,"
                + " so once the cores are busy a level's latency is its callers divided by the round trips per second.\n\n"
                + cpuTable + "\n";
        Bench.publish(a.getOrDefault("section", "command-latency"), a.getOrDefault("title", "Command round trip"), command, body);
        return medians;
    }

    /** {@link #measure} that also adds the CPU per call of each process to {@code cpuTable}. */
    static long[] measureWithCpu(IntFunction<Long> call, int callers, int requests, String path, Bench.Table cpuTable,
                                 Bench.Server server, Bench.Broker broker) throws Exception {
        double[] cpuFrom = cpuByProcess(server, broker);
        long wallFrom = System.nanoTime();
        long[] micros = measure(call, callers, requests);
        cpuTable.row(cpuRow(callers, path, requests, (System.nanoTime() - wallFrom) / 1e9, cpuFrom, cpuByProcess(server, broker)));
        return micros;
    }

    /** CPU seconds so far of: the server, this process (the load generator), PostgreSQL, the broker. */
    static double[] cpuByProcess(Bench.Server server, Bench.Broker broker) {
        return new double[] {Bench.cpuSeconds(server.pid()), Bench.cpuSeconds(ProcessHandle.current().pid()),
                Bench.cpuSecondsOfAll("postgres"), Bench.cpuSeconds(broker.pid())};
    }

    static Object[] cpuRow(int callers, String path, int calls, double seconds, double[] from, double[] to) {
        Object[] row = new Object[9];
        row[0] = callers;
        row[1] = path;
        row[2] = Bench.f0(calls / seconds);
        double all = 0;
        for (int k = 0; k < 4; k++) {
            double used = to[k] - from[k];
            all += used;
            row[k + 3] = Bench.f2(used * 1000 / calls);
        }
        row[7] = Bench.f2(all * 1000 / calls);
        row[8] = Bench.f2(all / seconds);
        return row;
    }

    static long epochMicros() {
        java.time.Instant now = java.time.Instant.now();
        return now.getEpochSecond() * 1_000_000L + now.getNano() / 1000;
    }

    /** p50 / p99 of each segment of the traced REST calls of one level (see the section's text). */
    static String[] segments(String db, int callers, Map<String, long[]> times, List<Device> devices) throws java.sql.SQLException {
        List<long[]> rows = new ArrayList<>();
        try (java.sql.Connection c = Bench.connect(db); java.sql.PreparedStatement ps = c.prepareStatement(
                "SELECT (extract(epoch FROM c.created_at) * 1e6)::bigint, (extract(epoch FROM a.received_at) * 1e6)::bigint,"
                        + " (extract(epoch FROM c.completed_at) * 1e6)::bigint"
                        + " FROM commands c JOIN device_answers a ON a.correlation_id = c.correlation_id WHERE c.correlation_id = ?")) {
            for (Map.Entry<String, long[]> e : times.entrySet()) {
                Long atDevice = null;
                for (Device d : devices) {
                    atDevice = atDevice != null ? atDevice : d.seen.get(e.getKey());
                }
                ps.setString(1, e.getKey());
                try (java.sql.ResultSet rs = ps.executeQuery()) {
                    if (atDevice != null && rs.next()) {
                        long[] t = e.getValue();
                        rows.add(new long[] {rs.getLong(1) - t[0], atDevice - rs.getLong(1), rs.getLong(2) - atDevice,
                                rs.getLong(3) - rs.getLong(2), t[1] - rs.getLong(3)});
                    }
                }
            }
        }
        String[] out = new String[7];
        out[0] = Integer.toString(callers);
        out[1] = Integer.toString(rows.size());
        for (int k = 0; k < 5; k++) {
            final int col = k;
            long[] v = rows.stream().mapToLong(r -> r[col]).sorted().toArray();
            out[k + 2] = v.length == 0 ? "-" : Bench.f1(Bench.pct(v, 50) / 1000) + " / " + Bench.f1(Bench.pct(v, 99) / 1000);
        }
        return out;
    }

    /** {@code requests} calls spread over {@code callers} threads; sorted latencies in µs. */
    static long[] measure(IntFunction<Long> call, int callers, int requests) throws Exception {
        ExecutorService pool = Executors.newFixedThreadPool(callers);
        AtomicInteger next = new AtomicInteger();
        long[] micros = new long[requests];
        List<Future<?>> fs = new ArrayList<>();
        for (int c = 0; c < callers; c++) {
            final int caller = c;
            fs.add(pool.submit(() -> {
                int i;
                while ((i = next.getAndIncrement()) < requests) {
                    micros[i] = call.apply(caller);
                }
            }));
        }
        for (Future<?> f : fs) {
            f.get();
        }
        pool.shutdown();
        java.util.Arrays.sort(micros);
        return micros;
    }

    static long restCall(HttpClient http, Bench.Server server, String esp, Map<String, long[]> times) {
        HttpRequest req = HttpRequest.newBuilder(URI.create(server.baseUrl() + "/esp/devices/" + esp + "/system-command"))
                .header("Content-Type", "application/json").header("Prefer", "wait=5").timeout(Duration.ofSeconds(10))
                .POST(HttpRequest.BodyPublishers.ofString("{\"command\":\"status\"}")).build();
        long sentAt = epochMicros();
        long t0 = System.nanoTime();
        try {
            HttpResponse<String> r = http.send(req, HttpResponse.BodyHandlers.ofString());
            long us = (System.nanoTime() - t0) / 1000;
            long receivedAt = epochMicros();
            if (r.statusCode() != 200) {
                throw new IllegalStateException(r.statusCode() + " " + r.body());
            }
            Matcher c = CORR.matcher(r.body());
            if (times != null && c.find()) {
                times.put(c.group(1), new long[] {sentAt, receivedAt});
            }
            return us;
        } catch (java.io.IOException | InterruptedException e) {
            throw new IllegalStateException(e);
        }
    }

    private abstract static class Callback implements MqttCallback {
        public void disconnected(MqttDisconnectResponse r) { }
        public void mqttErrorOccurred(MqttException e) { }
        public void deliveryComplete(IMqttToken t) { }
        public void connectComplete(boolean reconnect, String uri) { }
        public void authPacketArrived(int code, MqttProperties p) { }
    }

    /** A device that answers every system command at once. */
    private static final java.util.concurrent.ScheduledExecutorService HEARTBEATS = Executors.newSingleThreadScheduledExecutor(r -> {
        Thread t = new Thread(r, "bench-device-heartbeats");
        t.setDaemon(true);
        return t;
    });

    static final class Device implements AutoCloseable {
        final String esp;
        /** When a command (by correlation id) reached this device, epoch µs. */
        final Map<String, Long> seen = new ConcurrentHashMap<>();
        final MqttAsyncClient client;
        private final java.util.concurrent.ScheduledFuture<?> heartbeats;

        Device(String url, String kaiserId, String esp) throws MqttException {
            this.esp = esp;
            String base = "kaiser/" + kaiserId + "/esp/" + esp + "/";
            client = new MqttAsyncClient(url, kaiserId + "-" + esp, new MemoryPersistence());
            client.setCallback(new Callback() {
                public void messageArrived(String topic, MqttMessage m) throws MqttException {
                    long at = epochMicros();
                    Matcher c = CORR.matcher(new String(m.getPayload(), StandardCharsets.UTF_8));
                    if (c.find()) {
                        seen.put(c.group(1), at);
                        client.publish(base + "system/command/response", ("{\"command\":\"status\",\"success\":true,\"correlation_id\":\""
                                + c.group(1) + "\",\"message\":\"done\"}").getBytes(StandardCharsets.UTF_8), 1, false);
                    }
                }
            });
            MqttConnectionOptions o = new MqttConnectionOptions();
            o.setSocketFactory(io.kaiser.mqtt.NoDelaySockets.plain()); // as the server's own connections
            client.connect(o).waitForCompletion(5000);
            client.subscribe(base + "system/command", 2).waitForCompletion(5000);
            // every 60 s like the firmware: a warm-up of several minutes outlasts the server's heartbeat timeout
            heartbeats = HEARTBEATS.scheduleAtFixedRate(() -> {
                try {
                    client.publish(base + "system/heartbeat", ("{\"ts\":" + System.currentTimeMillis() / 1000
                            + ",\"uptime\":1,\"heap_free\":100000,\"wifi_rssi\":-50}").getBytes(StandardCharsets.UTF_8), 0, false);
                } catch (MqttException e) {
                    // the next one
                }
            }, 0, 60, java.util.concurrent.TimeUnit.SECONDS);
        }

        @Override
        public void close() {
            heartbeats.cancel(false);
            try {
                client.disconnect().waitForCompletion(2000);
                client.close();
            } catch (MqttException e) {
                // closing
            }
        }
    }

    /** The raw-MQTT baseline: publishes a command, completes when the answer with its correlation id arrives. */
    static final class Commander implements AutoCloseable {
        final String kaiserId;
        final MqttAsyncClient client;
        final Map<String, CompletableFuture<Void>> waiting = new ConcurrentHashMap<>();

        Commander(String url, String kaiserId) throws MqttException {
            this.kaiserId = kaiserId;
            client = new MqttAsyncClient(url, kaiserId + "-raw-commander", new MemoryPersistence());
            client.setCallback(new Callback() {
                public void messageArrived(String topic, MqttMessage m) {
                    Matcher c = CORR.matcher(new String(m.getPayload(), StandardCharsets.UTF_8));
                    if (c.find()) {
                        CompletableFuture<Void> f = waiting.remove(c.group(1));
                        if (f != null) {
                            f.complete(null);
                        }
                    }
                }
            });
            MqttConnectionOptions o = new MqttConnectionOptions();
            o.setReceiveMaximum(1000);
            o.setSocketFactory(io.kaiser.mqtt.NoDelaySockets.plain());
            client.connect(o).waitForCompletion(5000);
            // the server's own subscription is elsewhere: this client only sees the devices' answers
            client.subscribe("kaiser/" + kaiserId + "/esp/+/system/command/response", 1).waitForCompletion(5000);
        }

        long call(String esp) {
            String corr = UUID.randomUUID().toString();
            CompletableFuture<Void> f = new CompletableFuture<>();
            waiting.put(corr, f);
            long t0 = System.nanoTime();
            try {
                byte[] payload = ("{\"command\":\"status\",\"params\":{},\"correlation_id\":\"" + corr + "\",\"intent_id\":\"" + corr
                        + "\",\"issued_by\":\"bench\"}").getBytes(StandardCharsets.UTF_8);
                while (true) {
                    try {
                        client.publish("kaiser/" + kaiserId + "/esp/" + esp + "/system/command", payload, 2, false);
                        break;
                    } catch (MqttException e) {
                        if (e.getReasonCode() != 32202) {
                            throw e;
                        }
                        java.util.concurrent.locks.LockSupport.parkNanos(100_000); // broker's receive maximum reached: as a queue would
                    }
                }
                f.get(10, TimeUnit.SECONDS);
            } catch (Exception e) {
                throw new IllegalStateException("raw round trip " + corr, e);
            }
            return (System.nanoTime() - t0) / 1000;
        }

        @Override
        public void close() {
            try {
                client.disconnect().waitForCompletion(2000);
                client.close();
            } catch (MqttException e) {
                // closing
            }
        }
    }
}
