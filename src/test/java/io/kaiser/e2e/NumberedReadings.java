package io.kaiser.e2e;

import java.nio.charset.StandardCharsets;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;

import io.kaiser.support.E2eStack;
import org.eclipse.paho.mqttv5.client.MqttClient;
import org.eclipse.paho.mqttv5.client.MqttConnectionOptions;
import org.eclipse.paho.mqttv5.client.persist.MemoryPersistence;
import org.eclipse.paho.mqttv5.common.MqttException;
import org.eclipse.paho.mqttv5.common.MqttMessage;

/**
 * A device-like client publishing numbered QoS 1 readings ({@code seq} 0, 1, 2, ...; a distinct {@code ts} each) at a
 * steady rate, the way a device with an offline buffer does: a reading counts as sent once the broker acknowledged
 * it (PUBACK); one that was not acknowledged (broker gone, connection cut) is sent again after the reconnect, so
 * the broker may see a reading twice and the server must store it once. Counting rows per seq then proves
 * "nothing lost, nothing doubled".
 */
final class NumberedReadings implements AutoCloseable {
    private final E2eStack stack;
    private final String espId;
    private final long periodNanos;
    private final MqttClient client;
    private final AtomicInteger acked = new AtomicInteger();
    private final AtomicLong retries = new AtomicLong();
    private final AtomicBoolean running = new AtomicBoolean(true);
    private final Thread thread;
    private final long tsBase = System.currentTimeMillis() / 1000 - 86_400;

    NumberedReadings(E2eStack stack, String url, String espId, int perSecond) {
        this.stack = stack;
        this.espId = espId;
        this.periodNanos = TimeUnit.SECONDS.toNanos(1) / perSecond;
        try {
            client = new MqttClient(url, espId, new MemoryPersistence());
            MqttConnectionOptions o = new MqttConnectionOptions();
            o.setAutomaticReconnect(true);
            o.setAutomaticReconnectDelay(1, 2);
            o.setConnectionTimeout(5);
            o.setCleanStart(true);
            client.setTimeToWait(5000);
            client.connect(o);
        } catch (MqttException e) {
            throw new IllegalStateException(e);
        }
        thread = new Thread(this::run, "numbered-" + espId);
        thread.setDaemon(true);
    }

    /** The registration heartbeat (the server dead-letters data of devices it has never seen). */
    NumberedReadings heartbeat() {
        publishOnce(stack.topic(espId, "system/heartbeat"), io.kaiser.support.Heartbeats.original(espId), 0);
        return this;
    }

    NumberedReadings startStreaming() {
        thread.start();
        return this;
    }

    private void publishOnce(String topic, String payload, int qos) {
        try {
            client.publish(topic, payload.getBytes(StandardCharsets.UTF_8), qos, false);
        } catch (MqttException e) {
            throw new IllegalStateException(e);
        }
    }

    private void run() {
        long next = System.nanoTime();
        int seq = 0;
        while (running.get()) {
            String payload = "{\"ts\":" + (tsBase + seq) + ",\"esp_id\":\"" + espId + "\",\"gpio\":4,\"sensor_type\":\"ds18b20\",\"raw\":"
                    + (300 + seq % 50) + ",\"seq\":" + seq + "}";
            MqttMessage m = new MqttMessage(payload.getBytes(StandardCharsets.UTF_8));
            m.setQos(1);
            try {
                client.publish(stack.topic(espId, "sensor/4/data"), m);
                acked.incrementAndGet();
                seq++;
            } catch (MqttException e) {
                // not acknowledged: this reading is sent again (the device keeps it in its buffer)
                retries.incrementAndGet();
                LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(50));
                next = System.nanoTime();
                continue;
            }
            next += periodNanos;
            long wait = next - System.nanoTime();
            if (wait > 0) {
                LockSupport.parkNanos(wait);
            }
        }
    }

    /** Readings the broker acknowledged so far; they have seq 0 .. acked-1. */
    int acked() {
        return acked.get();
    }

    long retries() {
        return retries.get();
    }

    String espId() {
        return espId;
    }

    /** Stops streaming and returns the number of acknowledged readings (seq 0 .. n-1). */
    int stop() {
        running.set(false);
        try {
            thread.join(TimeUnit.SECONDS.toMillis(20));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        return acked.get();
    }

    @Override
    public void close() {
        running.set(false);
        try {
            if (client.isConnected()) {
                client.disconnect();
            }
            client.close(true);
        } catch (MqttException e) {
            // closing
        }
    }
}
