package io.kaiser.bench;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

import io.kaiser.support.Http;
import io.kaiser.support.KaiserServer;
import io.kaiser.support.ScriptedDevice;

/**
 * Command round trip: REST POST with {@code Prefer: wait} to a scripted device (real broker, real database), the
 * device's answer, the REST answer; median, p99 and max at 1 and 10 concurrent callers, against the raw MQTT round
 * trip of the same device (publish a command, receive its answer) as the baseline. Not a test. Run:
 * {@code mvn -q test-compile exec:java -Dexec.classpathScope=test -Dexec.mainClass=io.kaiser.bench.CommandRoundTrip -Dexec.args=300}
 */
public final class CommandRoundTrip {
    public static void main(String[] args) throws Exception {
        int n = args.length > 0 ? Integer.parseInt(args[0]) : 300;
        KaiserServer server = new KaiserServer("roundtrip", Map.of("kaiser.registration.auto-approve", "true",
                "kaiser.command.rate-limit.per-second", "100000", "kaiser.command.rate-limit.burst", "100000")).start();
        long up = System.nanoTime() + Duration.ofSeconds(30).toNanos();
        while (Http.get(server.baseUrl() + "/health").status() != 200 && System.nanoTime() < up) {
            java.util.concurrent.locks.LockSupport.parkNanos(100_000_000);
        }
        List<ScriptedDevice> devices = new ArrayList<>();
        for (int d = 0; d < 10; d++) {
            ScriptedDevice dev = new ScriptedDevice(server, server.mqttUrl(), "ESP_RT" + d);
            dev.announce(5);
            devices.add(dev);
        }
        long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
        while (server.count("SELECT count(*) FROM actuator_states WHERE esp_id LIKE 'ESP_RT%'") < 10 && System.nanoTime() < deadline) {
            Thread.onSpinWait();
        }
        for (int i = 0; i < 50; i++) {
            call(server, 0); // warm-up
        }
        for (int callers : new int[] {1, 10}) {
            ExecutorService pool = Executors.newFixedThreadPool(callers);
            List<Future<Long>> futures = new ArrayList<>();
            for (int i = 0; i < n; i++) {
                final int dev = i % callers;
                futures.add(pool.submit(() -> call(server, dev)));
            }
            List<Long> micros = new ArrayList<>();
            for (Future<Long> f : futures) {
                micros.add(f.get());
            }
            pool.shutdown();
            Collections.sort(micros);
            System.out.printf("callers=%d n=%d median=%.2f ms p99=%.2f ms max=%.2f ms%n", callers, n,
                    micros.get(n / 2) / 1000.0, micros.get((int) (n * 0.99) - 1) / 1000.0, micros.get(n - 1) / 1000.0);
        }
        devices.forEach(ScriptedDevice::close);
        server.stop();
        System.exit(0);
    }

    private static long call(KaiserServer server, int dev) {
        long t0 = System.nanoTime();
        Http.Response r = Http.post(server.baseUrl() + "/esp/devices/ESP_RT" + dev + "/system-command", "{\"command\":\"status\"}",
                "Prefer", "wait=5");
        long us = (System.nanoTime() - t0) / 1000;
        if (r.status() != 200) {
            throw new IllegalStateException(r.status() + " " + r.body());
        }
        return us;
    }
}
