package io.kaiser.bench;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.BiFunction;

import org.eclipse.paho.mqttv5.client.IMqttToken;
import org.eclipse.paho.mqttv5.client.MqttAsyncClient;
import org.eclipse.paho.mqttv5.client.MqttConnectionOptions;
import org.eclipse.paho.mqttv5.client.persist.MemoryPersistence;
import org.eclipse.paho.mqttv5.common.MqttException;
import org.eclipse.paho.mqttv5.common.MqttMessage;

/**
 * D simulated devices (one Paho client and one thread each) publishing QoS 1 {@code sensor/4/data} readings as fast
 * as the broker acknowledges them, at most {@code window} unacknowledged per device. {@code ts} is a per-device
 * unique wall-clock millisecond (the reading's natural key), {@code seq} the publish time in epoch microseconds
 * (the latency probe's reference, see {@link Bench#installLatencyProbe}).
 */
final class LoadGenerator implements AutoCloseable {
    final List<MqttAsyncClient> clients = new ArrayList<>();
    final List<String> espIds = new ArrayList<>();
    final AtomicLong sent = new AtomicLong();
    final AtomicLong acked = new AtomicLong();
    private final BiFunction<String, String, String> topic;
    private final int window;
    /** Per device: the last {@code ts} used, kept across runs (a fast device runs ahead of the clock). */
    private long[] lastTs;
    double publishSeconds;
    /** 0: as fast as the broker takes them; else each device publishes one reading every this many ns. */
    long intervalNanos;

    /** Paces the next runs to {@code totalRate} readings/s over all devices (0: unpaced). */
    void pace(int totalRate) {
        intervalNanos = totalRate <= 0 ? 0 : (long) (1e9 * clients.size() / totalRate);
    }

    /** {@code topic.apply(espId, suffix)} gives a device topic. */
    LoadGenerator(String url, String clientPrefix, int devices, int window, BiFunction<String, String, String> topic) throws MqttException {
        this.topic = topic;
        this.window = window;
        this.lastTs = new long[devices];
        for (int d = 0; d < devices; d++) {
            String esp = String.format("ESP_B%04d", d);
            MqttAsyncClient c = new MqttAsyncClient(url, clientPrefix + "-" + d, new MemoryPersistence());
            MqttConnectionOptions o = new MqttConnectionOptions();
            o.setReceiveMaximum(Math.max(window, 20));
            o.setAutomaticReconnect(false);
            c.connect(o).waitForCompletion(10_000);
            clients.add(c);
            espIds.add(esp);
        }
    }

    /** One heartbeat per device (QoS 0, the contract's), so that a Kaiser server registers the devices. */
    void heartbeats() throws MqttException {
        for (int d = 0; d < clients.size(); d++) {
            clients.get(d).publish(topic.apply(espIds.get(d), "system/heartbeat"),
                    ("{\"ts\":" + System.currentTimeMillis() / 1000 + ",\"uptime\":1,\"heap_free\":100000,\"wifi_rssi\":-50}")
                            .getBytes(StandardCharsets.UTF_8), 0, false);
        }
    }

    /** Publishes for the given time from all devices; returns messages sent (all acknowledged by the broker). */
    long run(Duration duration) throws InterruptedException {
        long end = System.nanoTime() + duration.toNanos();
        List<Thread> threads = new ArrayList<>();
        long start = System.nanoTime();
        for (int d = 0; d < clients.size(); d++) {
            final int dev = d;
            Thread t = new Thread(() -> publishLoop(dev, end), "load-" + d);
            t.start();
            threads.add(t);
        }
        for (Thread t : threads) {
            t.join();
        }
        publishSeconds = (System.nanoTime() - start) / 1e9;
        return sent.get();
    }

    private void publishLoop(int dev, long end) {
        MqttAsyncClient c = clients.get(dev);
        String esp = espIds.get(dev);
        String t = topic.apply(esp, "sensor/4/data");
        ArrayDeque<IMqttToken> inflight = new ArrayDeque<>();
        long lastTs = this.lastTs[dev];
        long i = 0;
        long next = System.nanoTime();
        try {
            while (System.nanoTime() < end) {
                if (intervalNanos > 0) {
                    next += intervalNanos;
                    long wait = next - System.nanoTime();
                    if (wait > 0) {
                        java.util.concurrent.locks.LockSupport.parkNanos(wait);
                    }
                }
                long ts = Math.max(System.currentTimeMillis(), lastTs + 1);
                lastTs = ts;
                java.time.Instant now = java.time.Instant.now();
                long micros = now.getEpochSecond() * 1_000_000L + now.getNano() / 1000;
                String json = "{\"ts\":" + ts + ",\"esp_id\":\"" + esp + "\",\"gpio\":4,\"sensor_type\":\"ds18b20\",\"raw\":"
                        + (300 + i % 50) + ",\"seq\":" + micros + "}";
                MqttMessage m = new MqttMessage(json.getBytes(StandardCharsets.UTF_8));
                m.setQos(1);
                try {
                    if (inflight.size() >= window) {
                        inflight.poll().waitForCompletion(30_000);
                        acked.incrementAndGet();
                    }
                    inflight.add(c.publish(t, m));
                    sent.incrementAndGet();
                    i++;
                } catch (MqttException e) {
                    if (e.getReasonCode() != 32202) {
                        throw new IllegalStateException(e);
                    }
                    lastTs--; // not sent: the next reading may reuse the timestamp
                    java.util.concurrent.locks.LockSupport.parkNanos(200_000); // Paho's window lags its tokens
                }
            }
            this.lastTs[dev] = lastTs;
            while (!inflight.isEmpty()) {
                inflight.poll().waitForCompletion(30_000);
                acked.incrementAndGet();
            }
        } catch (MqttException e) {
            throw new IllegalStateException(e);
        }
    }

    @Override
    public void close() {
        for (MqttAsyncClient c : clients) {
            try {
                c.disconnect().waitForCompletion(2000);
                c.close();
            } catch (MqttException e) {
                // best effort
            }
        }
    }
}
