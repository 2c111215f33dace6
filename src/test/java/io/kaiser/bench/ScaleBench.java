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
 * memory per device = server RSS delta / devices. Compressed timeline: every process ramps its devices (2 ms apart),
 * the first {@code --warmup-s} seconds (connect, registration with 5 s heartbeats, JIT) are not measured, then
 * heartbeat -> ACK latencies are recorded for {@code --measure-s} seconds. Run: {@code bench/scale} (options
 * {@code --devices 5000,10000 --warmup-s 60 --measure-s 150}).
 */
public final class ScaleBench {
    private static final ObjectMapper JSON = new ObjectMapper();

    public static void main(String[] argv) throws Exception {
        Map<String, String> a = Bench.args(argv);
        String command = a.getOrDefault("command", "bench/scale");
        int warmup = Bench.intArg(a, "warmup-s", 60);
        int measure = Bench.intArg(a, "measure-s", 150);
        int perProcess = Bench.intArg(a, "per-process", 1000);
        int heartbeat = Bench.intArg(a, "heartbeat-s", 60);
        int data = Bench.intArg(a, "data-s", 10);
        Path vdev = Bench.ROOT.resolve(a.getOrDefault("vdev", "firmware/build-release/linux/kaiser-vdev"));
        if (!Files.isExecutable(vdev)) {
            throw new IllegalStateException(vdev + " missing: bench/scale builds it");
        }
        Bench.Table t = new Bench.Table("devices", "connected / registered at the end", "heartbeat ACKs measured", "ACK p50 ms", "ACK p99 ms",
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
                            + " --data-s " + data + " --ramp-ms 2 --stats-s 10 --duration " + (warmup + measure) + " --ack-after-s " + warmup)
                            .redirectOutput(out.toFile()).redirectError(Bench.WORK.resolve("vdev-" + server.kaiserId + "-" + i + ".err").toFile())
                            .start());
                }
                Bench.window(Duration.ofSeconds(warmup));
                double cpu0 = Bench.cpuSeconds(server.pid());
                long rows0 = Bench.count(db, "SELECT count(*) FROM sensor_data");
                long t0 = System.nanoTime();
                Bench.window(Duration.ofSeconds(Math.max(0, measure - 5)));
                double secs = (System.nanoTime() - t0) / 1e9;
                double cpu = (Bench.cpuSeconds(server.pid()) - cpu0) / secs * 100;
                long rows = Bench.count(db, "SELECT count(*) FROM sensor_data") - rows0;
                double rss1 = Bench.rssMb(server.pid());
                for (Process p : procs) {
                    if (!p.waitFor(60, java.util.concurrent.TimeUnit.SECONDS)) {
                        p.destroy();
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
                t.row(Bench.f0(n), connected + " / " + registered, Bench.f0(acks), p50, p99, max, Bench.f0(rows / secs), Bench.f0(cpu),
                        Bench.f0(rss0) + " -> " + Bench.f0(rss1), Bench.f1((rss1 - rss0) * 1024 / n),
                        p99 < 1000 && acks > 0 && registered == n ? "yes" : "no");
                System.err.println(t);
            } finally {
                Bench.dropDatabase(db);
            }
        }
        String body = String.format("`kaiser-vdev` (release build, the firmware's portable core on Linux, at most %d devices per process) against"
                + " a Kaiser server process (`-Xmx1g`, auto-approve) through a private Mosquitto 2 on this machine; heartbeat every %d s,"
                + " three sensors per device every %d s. **Compressed timeline:** all devices connect 2 ms apart per process, the first %d s"
                + " (connect, registration with the firmware's 5 s heartbeats, JIT) are not measured, then heartbeat -> ACK latencies are"
                + " recorded for %d s (so every device sends 2-3 heartbeats in the window). ACK latency is measured inside each vdev"
                + " (heartbeat sent -> `system/heartbeat/ack` received, 1 ms histogram); with several vdev processes the table shows the"
                + " worst process's p50/p99/max. RSS idle is the server's `VmRSS` 3 s after health UP, before any device; KiB per device"
                + " is the delta / devices (JVM heap growth included, so an upper bound). The vdevs, Mosquitto and the server share"
                + " the same 2 cores.%n%n", perProcess, heartbeat, data, warmup, measure);
        Bench.publish(a.getOrDefault("section", "scale"), a.getOrDefault("title", "Scale (devices per server)"), command, body + t);
        System.exit(0);
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
