package io.kaiser.bench;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

/**
 * Scale: how many firmware virtual devices ({@code kaiser-vdev}, the real portable core, 1000 per process) one Kaiser
 * server holds with a heartbeat every 60 s and sensor data every 10 s while the heartbeat-ACK p99 stays under 1 s;
 * memory per device = server RSS delta / devices. Every process ramps its devices (2 ms apart); the warm-up lasts until
 * the fleet is registered and the server's ingest backlog is worked off (at most {@code --warmup-max-s}), then
 * heartbeat -> ACK latencies are recorded for {@code --measure-s} seconds. Run: {@code bench/scale} (options
 * {@code --devices 5000,10000 --warmup-max-s 600 --measure-s 150}).
 */
public final class ScaleBench {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final java.net.http.HttpClient HTTP = java.net.http.HttpClient.newHttpClient();

    public static void main(String[] argv) throws Exception {
        Map<String, String> a = Bench.args(argv);
        String command = a.getOrDefault("command", "bench/scale");
        int warmupMax = Bench.intArg(a, "warmup-max-s", 600);
        // as the ESP-IDF app: sensors start at a per-device phase (false: the whole fleet measures in step)
        boolean spread = Boolean.parseBoolean(a.getOrDefault("data-phase-spread", "true"));
        int measure = Bench.intArg(a, "measure-s", 150);
        int perProcess = Bench.intArg(a, "per-process", 1000);
        int heartbeat = Bench.intArg(a, "heartbeat-s", 60);
        int data = Bench.intArg(a, "data-s", 10);
        Path vdev = Bench.ROOT.resolve(a.getOrDefault("vdev", "firmware/build-release/linux/kaiser-vdev"));
        if (!Files.isExecutable(vdev)) {
            throw new IllegalStateException(vdev + " missing: bench/scale builds it");
        }
        Bench.Table t = new Bench.Table("devices", "fleet registered after s", "backlog drained after s",
                "connected / registered at the end", "heartbeat ACKs measured", "ACK p50 ms", "ACK p99 ms",
                "ACK max ms", "readings stored /s", "server CPU %", "server RSS idle -> loaded MiB", "KiB per device", "p99 < 1 s");
        for (String step : a.getOrDefault("devices", "5000,10000").split(",")) {
            int n = Integer.parseInt(step.trim());
            String db = Bench.createDatabase("scale");
            try (Bench.Broker broker = new Bench.Broker(100_000);
                 Bench.Server server = new Bench.Server("scale", broker.url(), db, Map.of("kaiser.heartbeat.timeout-seconds", "180"),
                         List.of("-Xmx1g"))) {
                server.awaitUp(Duration.ofSeconds(90));
                Bench.window(Duration.ofSeconds(3)); // idle RSS after start-up settles
                double rss0 = Bench.rssMb(server.pid());
                List<Process> procs = new ArrayList<>();
                List<Path> outs = new ArrayList<>();
                for (int i = 0, left = n; left > 0; i++, left -= perProcess) {
                    int count = Math.min(perProcess, left);
                    Path out = Bench.WORK.resolve("vdev-" + server.kaiserId + "-" + i + ".jsonl");
                    outs.add(out);
                    procs.add(new ProcessBuilder("bash", "-c", "ulimit -n $(ulimit -Hn); exec " + vdev + " --url mqtt://127.0.0.1:" + broker.port
                            + " --kaiser-id " + server.kaiserId + " --prefix SC" + i + "_ --count " + count + " --heartbeat-s " + heartbeat
                            + " --data-s " + data + " --ramp-ms 2 --stats-s 2 --ack-after-s 1000000" + (spread ? " --data-phase-spread" : ""))
                            .redirectOutput(out.toFile()).redirectError(Bench.WORK.resolve("vdev-" + server.kaiserId + "-" + i + ".err").toFile())
                            .start());
                }
                // warm-up ends on conditions, not on a clock: every device registered (the firmware's 5 s heartbeats
                // until then, its buffered readings replayed after), then the server's ingest backlog worked off
                long start = System.nanoTime();
                String registeredAfter = Bench.await(Duration.ofSeconds(warmupMax), () -> registered(outs) >= n)
                        ? Bench.f0((System.nanoTime() - start) / 1e9) : "not within " + warmupMax;
                String drainedAfter = Bench.await(Duration.ofSeconds(warmupMax), () -> backlogBytes(server) < 256 * 1024)
                        ? Bench.f0((System.nanoTime() - start) / 1e9) : "not within " + warmupMax;
                // from here on each vdev counts heartbeat -> ACK latencies afresh (SIGUSR1)
                for (Process p : procs) {
                    new ProcessBuilder("kill", "-USR1", Long.toString(p.pid())).start().waitFor();
                }
                double cpu0 = Bench.cpuSeconds(server.pid());
                long rows0 = Bench.count(db, "SELECT count(*) FROM sensor_data");
                long t0 = System.nanoTime();
                Bench.window(Duration.ofSeconds(measure));
                double secs = (System.nanoTime() - t0) / 1e9;
                double cpu = (Bench.cpuSeconds(server.pid()) - cpu0) / secs * 100;
                long rows = Bench.count(db, "SELECT count(*) FROM sensor_data") - rows0;
                double rss1 = Bench.rssMb(server.pid());
                for (Process p : procs) {
                    p.destroy(); // SIGTERM: the vdev prints its final stats and disconnects its devices
                }
                for (Process p : procs) {
                    if (!p.waitFor(60, java.util.concurrent.TimeUnit.SECONDS)) {
                        p.destroyForcibly();
                    }
                }
                long connected = 0;
                long registered = 0;
                long acks = 0;
                long p50 = 0;
                long p99 = 0;
                long max = 0;
                for (Path out : outs) {
                    JsonNode last = lastLine(out);
                    if (last == null) {
                        throw new IllegalStateException("no stats from " + out);
                    }
                    connected += last.path("connected").asLong();
                    registered += last.path("registered").asLong();
                    acks += last.path("hb_acks").asLong();
                    p50 = Math.max(p50, last.path("hb_ack_p50_ms").asLong());
                    p99 = Math.max(p99, last.path("hb_ack_p99_ms").asLong());
                    max = Math.max(max, last.path("hb_ack_max_ms").asLong());
                }
                t.row(Bench.f0(n), registeredAfter, drainedAfter, connected + " / " + registered, Bench.f0(acks), p50, p99, max, Bench.f0(rows / secs), Bench.f0(cpu),
                        Bench.f0(rss0) + " -> " + Bench.f0(rss1), Bench.f1((rss1 - rss0) * 1024 / n),
                        p99 < 1000 && acks > 0 && registered == n ? "yes" : "no");
                System.err.println(t);
            } finally {
                Bench.dropDatabase(db);
            }
        }
        String body = String.format("`kaiser-vdev` (release build, the firmware's portable core on Linux, at most %d devices per process) against"
                + " a Kaiser server process (`-Xmx1g`, auto-approve) through a private Mosquitto 2 on this machine; heartbeat every %d s,"
                + " three sensors per device every %d s, %s. All devices connect 2 ms apart per process (the processes start together: a"
                + " fleet powered on at once). **Warm-up ends on conditions:** every device registered (until its ACK the firmware heartbeats every"
                + " 5 s and buffers its readings, which it replays after; *fleet registered after*), then the server's ingest backlog below"
                + " 256 KiB (*backlog drained after*, both from the start of the devices). Then every vdev restarts its ACK histogram"
                + " (SIGUSR1) and heartbeat -> ACK latencies are recorded for %d s, the steady state. ACK latency is measured inside each"
                + " vdev (heartbeat sent -> `system/heartbeat/ack` received, 1 ms histogram); with several vdev processes the table shows the"
                + " worst process's p50/p99/max. RSS idle is the server's `VmRSS` 3 s after health UP, before any device; KiB per device"
                + " is the delta / devices (JVM heap growth included, so an upper bound). The vdevs, Mosquitto and the server share"
                + " the same 2 cores.%n%n", perProcess, heartbeat, data, spread ? "each sensor starting at a stable per-device phase within"
                + " its interval as the ESP-IDF app does (`--data-phase-spread`)" : "all sensors of the fleet in step (`--data-phase-spread false`)",
                measure);
        Bench.publish(a.getOrDefault("section", "scale"), a.getOrDefault("title", "Scale (devices per server)"), command, body + t);
        System.exit(0);
    }

    /** Devices registered, summed over the vdev processes' latest stats lines. */
    static long registered(List<Path> outs) {
        long sum = 0;
        for (Path out : outs) {
            try {
                JsonNode last = lastLine(out);
                sum += last == null ? 0 : last.path("registered").asLong();
            } catch (IOException e) {
                return 0;
            }
        }
        return sum;
    }

    /** The server's ingest backlog (journal bytes not yet stored), from its health document. */
    static long backlogBytes(Bench.Server server) {
        try {
            java.net.http.HttpResponse<String> r = HTTP.send(java.net.http.HttpRequest.newBuilder(
                    java.net.URI.create(server.baseUrl() + "/health")).timeout(Duration.ofSeconds(5)).GET().build(),
                    java.net.http.HttpResponse.BodyHandlers.ofString());
            return JSON.readTree(r.body()).path("ingest").path("backlog_bytes").asLong(Long.MAX_VALUE);
        } catch (IOException e) {
            return Long.MAX_VALUE;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return Long.MAX_VALUE;
        }
    }

    static JsonNode lastLine(Path out) throws IOException {
        List<String> lines = Files.readAllLines(out);
        for (int i = lines.size() - 1; i >= 0; i--) {
            if (lines.get(i).startsWith("{")) {
                return JSON.readTree(lines.get(i));
            }
        }
        return null;
    }
}
