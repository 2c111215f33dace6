package io.kaiser.bench;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicLong;

import io.kaiser.support.KaiserServer;
import org.eclipse.paho.mqttv5.client.MqttAsyncClient;
import org.eclipse.paho.mqttv5.client.MqttConnectionOptions;
import org.eclipse.paho.mqttv5.client.persist.MemoryPersistence;
import org.eclipse.paho.mqttv5.common.MqttMessage;

/**
 * Ingest throughput smoke: D devices publish QoS 1 readings as fast as the broker takes them for S seconds into
 * a real server (same JVM, real broker, real PostgreSQL); prints readings durably stored per second.
 * Not a test. Run: {@code mvn -q test-compile exec:java -Dexec.classpathScope=test
 * -Dexec.mainClass=io.kaiser.bench.IngestThroughput -Dexec.args="20 15"}
 */
public final class IngestThroughput {
    public static void main(String[] args) throws Exception {
        int devices = args.length > 0 ? Integer.parseInt(args[0]) : 20;
        int seconds = args.length > 1 ? Integer.parseInt(args[1]) : 15;
        KaiserServer server = new KaiserServer("bench", Map.of("kaiser.registration.auto-approve", "true")).start();
        List<MqttAsyncClient> clients = new ArrayList<>();
        for (int d = 0; d < devices; d++) {
            MqttAsyncClient c = new MqttAsyncClient(server.mqttUrl(), "bench-" + server.kaiserId() + "-" + d, new MemoryPersistence());
            c.connect(new MqttConnectionOptions()).waitForCompletion(5000);
            c.publish(server.topic(esp(d), "system/heartbeat"), "{\"ts\":1735818000,\"uptime\":1,\"heap_free\":1,\"wifi_rssi\":-50}"
                    .getBytes(StandardCharsets.UTF_8), 0, false);
            clients.add(c);
        }
        long deadlineWait = System.nanoTime() + Duration.ofSeconds(20).toNanos();
        while (server.count("SELECT count(*) FROM devices WHERE status = 'online'") < devices && System.nanoTime() < deadlineWait) {
            Thread.onSpinWait();
        }
        AtomicLong sent = new AtomicLong();
        long end = System.nanoTime() + Duration.ofSeconds(seconds).toNanos();
        List<Thread> threads = new ArrayList<>();
        for (int d = 0; d < devices; d++) {
            final int dev = d;
            Thread t = new Thread(() -> {
                MqttAsyncClient c = clients.get(dev);
                java.util.ArrayDeque<org.eclipse.paho.mqttv5.client.IMqttToken> inflight = new java.util.ArrayDeque<>();
                long i = 0;
                while (System.nanoTime() < end) {
                    String json = "{\"ts\":" + (1795000000L + i) + ",\"esp_id\":\"" + esp(dev) + "\",\"gpio\":4,\"sensor_type\":\"ds18b20\",\"raw\":"
                            + (300 + i % 50) + ",\"seq\":" + i + "}";
                    MqttMessage m = new MqttMessage(json.getBytes(StandardCharsets.UTF_8));
                    m.setQos(1);
                    try {
                        if (inflight.size() >= 8) {
                            inflight.poll().waitForCompletion(10_000); // keep at most 8 unacknowledged per device
                        }
                        inflight.add(c.publish(server.topic(esp(dev), "sensor/4/data"), m));
                        sent.incrementAndGet();
                        i++;
                    } catch (org.eclipse.paho.mqttv5.common.MqttException e) {
                        if (e.getReasonCode() != 32202) {
                            throw new IllegalStateException(e);
                        }
                        java.util.concurrent.locks.LockSupport.parkNanos(200_000); // Paho's window lags its tokens
                    }
                }
            });
            t.start();
            threads.add(t);
        }
        long start = System.nanoTime();
        for (Thread t : threads) {
            t.join();
        }
        double publishSeconds = (System.nanoTime() - start) / 1e9;
        long total = sent.get();
        io.kaiser.ingest.IngestReceiver receiver = server.bean("ingestReceiver", io.kaiser.ingest.IngestReceiver.class);
        io.kaiser.ingest.IngestDrainer drainer = server.bean("ingestDrainer", io.kaiser.ingest.IngestDrainer.class);
        while (server.count("SELECT count(*) FROM sensor_data") < total && System.nanoTime() - start < Duration.ofSeconds(seconds + 120).toNanos()) {
            System.out.printf("t=%.0fs received=%d drained=%d backlog=%d bytes%n", (System.nanoTime() - start) / 1e9, receiver.received(),
                    drainer.processed(), drainer.backlogBytes());
            java.util.concurrent.locks.LockSupport.parkNanos(2_000_000_000L);
        }
        double allStored = (System.nanoTime() - start) / 1e9;
        long stored = server.count("SELECT count(*) FROM sensor_data");
        System.out.printf("devices=%d published=%d in %.1f s (%.0f msg/s); stored=%d; all stored after %.1f s => %.0f readings/s durably stored%n",
                devices, total, publishSeconds, total / publishSeconds, stored, allStored, stored / allStored);
        for (MqttAsyncClient c : clients) {
            c.disconnect().waitForCompletion(2000);
            c.close();
        }
        server.stop();
        System.exit(0);
    }

    private static String esp(int d) {
        return String.format("ESP_B%04d", d);
    }
}
